-- Portable between SQLite and PostgreSQL: text, BIGINT and no auto-increment. Times are
-- milliseconds since the Unix epoch.

CREATE TABLE requests (
    id                  TEXT PRIMARY KEY,
    command             TEXT NOT NULL,
    action              TEXT NOT NULL,
    text                TEXT NOT NULL,
    args                TEXT NOT NULL,
    state               TEXT NOT NULL,
    requester           TEXT NOT NULL,
    surface             TEXT NOT NULL,
    channel             TEXT,
    thread              TEXT,
    idempotency_key     TEXT,
    approval            TEXT,
    approval_expires_at BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    started_at          BIGINT,
    finished_at         BIGINT,
    worker              TEXT,
    lease_until         BIGINT,
    attempts            BIGINT NOT NULL DEFAULT 0,
    outcome             TEXT,
    event_seq           BIGINT NOT NULL DEFAULT 0
);

-- A redelivered chat payload carries the same delivery id: the second insert is a no-op.
CREATE UNIQUE INDEX requests_idempotency ON requests (surface, idempotency_key);
CREATE INDEX requests_state ON requests (state, created_at);
CREATE INDEX requests_requester ON requests (requester, created_at);

-- One row per person and request, so approvals count distinct people by construction.
CREATE TABLE approvals (
    request_id TEXT NOT NULL,
    approver   TEXT NOT NULL,
    decision   TEXT NOT NULL,
    reason     TEXT,
    surface    TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);

CREATE TABLE events (
    request_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    message    TEXT NOT NULL,
    data       TEXT,
    PRIMARY KEY (request_id, seq)
);

CREATE TABLE audit (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    surface    TEXT NOT NULL,
    request_id TEXT,
    action     TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    detail     TEXT
);
CREATE INDEX audit_request ON audit (request_id, at);
