//! The web page of a request (issue 15): `GET /r/{token}` shows one request (command,
//! requester, state, approval, events with times, output, charts inline) to the one person
//! the link was minted for, as their audience admits (`crate::visibility`, the rule the API
//! and `request <id>` follow). `GET /r/{token}/files/{file}` serves the request's files
//! (a load test's chart) under the same rule.
//!
//! Why a link per person rather than one per request: a page shows private output to the
//! people it is meant for, so the link is that person's credential, like a proxy or shell
//! link. It is handed out privately (a Slack ephemeral message, a Discord ephemeral
//! follow-up) as a link button: by `request <id>` to whoever asked, and at the end of a load
//! test with a chart to its requester. The token is random (130 bits), stored only as its
//! SHA-256 and good for `server.page_link_ttl` (24 h by default); `request <id>` mints a new
//! one. The page has no scripts, no third-party resources and escapes everything.

mod html;
mod links;
mod serve;

pub use links::{PageLink, PageLinks};

use std::sync::Arc;

use axum::{Router, routing::get};

use crate::{app::App, command_buttons::LinkButton, domain::now_ms};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored page link is unreadable: {0}")]
    Corrupt(String),
}

/// How long expired rows stay (so the page can still say which request a dead link was
/// for) before minting sweeps them.
const KEEP_EXPIRED_MS: i64 = 7 * 24 * 3600 * 1000;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/r/{token}", get(serve::page))
        .route("/r/{token}/files/{file}", get(serve::file))
}

/// A freshly minted page link: its address, and the address of a file under it.
#[derive(Debug, Clone)]
pub struct Minted {
    pub url: String,
    pub expires_at: i64,
}

impl Minted {
    /// `{url}/files/{file}`: a file of the request (a chart), under the same link.
    pub fn file_url(&self, file: &str) -> String {
        format!("{}/files/{file}", self.url)
    }

    pub fn page_button(&self) -> LinkButton {
        LinkButton::new("Open page", &self.url)
    }
}

/// Mints a page link to `request_id` for `viewer` and returns its address
/// (`{public_url}/r/{token}`).
pub async fn mint(app: &App, request_id: &str, viewer: &str) -> Result<Minted, PageError> {
    let links = PageLinks::new(app.store.pool().clone());
    let ttl = app.config.server.page_link_ttl.as_millis_i64();
    let (token, link) = links.mint(request_id, viewer, ttl).await?;
    if let Err(e) = links.sweep(now_ms().saturating_sub(KEEP_EXPIRED_MS)).await {
        tracing::warn!(error = %e, "could not sweep expired page links");
    }
    Ok(Minted {
        url: format!("{}/r/{token}", app.config.server.public_url.trim_end_matches('/')),
        expires_at: link.expires_at,
    })
}
