//! `/p/{token}/...` (or any path on `{token}.{proxy_domain}`): checks the link and forwards
//! the request through the API server's service proxy, streaming both bodies and splicing
//! upgraded (WebSocket) connections. Every exchange is registered with `live` while it
//! lasts, so closing or expiring the link cuts it.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;

use super::{
    Link, LinkState, Links, Recent, hash_token,
    headers::{self, Scope},
    live::{Live, cut_on},
    origin::{self, Host},
};
use crate::{app::App, domain::now_ms};

pub(super) async fn redirect_to_slash(State(app): State<Arc<App>>, uri: Uri) -> Response {
    if origin::own_origins(&app.config.server) {
        return no_such_link();
    }
    // Relative, so it works behind any public prefix: `/p/TOKEN` -> `/p/TOKEN/`.
    let last = uri.path().rsplit('/').next().unwrap_or_default();
    Redirect::permanent(&format!("{last}/")).into_response()
}

pub(super) async fn root(State(app): State<Arc<App>>, req: Request) -> Response {
    on_deckhands_origin(&app, req).await
}

pub(super) async fn path(State(app): State<Arc<App>>, req: Request) -> Response {
    on_deckhands_origin(&app, req).await
}

/// `/p/{token}/...` on deckhand's origin; refused when links have origins of their own.
async fn on_deckhands_origin(app: &App, req: Request) -> Response {
    if origin::own_origins(&app.config.server) {
        return no_such_link();
    }
    let Some((token, path)) = split(req.uri()) else {
        return no_such_link();
    };
    let path_prefix = format!("{}/p/{token}", origin::public_path(&app.config.server));
    let scope = Scope::on_deckhands_origin(path_prefix, &token);
    forward(app, &token, path, scope, req).await
}

/// Middleware: a request whose Host is `{token}.{proxy_domain}` goes to that link whatever
/// its path (deckhand's own paths included); every other request goes on to deckhand.
pub(super) async fn by_host(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match origin::host_of(&app.config.server, req.headers()) {
        Host::Deckhand => next.run(req).await,
        Host::Unknown => no_such_link(),
        Host::Link(token) => {
            let path = req.uri().path();
            let path = path.strip_prefix('/').unwrap_or(path).to_owned();
            forward(&app, &token, path, Scope::Origin, req).await
        }
    }
}

/// `/p/TOKEN/rest` -> (TOKEN, `rest`), from the raw URI so percent-encoding reaches the
/// backend exactly as the caller sent it. The query is passed on separately.
fn split(uri: &Uri) -> Option<(String, String)> {
    let (token, rest) = uri.path().strip_prefix("/p/")?.split_once('/')?;
    Some((token.to_owned(), rest.to_owned()))
}

fn no_such_link() -> Response {
    page(StatusCode::NOT_FOUND, "No such link", "This proxy link does not exist.")
}

