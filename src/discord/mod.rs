//! The Discord surface: the interactions endpoint, command registration from the specs,
//! approval buttons and follow-ups.

mod config;

use std::sync::Arc;

pub use config::DiscordConfig;
use tokio_util::sync::CancellationToken;

use crate::{app::App, commands::Router, configuration::Config, signing::Signer, surface::ChatSurface};

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("discord is not configured: {0}")]
    NotConfigured(String),
}

/// HTTP endpoint (/discord/interactions); empty when Discord is off.
pub fn routes(_config: &Config) -> axum::Router<Arc<App>> {
    axum::Router::new()
}

/// The surface that reports Discord requests back to Discord, when Discord is configured.
pub fn surface(_config: &Config, _signer: &Signer) -> Option<Arc<dyn ChatSurface>> {
    None
}

/// Background work started with the server (none yet).
pub fn spawn(_app: Arc<App>, _shutdown: CancellationToken) {}

/// `deckhand discord register [--guild ID] [--dry-run]`: the application command tree built
/// from the specs; returns what to print (the JSON on a dry run, a summary otherwise).
pub async fn register(
    _config: &Config,
    _router: &Router,
    _guild: Option<&str>,
    _dry_run: bool,
) -> Result<String, DiscordError> {
    Err(DiscordError::NotConfigured("not implemented yet".into()))
}
