//! A claimed request run to its end: the action with the requester as the configuration
//! knows them now, its lease renewed while it runs (a lost lease or a cancel stops it), and
//! its outcome stored through the compare-and-set that ends it.

use std::{sync::Arc, time::Instant};

use tokio_util::sync::CancellationToken;

use super::App;
use crate::{
    actions::{ActionContext, ActionError},
    domain::{HumanDuration, RequestId, State, now_ms},
    store::{Actor, Patch, RequestRecord, StoreError},
};

impl App {
    /// queued -> running for this worker; `None` if another worker or replica got it.
    pub async fn claim(&self, id: &RequestId) -> Result<Option<RequestRecord>, StoreError> {
        let lease = now_ms() + self.config.worker.lease.as_millis_i64();
        let patch = Patch {
            claim: Some((self.worker_id.clone(), lease)),
            ..Default::default()
        };
        self.transition(id, &[State::Queued], State::Running, Actor::WORKER, "running", patch)
            .await
    }

    /// Runs a claimed request to its end, renewing the lease while it runs.
    pub async fn execute(self: &Arc<Self>, request: RequestRecord) -> Result<RequestRecord, StoreError> {
        let id = request.id.clone();
        let started = Instant::now();
        let token = CancellationToken::new();
        if let Ok(mut m) = self.running.lock() {
            m.insert(id.clone(), token.clone());
        }
        let result = match (
            self.actions.get(&request.action).cloned(),
            // The configuration says who the requester is now; the stored groups add what
            // the chat platform said when they asked (a Slack user group, a Discord role).
            self.directory.user(&request.requester).map(|mut p| {
                p.groups.extend(request.requester_groups.iter().cloned());
                p
            }),
        ) {
            (None, _) => Err(ActionError::Failed(format!(
                "this build has no action '{}'",
                request.action
            ))),
            (_, None) => Err(ActionError::Failed(format!(
                "the requester '{}' is no longer in the configuration",
                request.requester
            ))),
            (Some(action), Some(principal)) => {
                let ctx = ActionContext {
                    app: self.clone(),
                    request: request.clone(),
                    principal,
                    cancel: token.clone(),
                };
                tokio::select! {
                    r = action.run(&ctx) => r,
                    _ = self.keep_lease(&id, &token) => Err(ActionError::Cancelled),
                }
            }
        };
        if let Ok(mut m) = self.running.lock() {
            m.remove(&id);
        }
        let (to, outcome) = match &result {
            Ok(summary) => (State::Succeeded, summary.clone()),
            Err(ActionError::Cancelled) => (State::Cancelled, "cancelled".to_owned()),
            Err(e) => (State::Failed, e.to_string()),
        };
        self.metrics
            .action_finished(&request.action, to.as_str(), started.elapsed().as_secs_f64());
        let patch = Patch {
            outcome: Some(outcome.clone()),
            ..Default::default()
        };
        let done = self
            .transition(&id, &[State::Running], to, Actor::WORKER, &outcome, patch)
            .await?;
        match done {
            Some(r) => Ok(r),
            // Cancelled (or taken over) while running: the stored state stands.
            None => Ok(self.store.get(&id).await?.unwrap_or(request)),
        }
    }

    /// Renews the lease until the action ends; returns only when the request stopped being
    /// ours (cancelled, or the lease was lost), which stops the action.
    async fn keep_lease(&self, id: &RequestId, token: &CancellationToken) {
        let lease: HumanDuration = self.config.worker.lease;
        let every = (lease.as_duration() / 3).max(std::time::Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let until = now_ms() + lease.as_millis_i64();
            match self.store.renew_lease(id, &self.worker_id, until).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(request = %id, error = %e, "could not renew lease"),
            }
        }
    }
}
