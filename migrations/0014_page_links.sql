-- Personal links to a request's web page (`GET /r/{token}`, issue 15): minted for one viewer
-- (the person who asked `request <id>`, or a load test's requester) and shown only as that
-- viewer's audience admits. Only the SHA-256 of a link's token is kept, as for proxy and
-- shell links, so the table alone opens nothing. Times are milliseconds since the Unix epoch.
CREATE TABLE page_links (
    token_hash TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    viewer     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- For sweeping expired links.
CREATE INDEX page_links_expires ON page_links (expires_at);
