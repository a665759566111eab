//! `/p/{token}/...`: checks the link and forwards the request through the API server's
//! service proxy, streaming the answer back as it arrives.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Redirect, Response},
};

use super::{LinkState, Links, hash_token};
use crate::{app::App, domain::now_ms};

/// The largest request body a link forwards. kube's client takes only whole request bodies
/// (its streaming body constructor is private), so this one direction is buffered; the
/// answer is streamed.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that are deckhand's or the API server's business, not the backend's: the kube
/// client sets its own Host and credentials, and a caller's Authorization must never reach
/// (or be mistaken for) the cluster credential.
const OWN: &[&str] = &["host", "authorization"];

pub(super) async fn redirect_to_slash(uri: Uri) -> Response {
    // Relative, so it works behind any public prefix: `/p/TOKEN` -> `/p/TOKEN/`.
    let last = uri.path().rsplit('/').next().unwrap_or_default();
    Redirect::permanent(&format!("{last}/")).into_response()
}

pub(super) async fn root(State(app): State<Arc<App>>, req: Request) -> Response {
    forward(&app, req).await
}

pub(super) async fn path(State(app): State<Arc<App>>, req: Request) -> Response {
    forward(&app, req).await
}

/// `/p/TOKEN/rest?q` -> (TOKEN, `rest?q`), from the raw URI so percent-encoding reaches the
/// backend exactly as the caller sent it.
fn split(uri: &Uri) -> Option<(&str, String)> {
    let (token, rest) = uri.path().strip_prefix("/p/")?.split_once('/')?;
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some((token, format!("{rest}{query}")))
}

async fn forward(app: &App, req: Request) -> Response {
    let Some((token, rest)) = split(req.uri()) else {
        return page(StatusCode::NOT_FOUND, "No such link", "This proxy link does not exist.");
    };
    // Every token, valid or not, costs one digest and one indexed lookup of the digest.
    let links = Links::new(app.store.pool().clone());
    let link = match links.by_hash(&hash_token(token)).await {
        Ok(Some(link)) => link,
        Ok(None) => return page(StatusCode::NOT_FOUND, "No such link", "This proxy link does not exist."),
        Err(e) => {
            tracing::warn!(error = %e, "proxy link lookup failed");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Deckhand could not check this link just now.",
            );
        }
    };
    match link.state_at(now_ms()) {
        LinkState::Open => {}
        LinkState::Expired => {
            return page(
                StatusCode::GONE,
                "Link expired",
                &format!(
                    "This proxy link to {} in {} has expired. Open a new one with `proxy open {} in {}`.",
                    link.service, link.env, link.service, link.env
                ),
            );
        }
        LinkState::Revoked => {
            return page(
                StatusCode::GONE,
                "Link closed",
                &format!(
                    "This proxy link to {} in {} was closed{}.",
                    link.service,
                    link.env,
                    link.revoked_by
                        .as_deref()
                        .map(|w| format!(" by {w}"))
                        .unwrap_or_default()
                ),
            );
        }
    }
    if let Err(e) = links.hit(&link.id).await {
        tracing::warn!(link = %link.id, error = %e, "could not count a proxied request");
    }
    let target = format!(
        "/api/v1/namespaces/{}/services/{}:{}/proxy/{rest}",
        link.env, link.service, link.port
    );
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request too large",
                "Proxy links forward request bodies up to 16 MiB.",
            );
        }
    };
    let mut upstream = axum::http::Request::builder().method(parts.method).uri(&target);
    if let Some(h) = upstream.headers_mut() {
        copy_headers(&parts.headers, h);
    }
    let upstream = match upstream.body(kube::client::Body::from(body)) {
        Ok(r) => r,
        Err(e) => return bad_gateway(&e.to_string()),
    };
    let client = match app.cluster.passthrough_client().await {
        Ok(c) => c,
        Err(e) => return bad_gateway(&e.to_string()),
    };
    match client.send(upstream).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            let mut out = Response::new(Body::new(body));
            *out.status_mut() = parts.status;
            copy_headers(&parts.headers, out.headers_mut());
            out
        }
        Err(e) => bad_gateway(&e.to_string()),
    }
}

/// Copies end-to-end headers: drops hop-by-hop ones, those the Connection header names, and
/// deckhand's own.
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in from {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || OWN.contains(&n) || n.starts_with("x-deckhand-") || named.iter().any(|c| c == n) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

fn bad_gateway(detail: &str) -> Response {
    tracing::debug!(detail, "proxied request failed");
    page(
        StatusCode::BAD_GATEWAY,
        "Service unreachable",
        "Deckhand could not reach the service behind this link through the Kubernetes API.",
    )
}

/// A small page people see in a browser; plain enough for curl too.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1><p>{}</p></body></html>\n",
        escape(text)
    );
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-deckhand-proxy"),
        HeaderValue::from_static("refused"),
    );
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_token_and_keeps_raw_path_and_query() {
        let uri: Uri = "/p/abc/x%20y/z?a=1&b=%2F".parse().unwrap();
        assert_eq!(split(&uri), Some(("abc", "x%20y/z?a=1&b=%2F".to_owned())));
        let uri: Uri = "/p/abc/".parse().unwrap();
        assert_eq!(split(&uri), Some(("abc", String::new())));
    }

    #[test]
    fn drops_hop_by_hop_and_own_headers() {
        let mut from = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("authorization", "Bearer t"),
            ("host", "deckhand"),
            ("x-deckhand-whatever", "1"),
            ("content-type", "application/json"),
            ("x-custom", "kept"),
        ] {
            from.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to);
        let mut names: Vec<&str> = to.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-custom"]);
    }
}
