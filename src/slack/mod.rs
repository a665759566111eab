//! The Slack surface: slash commands, interactivity (approval buttons), progress threads,
//! over HTTP or Socket Mode.

mod config;

use std::sync::Arc;

pub use config::SlackConfig;
use tokio_util::sync::CancellationToken;

use crate::{app::App, commands::Router, configuration::Config, signing::Signer, surface::ChatSurface};

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("slack is not configured: {0}")]
    NotConfigured(String),
}

/// HTTP endpoints (/slack/commands, /slack/interactions); empty when Slack is off.
pub fn routes(_config: &Config) -> axum::Router<Arc<App>> {
    axum::Router::new()
}

/// The surface that reports Slack requests back to Slack, when Slack is configured.
pub fn surface(_config: &Config, _signer: &Signer) -> Option<Arc<dyn ChatSurface>> {
    None
}

/// Background work (the Socket Mode connection) started with the server.
pub fn spawn(_app: Arc<App>, _shutdown: CancellationToken) {}

/// `deckhand slack manifest --url`: the app manifest generated from the command specs.
pub fn manifest(_config: &Config, _router: &Router, _url: &str) -> Result<String, SlackError> {
    Err(SlackError::NotConfigured("not implemented yet".into()))
}
