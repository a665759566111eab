-- The last requests through each proxy link, for `proxy list` (the newest 20 per link are
-- kept). The path is what followed the token, never the token itself.
CREATE TABLE proxy_requests (
    link_id TEXT NOT NULL,
    at      BIGINT NOT NULL,
    method  TEXT NOT NULL,
    path    TEXT NOT NULL,
    status  INTEGER NOT NULL,
    millis  BIGINT NOT NULL
);

CREATE INDEX proxy_requests_link ON proxy_requests (link_id, at);
