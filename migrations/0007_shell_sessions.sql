-- Interactive shell sessions (pod.shell). One row per link; the link's token is kept only as
-- its SHA-256, so the table alone does not open a shell. Times are milliseconds since the
-- Unix epoch. A link starts at most one session: started_at is set by a compare-and-set.
CREATE TABLE shell_sessions (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    requester   TEXT NOT NULL,
    env         TEXT NOT NULL,
    app         TEXT NOT NULL,
    pod         TEXT NOT NULL,
    container   TEXT,
    command     TEXT NOT NULL,
    record      BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    started_at  BIGINT,
    client      TEXT,
    ended_at    BIGINT,
    exit_code   BIGINT,
    end_reason  TEXT,
    -- JSON array of the lines typed, when the environment's tier records shells.
    input_lines TEXT
);

CREATE UNIQUE INDEX shell_sessions_token ON shell_sessions (token_hash);
CREATE INDEX shell_sessions_request ON shell_sessions (request_id);
