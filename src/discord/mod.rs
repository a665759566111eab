//! The Discord surface: the interactions endpoint, command registration from the specs,
//! approval buttons and follow-ups.
//!
//! - `verify`: Ed25519 request signatures and timestamp freshness;
//! - `interactions`: the HTTP endpoint (PING, slash commands, button clicks);
//! - `command_text`: slash-command options back into the router's command text;
//! - `command_tree`: the registered command tree built from the specs, within Discord's limits;
//! - `builder`, `builder_form`: `/deckhand build`, the command builder (a select, then a modal);
//! - `buttons`: signed Approve / Deny custom_ids;
//! - `publish`: the `ChatSurface` that shows a request's events;
//! - `state`: per-request Discord data kept in the store;
//! - `rest`: Discord's REST API, with rate limits waited out.

mod builder;
mod builder_fix;
mod builder_form;
pub mod buttons;
pub mod command_text;
pub mod command_tree;
mod config;
mod interactions;
pub mod markup;
mod modals;
mod private;
pub mod prompts;
mod publish;
pub mod render;
pub mod rest;
pub mod state;
pub mod upload;
pub mod verify;

use std::sync::Arc;

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post};
pub use config::DiscordConfig;
use reqwest::Method;
use tokio_util::sync::CancellationToken;

pub use self::{
    command_tree::{TreeError, TreeErrors},
    interactions::decode_interaction,
    publish::DiscordSurface,
    rest::RestError,
    verify::{InteractionVerifier, VerifyError},
};
use crate::{app::App, commands::Router, configuration::Config, signing::Signer, surface::ChatSurface};

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("discord is not configured: {0}")]
    NotConfigured(String),
    #[error(transparent)]
    Tree(#[from] TreeErrors),
    #[error("registering the commands failed: {0}")]
    Api(#[from] RestError),
    #[error("'{0}' is not a Discord guild id (a number)")]
    BadGuild(String),
}

/// HTTP endpoint (/discord/interactions); empty when Discord is off.
pub fn routes(config: &Config) -> axum::Router<Arc<App>> {
    let d = &config.discord;
    if !d.enabled() {
        return axum::Router::new();
    }
    let verifier = match InteractionVerifier::new(&d.public_key) {
        Ok(v) => v,
        Err(e) => {
            // The configuration refuses bad keys when it loads; this is a last guard.
            tracing::error!(error = %e, "discord.public_key is unusable; the Discord endpoint is off");
            return axum::Router::new();
        }
    };
    let endpoint = Arc::new(interactions::Endpoint {
        verifier,
        max_skew: d.max_clock_skew.as_duration(),
        token_lifetime: d.token_lifetime.as_duration(),
        command: d.command.clone(),
        mentions: crate::chat::Mentions::from_config(config, "discord", "discord-role"),
    });
    axum::Router::new().route(
        "/discord/interactions",
        post(move |State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes| {
            let endpoint = endpoint.clone();
            async move { endpoint.handle(app, headers, body).await }
        }),
    )
}

/// The surface that reports Discord requests back to Discord, when Discord is configured.
pub fn surface(config: &Config, signer: &Signer) -> Option<Arc<dyn ChatSurface>> {
    let d = &config.discord;
    if !d.enabled() {
        return None;
    }
    let rest = rest::Rest::new(&d.api_base, &d.bot_token);
    let mentions = crate::chat::Mentions::from_config(config, "discord", "discord-role");
    Some(Arc::new(DiscordSurface::new(rest, signer.clone(), mentions)))
}

/// Background work started with the server: none, the endpoint is HTTP only.
pub fn spawn(_app: Arc<App>, _shutdown: CancellationToken) {}

/// The JSON body of the bulk overwrite: `[ {the /deckhand command} ]`.
pub fn command_json(config: &Config, router: &Router) -> Result<serde_json::Value, DiscordError> {
    let tree = command_tree::build(router, &config.discord.command)?;
    Ok(serde_json::json!([tree]))
}

/// `deckhand discord register [--guild ID] [--dry-run]`: the application command tree built
/// from the specs; returns what to print (the JSON on a dry run, a summary otherwise).
///
/// A bulk overwrite: commands of the application that are not in the tree are removed.
pub async fn register(
    config: &Config,
    router: &Router,
    guild: Option<&str>,
    dry_run: bool,
) -> Result<String, DiscordError> {
    let body = command_json(config, router)?;
    if dry_run {
        return Ok(serde_json::to_string_pretty(&body).unwrap_or_default());
    }
    let d = &config.discord;
    let app_id = d.application_id.trim();
    if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DiscordError::NotConfigured(
            "discord.application_id must be the application's id (digits)".into(),
        ));
    }
    if d.bot_token.is_empty() {
        return Err(DiscordError::NotConfigured("discord.bot_token is empty".into()));
    }
    let path = match guild {
        Some(g) if g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(DiscordError::BadGuild(g.to_owned()));
        }
        Some(g) => format!("/applications/{app_id}/guilds/{g}/commands"),
        None => format!("/applications/{app_id}/commands"),
    };
    let rest = rest::Rest::new(&d.api_base, &d.bot_token);
    rest.call(Method::PUT, &path, rest::Auth::Bot, Some(&body)).await?;
    let count = router.specs().len();
    let scope = match guild {
        Some(g) => format!("in guild {g} (available at once)"),
        None => "globally (Discord may take up to an hour to show changes)".into(),
    };
    Ok(format!("registered /{} with {count} commands {scope}", d.command))
}
