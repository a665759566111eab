//! Approval decisions: one row per person and request, written with its event and audit row,
//! and the sweep that moves on a request whose decision was stored but whose state change
//! was not (a crash between the two transactions).

use sqlx::Row;

use super::{Actor, ApprovalRecord, Event, Store, StoreError, append_event_tx, audit_tx};
use crate::{
    domain::{RequestId, now_ms},
    events::{Decision, EventData, Verdict},
};

impl Store {
    /// Records one person's decision and returns how many distinct people approved so far
    /// with the event it wrote, or `None` if this person had already decided on the request.
    pub async fn record_decision(
        &self,
        id: &RequestId,
        approver: &str,
        approve: bool,
        reason: Option<&str>,
        surface: &str,
        needed: u32,
    ) -> Result<Option<(i64, Event)>, StoreError> {
        let now = now_ms();
        let decision = if approve { "approve" } else { "deny" };
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO approvals (request_id, approver, decision, reason, surface, at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(approver)
        .bind(decision)
        .bind(reason)
        .bind(surface)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            tx.rollback().await?;
            return Ok(None);
        }
        let count: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM approvals WHERE request_id = $1 AND decision = 'approve'")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        let verb = if approve { "approved" } else { "denied" };
        let message = match reason {
            Some(r) => format!("{approver} {verb}: {r}"),
            None => format!("{approver} {verb}"),
        };
        let data = EventData::Decision(Decision {
            approver: approver.to_owned(),
            decision: if approve { Verdict::Approve } else { Verdict::Deny },
            reason: reason.map(str::to_owned),
            approvals: count,
            needed: Some(needed),
        });
        let event = append_event_tx(&mut tx, id, &message, data, now).await?;
        audit_tx(
            &mut tx,
            Actor { who: approver, surface },
            Some(id),
            decision,
            None,
            None,
            reason,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some((count, event)))
    }

    /// Requests still waiting for approval that already have decisions: (id, approvals,
    /// the first denial as (approver, reason)). A decision and the state change it causes are
    /// two transactions; a crash between them leaves such a request, which the worker's
    /// sweep moves on.
    pub async fn decided_but_waiting(&self) -> Result<Vec<(RequestId, i64, Option<(String, String)>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id AS id, \
               (SELECT COUNT(*) FROM approvals a WHERE a.request_id = r.id AND a.decision = 'approve') AS approvals, \
               (SELECT a.approver FROM approvals a WHERE a.request_id = r.id AND a.decision = 'deny' ORDER BY a.at LIMIT 1) AS denier, \
               (SELECT a.reason FROM approvals a WHERE a.request_id = r.id AND a.decision = 'deny' ORDER BY a.at LIMIT 1) AS reason \
             FROM requests r WHERE r.state = 'pending_approval' \
             AND EXISTS (SELECT 1 FROM approvals a WHERE a.request_id = r.id)",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let id: String = r.try_get("id")?;
            let Some(id) = RequestId::parse(&id) else { continue };
            let denier: Option<String> = r.try_get("denier")?;
            let reason: Option<String> = r.try_get("reason")?;
            out.push((
                id,
                r.try_get("approvals")?,
                denier.map(|d| (d, reason.unwrap_or_default())),
            ));
        }
        Ok(out)
    }

    pub async fn approvals(&self, id: &RequestId) -> Result<Vec<ApprovalRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT approver, decision, reason, surface, at FROM approvals WHERE request_id = $1 ORDER BY at",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?)
    }
}
