//! One group-commit queue for the writes chat delivery makes beside the acknowledgements:
//! the outbox's bookkeeping (delivery_writes.rs) and the conversation state
//! (surface_writes.rs).
//!
//! They used to be two queues, each with its own transaction. On SQLite, which has one
//! writer, a new request's group commit then waited behind up to two of them in turn; with
//! one queue it waits behind at most one, and that one is kept short.
//!
//! On SQLite the usual batch (conversation-state swaps and "delivered" marks, each with
//! the claim of the row that follows it) is one query from `BEGIN IMMEDIATE` to `COMMIT`
//! (one_trip.rs): a multi-row `UPDATE … FROM` per kind of write, each taking its rows as one
//! JSON parameter (one statement shape, one cached plan, whatever the batch's size). Each
//! statement, `BEGIN` and `COMMIT` included, is a hand-over to sqlx's thread for the
//! connection, and a new request's group commit waits for the writer meanwhile: one
//! statement per write made that four or five hand-overs a command, and a statement per
//! kind of write still five a batch (issue 14). On PostgreSQL the same batch is one
//! statement of data-modifying `WITH` clauses (its own transaction, one round trip where a
//! statement per write was one each). A batch holding a rarer write (a claim of a progress
//! run, a failure, a deferral) goes one statement per write in one transaction.
//!
//! Each write is still its own compare-and-set on its own rows: a multi-row statement holds
//! at most one write per request (a second write to the same request in a batch goes after
//! it, on its own), and `RETURNING` says which rows each write changed. Sharing a
//! transaction or a statement changes nothing about who wins.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use sqlx::{AnyConnection, AssertSqlSafe, Row, any::AnyRow};

use super::{
    Backend, Store, StoreError,
    batch::Batched,
    delivery_writes::{Change, DeliveryWrite},
    one_trip::one_trip,
    surface_writes::SurfaceSwap,
};

/// A multi-row statement slower than this (it takes about 1 ms) makes the store refresh the
/// planner's statistics (`Store::refresh_statistics`).
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(25);

pub(super) enum Bookkeeping {
    Delivery(DeliveryWrite),
    Surface(SurfaceSwap),
}

impl Bookkeeping {
    /// The write alone: its own statement(s).
    async fn execute(&self, conn: &mut AnyConnection) -> Result<u64, StoreError> {
        match self {
            Bookkeeping::Delivery(write) => write.run(conn).await,
            Bookkeeping::Surface(swap) => swap.run(conn).await.map(u64::from),
        }
    }
}

impl Batched for Bookkeeping {
    /// Rows changed (a surface swap changes its one row when it wins).
    type Output = u64;
    /// A new request waits for the writer behind at most one such batch; a batch with a
    /// rarer write is still one statement per write, so the bound stays where it was measured
    /// (docs/performance-log.md, "Round after").
    const MAX: usize = 48;

    async fn batch(store: &Store, conn: &mut AnyConnection, jobs: &[Self]) -> Result<Vec<Option<u64>>, StoreError> {
        let grouped = Grouped::of(jobs.iter().enumerate());
        if grouped.multi_row() {
            let started = std::time::Instant::now();
            let done = multi_row(store.backend(), conn, &grouped, jobs.len()).await?;
            if started.elapsed() >= SLOW_BATCH {
                store.refresh_statistics();
            }
            return Ok(done.into_iter().map(Some).collect());
        }
        let done = one_by_one(store.backend(), conn, &jobs.iter().collect::<Vec<_>>()).await?;
        Ok(done.into_iter().map(Some).collect())
    }

    async fn one(store: &Store, job: &Self) -> Result<u64, StoreError> {
        let mut conn = store.writer().acquire().await?;
        job.execute(&mut conn).await
    }
}

/// `jobs` one statement each, in one transaction; rows changed by each, in order.
pub(super) async fn one_by_one(
    backend: Backend,
    conn: &mut AnyConnection,
    jobs: &[&Bookkeeping],
) -> Result<Vec<u64>, StoreError> {
    // SQLite takes the write lock up front, as `Store::begin` does.
    let mut tx = match backend {
        Backend::Sqlite => sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?,
        Backend::Postgres => sqlx::Connection::begin(conn).await?,
    };
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        done.push(job.execute(&mut tx).await?);
    }
    tx.commit().await?;
    Ok(done)
}

