//! The audit log: one row per change, written in the transaction of the change it records.

use super::{Actor, AuditRecord, Store, StoreError};
use crate::domain::{RequestId, State};

impl Store {
    pub async fn audit(&self, id: &RequestId) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, actor, surface, request_id, action, from_state, to_state, detail FROM audit WHERE request_id = $1 ORDER BY at, id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?)
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn audit_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    actor: Actor<'_>,
    id: Option<&RequestId>,
    action: &str,
    from: Option<State>,
    to: Option<State>,
    detail: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (id, at, actor, surface, request_id, action, from_state, to_state, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(crate::domain::ordered_token(8))
    .bind(now)
    .bind(actor.who)
    .bind(actor.surface)
    .bind(id.map(|i| i.as_str().to_owned()))
    .bind(action)
    .bind(from.map(|s| s.as_str()))
    .bind(to.map(|s| s.as_str()))
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
