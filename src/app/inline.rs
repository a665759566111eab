//! Inline commands (help, status, logs...) answer in the acknowledgement when they are quick,
//! within a budget per surface, and go on in the background when they are not: the platforms'
//! deadlines hold whatever the cluster does.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::App;
use crate::{
    domain::{RequestId, Surface},
    store::{RequestRecord, StoreError},
};

/// How long a submission may wait for an inline action before answering, by where the
/// command came from: Slack wants the acknowledgement within 3 s of sending (the lookups
/// before count), Discord gets its deferred reply at once, API clients wait for short work
/// and follow the event stream past that.
pub(super) fn inline_budget(surface: Surface, arrived: Instant) -> Duration {
    let total = match surface {
        Surface::Slack => Duration::from_millis(2000),
        Surface::Discord => Duration::ZERO,
        Surface::Api => Duration::from_secs(10),
    };
    total.saturating_sub(arrived.elapsed())
}

impl App {
    /// Runs a claimed inline request, waiting for it at most `budget`: past that it goes on
    /// in the background (its events reach the thread through the outbox, and API clients
    /// follow its event stream) and the request is answered as it stands.
    pub(super) async fn run_inline(
        self: &Arc<Self>,
        claimed: RequestRecord,
        budget: Duration,
    ) -> Result<RequestRecord, StoreError> {
        let id = claimed.id.clone();
        let app = self.clone();
        let fallback = claimed.clone();
        let mut run = tokio::spawn(async move { app.execute(claimed).await });
        // The request is stored whatever happens now: a failure past this point is the
        // request's to report (lease recovery picks it up), never "could not store".
        match tokio::time::timeout(budget, &mut run).await {
            Ok(Ok(Ok(done))) => Ok(done),
            Ok(Ok(Err(e))) => {
                tracing::warn!(request = %id, error = %e, "inline action could not record its end; lease recovery will");
                self.stored(&id, Some(fallback)).await
            }
            Ok(Err(join)) => {
                tracing::warn!(request = %id, error = %join, "inline action stopped");
                self.stored(&id, Some(fallback)).await
            }
            Err(_) => {
                tracing::info!(request = %id, budget_ms = budget.as_millis() as u64, "inline action continues in the background");
                self.stored(&id, None).await
            }
        }
    }

    /// The request once it ended, or as it stands after `budget`.
    pub(super) async fn await_end(&self, id: &RequestId, budget: Duration) -> Result<RequestRecord, StoreError> {
        let mut events = self.events.subscribe();
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let now = self.stored(id, None).await?;
            if now.state.is_terminal() {
                return Ok(now);
            }
            // Another replica's worker announces nothing here: look again now and then.
            let wait = tokio::time::sleep(Duration::from_millis(50));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return self.stored(id, Some(now)).await,
                _ = events.recv() => {}
                _ = wait => {}
            }
        }
    }

    /// The request as stored, or `fallback` when the store cannot say just now.
    pub(super) async fn stored(
        &self,
        id: &RequestId,
        fallback: Option<RequestRecord>,
    ) -> Result<RequestRecord, StoreError> {
        match (self.store.get(id).await, fallback) {
            (Ok(Some(r)), _) => Ok(r),
            (_, Some(r)) => Ok(r),
            (Ok(None), None) => Err(StoreError::Corrupt(format!("request {id} vanished while running"))),
            (Err(e), None) => Err(e),
        }
    }
}
