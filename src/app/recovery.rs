//! Moving requests on after something died: a dead worker's running requests, decisions
//! whose state change was lost, approvals nobody gave in time; and waking the workers of
//! every replica when work is queued.

use super::App;
use crate::{
    domain::{State, now_ms},
    store::{Actor, Patch, StoreError},
};

impl App {
    /// Requests whose worker died: re-queue those whose action is safe to re-run, fail the
    /// rest with a reason a person can act on.
    pub async fn recover_abandoned(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for r in self.store.abandoned(now_ms()).await? {
            let worker = r.worker.unwrap_or_else(|| "unknown".into());
            let rerun = self.actions.get(&r.action).is_some_and(|a| a.rerunnable());
            let moved = if rerun {
                let msg = format!("resuming: deckhand restarted while this was running (worker {worker} stopped)");
                self.transition(
                    &r.id,
                    &[State::Running],
                    State::Queued,
                    Actor::WORKER,
                    &msg,
                    Patch::default(),
                )
                .await?
            } else {
                let outcome = format!(
                    "deckhand stopped while this was running (worker {worker}); `{}` is not safe to repeat automatically, so check its effect and run it again if needed",
                    r.action
                );
                let patch = Patch {
                    outcome: Some(outcome.clone()),
                    ..Default::default()
                };
                self.transition(&r.id, &[State::Running], State::Failed, Actor::WORKER, &outcome, patch)
                    .await?
            };
            n += usize::from(moved.is_some());
        }
        if n > 0 {
            self.work_queued();
        }
        Ok(n)
    }

    /// Moves on requests whose deciding approval or denial was stored but whose state change
    /// was not (the process died in between).
    pub async fn recover_decided(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for (id, approvals, denial) in self.store.decided_but_waiting().await? {
            let Some(request) = self.store.get(&id).await? else {
                continue;
            };
            let needed = i64::from(request.approval.as_ref().map_or(1, |p| p.count));
            let moved = match denial {
                Some((who, reason)) => {
                    let patch = Patch {
                        outcome: Some(format!("denied by {who}: {reason}")),
                        ..Default::default()
                    };
                    self.transition(
                        &id,
                        &[State::PendingApproval],
                        State::Denied,
                        Actor::WORKER,
                        "denied",
                        patch,
                    )
                    .await?
                }
                None if approvals >= needed => {
                    let message = format!("approved ({approvals} of {needed}); queued");
                    let queued = self
                        .transition(
                            &id,
                            &[State::PendingApproval],
                            State::Queued,
                            Actor::WORKER,
                            &message,
                            Patch::default(),
                        )
                        .await?;
                    if queued.is_some() {
                        self.work_queued();
                    }
                    queued
                }
                None => None,
            };
            n += usize::from(moved.is_some());
        }
        Ok(n)
    }

    /// Work was queued: wake this replica's worker, and tell the others (PostgreSQL's
    /// NOTIFY, off the request path).
    pub(super) fn work_queued(&self) {
        self.wake.notify_one();
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.notify_work().await {
                tracing::debug!(error = %e, "could not notify other replicas; they will poll");
            }
        });
    }

    pub async fn expire_overdue(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for id in self.store.expired_approvals(now_ms()).await? {
            n += usize::from(self.expire(&id).await?.is_some());
        }
        Ok(n)
    }
}
