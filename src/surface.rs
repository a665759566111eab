//! The chat-surface boundary: where a request's progress is pushed. Slack and Discord
//! implement it; requests from the HTTP API need none (clients stream events instead).

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{
    domain::Surface,
    store::{Event, RequestRecord, Store},
};

#[derive(Debug, thiserror::Error)]
#[error("{surface} refused the update: {message}")]
pub struct SurfaceError {
    pub surface: Surface,
    pub message: String,
}

#[async_trait]
pub trait ChatSurface: Send + Sync {
    fn surface(&self) -> Surface;

    /// Shows `event` in the request's thread (edit the status message, post a reply, post
    /// approval buttons). Called in event order, one at a time; `store` holds the surface's
    /// own data for the request (`Store::set_surface_data`), which `request` may predate.
    async fn publish(&self, store: &Store, request: &RequestRecord, event: &Event) -> Result<(), SurfaceError>;
}

/// Delivers events to surfaces off the request path: a slow chat API never holds up the
/// worker, and the store already has every event, so nothing is lost if delivery fails.
#[derive(Clone, Default)]
pub struct Surfaces {
    map: HashMap<Surface, Arc<dyn ChatSurface>>,
    queue: Option<mpsc::UnboundedSender<(RequestRecord, Event)>>,
}

impl Surfaces {
    pub fn has(&self, surface: Surface) -> bool {
        self.map.contains_key(&surface)
    }

    pub fn register(&mut self, surface: Arc<dyn ChatSurface>) {
        self.map.insert(surface.surface(), surface);
    }

    /// Starts the delivery task; call once from inside the runtime.
    pub fn start(&mut self, store: Store) {
        if self.map.is_empty() {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<(RequestRecord, Event)>();
        let map = self.map.clone();
        tokio::spawn(async move {
            while let Some((request, event)) = rx.recv().await {
                if let Some(s) = map.get(&request.surface)
                    && let Err(e) = s.publish(&store, &request, &event).await
                {
                    tracing::warn!(request = %request.id, seq = event.seq, error = %e, "could not deliver event");
                }
            }
        });
        self.queue = Some(tx);
    }

    pub fn deliver(&self, request: &RequestRecord, event: &Event) {
        if let Some(q) = &self.queue
            && self.map.contains_key(&request.surface)
        {
            let _ = q.send((request.clone(), event.clone()));
        }
    }
}
