//! The connections open through each link on this replica, so closing or expiring a link
//! cuts them instead of only refusing new requests.
//!
//! Every proxied exchange (and the spliced connection an upgrade becomes) holds a [`Live`]
//! registration carrying its link's cancellation token; forwarding selects on that token.
//! A close on this replica cancels at once. A close on another replica, or an expiry, is
//! found by [`watch`]: every `WATCH_EVERY` it checks the links that have connections here
//! (their cached expiry, then one indexed query by id for revocations), so every replica
//! cuts within a second. With nothing open it does nothing at all.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::Links;
use crate::{app::App, domain::now_ms};

/// How often open connections are checked against their links.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// At most this many ids in one query.
const IDS_PER_QUERY: usize = 500;

/// One link's connections on this replica: they share one token.
struct Open {
    token: CancellationToken,
    expires_at: i64,
    count: usize,
    /// Tells this entry from one made for the same link after a cut.
    generation: u64,
}

/// The registry of connections by link id.
#[derive(Default, Clone)]
pub struct Connections {
    links: Arc<Mutex<HashMap<String, Open>>>,
    generations: Arc<AtomicU64>,
}

impl Connections {
    /// Registers a connection through `link` (which expires at `expires_at`); it counts
    /// until the returned value is dropped.
    pub fn register(&self, link: &str, expires_at: i64) -> Live {
        let mut links = lock(&self.links);
        let open = links.entry(link.to_owned()).or_insert_with(|| Open {
            token: CancellationToken::new(),
            expires_at,
            count: 0,
            generation: self.generations.fetch_add(1, Ordering::Relaxed),
        });
        open.count += 1;
        Live {
            links: self.links.clone(),
            link: link.to_owned(),
            token: open.token.clone(),
            generation: open.generation,
        }
    }

    /// Cuts every connection open through `link` here.
    pub fn cut(&self, link: &str) {
        if let Some(open) = lock(&self.links).remove(link) {
            open.token.cancel();
        }
    }

    /// Cuts every connection (the replica is stopping).
    pub fn cut_all(&self) {
        for (_, open) in lock(&self.links).drain() {
            open.token.cancel();
        }
    }

    /// Cuts the connections of links expired at `now`.
    fn cut_expired(&self, now: i64) {
        lock(&self.links).retain(|_, open| {
            let keep = open.expires_at > now;
            if !keep {
                open.token.cancel();
            }
            keep
        });
    }

    /// The links that have connections here.
    fn link_ids(&self) -> Vec<String> {
        lock(&self.links).keys().cloned().collect()
    }

    /// How many connections are open through `link` here.
    pub fn count(&self, link: &str) -> usize {
        lock(&self.links).get(link).map_or(0, |o| o.count)
    }
}

/// One open connection through a link; deregistered when dropped.
pub struct Live {
    links: Arc<Mutex<HashMap<String, Open>>>,
    link: String,
    token: CancellationToken,
    generation: u64,
}

impl Live {
    /// Cancelled when the link is closed or expires.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub fn link(&self) -> &str {
        &self.link
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut links = lock(&self.links);
        // A cut link's entry is gone, or replaced by one of later connections: only the
        // entry this connection counted in is decremented.
        if let Some(open) = links.get_mut(&self.link)
            && open.generation == self.generation
        {
            open.count -= 1;
            if open.count == 0 {
                links.remove(&self.link);
            }
        }
    }
}

/// The error a cut body ends with: the caller sees the connection aborted.
#[derive(Debug, thiserror::Error)]
#[error("the proxy link was closed or expired")]
pub struct Cut;

/// A body that ends with [`Cut`] as soon as `token` is cancelled; it holds `live` (if any)
/// until it is dropped, so the connection counts as long as the body streams.
pub fn cut_on(body: Body, token: CancellationToken, live: Option<Live>) -> Body {
    Body::new(Cuttable {
        inner: body,
        cancelled: Some(Box::pin(token.cancelled_owned())),
        _live: live,
    })
}

struct Cuttable {
    inner: Body,
    cancelled: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    _live: Option<Live>,
}

impl HttpBody for Cuttable {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(cancelled) = self.cancelled.as_mut() else {
            return Poll::Ready(None);
        };
        if cancelled.as_mut().poll(cx).is_ready() {
            self.cancelled = None;
            return Poll::Ready(Some(Err(Cut.into())));
        }
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.cancelled.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Cuts the connections of links closed elsewhere or expired, every `WATCH_EVERY`, until
/// shutdown; then cuts every connection left, so stopping does not wait on them.
pub async fn watch(app: Arc<App>, shutdown: CancellationToken) {
    let links = Links::new(app.store.pool().clone());
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let live = app.proxies.connections();
        live.cut_expired(now_ms());
        let ids = live.link_ids();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            match links.closed_among(chunk, now_ms()).await {
                Ok(closed) => {
                    for id in closed {
                        tracing::info!(link = %id, "proxy link closed: cutting its connections here");
                        app.proxies.forget(&id);
                        live.cut(&id);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not check proxy links with open connections"),
            }
        }
    }
    app.proxies.connections().cut_all();
}

/// The map holds plain data; a panic elsewhere must not wedge the proxy.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_count_until_dropped_and_a_cut_cancels_them_all() {
        let c = Connections::default();
        let (a, b) = (c.register("px-1", i64::MAX), c.register("px-1", i64::MAX));
        let other = c.register("px-2", i64::MAX);
        assert_eq!(c.count("px-1"), 2);
        drop(a);
        assert_eq!(c.count("px-1"), 1);
        c.cut("px-1");
        assert!(b.token().is_cancelled() && !other.token().is_cancelled());
        assert_eq!(c.count("px-1"), 0);
        // A connection that got in after the cut counts on its own; the cut one's drop
        // does not take it away.
        let late = c.register("px-1", i64::MAX);
        drop(b);
        assert_eq!(c.count("px-1"), 1);
        assert!(!late.token().is_cancelled());
        drop(late);
        assert_eq!(c.link_ids(), vec!["px-2".to_owned()]);
    }

    #[test]
    fn expired_links_are_cut() {
        let c = Connections::default();
        let (old, new) = (c.register("px-old", 100), c.register("px-new", 300));
        c.cut_expired(200);
        assert!(old.token().is_cancelled() && !new.token().is_cancelled());
        assert_eq!(c.link_ids(), vec!["px-new".to_owned()]);
    }

    #[tokio::test]
    async fn a_cut_body_ends_with_an_error() {
        use http_body_util::BodyExt;
        let token = CancellationToken::new();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) });
        let mut body = cut_on(Body::from_stream(stream), token.clone(), None);
        tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "a");
        token.cancel();
        assert!(body.frame().await.unwrap().is_err());
        assert!(body.frame().await.is_none());
    }
}
