//! `.../services/{name}[:port]/proxy/...` and `.../pods/{name}/proxy/...`: the API server's
//! proxy to in-cluster services, which deckhand's proxy.open uses. A test either registers a
//! real HTTP server behind a service (`KubeTestServer::set_service_backend`), which then gets
//! every proxied request, or lets the fake answer for it (`set_proxy_response`). A resolver
//! (`set_resolver`, what the playground uses) picks backends for services nobody registered.
//!
//! Requests to a real backend are taken by a middleware in front of the API router (which
//! only sees whole bodies): like the real API server's upgrade-aware proxy, bodies stream
//! both ways and `Connection: upgrade` requests (WebSocket) are spliced through.

use std::sync::{Arc, LazyLock, Mutex, Weak};

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

use super::api::{Shared, error_response};
use super::rbac::{Attrs, Identity};
use super::resources;
use super::selectors::LabelSelector;
use super::status::ApiError;
use super::store::Request as Recorded;
use super::util;

/// `/api/v1/namespaces/{ns}/services/[scheme:]{name}[:port]/proxy/{path...}` (and pods).
#[derive(Debug)]
pub(super) struct ProxyTarget {
    pub namespace: String,
    /// "services" or "pods"
    pub resource: &'static str,
    pub name: String,
    pub port: String,
    pub rest: String,
    /// The path segment as given (`name:port`): the name the authorizer sees and reports.
    pub raw_name: String,
}

pub(super) fn proxy_target(path: &str) -> Option<ProxyTarget> {
    let segs: Vec<&str> = path.trim_start_matches('/').splitn(8, '/').collect();
    let ["api", "v1", "namespaces", ns, kind, name_port, "proxy", ..] = segs.as_slice() else {
        return None;
    };
    let resource = match *kind {
        "services" => "services",
        "pods" => "pods",
        _ => return None,
    };
    // `name`, `name:port`, `scheme:name:port` or `scheme:name:`.
    let parts: Vec<&str> = name_port.split(':').collect();
    let (name, port) = match parts.as_slice() {
        [n] => (*n, ""),
        [n, p] => (*n, *p),
        [_, n, p] => (*n, *p),
        _ => return None,
    };
    Some(ProxyTarget {
        namespace: ns.to_string(),
        resource,
        name: name.to_string(),
        port: port.to_string(),
        raw_name: name_port.to_string(),
        rest: segs.get(7).map(|s| format!("/{s}")).unwrap_or_else(|| "/".into()),
    })
}

pub(super) fn proxy_verb(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" | "HEAD" | "OPTIONS" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "get",
    }
}

/// Answers a proxied request the way the API server would with no backend registered: 404
/// when the service or pod does not exist, 503 when no ready pod backs the service, otherwise
/// the response a test configured with `set_proxy_response` (default: a small text echo).
pub(super) fn service_proxy(
    shared: &Arc<Shared>,
    method: &Method,
    p: &ProxyTarget,
    who: &Identity,
) -> Result<Response, ApiError> {
    check(shared, method, p, who)
}

/// Middleware: takes proxied requests to services with a real backend, passes everything
/// else to the API router.
pub async fn intercept(AxState(shared): AxState<Arc<Shared>>, req: Request, next: Next) -> Response {
    let Some(p) = proxy_target(req.uri().path()) else {
        return next.run(req).await;
    };
    let base = match p.resource {
        "services" => backend(&shared, &p.namespace, &p.name),
        _ => None,
    };
    let Some(base) = base else {
        return next.run(req).await;
    };
    {
        let mut st = shared.lock();
        st.requests.push(Recorded {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            rbac: Some((
                String::new(),
                format!("{}/proxy", p.resource),
                proxy_verb(req.method()).to_string(),
            )),
        });
        if let Some(f) = st.take_fault(req.method().as_str(), req.uri().path()) {
            let message = format!("injected failure: {} {}", f.code, f.reason);
            return error_response(&ApiError::new(f.code, &f.reason, message));
        }
    }
    let who = Identity::of(req.extensions().get(), req.headers());
    if let Err(e) = check(&shared, req.method(), &p, &who) {
        return error_response(&e);
    }
    forward(&base, req, &p).await
}

