//! The chat outbox's rows (`deliveries`): written with each event of a chat request
//! (`append_event_tx`), claimed by a deliverer with a lease, finished as delivered or failed.
//!
//! A request's rows are delivered in `seq` order: only its oldest pending row can be
//! claimed, so a row being retried holds back the rest of its thread instead of letting a
//! later event overtake it. A claim is a compare-and-set on (state, lease), so two replicas
//! never post the same row at once; a deliverer that dies leaves a lease that runs out, and
//! the row is posted again (the one repeat the outbox allows: the call in flight at a crash).

use serde::Serialize;
use sqlx::Row;

use super::{
    Store, StoreError,
    delivery_writes::{Change, DeliveryWrite},
};
use crate::domain::{RequestId, Surface};

/// A row ready to be claimed: the oldest pending event of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub request_id: RequestId,
    pub seq: i64,
    pub attempts: i64,
    pub created_at: i64,
}

/// A claim on a delivery row: who holds it and until when (ms since the epoch). A new
/// request's first row can be stored already claimed (`Store::insert_request`), for the
/// replica that handed it to its deliverer in memory (`crate::outbox::handoff`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

/// One delivery as the request's API view shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub seq: i64,
    pub surface: String,
    pub state: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The message the platform made of it: Slack's `ts`, Discord's message id (when the
    /// platform answers with one; edits of an existing message may not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_id: Option<String>,
}

/// Whether `surface` shows events in a chat thread (and so needs delivery rows).
pub fn delivers(surface: Surface) -> bool {
    matches!(surface, Surface::Slack | Surface::Discord)
}

pub(super) async fn insert_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &RequestId,
    seq: i64,
    surface: Surface,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deliveries (request_id, seq, surface, kind, state, attempts, created_at, next_at) \
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
    )
    .bind(id.as_str())
    .bind(seq)
    .bind(surface.as_str())
    .bind(kind)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The poll's claim (`Store::claim_heads`): `$1` now, `$2` how many, `$3` the owner, `$4` the
/// lease's end. Public so that a test can check its plan (tests/outbox_index.rs).
pub const CLAIM_HEADS: &str = "WITH heads AS MATERIALIZED (SELECT d.request_id, d.seq FROM deliveries d \
      WHERE d.state = 'pending' AND d.next_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < $1) \
      AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.request_id = d.request_id \
                      AND e.state = 'pending' AND e.seq < d.seq) \
      ORDER BY d.next_at LIMIT $2) \
    UPDATE deliveries SET lease_owner = $3, lease_until = $4, attempts = attempts + 1 FROM heads \
    WHERE deliveries.request_id = heads.request_id AND deliveries.seq = heads.seq \
    AND deliveries.state = 'pending' AND (deliveries.lease_until IS NULL OR deliveries.lease_until < $1) \
    RETURNING deliveries.request_id, deliveries.seq, deliveries.attempts - 1 AS attempts, deliveries.created_at";

/// A head query slower than this makes the store refresh the planner's statistics
/// (statistics.rs).
const SLOW_HEADS: std::time::Duration = std::time::Duration::from_millis(100);

impl Store {
    /// A bookkeeping write, group-committed with others (see delivery_writes.rs).
    async fn delivery_write(
        &self,
        id: &RequestId,
        first: i64,
        last: i64,
        owner: &str,
        change: Change,
    ) -> Result<u64, StoreError> {
        let write = DeliveryWrite {
            id: id.clone(),
            first,
            last,
            owner: owner.to_owned(),
            change,
        };
        self.bookkeeping(super::bookkeeping::Bookkeeping::Delivery(write)).await
    }

