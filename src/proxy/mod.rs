//! Proxy links: `proxy.open` hands out `<public_url>/p/<token>/` (or, with
//! `server.proxy_domain`, `https://<token>.<proxy_domain>/`: see `origin`), and every
//! request under it is forwarded to a Service in an environment.
//!
//! Forwarding goes through the Kubernetes API server's service proxy
//! (`/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/...`) rather than a port-forward to
//! one pod: it needs no SPDY/WebSocket stream per connection, balances over the Service's
//! ready endpoints like in-cluster callers see them, survives pod restarts, and uses the
//! same kube client (and RBAC: `services/proxy`) as everything else.

mod forward;
mod gate;
mod headers;
mod links;
mod live;
mod origin;
mod token;

pub use gate::{Gate, Recent};
pub use links::{Link, LinkState, Links, NewLink};
pub use live::{Connections, watch as cut_closed_links};
pub use origin::{link_url, valid_proxy_domain};
pub use token::{hash_token, new_link_id, new_token};

use std::sync::Arc;

use axum::{Router, routing::any};

use crate::app::App;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored proxy link is unreadable: {0}")]
    Corrupt(String),
}

/// `/p/{token}/` and everything under it, for any method.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/p/{token}", any(forward::redirect_to_slash))
        .route("/p/{token}/", any(forward::root))
        .route("/p/{token}/{*path}", any(forward::path))
}

/// Serves links on origins of their own (`server.proxy_domain`): a request whose Host is a
/// link's name goes to that link, whatever its path; the rest reach `router`. With path-based
/// links (no proxy domain) every request is deckhand's own, and the layer is not mounted: it
/// cost every request (a Slack command's acknowledgement included) a boxed clone of the router
/// and about 3% of the CPU under load (issue 14, docs/performance-log.md, round sixteen).
pub fn on_link_origins(app: Arc<App>, router: Router) -> Router {
    if !origin::own_origins(&app.config.server) {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(app, forward::by_host))
}

/// Writes counted hits every second until shutdown, then once more.
pub async fn flush_hits(app: Arc<App>, shutdown: tokio_util::sync::CancellationToken) {
    let links = Links::new(app.store.pool().clone());
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        if let Err(e) = app.proxies.flush(&links).await {
            tracing::warn!(error = %e, "could not write proxy link hits; will retry");
        }
        if stop {
            return;
        }
    }
}
