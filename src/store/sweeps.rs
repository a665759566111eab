//! What the worker's periodic sweeps look for: queued requests to claim, approvals whose time
//! ran out, and running requests whose worker stopped renewing its lease.

use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::RequestId;

/// The expiry sweep's query (`$1`: now, in ms). Public so `tests/sweeps.rs` checks the plan of
/// this very statement: it must read overdue approvals through `requests_approval_expiry`,
/// not every pending request.
pub const EXPIRED_APPROVALS: &str =
    "SELECT id FROM requests WHERE state = 'pending_approval' AND approval_expires_at < $1";

impl Store {
    /// Oldest queued requests first.
    pub async fn queued(&self, limit: i64) -> Result<Vec<RequestId>, StoreError> {
        self.ids(
            "SELECT id FROM requests WHERE state = 'queued' ORDER BY created_at, id LIMIT $1",
            limit,
        )
        .await
    }

    /// Pending approvals whose time ran out.
    pub async fn expired_approvals(&self, now: i64) -> Result<Vec<RequestId>, StoreError> {
        self.ids(EXPIRED_APPROVALS, now).await
    }

    /// Running requests whose worker stopped renewing the lease (it died or lost the store).
    pub async fn abandoned(&self, now: i64) -> Result<Vec<RecordRef>, StoreError> {
        let rows = sqlx::query("SELECT id, action, worker FROM requests WHERE state = 'running' AND lease_until < $1")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(RecordRef {
                    id: RequestId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("request id '{id}'")))?,
                    action: r.try_get("action")?,
                    worker: r.try_get("worker")?,
                })
            })
            .collect()
    }

    async fn ids(&self, sql: &'static str, param: i64) -> Result<Vec<RequestId>, StoreError> {
        let rows = sqlx::query(sql).bind(param).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                RequestId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("request id '{id}'")))
            })
            .collect()
    }
}

/// A running request whose lease ran out: what recovery needs to decide whether to run it again.
#[derive(Debug, Clone)]
pub struct RecordRef {
    pub id: RequestId,
    pub action: String,
    pub worker: Option<String>,
}
