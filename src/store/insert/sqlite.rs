//! A batch of new requests on SQLite: one statement per table, whatever the batch's size.
//!
//! Each statement is a round trip to sqlx's SQLite worker thread, and under load a round trip
//! is mostly waiting for that thread to be scheduled beside the HTTP workers: the batch used
//! to be four multi-row `INSERT`s per power-of-two chunk (three chunks for a batch of 14),
//! and the single writer spent about 190 µs of every acknowledgement on them (issue 14). The
//! rows now travel as the same JSON arrays PostgreSQL's one statement reads (postgres.rs),
//! through `jsonb_each`, and the transaction is one query (see [`statements`] and
//! one_trip.rs): one round trip whatever the batch's size.
//!
//! `jsonb_each`, not `json_each`: `json_each` hands each row's object to `json_extract` as
//! JSON text, so every column read turned the object back into text and parsed it again
//! (16 times a request); a profile of the bench had SQLite's JSON conversions at a fifth of
//! the process's time. `jsonb_each` hands over the parsed (JSONB) object, which
//! `json_extract` reads in place.

/// `$1` now, `$2` requests, `$3` events, `$4` audit rows: the transaction of four statements
/// as one query (one_trip.rs), which sqlx runs in turn on its worker thread (`$n` is the same
/// value in each).
pub(in crate::store) fn transaction() -> &'static str {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("BEGIN IMMEDIATE; {}; COMMIT;", statements()));
    &SQL
}

/// The four statements, for a transaction of their own or one shared with the delivery
/// bookkeeping (writer.rs). Each inserted request comes back as a row (`'insert'`, id).
/// Events, delivery rows and audit rows join the requests table on the ids generated for
/// this batch, so those of a request the `INSERT … ON CONFLICT DO NOTHING` skipped (its
/// idempotency key was taken) find nothing to join. (`WHERE true` tells SQLite's parser the
/// `ON CONFLICT` is the insert's, not a join's.)
pub(in crate::store) fn statements() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let fields = [
            "id",
            "command",
            "action",
            "text",
            "args",
            "state",
            "requester",
            "surface",
            "channel",
            "thread",
            "surface_data",
            "idempotency_key",
            "approval",
            "approval_expires_at",
        ];
        let values: Vec<String> = fields.iter().map(|f| format!("json_extract(value, '$.{f}')")).collect();
        format!(
            "INSERT INTO requests ({}, created_at, updated_at, requester_groups, event_seq) \
             SELECT {}, $1, $1, json_extract(value, '$.requester_groups'), json_extract(value, '$.event_seq') \
             FROM jsonb_each($2) WHERE true ON CONFLICT DO NOTHING RETURNING 'insert', id; \
             {EVENTS}; {DELIVERIES}; {AUDIT}",
            fields.join(", "),
            values.join(", ")
        )
    });
    &SQL
}

/// The events of the requests just inserted.
const EVENTS: &str = "INSERT INTO events (request_id, seq, at, kind, message, data) \
     SELECT r.id, json_extract(e.value, '$.seq'), $1, json_extract(e.value, '$.kind'), \
            json_extract(e.value, '$.message'), json_extract(e.value, '$.data') \
     FROM jsonb_each($3) AS e JOIN requests r ON r.id = json_extract(e.value, '$.request_id')";

/// A delivery row for each of those events that a chat thread shows; one stored claimed
/// counts that claim as its first attempt.
const DELIVERIES: &str = "INSERT INTO deliveries (request_id, seq, surface, kind, state, attempts, created_at, next_at, \
     lease_owner, lease_until) \
     SELECT r.id, json_extract(e.value, '$.seq'), r.surface, json_extract(e.value, '$.kind'), 'pending', \
            json_extract(e.value, '$.lease_owner') IS NOT NULL, $1, $1, \
            json_extract(e.value, '$.lease_owner'), json_extract(e.value, '$.lease_until') \
     FROM jsonb_each($3) AS e JOIN requests r ON r.id = json_extract(e.value, '$.request_id') \
     WHERE json_extract(e.value, '$.deliver')";

/// One `submit` audit row for each request just inserted.
const AUDIT: &str = "INSERT INTO audit (id, at, actor, surface, request_id, action, from_state, to_state, detail) \
     SELECT json_extract(a.value, '$.id'), $1, json_extract(a.value, '$.actor'), json_extract(a.value, '$.surface'), \
            r.id, 'submit', NULL, r.state, json_extract(a.value, '$.detail') \
     FROM jsonb_each($4) AS a JOIN requests r ON r.id = json_extract(a.value, '$.request_id')";