/// Checks the link and passes the request on. `path` is what follows the link's root,
/// without the query.
async fn forward(app: &App, token: &str, path: String, scope: Scope, req: Request) -> Response {
    // Every token, valid or not, costs one digest and one indexed lookup of the digest.
    let links = Links::new(app.store.pool().clone());
    let link = match app.proxies.link(&links, &hash_token(token)).await {
        Ok(Some(link)) => link,
        Ok(None) => return no_such_link(),
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
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    // The query stays out of what is recorded: it often carries secrets (reset tokens, keys)
    // and `proxy list` is open to everyone who may run it.
    let shown = format!("/{path}");
    // Counted as open here until its answer (or spliced connection) ends: closing or
    // expiring the link cuts it.
    let live = app.proxies.connections().register(&link.id, link.expires_at);
    let out = pass(app, &link, &path, &scope, req, live).await;
    // Counted once the answer starts (or failed): the status is part of what proxy list shows.
    app.proxies.hit(
        &link.id,
        Recent {
            at: now_ms(),
            method,
            path: shown,
            status: out.status().as_u16(),
            millis: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        },
    );
    out
}

/// Sends the request on to the service and returns its answer as it starts to arrive.
/// Both bodies end, and an upgraded connection closes, when `live`'s link is cut.
async fn pass(app: &App, link: &Link, path: &str, scope: &Scope, mut req: Request, live: Live) -> Response {
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let target = format!(
        "/api/v1/namespaces/{}/services/{}:{}/proxy/{path}{query}",
        link.env, link.service, link.port
    );
    let upgrade = upgrade_protocol(req.headers());
    // Taken before the request is consumed: the connection the caller upgrades on.
    let caller_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut upstream = axum::http::Request::builder().method(parts.method).uri(&target);
    if let Some(h) = upstream.headers_mut() {
        headers::to_upstream(&parts.headers, h, scope);
        if let Some(protocol) = &upgrade {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(header::UPGRADE, protocol.clone());
        }
    }
    let cut = live.token().clone();
    // The body is handed over as a stream: nothing is buffered here.
    let upstream = match upstream.body(cut_on(body, cut.clone(), None)) {
        Ok(r) => r,
        Err(e) => return bad_gateway(&e.to_string()),
    };
    let cluster = match app.clusters.locate(&link.env).await {
        Ok(c) => c,
        Err(e) => return bad_gateway(&e.to_string()),
    };
    let client = match cluster.passthrough().await {
        Ok(c) => c,
        Err(e) => return bad_gateway(&e.to_string()),
    };
    let sent = tokio::select! {
        sent = client.send(upstream) => sent,
        () = cut.cancelled() => return cut_off(link),
    };
    let mut answer = match sent {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(&e.to_string()),
    };
    let switching = answer.status() == StatusCode::SWITCHING_PROTOCOLS;
    let backend_upgrade = switching.then(|| hyper::upgrade::on(&mut answer));
    let (parts, body) = answer.into_parts();
    let both = match (caller_upgrade, backend_upgrade, upgrade) {
        (Some(caller), Some(backend), Some(protocol)) => Some((caller, backend, protocol)),
        _ => None,
    };
    let Some((caller, backend, protocol)) = both else {
        let mut out = Response::new(cut_on(Body::new(body), cut, Some(live)));
        *out.status_mut() = parts.status;
        headers::to_caller(&parts.headers, out.headers_mut(), scope);
        return out;
    };
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    headers::to_caller(&parts.headers, out.headers_mut(), scope);
    let h = out.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(
        header::UPGRADE,
        parts.headers.get(header::UPGRADE).cloned().unwrap_or(protocol),
    );
    tokio::spawn(splice(caller, backend, live));
    out
}

/// The protocol a caller asks to switch to (`Connection: upgrade` + `Upgrade: X`), if any.
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned()).flatten()
}

/// Once both sides switched protocols, bytes flow both ways until either side closes or
/// the link is cut; then both halves are closed.
async fn splice(caller: hyper::upgrade::OnUpgrade, backend: hyper::upgrade::OnUpgrade, live: Live) {
    let link = live.link().to_owned();
    let cut = live.token().clone();
    let joined = tokio::select! {
        joined = async { tokio::try_join!(caller, backend) } => joined,
        () = cut.cancelled() => return,
    };
    let (caller, backend) = match joined {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(%link, error = %e, "proxied upgrade did not complete");
            return;
        }
    };
    let (mut caller, mut backend) = (TokioIo::new(caller), TokioIo::new(backend));
    let copied = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut caller, &mut backend) => Some(copied),
        () = cut.cancelled() => None,
    };
    match copied {
        Some(Ok((up, down))) => tracing::debug!(%link, up, down, "proxied upgraded connection closed"),
        Some(Err(e)) => tracing::debug!(%link, error = %e, "proxied upgraded connection ended"),
        None => {
            tracing::info!(%link, "proxied upgraded connection cut: the link was closed or expired");
            // A clean end on both sides if it is quick; both are dropped (closed) either way.
            let close = async {
                let _ = caller.shutdown().await;
                let _ = backend.shutdown().await;
            };
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, close).await;
        }
    }
}

/// How long a cut upgraded connection may take to close cleanly before it is dropped.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// The answer when a link is cut before the service answered.
fn cut_off(link: &Link) -> Response {
    page(
        StatusCode::GONE,
        "Link closed",
        &format!(
            "This proxy link to {} in {} was closed or expired while the request was on its way.",
            link.service, link.env
        ),
    )
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
    fn splits_token_and_keeps_raw_path() {
        let uri: Uri = "/p/abc/x%20y/z?a=1&b=%2F".parse().unwrap();
        assert_eq!(split(&uri), Some(("abc".to_owned(), "x%20y/z".to_owned())));
        let uri: Uri = "/p/abc/".parse().unwrap();
        assert_eq!(split(&uri), Some(("abc".to_owned(), String::new())));
    }
}
