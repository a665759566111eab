//! One group-commit queue for the writes chat delivery makes beside the acknowledgements:
//! the outbox's bookkeeping (delivery_writes.rs) and the conversation state
//! (surface_writes.rs).
//!
//! They used to be two queues, each with its own transaction. On SQLite, which has one
//! writer, a new request's group commit then waited behind up to two of them in turn; with
//! one queue it waits behind at most one, and that one is kept short.
//!
//! On SQLite a batch is a few statements, not one per write: the conversation-state swaps are one
//! multi-row `UPDATE … FROM`, the "delivered" marks another, the claims of the rows that
//! follow them a third, each taking its rows as one JSON parameter (one statement shape,
//! one cached plan, whatever the batch's size). One statement per write made the single
//! SQLite writer spend most of its time on round trips to its worker thread: four or five a
//! command, more than the acknowledgement's own share of its batch (issue 14). The rarer
//! writes (claims of progress runs, failures, deferrals) still go one statement each, and
//! on PostgreSQL every write does (see `run_batch`).
//!
//! Each write is still its own compare-and-set on its own rows: a multi-row statement holds
//! at most one write per request (a second write to the same request in a batch goes after
//! it, on its own), and `RETURNING` says which rows each write changed. Sharing a
//! transaction or a statement changes nothing about who wins.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

use super::{
    Backend, Store, StoreError,
    batch::Batched,
    delivery_writes::{Change, DeliveryWrite},
    surface_writes::SurfaceSwap,
};

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
    /// A new request waits for the writer behind at most one such batch; on PostgreSQL it
    /// is still one statement per write, so the bound stays where the README puts it.
    const MAX: usize = 48;

    async fn batch(store: &Store, jobs: &[Self]) -> Result<Vec<Option<u64>>, StoreError> {
        let mut tx = store.begin().await?;
        let done = run_batch(&mut tx, store.backend(), jobs).await?;
        tx.commit().await?;
        Ok(done.into_iter().map(Some).collect())
    }

    async fn one(store: &Store, job: &Self) -> Result<u64, StoreError> {
        let mut conn = store.writer().acquire().await?;
        job.execute(&mut conn).await
    }
}

/// The batch's writes, in a transaction the caller commits; rows changed by each, in order.
async fn run_batch(conn: &mut AnyConnection, backend: Backend, jobs: &[Bookkeeping]) -> Result<Vec<u64>, StoreError> {
    let mut out = vec![0; jobs.len()];
    if backend == Backend::Postgres {
        // One statement per write: with multi-row statements (`UPDATE … FROM
        // json_to_recordset(…)`) PostgreSQL's posts fell minutes behind the acks in the
        // bench, in round six and again in round nine (README, issue 14). The planner's
        // choice for the JSON rows against a table that grew from empty is the suspect.
        for (i, job) in jobs.iter().enumerate() {
            out[i] = job.execute(conn).await?;
        }
        return Ok(out);
    }
    let (mut swaps, mut marks, mut alone) = (Vec::new(), Vec::new(), Vec::new());
    let (mut swapped, mut marked) = (HashSet::new(), HashSet::new());
    for (i, job) in jobs.iter().enumerate() {
        match job {
            Bookkeeping::Surface(s) if swapped.insert(&s.id) => swaps.push((i, s)),
            Bookkeeping::Delivery(d) if matches!(d.change, Change::Delivered { .. }) && marked.insert(&d.id) => {
                marks.push((i, d));
            }
            _ => alone.push(i),
        }
    }
    if !swaps.is_empty() {
        swap_many(conn, &swaps, &mut out).await?;
    }
    if !marks.is_empty() {
        deliver_many(conn, &marks, &mut out).await?;
    }
    for i in alone {
        out[i] = jobs[i].execute(conn).await?;
    }
    Ok(out)
}

/// Runs `sql` with `rows` as its JSON parameter; how many rows it changed for each request
/// id (its `RETURNING` column).
async fn changed_by_id(
    conn: &mut AnyConnection,
    sql: &'static str,
    rows: Vec<Value>,
) -> Result<HashMap<String, u64>, StoreError> {
    let returned = sqlx::query(sql)
        .bind(Value::Array(rows).to_string())
        .fetch_all(conn)
        .await?;
    let mut changed = HashMap::new();
    for row in &returned {
        *changed.entry(row.try_get::<String, _>(0)?).or_default() += 1;
    }
    Ok(changed)
}

