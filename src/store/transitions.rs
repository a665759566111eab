//! The compare-and-set every state change of a request goes through, with its event and
//! audit row in the same transaction, so the three never disagree and two callers racing for
//! one change (two approvers, a worker and the expiry sweep) cannot both act on it.

use sqlx::AssertSqlSafe;

use super::{
    Actor, Event, Patch, REQUEST_COLUMNS, RequestRecord, Store, StoreError, append_event_tx, audit_tx,
    rows::request_from_row,
};
use crate::{
    domain::{RequestId, State, now_ms},
    events::EventData,
};

impl Store {
    /// The compare-and-set every state change goes through: moves `id` to `to` only if it is
    /// in one of `from`, and records the event and audit row with it. `None` means another
    /// caller moved it first, so the caller must not act.
    pub async fn transition(
        &self,
        id: &RequestId,
        from: &[State],
        to: State,
        actor: Actor<'_>,
        message: &str,
        patch: Patch,
    ) -> Result<Option<(RequestRecord, Event)>, StoreError> {
        let now = now_ms();
        let sql = transition_sql(from, to, &patch);
        let mut tx = self.begin().await?;
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(to.as_str()).bind(now);
        if let Some((worker, lease)) = &patch.claim {
            q = q.bind(worker.clone()).bind(*lease);
        }
        if let Some(o) = &patch.outcome {
            q = q.bind(o.clone());
        }
        q = q.bind(id.as_str());
        for s in from {
            q = q.bind(s.as_str());
        }
        if q.execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
        )))
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let record = request_from_row(&row)?;
        // Typed: the state this event announces (and the outcome, when it ends the request),
        // so whoever shows the event later need not parse its message.
        let why = (message != to.as_str() && Some(message) != patch.outcome.as_deref()).then(|| message.to_owned());
        let data = EventData::state(to, patch.outcome.clone(), why);
        let event = append_event_tx(&mut tx, id, message, data, now).await?;
        let from_state = if from.len() == 1 { Some(from[0]) } else { None };
        audit_tx(
            &mut tx,
            actor,
            Some(id),
            "transition",
            from_state,
            Some(to),
            patch.outcome.as_deref(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some((record, event)))
    }
}

/// The compare-and-set of [`Store::transition`]: `$1` the new state, `$2` now, then the
/// claim's worker and lease, the outcome, the id and the states it may move from, in that
/// order, each only when it applies.
fn transition_sql(from: &[State], to: State, patch: &Patch) -> String {
    let mut sql = String::from("UPDATE requests SET state = $1, updated_at = $2");
    let mut n = 2;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if patch.claim.is_some() {
        sql.push_str(&format!(
            ", worker = {}, lease_until = {}, started_at = $2, attempts = attempts + 1",
            next(),
            next()
        ));
    }
    if to.is_terminal() {
        sql.push_str(", finished_at = $2, lease_until = NULL");
    }
    if patch.outcome.is_some() {
        sql.push_str(&format!(", outcome = {}", next()));
    }
    let id_ph = next();
    let from_ph: Vec<String> = from.iter().map(|_| next()).collect();
    sql.push_str(&format!(" WHERE id = {id_ph} AND state IN ({})", from_ph.join(", ")));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transitions_placeholders_follow_the_order_it_binds_in() {
        let claim = Patch {
            claim: Some(("w-1".into(), 1)),
            ..Default::default()
        };
        assert_eq!(
            transition_sql(&[State::Queued], State::Running, &claim),
            "UPDATE requests SET state = $1, updated_at = $2, worker = $3, lease_until = $4, started_at = $2, \
             attempts = attempts + 1 WHERE id = $5 AND state IN ($6)"
        );
        let outcome = Patch {
            outcome: Some("done".into()),
            ..Default::default()
        };
        assert_eq!(
            transition_sql(&[State::Running, State::Queued], State::Succeeded, &outcome),
            "UPDATE requests SET state = $1, updated_at = $2, finished_at = $2, lease_until = NULL, \
             outcome = $3 WHERE id = $4 AND state IN ($5, $6)"
        );
    }
}