    /// Claims for `owner` until `until` up to `limit` rows that may be claimed now: each the
    /// oldest pending row of its request, due, and not leased. One statement for the whole
    /// poll, where a claim per row used to be a write each beside the acknowledgements
    /// (issue 14). The claim counts an attempt, as `claim_deliveries` does; `Head::attempts`
    /// is the count before it. The heads are a materialized CTE, found once: written as
    /// `(request_id, seq) IN (subquery)`, PostgreSQL's generic plan, made while the table
    /// was small, re-ran the head search for every row and one poll took over 10 s at 10,000
    /// pending rows. The conditions on the updated row are the claim's compare-and-set: on
    /// PostgreSQL a concurrent claimer's row is re-checked against them after its commit.
    pub async fn claim_heads(&self, now: i64, limit: i64, owner: &str, until: i64) -> Result<Vec<Head>, StoreError> {
        let started = std::time::Instant::now();
        let rows = sqlx::query(CLAIM_HEADS)
            .bind(now)
            .bind(limit)
            .bind(owner)
            .bind(until)
            .fetch_all(self.writer())
            .await?;
        if started.elapsed() >= SLOW_HEADS {
            self.refresh_statistics();
        }
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("request_id")?;
                Ok(Head {
                    request_id: RequestId::parse(&id)
                        .ok_or_else(|| StoreError::Corrupt(format!("bad request id {id:?} in deliveries")))?,
                    seq: r.try_get("seq")?,
                    attempts: r.try_get("attempts")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The pending rows of `id` from `seq` on, in order, while they are of `kind` (a run of
    /// progress lines to merge), at most `limit`.
    pub async fn pending_run(&self, id: &RequestId, seq: i64, kind: &str, limit: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind FROM deliveries WHERE request_id = $1 AND seq >= $2 AND state = 'pending' \
             ORDER BY seq LIMIT $3",
        )
        .bind(id.as_str())
        .bind(seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut run = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let s: i64 = r.try_get("seq")?;
            let k: String = r.try_get("kind")?;
            if k != kind || s != seq + i as i64 {
                break;
            }
            run.push(s);
        }
        Ok(run)
    }

    /// Claims rows `first..=last` of `id` for `owner` until `until`, counting an attempt
    /// (so a call in flight at a crash shows as a second attempt when it is posted again);
    /// false when another deliverer holds or finished the first.
    pub async fn claim_deliveries(
        &self,
        id: &RequestId,
        first: i64,
        last: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let change = Change::Claim { now, until };
        Ok(self.delivery_write(id, first, last, owner, change).await? > 0)
    }

    /// Rows `first..=last` reached their thread; with `next` = (seq, until), row `seq` is
    /// claimed for `owner` until `until` in the same transaction (the row its deliverer
    /// posts next, see outbox.rs), so no poll takes it in between. Whether `next` was
    /// claimed (false without one, or when the rows were no longer `owner`'s).
    #[allow(clippy::too_many_arguments)]
    pub async fn delivered(
        &self,
        id: &RequestId,
        first: i64,
        last: i64,
        owner: &str,
        platform_id: Option<&str>,
        now: i64,
        next: Option<(i64, i64)>,
    ) -> Result<bool, StoreError> {
        let change = Change::Delivered {
            platform_id: platform_id.map(str::to_owned),
            now,
            next,
        };
        Ok(self.delivery_write(id, first, last, owner, change).await? > 0 && next.is_some())
    }

    /// Rows `first..=last` failed this time: tried again at `retry_at`, or, when `None`,
    /// given up on for good.
    #[allow(clippy::too_many_arguments)]
    pub async fn delivery_failed(
        &self,
        id: &RequestId,
        first: i64,
        last: i64,
        owner: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let change = Change::Failed {
            error: error.to_owned(),
            retry_at,
        };
        self.delivery_write(id, first, last, owner, change).await.map(drop)
    }

    /// Gives a claimed row back untouched, due at `next_at` (a progress line held back so
    /// that a burst is merged).
    pub async fn defer_delivery(&self, id: &RequestId, seq: i64, owner: &str, next_at: i64) -> Result<(), StoreError> {
        let change = Change::Defer { next_at };
        self.delivery_write(id, seq, seq, owner, change).await.map(drop)
    }

    /// When a progress line of `id` last reached its thread.
    pub async fn last_progress_delivered(&self, id: &RequestId) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(delivered_at) AS at FROM deliveries WHERE request_id = $1 AND kind = 'progress' AND state = 'delivered'",
        )
        .bind(id.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<Option<i64>, _>("at")?)
    }

    /// The deliveries of one request, in order.
    pub async fn deliveries(&self, id: &RequestId) -> Result<Vec<DeliveryRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, surface, state, attempts, delivered_at, error, platform_id FROM deliveries WHERE request_id = $1 ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await?)
    }

    /// Rows per (surface, state), for /metrics.
    pub async fn delivery_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT surface, state, COUNT(*) AS n FROM deliveries GROUP BY surface, state")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("surface")?, r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }
}
