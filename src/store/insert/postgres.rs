//! A batch of new requests on PostgreSQL: one statement, one round trip.
//!
//! A transaction of a multi-row `INSERT` per table (as on SQLite, sqlite.rs) is BEGIN, four
//! statements and COMMIT, each a round trip to the server while the acks of the batch wait
//! (issue 14). PostgreSQL runs data-modifying `WITH` clauses in one
//! statement, which is its own transaction, so here the whole batch is one statement: the
//! rows travel as three JSON arrays (`json_to_recordset`), which also makes it one prepared
//! statement for every batch size. Events, their delivery rows and the audit row are joined
//! to the requests the `INSERT … ON CONFLICT DO NOTHING` returned, so a request that lost its
//! idempotency key to an earlier one adds nothing, as on the portable path.

/// `$1` now, `$2` requests, `$3` events, `$4` audit rows.
pub(super) fn statement() -> &'static str {
    STATEMENT
}

const STATEMENT: &str = r#"WITH r AS (
    INSERT INTO requests (id, command, action, text, args, state, requester, surface, channel, thread, surface_data,
        idempotency_key, approval, approval_expires_at, created_at, updated_at, requester_groups, event_seq)
    SELECT id, command, action, "text", args, state, requester, surface, channel, thread, surface_data,
        idempotency_key, approval, approval_expires_at, $1, $1, requester_groups, event_seq
    FROM json_to_recordset($2::json) AS x(id text, command text, action text, "text" text, args text, state text,
        requester text, surface text, channel text, thread text, surface_data text, idempotency_key text,
        approval text, approval_expires_at bigint, requester_groups text, event_seq bigint)
    ON CONFLICT DO NOTHING
    RETURNING id, surface, state
), e AS (
    SELECT x.* FROM json_to_recordset($3::json)
        AS x(request_id text, seq bigint, kind text, message text, data text, deliver boolean,
            lease_owner text, lease_until bigint)
    JOIN r ON r.id = x.request_id
), events_in AS (
    INSERT INTO events (request_id, seq, at, kind, message, data)
    SELECT request_id, seq, $1, kind, message, data FROM e
), deliveries_in AS (
    INSERT INTO deliveries (request_id, seq, surface, kind, state, attempts, created_at, next_at,
        lease_owner, lease_until)
    SELECT e.request_id, e.seq, r.surface, e.kind, 'pending', CASE WHEN e.lease_owner IS NULL THEN 0 ELSE 1 END,
        $1, $1, e.lease_owner, e.lease_until
    FROM e JOIN r ON r.id = e.request_id
    WHERE e.deliver
), audit_in AS (
    INSERT INTO audit (id, at, actor, surface, request_id, action, from_state, to_state, detail)
    SELECT x.id, $1, x.actor, x.surface, r.id, 'submit', NULL, r.state, x.detail
    FROM json_to_recordset($4::json) AS x(id text, request_id text, actor text, surface text, detail text)
    JOIN r ON r.id = x.request_id
)
SELECT id FROM r"#;
