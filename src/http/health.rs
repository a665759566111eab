use std::sync::Arc;

use axum::{extract::State, http::StatusCode, response::IntoResponse};

use crate::app::App;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers; a replica that cannot reach it should get no traffic.
pub async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store unreachable: {e}")),
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let counts = match app.store.counts().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: store unreachable");
            Vec::new()
        }
    };
    (
        [("content-type", "text/plain; version=0.0.4")],
        app.metrics.render(&counts),
    )
}
