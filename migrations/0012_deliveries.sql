-- The chat outbox: one row per event a chat surface must show, written in the transaction
-- that stores the event. Deliverers on any replica claim a request's oldest pending row
-- (lease, compare-and-set), post it, and record the platform's message id; failures are
-- retried with backoff until delivery.retry_for, then marked failed.
CREATE TABLE deliveries (
    request_id   TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    surface      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    delivered_at BIGINT,
    platform_id  TEXT,
    error        TEXT,
    PRIMARY KEY (request_id, seq)
);

CREATE INDEX deliveries_pending ON deliveries (state, next_at);
