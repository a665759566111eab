//! The Slack surface: slash commands, interactivity (approval buttons), progress threads,
//! over HTTP or Socket Mode.
//!
//! - `routes`: POST /slack/commands and /slack/interactions (HTTP transport);
//! - `spawn`: the Socket Mode connection (the other transport);
//! - `surface`: the `ChatSurface` that reports requests back into their thread;
//! - `manifest`: the app manifest for `deckhand slack manifest`;
//! - `modals`/`views`: the command builder and the Deny reason form.

pub mod buttons;
mod config;
mod data;
mod groups;
mod http;
pub mod inbound;
mod manifest;
pub mod messages;
mod modals;
mod private;
mod prompts;
pub mod socket;
mod surface;
pub mod verify;
mod views;
pub mod web;

use std::sync::Arc;

pub use config::SlackConfig;
pub use data::SlackData;
pub use surface::SlackSurface;
use tokio_util::sync::CancellationToken;
pub use web::{Uploaded, WebApi, WebError};

use crate::{app::App, commands::Router, configuration::Config, signing::Signer, surface::ChatSurface};

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("slack is not configured: {0}")]
    NotConfigured(String),
    #[error("the manifest needs the service's public https:// base URL, not '{0}'")]
    BadUrl(String),
    #[error("could not build the manifest: {0}")]
    Manifest(String),
}

/// HTTP endpoints (/slack/commands, /slack/interactions); empty when Slack is off or
/// talks over Socket Mode.
pub fn routes(config: &Config) -> axum::Router<Arc<App>> {
    if !config.slack.http_enabled() {
        return axum::Router::new();
    }
    http::routes(config)
}

/// The surface that reports Slack requests back to Slack, when Slack is configured.
pub fn surface(config: &Config, signer: &Signer) -> Option<Arc<dyn ChatSurface>> {
    if !config.slack.enabled() {
        return None;
    }
    Some(Arc::new(SlackSurface::new(config, signer)))
}

/// Background work (the Socket Mode connection) started with the server.
pub fn spawn(app: Arc<App>, shutdown: CancellationToken) {
    if app.config.slack.enabled() && app.config.slack.socket_mode {
        tokio::spawn(socket::run(app, shutdown));
    }
}

/// `deckhand slack manifest --url`: the app manifest generated from the command specs.
pub fn manifest(config: &Config, router: &Router, url: &str) -> Result<String, SlackError> {
    manifest::render(&config.slack, router, url)
}
