//! `.../services/{name}[:port]/proxy/...` and `.../pods/{name}/proxy/...`: the API server's
//! proxy to in-cluster services, which deckhand's proxy.open uses. The fake has no backends,
//! so it answers for them (see `KubeTestServer::set_proxy_response`).

use std::sync::Arc;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::Shared;
use super::resources;
use super::selectors::LabelSelector;
use super::status::ApiError;
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

/// Answers a proxied request the way the API server would if the backend were up: 404 when
/// the service or pod does not exist, 503 when no ready pod backs the service, otherwise the
/// response a test configured with `set_proxy_response` (default: a small text echo).
pub(super) fn service_proxy(shared: &Arc<Shared>, method: &Method, p: &ProxyTarget) -> Result<Response, ApiError> {
    let st = shared.lock();
    let rd = resources::by_plural("", p.resource).ok_or_else(ApiError::no_route)?;
    let resource = format!("{}/proxy", p.resource);
    if st.is_forbidden(proxy_verb(method), &resource) {
        return Err(ApiError::rbac(
            rd,
            Some("proxy"),
            proxy_verb(method),
            Some(&p.namespace),
            &p.name,
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
