//! The outbox's bookkeeping writes (claim, delivered, failed, deferred), group-committed.
//!
//! Every chat post costs two or three of these; written one transaction each they took the
//! single SQLite writer (or a WAL flush on PostgreSQL) from the acknowledgements they run
//! beside. Batched (see batch.rs), up to [`DeliveryWrite::MAX`] share a commit. Each is a
//! compare-and-set on its own rows, so sharing a transaction changes nothing about who wins.

use sqlx::AnyConnection;

use super::StoreError;
use crate::domain::RequestId;

/// One bookkeeping write on rows `first..=last` of a request's deliveries.
#[derive(Debug, Clone)]
pub(super) struct DeliveryWrite {
    pub id: RequestId,
    pub first: i64,
    pub last: i64,
    pub owner: String,
    pub change: Change,
}

#[derive(Debug, Clone)]
pub(super) enum Change {
    /// Lease the rows until `until` if nobody holds them at `now`, counting an attempt.
    Claim { now: i64, until: i64 },
    /// They reached their thread; then, with `next` = (seq, until), claim row `seq` until
    /// `until` as `Claim` would.
    Delivered {
        platform_id: Option<String>,
        now: i64,
        next: Option<(i64, i64)>,
    },
    /// Try again at `retry_at`, or (`None`) never.
    Failed { error: String, retry_at: Option<i64> },
    /// Give the claimed row back untouched, due at `next_at`.
    Defer { next_at: i64 },
}

impl DeliveryWrite {
    /// Runs the write; the number of rows it changed (for `Delivered` with a next row: the
    /// rows of that claim, none when the delivered rows were no longer this owner's).
    pub(super) async fn run(&self, conn: &mut AnyConnection) -> Result<u64, StoreError> {
        let changed = self.statement(conn).await?;
        let Change::Delivered {
            now,
            next: Some((seq, until)),
            ..
        } = &self.change
        else {
            return Ok(changed);
        };
        if changed == 0 {
            return Ok(0);
        }
        let claim = DeliveryWrite {
            id: self.id.clone(),
            first: *seq,
            last: *seq,
            owner: self.owner.clone(),
            change: Change::Claim {
                now: *now,
                until: *until,
            },
        };
        claim.statement(conn).await
    }

    async fn statement(&self, conn: &mut AnyConnection) -> Result<u64, StoreError> {
        let id = self.id.as_str();
        let q = match &self.change {
            Change::Claim { now, until } => sqlx::query(
                "UPDATE deliveries SET lease_owner = $4, lease_until = $6, attempts = attempts + 1 \
                 WHERE request_id = $1 AND seq BETWEEN $2 AND $3 AND state = 'pending' \
                 AND (lease_until IS NULL OR lease_until < $5)",
            )
            .bind(id)
            .bind(self.first)
            .bind(self.last)
            .bind(&self.owner)
            .bind(*now)
            .bind(*until),
            Change::Delivered { platform_id, now, .. } => sqlx::query(
                "UPDATE deliveries SET state = 'delivered', delivered_at = $5, platform_id = $6, \
                 lease_owner = NULL, lease_until = NULL, error = NULL \
                 WHERE request_id = $1 AND seq BETWEEN $2 AND $3 AND lease_owner = $4 AND state = 'pending'",
            )
            .bind(id)
            .bind(self.first)
            .bind(self.last)
            .bind(&self.owner)
            .bind(*now)
            .bind(platform_id),
            Change::Failed { error, retry_at } => {
                let (state, next) = match retry_at {
                    Some(at) => ("pending", *at),
                    None => ("failed", 0),
                };
                sqlx::query(
                    "UPDATE deliveries SET state = $5, next_at = CASE WHEN $5 = 'pending' THEN $6 ELSE next_at END, \
                     error = $7, lease_owner = NULL, lease_until = NULL \
                     WHERE request_id = $1 AND seq BETWEEN $2 AND $3 AND lease_owner = $4 AND state = 'pending'",
                )
                .bind(id)
                .bind(self.first)
                .bind(self.last)
                .bind(&self.owner)
                .bind(state)
                .bind(next)
                .bind(error)
            }
            Change::Defer { next_at } => sqlx::query(
                "UPDATE deliveries SET next_at = $4, attempts = attempts - 1, lease_owner = NULL, lease_until = NULL \
                 WHERE request_id = $1 AND seq BETWEEN $2 AND $3 AND lease_owner = $5 AND state = 'pending'",
            )
            .bind(id)
            .bind(self.first)
            .bind(self.last)
            .bind(*next_at)
            .bind(&self.owner),
        };
        Ok(q.execute(conn).await?.rows_affected())
    }
}
