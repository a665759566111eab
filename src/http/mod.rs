//! The HTTP surface: health, metrics and the JSON API. Chat webhooks mount here too.

mod api;
mod attachments;
mod auth;
mod error;
mod event_stream;
mod health;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};

pub use auth::bearer;
pub use error::ApiError;

use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.server.body_limit;
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/requests", post(api::submit).get(api::list))
        .route("/api/v1/requests/{id}", get(api::get))
        .route("/api/v1/requests/{id}/events", get(event_stream::stream))
        .route("/api/v1/requests/{id}/output", get(api::output))
        .route("/api/v1/requests/{id}/approve", post(api::approve))
        .route("/api/v1/requests/{id}/deny", post(api::deny))
        .route("/api/v1/requests/{id}/cancel", post(api::cancel))
        .route("/api/v1/requests/{id}/attachments/{file}", get(attachments::download))
        .merge(crate::slack::routes(&app.config))
        .merge(crate::discord::routes(&app.config))
        .merge(crate::proxy::routes())
        .merge(crate::shell::routes())
        .merge(crate::pages::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app.clone());
    // A proxy link on its own origin takes every path there, deckhand's included.
    crate::proxy::on_link_origins(app, routes)
}