async fn swap_many(
    conn: &mut AnyConnection,
    swaps: &[(usize, &SurfaceSwap)],
    out: &mut [u64],
) -> Result<(), StoreError> {
    let rows = swaps
        .iter()
        .map(|(_, s)| json!({ "rid": s.id.as_str(), "was": s.before, "data": s.after }))
        .collect();
    let won = changed_by_id(conn, SQLITE_SWAPS, rows).await?;
    for (i, s) in swaps {
        out[*i] = won.get(s.id.as_str()).copied().unwrap_or(0);
    }
    Ok(())
}

/// "Delivered" marks, then the claims of the rows that follow the marks that landed.
async fn deliver_many(
    conn: &mut AnyConnection,
    marks: &[(usize, &DeliveryWrite)],
    out: &mut [u64],
) -> Result<(), StoreError> {
    let mut claims = Vec::new();
    let rows = marks
        .iter()
        .filter_map(|(_, d)| match &d.change {
            Change::Delivered { platform_id, now, .. } => Some(json!({
                "rid": d.id.as_str(), "lo": d.first, "hi": d.last, "who": d.owner, "stamp": now, "pid": platform_id,
            })),
            _ => None,
        })
        .collect();
    let marked = changed_by_id(conn, SQLITE_MARKS, rows).await?;
    for (i, d) in marks {
        let n = marked.get(d.id.as_str()).copied().unwrap_or(0);
        out[*i] = n;
        if let Change::Delivered {
            now,
            next: Some((seq, until)),
            ..
        } = &d.change
        {
            // A claim follows a mark that landed; the write's answer is then the claim's.
            out[*i] = 0;
            if n > 0 {
                claims.push((
                    *i,
                    d,
                    json!({ "rid": d.id.as_str(), "seq": seq, "who": d.owner, "stamp": now, "till": until }),
                ));
            }
        }
    }
    if claims.is_empty() {
        return Ok(());
    }
    let rows = claims.iter().map(|(_, _, row)| row.clone()).collect();
    let claimed = changed_by_id(conn, SQLITE_CLAIMS, rows).await?;
    for (i, d, _) in claims {
        out[i] = claimed.get(d.id.as_str()).copied().unwrap_or(0);
    }
    Ok(())
}

// The rows as a derived table read from the JSON array with jsonb_each (each row's object
// stays parsed for json_extract; see insert/sqlite.rs); the statements are otherwise the
// single-row ones of surface_writes.rs and delivery_writes.rs.

const SQLITE_SWAPS: &str = "UPDATE requests SET surface_data = v.data \
     FROM (SELECT json_extract(value, '$.rid') AS rid, json_extract(value, '$.was') AS was, \
                  json_extract(value, '$.data') AS data FROM jsonb_each($1)) AS v \
     WHERE requests.id = v.rid AND requests.surface_data IS v.was RETURNING id";

const SQLITE_MARKS: &str = "UPDATE deliveries SET state = 'delivered', delivered_at = v.stamp, platform_id = v.pid, \
       lease_owner = NULL, lease_until = NULL, error = NULL \
     FROM (SELECT json_extract(value, '$.rid') AS rid, json_extract(value, '$.lo') AS lo, \
                  json_extract(value, '$.hi') AS hi, json_extract(value, '$.who') AS who, \
                  json_extract(value, '$.stamp') AS stamp, json_extract(value, '$.pid') AS pid FROM jsonb_each($1)) AS v \
     WHERE deliveries.request_id = v.rid AND deliveries.seq BETWEEN v.lo AND v.hi \
       AND deliveries.lease_owner = v.who AND +deliveries.state = 'pending' RETURNING request_id";

const SQLITE_CLAIMS: &str = "UPDATE deliveries SET lease_owner = v.who, lease_until = v.till, attempts = attempts + 1 \
     FROM (SELECT json_extract(value, '$.rid') AS rid, json_extract(value, '$.seq') AS seq, \
                  json_extract(value, '$.who') AS who, json_extract(value, '$.stamp') AS stamp, \
                  json_extract(value, '$.till') AS till FROM jsonb_each($1)) AS v \
     WHERE deliveries.request_id = v.rid AND deliveries.seq = v.seq AND +deliveries.state = 'pending' \
       AND (deliveries.lease_until IS NULL OR deliveries.lease_until < v.stamp) RETURNING request_id";