/// A batch's writes by the statement that takes them: at most one swap and one mark per
/// request in the multi-row statements, the rest alone. (index in the batch, write)
pub(super) struct Grouped<'a> {
    swaps: Vec<(usize, &'a SurfaceSwap)>,
    marks: Vec<(usize, &'a DeliveryWrite)>,
    alone: Vec<usize>,
}

impl<'a> Grouped<'a> {
    /// `jobs` with their places in the batch.
    pub(super) fn of(jobs: impl IntoIterator<Item = (usize, &'a Bookkeeping)>) -> Self {
        let (mut swaps, mut marks, mut alone) = (Vec::new(), Vec::new(), Vec::new());
        let (mut swapped, mut marked) = (HashSet::new(), HashSet::new());
        for (i, job) in jobs {
            match job {
                Bookkeeping::Surface(s) if swapped.insert(&s.id) => swaps.push((i, s)),
                Bookkeeping::Delivery(d) if matches!(d.change, Change::Delivered { .. }) && marked.insert(&d.id) => {
                    marks.push((i, d));
                }
                _ => alone.push(i),
            }
        }
        Self { swaps, marks, alone }
    }
}

/// A batch of swaps and marks alone (the usual one: posts' conversation states and their
/// "delivered" marks) as one query: on SQLite `BEGIN IMMEDIATE` to `COMMIT` (one_trip.rs),
/// on PostgreSQL one statement, which is its own transaction.
async fn multi_row(
    backend: Backend,
    conn: &mut AnyConnection,
    grouped: &Grouped<'_>,
    n: usize,
) -> Result<Vec<u64>, StoreError> {
    let (swaps, claims, marks) = grouped.rows();
    let rows = match backend {
        Backend::Sqlite => {
            let query = sqlx::query(AssertSqlSafe(transaction()));
            one_trip(conn, query.bind(swaps).bind(claims).bind(marks)).await?
        }
        Backend::Postgres => {
            let query = sqlx::query(POSTGRES);
            query.bind(swaps).bind(claims).bind(marks).fetch_all(conn).await?
        }
    };
    Ok(grouped.finish(&tagged(&rows)?, n))
}

/// How many rows each (statement tag, request id) changed, from a one-trip query's rows.
pub(super) fn tagged(rows: &[AnyRow]) -> Result<HashMap<(String, String), u64>, StoreError> {
    let mut changed = HashMap::new();
    for row in rows {
        *changed.entry((row.try_get(0)?, row.try_get(1)?)).or_default() += 1;
    }
    Ok(changed)
}

impl Grouped<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.swaps.is_empty() && self.marks.is_empty() && self.alone.is_empty()
    }

    /// Whether the batch can go as the multi-row statements alone.
    pub(super) fn multi_row(&self) -> bool {
        self.alone.is_empty()
    }

    /// The statements' three JSON parameters: swaps, follow-on claims, marks.
    pub(super) fn rows(&self) -> (String, String, String) {
        let swaps: Vec<Value> = self
            .swaps
            .iter()
            .map(|(_, s)| json!({ "rid": s.id.as_str(), "was": s.before, "data": s.after }))
            .collect();
        let (mut marks, mut claims) = (Vec::new(), Vec::new());
        for (_, d) in &self.marks {
            let Change::Delivered { platform_id, now, next } = &d.change else {
                continue;
            };
            let (id, lo, hi, who) = (d.id.as_str(), d.first, d.last, &d.owner);
            marks.push(json!({ "rid": id, "lo": lo, "hi": hi, "who": who, "stamp": now, "pid": platform_id }));
            if let Some((seq, till)) = next {
                claims
                    .push(json!({ "rid": id, "lo": lo, "hi": hi, "who": who, "stamp": now, "seq": seq, "till": till }));
            }
        }
        let text = |rows: Vec<Value>| Value::Array(rows).to_string();
        (text(swaps), text(claims), text(marks))
    }

    /// Each of the batch's `n` writes' answers (indexed as in the batch), from the rows the
    /// statements changed.
    pub(super) fn finish(&self, changed: &HashMap<(String, String), u64>, n: usize) -> Vec<u64> {
        let count = |tag: &str, id: &str| changed.get(&(tag.to_owned(), id.to_owned())).copied().unwrap_or(0);
        let mut out = vec![0; n];
        for (i, s) in &self.swaps {
            out[*i] = count("swap", s.id.as_str());
        }
        for (i, d) in &self.marks {
            // A write with a follow-on claim answers with the claim's rows (see DeliveryWrite::run).
            let followed = matches!(d.change, Change::Delivered { next: Some(_), .. });
            out[*i] = count(if followed { "claim" } else { "mark" }, d.id.as_str());
        }
        out
    }
}

/// The batch's transaction: `$1` swaps, `$2` follow-on claims, `$3` marks.
pub(super) fn transaction() -> &'static str {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("BEGIN IMMEDIATE; {}; COMMIT;", statements(1)));
    &SQL
}

