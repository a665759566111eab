//! `GET /api/v1/requests/{id}/events`: a request's events as server-sent events, from a
//! given sequence number on, live until the request has ended. Events are read from the
//! store (the one complete record, whichever replica wrote them); this replica's broadcast
//! only says when to read again.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::{Path, Query, State},
    http::HeaderMap,
    response::sse::{Event as SseEvent, KeepAlive, Sse},
};
use futures_util::Stream;
use serde::Deserialize;

use super::{api::request_id, auth::Caller, error::ApiError};
use crate::{
    app::App,
    domain::RequestId,
    store::{Event, RequestRecord},
};

#[derive(Deserialize)]
pub struct StreamQuery {
    #[serde(default)]
    after: Option<i64>,
}

/// Server-sent events: every event of the request from `after` (or Last-Event-ID) on, live,
/// ending once the request has ended and its last event was sent.
pub async fn stream(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let id = request_id(&id)?;
    let request = app.get(&id).await?;
    let after = q
        .after
        .or_else(|| {
            headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let rx = app.events.subscribe();
    let state = StreamState {
        app,
        id,
        reader: who,
        request,
        after,
        rx,
        queue: VecDeque::new(),
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(ev) = s.queue.pop_front() {
                s.after = ev.seq;
                let ev = crate::visibility::event_for(ev, &s.reader, &s.request);
                return Some((Ok(to_sse(&ev)), s));
            }
            if s.done {
                return None;
            }
            // Read the state first: if it is terminal now, every event up to the end is
            // already stored and the fetch below gets them all.
            let terminal = matches!(s.app.store.get(&s.id).await, Ok(Some(r)) if r.state.is_terminal());
            match s.app.store.events(&s.id, s.after).await {
                Ok(events) => s.queue.extend(events),
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: store read failed");
                    return None;
                }
            }
            if terminal {
                s.done = true;
                continue;
            }
            if s.queue.is_empty() {
                s.wait().await;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

struct StreamState {
    app: Arc<App>,
    id: RequestId,
    reader: crate::identity::Principal,
    request: RequestRecord,
    after: i64,
    rx: tokio::sync::broadcast::Receiver<RequestId>,
    queue: VecDeque<Event>,
    done: bool,
}

impl StreamState {
    /// Until this replica announces an event for the request, or a second passes (events
    /// written by other replicas are only seen in the store).
    async fn wait(&mut self) {
        let deadline = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                r = self.rx.recv() => match r {
                    Ok(id) if id == self.id => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }
}

fn to_sse(ev: &Event) -> SseEvent {
    let data = serde_json::to_string(ev).unwrap_or_else(|_| "{}".into());
    SseEvent::default()
        .id(ev.seq.to_string())
        .event(ev.kind.as_str())
        .data(data)
}
