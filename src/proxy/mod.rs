//! Proxy links: `proxy.open` hands out `<public_url>/p/<token>/...`, and every request under
//! it is forwarded to a Service in an environment.
//!
//! Forwarding goes through the Kubernetes API server's service proxy
//! (`/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/...`) rather than a port-forward to
//! one pod: it needs no SPDY/WebSocket stream per connection, balances over the Service's
//! ready endpoints like in-cluster callers see them, survives pod restarts, and uses the
//! same kube client (and RBAC: `services/proxy`) as everything else.

mod forward;
mod links;
mod token;

pub use links::{Link, LinkState, Links, NewLink};
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
