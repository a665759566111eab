//! The two handlers. Any token that does not open (unknown, expired, its viewer no longer
//! in the configuration, its request gone) answers the same 404 page, so a guess learns
//! nothing beyond "no".

use std::sync::Arc;

use axum::{
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{PageLink, PageLinks, html};
use crate::{
    app::App,
    attachments::Attachments,
    domain::{RequestId, now_ms},
    identity::Principal,
    store::{Event, RequestRecord},
    visibility,
};

/// Longer than any token deckhand makes; anything longer is not looked up.
const TOKEN_MAX: usize = 64;

/// Images a browser may show inline; any other stored type is served as a download.
const INLINE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The headers every answer under `/r/` carries: the token is in the address, so no caching
/// and no Referer; nothing is sniffed into something else.
fn guarded(status: StatusCode, content_type: &str, csp: &str, body: impl IntoResponse) -> Response {
    let mut r = (status, body).into_response();
    let h: &mut HeaderMap = r.headers_mut();
    let content_type =
        HeaderValue::from_str(content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

fn html_response(status: StatusCode, body: String) -> Response {
    guarded(status, "text/html; charset=utf-8", &html::CSP, body)
}

fn expired(request_id: Option<&str>) -> Response {
    html_response(StatusCode::NOT_FOUND, html::expired(request_id))
}

fn no_file() -> Response {
    html_response(
        StatusCode::NOT_FOUND,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>No such file</title></head>\
         <body><p>This request has no such file for you.</p></body></html>\n"
            .to_owned(),
    )
}

fn unavailable() -> Response {
    html_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Try again</title></head>\
         <body><p>Deckhand could not read this request just now; try again in a moment.</p></body></html>\n"
            .to_owned(),
    )
}

/// What an open link shows: the request, and its events as the viewer may read them.
struct Opened {
    link: PageLink,
    request: RequestRecord,
    events: Vec<Event>,
}

/// Why a link does not open.
enum Closed {
    /// 404: unknown, expired, or nothing left to show; the request id when known.
    Gone(Option<String>),
    /// 503: the store failed.
    Unavailable,
}

async fn open(app: &App, token: &str) -> Result<(Opened, Principal), Closed> {
    if token.is_empty() || token.len() > TOKEN_MAX {
        return Err(Closed::Gone(None));
    }
    let failed = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "page link lookup failed");
        Closed::Unavailable
    };
    let link = match PageLinks::new(app.store.pool().clone()).by_token(token).await {
        Ok(Some(link)) => link,
        Ok(None) => return Err(Closed::Gone(None)),
        Err(e) => return Err(failed(&e)),
    };
    let gone = || Closed::Gone(Some(link.request_id.clone()));
    if !link.is_open_at(now_ms()) {
        return Err(gone());
    }
    // The viewer as the configuration knows them now: someone removed reads nothing.
    let Some(viewer) = app.directory.user(&link.viewer) else {
        return Err(gone());
    };
    let Some(id) = RequestId::parse(&link.request_id) else {
        return Err(gone());
    };
    let request = match app.store.get(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(gone()),
        Err(e) => return Err(failed(&e)),
    };
    let events = match app.store.events(&id, 0).await {
        Ok(events) => visibility::events_for(events, &viewer, &request),
        Err(e) => return Err(failed(&e)),
    };
    Ok((Opened { link, request, events }, viewer))
}

fn closed(c: Closed) -> Response {
    match c {
        Closed::Gone(id) => expired(id.as_deref()),
        Closed::Unavailable => unavailable(),
    }
}

/// `GET /r/{token}`
pub(super) async fn page(State(app): State<Arc<App>>, token: Result<Path<String>, PathRejection>) -> Response {
    // A segment that is not UTF-8 names no link: the same 404 as any other.
    let Ok(Path(token)) = token else {
        return expired(None);
    };
    let (opened, viewer) = match open(&app, &token).await {
        Ok(o) => o,
        Err(c) => return closed(c),
    };
    let approvals = match app.store.approvals(&opened.request.id).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "page: approvals unreadable");
            return unavailable();
        }
    };
    // Relative to `/r/{token}`: the files are at `/r/{token}/files/{file}`.
    let files = format!("{token}/files");
    let body = html::page(&html::View {
        request: &opened.request,
        viewer: &viewer.user,
        events: &opened.events,
        approvals: &approvals,
        files: &files,
        expires_at: opened.link.expires_at,
    });
    html_response(StatusCode::OK, body)
}

/// `GET /r/{token}/files/{file}`: a file is served only when an event the viewer may read
/// announced it (after `events_for`, events outside their audience carry no file).
pub(super) async fn file(State(app): State<Arc<App>>, path: Result<Path<(String, String)>, PathRejection>) -> Response {
    let Ok(Path((token, file))) = path else {
        return expired(None);
    };
    let (opened, _) = match open(&app, &token).await {
        Ok(o) => o,
        Err(c) => return closed(c),
    };
    let announced = opened
        .events
        .iter()
        .any(|e| e.data.attachment().is_some_and(|a| a.id == file));
    if !announced {
        return no_file();
    }
    let found = Attachments::new(app.store.pool().clone())
        .get_for(opened.request.id.as_str(), &file)
        .await;
    let (content_type, filename, bytes) = match found {
        Ok(Some(f)) => f,
        Ok(None) => return no_file(),
        Err(e) => {
            tracing::warn!(error = %e, "page: attachment unreadable");
            return unavailable();
        }
    };
    let filename: String = filename
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let (content_type, disposition) = if INLINE_TYPES.contains(&content_type.as_str()) {
        (content_type.as_str(), "inline")
    } else {
        ("application/octet-stream", "attachment")
    };
    let mut r = guarded(
        StatusCode::OK,
        content_type,
        "default-src 'none'; sandbox; frame-ancestors 'none'",
        bytes,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{disposition}; filename=\"{filename}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
