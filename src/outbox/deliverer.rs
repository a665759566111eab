//! The deliveries under way on this replica: at most a fixed number at once and one per
//! request, each in a task of its own, started from a poll's claimed rows or a hand-over.

use std::{collections::HashSet, sync::Arc};

use tokio::{sync::Semaphore, task::JoinSet};

use super::{claim_heads, deliver, deliver_read, load};
use crate::{
    app::App,
    domain::{RequestId, now_ms},
    store::{Head, Loaded},
};

/// This replica's deliveries under way: at most as many as `slots` allows, one per request.
pub(super) struct Deliverer {
    slots: Arc<Semaphore>,
    /// The tasks; the loop joins them.
    pub(super) tasks: JoinSet<()>,
    /// Requests with a delivery under way here.
    busy: Arc<std::sync::Mutex<HashSet<RequestId>>>,
}

impl Deliverer {
    pub(super) fn new(concurrency: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            tasks: JoinSet::new(),
            busy: Arc::new(std::sync::Mutex::new(HashSet::new())),
        }
    }

    /// Claims the rows due now and starts their deliveries; how many it claimed.
    pub(super) async fn poll(&mut self, app: &Arc<App>) -> usize {
        let heads = match claim_heads(app).await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the outbox");
                return 0;
            }
        };
        let claimed = heads.len();
        let mut loaded = load(app, &heads).await;
        for head in heads {
            let read = loaded.as_mut().map(|l| l.remove(&head.request_id));
            match read {
                // The request was deleted since its row was stored.
                Some(None) => continue,
                Some(Some(read)) => self.start(app, head, Some(read)).await,
                None => self.start(app, head, None).await,
            }
        }
        claimed
    }

    /// Delivers `head` (from `read`, or reading the request itself) in a task of its own, or
    /// gives it back when its request's previous row is still being finished here.
    pub(super) async fn start(&mut self, app: &Arc<App>, head: Head, read: Option<Loaded>) {
        if !self
            .busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(head.request_id.clone())
        {
            let owner = app.worker_id.as_str();
            if let Err(e) = app
                .store
                .defer_delivery(&head.request_id, head.seq, owner, now_ms())
                .await
            {
                tracing::warn!(request = %head.request_id, error = %e, "could not give a delivery back");
            }
            return;
        }
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let (app, busy) = (app.clone(), self.busy.clone());
        self.tasks.spawn(async move {
            let id = head.request_id.clone();
            let delivered = match read {
                Some(read) => deliver(&app, head, read).await,
                None => deliver_read(&app, head).await,
            };
            if let Err(e) = delivered {
                tracing::warn!(request = %id, error = %e, "delivery bookkeeping failed");
            }
            busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            drop(permit);
        });
    }
}