/// 404/503/403 as the API server would, else the canned answer.
fn check(shared: &Arc<Shared>, method: &Method, p: &ProxyTarget, who: &Identity) -> Result<Response, ApiError> {
    let st = shared.lock();
    let rd = resources::by_plural("", p.resource).ok_or_else(ApiError::no_route)?;
    let attrs = Attrs {
        verb: proxy_verb(method),
        group: "",
        resource: p.resource,
        sub: Some("proxy"),
        namespace: Some(&p.namespace),
        name: &p.raw_name,
    };
    if st.denies(who, &attrs) {
        return Err(ApiError::rbac(
            &who.user,
            rd,
            Some("proxy"),
            proxy_verb(method),
            Some(&p.namespace),
            &p.raw_name,
        ));
    }
    let obj = st
        .get(rd, &p.namespace, &p.name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rd, &p.name))?;
    if p.resource == "services" {
        let selector = util::path(&obj, "spec.selector")
            .map(|s| LabelSelector::from_object(&json!({"matchLabels": s})))
            .unwrap_or_default();
        let pods = resources::by_plural("", "pods")
            .map(|pd| st.list(pd, Some(&p.namespace)))
            .unwrap_or_default();
        let ready = !selector.0.is_empty()
            && pods.iter().any(|pod| {
                selector.matches_object(pod)
                    && util::path(pod, "status.conditions")
                        .and_then(Value::as_array)
                        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            });
        if !ready {
            return Err(ApiError::new(
                503,
                "ServiceUnavailable",
                format!("no endpoints available for service \"{}\"", p.name),
            ));
        }
    }
    let key = (p.namespace.clone(), p.name.clone());
    let (code, body) = st.proxy_responses.get(&key).cloned().unwrap_or_else(|| {
        (
            200,
            format!(
                "fake {} {} port {:?}: {} {}\n",
                p.resource, p.name, p.port, method, p.rest
            ),
        )
    });
    let mut r = (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// Backends by server: a `Weak` keeps the `Shared` allocation (not the server) alive, so its
/// address cannot be reused by a later server in the same test binary while the entry exists.
type Backends = Vec<(Weak<Shared>, String, String, String)>;
static BACKENDS: LazyLock<Mutex<Backends>> = LazyLock::new(|| Mutex::new(Vec::new()));

fn backends() -> std::sync::MutexGuard<'static, Backends> {
    BACKENDS.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn set_backend(shared: &Arc<Shared>, namespace: &str, name: &str, base_url: &str) {
    let me = Arc::downgrade(shared);
    let mut b = backends();
    // Servers that are gone take their entries with them.
    b.retain(|(w, ns, n, _)| w.strong_count() > 0 && !(w.ptr_eq(&me) && ns == namespace && n == name));
    b.push((me, namespace.into(), name.into(), base_url.trim_end_matches('/').into()));
}

/// Picks a backend for a service no test registered one for: (namespace, service) to a base
/// URL, or None to let the fake answer (playground.rs starts an app's HTTP server this way).
pub type ResolveFn = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

type Resolvers = Vec<(Weak<Shared>, ResolveFn)>;
static RESOLVERS: LazyLock<Mutex<Resolvers>> = LazyLock::new(|| Mutex::new(Vec::new()));

pub(super) fn set_resolver(shared: &Arc<Shared>, resolve: ResolveFn) {
    let me = Arc::downgrade(shared);
    let mut r = RESOLVERS.lock().unwrap_or_else(|e| e.into_inner());
    r.retain(|(w, _)| w.strong_count() > 0 && !w.ptr_eq(&me));
    r.push((me, resolve));
}

fn backend(shared: &Arc<Shared>, namespace: &str, name: &str) -> Option<String> {
    let me = Arc::downgrade(shared);
    let registered = backends()
        .iter()
        .find(|(w, ns, n, _)| w.ptr_eq(&me) && ns == namespace && n == name)
        .map(|(_, _, _, url)| url.clone());
    if registered.is_some() {
        return registered;
    }
    // Called without the resolvers' lock held: a resolver may take the server's own lock.
    let resolve = RESOLVERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(w, _)| w.ptr_eq(&me))
        .map(|(_, f)| f.clone())?;
    resolve(namespace, name)
}

/// Hop-by-hop headers (RFC 9110 7.6.1) plus what the API server keeps to itself: the
/// caller's credentials never reach the backend, and Host is the backend's.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
];

fn end_to_end(from: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let mut to = HeaderMap::new();
    for (k, v) in from {
        if !NOT_FORWARDED.contains(&k.as_str()) && !named.iter().any(|n| n == k.as_str()) {
            to.append(k.clone(), v.clone());
        }
    }
    to
}

/// One client for every fake server: connections to backends are kept alive, as the real
/// API server's transport does.
static CLIENT: LazyLock<Client<HttpConnector, Body>> = LazyLock::new(|| {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(http)
});

fn unreachable(e: impl std::fmt::Display) -> Response {
    let message = format!("error trying to reach service: {e}");
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "ServiceUnavailable", "code": 503,
    });
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, status.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Sends the request to the backend, streaming both bodies; an upgrade the backend accepts
/// is spliced; a backend that does not answer is a 503 Status, as the real API server
/// reports a dial error.
async fn forward(base: &str, mut req: Request, p: &ProxyTarget) -> Response {
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = format!("{base}{}{query}", p.rest);
    let upgrade = req.headers().get(header::UPGRADE).cloned();
    let caller = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut out = axum::http::Request::builder().method(parts.method).uri(&url);
    if let Some(h) = out.headers_mut() {
        *h = end_to_end(&parts.headers);
        if let Some(u) = &upgrade {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(header::UPGRADE, u.clone());
        }
    }
    let out = match out.body(body) {
        Ok(r) => r,
        Err(e) => return unreachable(e),
    };
    let mut answer = match CLIENT.request(out).await {
        Ok(a) => a,
        Err(e) => return unreachable(e),
    };
    let status = answer.status();
    let backend_upgrade = (status == StatusCode::SWITCHING_PROTOCOLS).then(|| hyper::upgrade::on(&mut answer));
    let mut headers = end_to_end(answer.headers());
    if let (Some(caller), Some(backend)) = (caller, backend_upgrade) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(u) = answer.headers().get(header::UPGRADE) {
            headers.insert(header::UPGRADE, u.clone());
        }
        tokio::spawn(async move {
            if let Ok((a, b)) = tokio::try_join!(caller, backend) {
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(a), &mut TokioIo::new(b)).await;
            }
        });
    }
    let mut r = Response::new(Body::new(answer.into_body()));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}
