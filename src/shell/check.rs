//! Whether a shell link may open a session, and the refusal people see when not.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{LinkState, Session, Sessions};
use crate::{app::App, domain::now_ms, proxy::hash_token};

/// Why a link does not open: said as a page to a browser and as text to the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub title: &'static str,
    pub text: String,
}

impl Refusal {
    pub fn new(status: StatusCode, title: &'static str, text: impl Into<String>) -> Self {
        Self {
            status,
            title,
            text: text.into(),
        }
    }

    pub fn page(&self) -> Response {
        let body = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1><p>{}</p></body></html>\n",
            escape(&self.text),
            title = self.title,
        );
        respond(self.status, "text/html; charset=utf-8", body)
    }

    pub fn text(&self) -> Response {
        respond(self.status, "text/plain; charset=utf-8", format!("{}\n", self.text))
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Looks the link up by the digest of its token (one digest and one indexed lookup for every
/// token, valid or not) and says whether it can still start a session.
pub async fn open_session(app: &App, token: &str) -> Result<Session, Refusal> {
    let sessions = Sessions::new(app.store.pool().clone());
    let session = match sessions.by_hash(&hash_token(token)).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "No such shell link",
                "This shell link does not exist. Ask for one with `shell <app> in <env>`.",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "shell link lookup failed");
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Deckhand could not check this shell link just now; try again in a moment.",
            ));
        }
    };
    match session.state_at(now_ms()) {
        LinkState::Open => Ok(session),
        LinkState::Expired => Err(Refusal::new(
            StatusCode::GONE,
            "Shell link expired",
            format!(
                "This shell link to {} in {} expired before it was opened. Ask for a new one with `shell {} in {}`.",
                session.app, session.env, session.app, session.env
            ),
        )),
        LinkState::Used => Err(Refusal::new(
            StatusCode::GONE,
            "Shell link already used",
            format!(
                "This shell link to {} in {} has already opened its session; a link opens one. Ask for a new one with `shell {} in {}`.",
                session.app, session.env, session.app, session.env
            ),
        )),
    }
}
