-- Proxy links (proxy.open). Only the SHA-256 of a link's token is kept, so the table alone
-- does not let anyone use a link. Times are milliseconds since the Unix epoch.
CREATE TABLE proxies (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL,
    env          TEXT NOT NULL,
    service      TEXT NOT NULL,
    port         BIGINT NOT NULL,
    requester    TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    revoked_by   TEXT,
    hits         BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT
);

-- Every proxied request looks its link up by hash.
CREATE UNIQUE INDEX proxies_token ON proxies (token_hash);
CREATE INDEX proxies_env ON proxies (env, created_at);