/// The three statements, their JSON parameters numbered from `first`; each changed row comes
/// back tagged with its statement (`'swap'`, `'claim'`, `'mark'`) and request id.
///
/// The rows are a derived table read from the JSON array with jsonb_each (each row's object
/// stays parsed for json_extract; see insert/sqlite.rs); the statements are otherwise the
/// single-row ones of surface_writes.rs and delivery_writes.rs. The follow-on claims run
/// before the marks, each on the condition its mark then tests (a row of the write's range
/// still pending and held by its owner); the claimed row is never in that range, so a claim
/// lands exactly when it would have after its mark.
pub(super) fn statements(first: usize) -> String {
    let (swaps, claims, marks) = (first, first + 1, first + 2);
    format!(
        "UPDATE requests SET surface_data = v.data \
          FROM (SELECT json_extract(value, '$.rid') AS rid, json_extract(value, '$.was') AS was, \
                       json_extract(value, '$.data') AS data FROM jsonb_each(${swaps})) AS v \
          WHERE requests.id = v.rid AND requests.surface_data IS v.was RETURNING 'swap', id; \
         UPDATE deliveries SET lease_owner = v.who, lease_until = v.till, attempts = attempts + 1 \
          FROM (SELECT json_extract(value, '$.rid') AS rid, json_extract(value, '$.lo') AS lo, \
                       json_extract(value, '$.hi') AS hi, json_extract(value, '$.seq') AS seq, \
                       json_extract(value, '$.who') AS who, json_extract(value, '$.stamp') AS stamp, \
                       json_extract(value, '$.till') AS till FROM jsonb_each(${claims})) AS v \
          WHERE deliveries.request_id = v.rid AND deliveries.seq = v.seq AND +deliveries.state = 'pending' \
            AND (deliveries.lease_until IS NULL OR deliveries.lease_until < v.stamp) \
            AND EXISTS (SELECT 1 FROM deliveries m WHERE m.request_id = v.rid AND m.seq BETWEEN v.lo AND v.hi \
                        AND m.lease_owner = v.who AND +m.state = 'pending') RETURNING 'claim', request_id; \
         UPDATE deliveries SET state = 'delivered', delivered_at = v.stamp, platform_id = v.pid, \
            lease_owner = NULL, lease_until = NULL, error = NULL \
          FROM (SELECT json_extract(value, '$.rid') AS rid, json_extract(value, '$.lo') AS lo, \
                       json_extract(value, '$.hi') AS hi, json_extract(value, '$.who') AS who, \
                       json_extract(value, '$.stamp') AS stamp, json_extract(value, '$.pid') AS pid \
                FROM jsonb_each(${marks})) AS v \
          WHERE deliveries.request_id = v.rid AND deliveries.seq BETWEEN v.lo AND v.hi \
            AND deliveries.lease_owner = v.who AND +deliveries.state = 'pending' RETURNING 'mark', request_id"
    )
}

/// The batch on PostgreSQL: one statement (its own transaction), `$1` swaps, `$2` follow-on
/// claims, `$3` marks.
///
/// Data-modifying `WITH` clauses all see the snapshot the statement began with, so each
/// follow-on claim tests its mark's condition on the rows as they were before the mark, as
/// on SQLite where the claim runs first. (Round nine's three `UPDATE … FROM` statements in
/// a transaction left the posts behind the acks; this one statement keeps up; docs/performance-log.md, round twelve.)
const POSTGRES: &str = r#"WITH swaps AS (
    UPDATE requests SET surface_data = v.data
    FROM json_to_recordset($1::json) AS v(rid text, was text, data text)
    WHERE requests.id = v.rid AND requests.surface_data IS NOT DISTINCT FROM v.was
    RETURNING 'swap'::text AS tag, requests.id AS rid
), claims AS (
    UPDATE deliveries SET lease_owner = v.who, lease_until = v.till, attempts = deliveries.attempts + 1
    FROM json_to_recordset($2::json) AS v(rid text, lo bigint, hi bigint, seq bigint, who text, stamp bigint, till bigint)
    WHERE deliveries.request_id = v.rid AND deliveries.seq = v.seq AND deliveries.state = 'pending'
      AND (deliveries.lease_until IS NULL OR deliveries.lease_until < v.stamp)
      AND EXISTS (SELECT 1 FROM deliveries m WHERE m.request_id = v.rid AND m.seq BETWEEN v.lo AND v.hi
                  AND m.lease_owner = v.who AND m.state = 'pending')
    RETURNING 'claim'::text AS tag, deliveries.request_id AS rid
), marks AS (
    UPDATE deliveries SET state = 'delivered', delivered_at = v.stamp, platform_id = v.pid,
        lease_owner = NULL, lease_until = NULL, error = NULL
    FROM json_to_recordset($3::json) AS v(rid text, lo bigint, hi bigint, who text, stamp bigint, pid text)
    WHERE deliveries.request_id = v.rid AND deliveries.seq BETWEEN v.lo AND v.hi
      AND deliveries.lease_owner = v.who AND deliveries.state = 'pending'
    RETURNING 'mark'::text AS tag, deliveries.request_id AS rid
)
SELECT tag, rid FROM swaps UNION ALL SELECT tag, rid FROM claims UNION ALL SELECT tag, rid FROM marks"#;
