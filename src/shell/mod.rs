//! Interactive shells in pods: `pod.shell` hands out `<public_url>/shell/<token>`, a link
//! that opens one terminal session in a ready pod of an app.
//!
//! - `GET /shell/{token}`: the terminal page (xterm.js, compiled into the binary from
//!   `assets/xterm/`, so no CDN is involved);
//! - `GET /shell/{token}/ws`: the WebSocket the page and `deckhand shell` speak
//!   ([`protocol`]); deckhand attaches to the pod with kube exec (tty, stdin) and relays
//!   bytes and window sizes both ways. The person needs the link (and, from the CLI, their
//!   deckhand token), never Kubernetes credentials.
//!
//! A link must be opened before it expires (`kubernetes.shell_link_ttl`) and starts one
//! session: the first connection claims it. The session then lasts until the shell exits or
//! the client goes away. Start, end and exit are audited; tiers with `record_shell` keep
//! the lines typed.

mod binding;
mod check;
mod live;
mod page;
pub mod protocol;
mod recorder;
mod sessions;
mod socket;

pub use live::{LiveGuard, LiveSessions};
pub use recorder::Recorder;
pub use sessions::{Ending, LinkState, NewSession, Session, Sessions};

use std::sync::Arc;

use axum::{Router, routing::get};

use crate::app::App;

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored shell session is unreadable: {0}")]
    Corrupt(String),
}

/// The page, its WebSocket and the vendored terminal assets.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/shell/{token}", get(page::page))
        .route("/shell/{token}/ws", get(socket::socket))
        .route("/assets/shell/{file}", get(page::asset))
}

/// The link a session is opened with, and the WebSocket address under it.
pub fn link(public_url: &str, token: &str) -> (String, String) {
    let base = public_url.trim_end_matches('/');
    let page = format!("{base}/shell/{token}");
    let ws = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}/shell/{token}/ws"),
        Some((_, rest)) => format!("ws://{rest}/shell/{token}/ws"),
        None => format!("ws://{base}/shell/{token}/ws"),
    };
    (page, ws)
}

#[cfg(test)]
mod tests {
    #[test]
    fn websocket_address_follows_the_page_scheme() {
        assert_eq!(
            super::link("https://deckhand.example.com/", "T"),
            (
                "https://deckhand.example.com/shell/T".to_owned(),
                "wss://deckhand.example.com/shell/T/ws".to_owned()
            )
        );
        assert_eq!(
            super::link("http://127.0.0.1:8080", "T").1,
            "ws://127.0.0.1:8080/shell/T/ws"
        );
    }
}
