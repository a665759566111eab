//! The chat-surface boundary: where a request's progress is pushed. Slack and Discord
//! implement it; requests from the HTTP API need none (clients stream events instead).
//!
//! What both chat platforms decide alike lives here, so the adapters only translate: which
//! events go to the thread and which go to the requester alone ([`delivery`]), and the
//! neutral line the thread gets instead of a private event ([`private_notice`]). A channel
//! thread is read by everyone in the channel, so a proxy or shell link or exec output never
//! goes there (see `crate::visibility`).

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{
    domain::Surface,
    store::{Event, EventKind, RequestRecord, Store},
    visibility::Audience,
};

/// Where a chat surface shows an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In the request's thread, for everyone in the channel.
    Thread,
    /// To the requester alone (a Slack ephemeral message, a Discord ephemeral follow-up or
    /// DM), with only [`private_notice`] in the thread. Approvers-audience events go the same
    /// way: the chat platforms cannot show one message to a named group, and approvers read
    /// them with `request <id>`.
    Private(Audience),
}

/// How `event` is shown in chat. Status changes and approvals say nothing private (outcomes
/// never carry a private value); output and progress go privately when they are marked so.
pub fn delivery(event: &Event) -> Delivery {
    match event.kind {
        EventKind::State | EventKind::Approval => Delivery::Thread,
        EventKind::Output | EventKind::Progress => match Audience::of_event(event) {
            Audience::Everyone => Delivery::Thread,
            audience => Delivery::Private(audience),
        },
    }
}

/// The line the thread gets for a private event: that something was sent, to whom, and
/// never what. `requester` is the requester as the platform shows them (already escaped);
/// `delivered` is false when no private channel to them worked.
pub fn private_notice(request: &RequestRecord, audience: Audience, requester: &str, delivered: bool) -> String {
    let readers = match audience {
        Audience::Approvers => format!("{requester} and the approvers"),
        _ => requester.to_owned(),
    };
    if delivered {
        let also = match audience {
            Audience::Approvers => format!("; approvers can read it with `request {}`", request.id),
            _ => String::new(),
        };
        format!("🔒 Output sent privately to {requester}{also}.")
    } else {
        format!(
            "🔒 Private output could not be sent to {requester} directly; {readers} can read it with `request {}`.",
            request.id
        )
    }
}

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
    /// approval buttons). Called in event order for each request, one event of a request at a
    /// time (different requests concurrently); `store` holds the surface's own data for the
    /// request (`Store::set_surface_data`), which `request` may predate.
    async fn publish(&self, store: &Store, request: &RequestRecord, event: &Event) -> Result<(), SurfaceError>;
}

/// Delivers events to surfaces off the request path: a slow chat API never holds up the
/// worker, and the store already has every event, so nothing is lost if delivery fails.
/// Events of one request go through one lane in order; other requests use other lanes, so
/// a rate-limit wait in one thread does not stall the rest.
#[derive(Clone, Default)]
pub struct Surfaces {
    map: HashMap<Surface, Arc<dyn ChatSurface>>,
    lanes: Vec<mpsc::UnboundedSender<(RequestRecord, Event)>>,
}

const LANES: usize = 8;

impl Surfaces {
    pub fn has(&self, surface: Surface) -> bool {
        self.map.contains_key(&surface)
    }

    pub fn register(&mut self, surface: Arc<dyn ChatSurface>) {
        self.map.insert(surface.surface(), surface);
    }

    /// Starts the delivery lanes; call once from inside the runtime.
    pub fn start(&mut self, store: Store) {
        if self.map.is_empty() {
            return;
        }
        for _ in 0..LANES {
            let (tx, mut rx) = mpsc::unbounded_channel::<(RequestRecord, Event)>();
            let map = self.map.clone();
            let store = store.clone();
            tokio::spawn(async move {
                while let Some((request, event)) = rx.recv().await {
                    if let Some(s) = map.get(&request.surface)
                        && let Err(e) = s.publish(&store, &request, &event).await
                    {
                        tracing::warn!(request = %request.id, seq = event.seq, error = %e, "could not deliver event");
                    }
                }
            });
            self.lanes.push(tx);
        }
    }

    pub fn deliver(&self, request: &RequestRecord, event: &Event) {
        if self.lanes.is_empty() || !self.map.contains_key(&request.surface) {
            return;
        }
        let lane = request
            .id
            .as_str()
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
        let _ = self.lanes[lane % self.lanes.len()].send((request.clone(), event.clone()));
    }
}
