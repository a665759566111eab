//! The terminal page and its static assets, all compiled into the binary.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::check::{Refusal, escape, open_session};
use crate::app::App;

const XTERM_JS: &str = include_str!("../../assets/xterm/xterm.js");
const XTERM_CSS: &str = include_str!("../../assets/xterm/xterm.css");
const FIT_JS: &str = include_str!("../../assets/xterm/addon-fit.js");
const SHELL_JS: &str = include_str!("../../assets/shell.js");

/// Scripts only from deckhand itself; xterm.js sets inline styles on its elements; the page
/// talks only to its own WebSocket (CSP level 3's 'self' covers ws:/wss: to the same host).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) async fn page(State(app): State<Arc<App>>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let session = match open_session(&app, &token).await {
        Ok(s) => s,
        Err(refusal) => return refusal.page(),
    };
    let set_cookie = match super::binding::bind_page(&app, &headers, &session, &token).await {
        Ok(c) => c,
        Err(refusal) => return refusal.page(),
    };
    let title = escape(&format!("{} in {} · shell", session.app, session.env));
    let what = escape(&format!(
        "{} in {} · pod {} · for {}",
        session.app, session.env, session.pod, session.requester
    ));
    let recorded = if session.record {
        "<span class=\"rec\">the lines you type are recorded</span>"
    } else {
        ""
    };
    let body = format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<meta name="referrer" content="no-referrer">
<link rel="stylesheet" href="/assets/shell/xterm.css">
<style>
html, body {{ height: 100%; margin: 0; background: #1e1e1e; color: #ddd; font: 14px sans-serif; }}
body {{ display: flex; flex-direction: column; }}
header {{ padding: 6px 10px; display: flex; gap: 16px; align-items: baseline; }}
#status {{ margin-left: auto; }}
.rec {{ color: #f0a030; }}
#terminal {{ flex: 1; min-height: 0; padding: 4px; }}
</style></head>
<body><header><strong>{what}</strong>{recorded}<span id="status" data-state="connecting">connecting…</span></header>
<div id="terminal"></div>
<script src="/assets/shell/xterm.js"></script>
<script src="/assets/shell/addon-fit.js"></script>
<script src="/assets/shell/shell.js"></script>
</body></html>
"#
    );
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The token is in the address: keep it out of caches and of other sites' Referer.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    if let Some(c) = set_cookie {
        h.insert(header::SET_COOKIE, c);
    }
    r
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "xterm.js" => (XTERM_JS, "text/javascript; charset=utf-8"),
        "addon-fit.js" => (FIT_JS, "text/javascript; charset=utf-8"),
        "xterm.css" => (XTERM_CSS, "text/css; charset=utf-8"),
        "shell.js" => (SHELL_JS, "text/javascript; charset=utf-8"),
        _ => return Refusal::new(StatusCode::NOT_FOUND, "Not found", "No such asset.").text(),
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}
