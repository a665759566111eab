use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

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

pub async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let wanted = &app.config.server.metrics_token;
    if !wanted.is_empty() && !super::auth::bearer(&headers).is_some_and(|t| super::auth::same_secret(t, wanted)) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need `Authorization: Bearer <server.metrics_token>`\n",
        )
            .into_response();
    }
    let counts = match app.store.counts().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: store unreachable");
            Vec::new()
        }
    };
    let deliveries = app.store.delivery_counts().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "metrics: outbox unreadable");
        Vec::new()
    });
    (
        [("content-type", "text/plain; version=0.0.4")],
        app.metrics.render(
            &counts,
            &deliveries,
            app.store.group_commits(),
            app.surfaces.handed_over(),
        ),
    )
        .into_response()
}
