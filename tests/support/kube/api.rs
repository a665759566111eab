//! The HTTP side: one fallback handler that parses Kubernetes API paths by hand (they are too
//! irregular for a route table), then dispatches on verb. Every error leaves as a `Status`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admission;
use super::field_validation::{self as fv, Wording};
use super::managed_fields;
use super::patch;
use super::rbac::{self, Identity};
use super::resources::{self, ResourceDef};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{self, ApiError};
use super::store::{self, Request, State};
use super::table;
use super::util;
use super::{logs, protobuf, proxy, watch};

/// What the server, the controllers and the test handle share.
pub struct Shared {
    state: Mutex<State>,
    /// Flipped to true when the server is dropped: ends open watches and connections.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    pub fn new(state: State) -> Self {
        Shared {
            state: Mutex::new(state),
            shutdown: tokio::sync::watch::channel(false).0,
        }
    }

    /// Locks the state; a panic elsewhere must not wedge every later request.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    // Exec upgrades to a WebSocket, which needs the whole request, not the bytes `handle` takes.
    let exec = axum::middleware::from_fn_with_state(shared.clone(), super::exec::intercept);
    // So does the service proxy to a real backend: it streams bodies and splices upgrades.
    let proxy = axum::middleware::from_fn_with_state(shared.clone(), super::proxy::intercept);
    Router::new()
        .fallback(handle)
        .layer(exec)
        .layer(proxy)
        .with_state(shared)
}

pub(super) type Params = HashMap<String, String>;

pub(super) fn json_response(code: u16, v: &Value) -> Response {
    let mut r = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub(super) fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

pub(super) fn text_response(text: String) -> Response {
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// The resource a path names.
#[derive(Debug)]
pub(super) struct Target {
    pub rd: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    /// The legacy `/watch/` path prefix.
    pub watch_path: bool,
}

fn parse_target(path: &str) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, mut rest): (&str, &[&str]) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, v, rest @ ..] if *v == "v1" || resources::serves(g, v) => (g, rest),
        _ => return Err(ApiError::no_route()),
    };
    let watch_path = rest.first() == Some(&"watch");
    if watch_path {
        rest = &rest[1..];
    }
    let namespace_sub = group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    let (namespace, res, name, sub) = if rest.len() >= 3 && rest[0] == "namespaces" && !namespace_sub {
        if rest.len() > 5 {
            return Err(ApiError::no_route());
        }
        (Some(rest[1]), rest[2], rest.get(3).copied(), rest.get(4).copied())
    } else {
        if rest.is_empty() || rest.len() > 3 {
            return Err(ApiError::no_route());
        }
        (None, rest[0], rest.get(1).copied(), rest.get(2).copied())
    };
    let rd = resources::by_plural(group, res).ok_or_else(ApiError::no_route)?;
    if namespace.is_some() && !rd.namespaced {
        return Err(ApiError::no_route());
    }
    if namespace.is_none() && rd.namespaced && name.is_some() {
        return Err(ApiError::no_route());
    }
    if let Some(s) = sub
        && !rd.subresources.contains(&s)
    {
        return Err(ApiError::no_route());
    }
    if name.is_some_and(str::is_empty) || namespace.is_some_and(str::is_empty) {
        return Err(ApiError::no_route());
    }
    Ok(Target {
        rd,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        sub: sub.map(str::to_string),
        watch_path,
    })
}

/// (resource, namespace, name) of an object path, for the test handle's lookups.
pub fn object_path(path: &str) -> Option<(&'static ResourceDef, String, String)> {
    let t = parse_target(path).ok()?;
    Some((t.rd, t.namespace.unwrap_or_default(), t.name?))
}

pub(super) fn is_true(p: &Params, k: &str) -> bool {
    matches!(p.get(k).map(String::as_str), Some("1" | "true" | "True"))
}

fn dry_run(p: &Params) -> bool {
    p.get("dryRun").is_some_and(|v| v == "All")
}

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    who: Option<axum::Extension<Identity>>,
    body: Bytes,
) -> Response {
    let who = Identity::of(who.as_ref().map(|w| &w.0), &headers);
    let path = uri.path().to_string();
    let params: Result<Params, ApiError> = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|Query(v)| v.into_iter().collect())
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")));
    let proxy = proxy::proxy_target(&path);
    let target = parse_target(&path);
    // What RBAC would see (group, resource[/sub], verb), recorded for ClusterRole checks.
    let rbac = match (&proxy, &target, &params) {
        (Some(p), _, _) => Some((
            String::new(),
            format!("{}/proxy", p.resource),
            proxy::proxy_verb(&method).to_string(),
        )),
        (None, Ok(t), Ok(p)) => verb_of(&method, t, p).ok().map(|verb| {
            let resource = match &t.sub {
                Some(s) => format!("{}/{s}", t.rd.plural),
                None => t.rd.plural.to_string(),
            };
            (t.rd.group.to_string(), resource, verb.to_string())
        }),
        _ => None,
    };
    {
        let mut st = shared.lock();
        st.requests.push(Request {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().unwrap_or("").to_string(),
            rbac,
        });
        if let Some(f) = st.take_fault(method.as_str(), &path) {
            let message = format!("injected failure: {} {}", f.code, f.reason);
            return error_response(&ApiError::new(f.code, &f.reason, message));
        }
    }
    let params = match params {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    if let Some(p) = proxy {
        return match proxy::service_proxy(&shared, &method, &p, &who) {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
    }
    if method == Method::POST && path == rbac::SELF_SUBJECT_ACCESS_REVIEWS {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        let review = if protobuf::is_protobuf(ct) {
            protobuf::decode_object(&body, "authorization.k8s.io/v1", "SelfSubjectAccessReview", ct)
        } else {
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded: {e}")))
        };
        let review = review.and_then(|v| rbac::self_subject_access_review(&shared.lock(), &who, &v));
        let proto = protobuf::prefers_protobuf(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
        return match review {
            Ok(v) => answer(proto, 201, &v),
            Err(e) => answer(proto, e.code, &e.to_status()),
        };
    }
    if method == Method::GET && target.is_err() {
        let st = shared.lock();
        if st.rbac && !rbac::allows_path(&st, &who, "get", &path) {
            return error_response(&rbac::path_forbidden(&who, "get", &path));
        }
    }
    if method == Method::GET
        && let Some(r) = discovery(&shared, &path)
    {
        return r;
    }
    let target = match target {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    fv::take_warnings();
    let reply = dispatch(&shared, &who, &method, &headers, &body, &params, &target);
    let warnings = fv::take_warnings();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    // Custom resources have no protobuf form: their answers, errors included, stay JSON.
    let built_in = protobuf::has_form(&target.rd.api_version(), target.rd.kind);
    let proto = built_in && protobuf::prefers_protobuf(accept);
    let mut response = match reply {
        Ok(Reply::Json(code, v)) => answer(proto, code, &v),
        Ok(Reply::Text(t)) => text_response(t),
        Ok(Reply::Watch) => {
            let r = watch::watch(shared.clone(), &target, &params, wants_table(&headers));
            if built_in && protobuf::watch_in_protobuf(accept) {
                protobuf::watch_response(r)
            } else {
                r
            }
        }
        Err(e) => answer(proto, e.code, &e.to_status()),
    };
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&fv::warning_header(&w)) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

/// JSON, or protobuf when the client prefers it and the kind has a protobuf form.
fn answer(proto: bool, code: u16, v: &Value) -> Response {
    match proto.then(|| protobuf::encode_object(v)).flatten() {
        Some(bytes) => {
            let mut r = (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), bytes).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(protobuf::MEDIA_TYPE));
            r
        }
        None => json_response(code, v),
    }
}

fn discovery(shared: &Arc<Shared>, path: &str) -> Option<Response> {
    let p = path.trim_end_matches('/');
    let v = match p {
        "/version" => resources::version(),
        "/api" => resources::api_versions(&shared.lock().server_address),
        "/apis" => resources::api_group_list(),
        "/api/v1" => resources::api_resource_list("", "v1")?,
        "/healthz" | "/livez" | "/readyz" => return Some(text_response("ok".into())),
        "/openapi/v3" => resources::openapi_v3_root(),
        _ if p.starts_with("/openapi/v3/") => match resources::openapi_v3_group(&p["/openapi/v3/".len()..]) {
            Some(doc) => doc,
            None => return Some(error_response(&ApiError::no_route())),
        },
        // No OpenAPI v2: kubectl only falls back to it when v3 fails.
        _ if p.starts_with("/openapi/") => return Some(error_response(&ApiError::no_route())),
        _ => {
            let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            match segs.as_slice() {
                ["apis", g] => resources::api_group(g).unwrap_or_else(|| ApiError::no_route().to_status()),
                ["apis", g, v] => {
                    resources::api_resource_list(g, v).unwrap_or_else(|| ApiError::no_route().to_status())
                }
                _ => return None,
            }
        }
    };
    let code = if v.get("kind") == Some(&json!("Status")) {
        404
    } else {
        200
    };
    Some(json_response(code, &v))
}

enum Reply {
    Json(u16, Value),
    Text(String),
    Watch,
}

fn verb_of(method: &Method, t: &Target, params: &Params) -> Result<&'static str, ApiError> {
    Ok(match (method.as_str(), t.name.is_some()) {
        ("GET", false) if t.watch_path || is_true(params, "watch") => "watch",
        ("GET", false) => "list",
        ("GET", true) if t.watch_path => "watch",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({m})"
            )));
        }
    })
}

/// Serves one API request under the state's lock, with `who` as the caller the escalation
/// check of stored roles and bindings sees.
fn dispatch(
    shared: &Arc<Shared>,
    who: &Identity,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    params: &Params,
    t: &Target,
) -> Result<Reply, ApiError> {
    let mut st = shared.lock();
    st.caller = Some(who.clone());
    let reply = serve(&mut st, who, method, headers, body, params, t);
    st.caller = None;
    reply
}

fn serve(
    st: &mut State,
    who: &Identity,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    params: &Params,
    t: &Target,
) -> Result<Reply, ApiError> {
    let verb = verb_of(method, t, params)?;
    let rd = t.rd;
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let attrs = rbac::Attrs {
        verb,
        group: rd.group,
        resource: rd.plural,
        sub: t.sub.as_deref(),
        namespace: t.namespace.as_deref(),
        name: &name,
    };
    if st.denies(who, &attrs) {
        return Err(ApiError::rbac(
            &who.user,
            rd,
            t.sub.as_deref(),
            verb,
            t.namespace.as_deref(),
            &name,
        ));
    }
    let options_kind = match verb {
        "create" => "CreateOptions",
        "update" => "UpdateOptions",
        "patch" => "PatchOptions",
        _ => "",
    };
    if !options_kind.is_empty() {
        super::dry_run::requested(params, options_kind)?;
        fv::directive(params, options_kind)?;
    }
    match verb {
        "get" => {
            let obj = st
                .get(rd, &ns, &name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(rd, &name))?;
            match t.sub.as_deref() {
                Some("log") => Ok(Reply::Text(logs::pod_logs(st, &obj, params)?)),
                Some("scale") => Ok(Reply::Json(200, scale_of(&obj))),
                _ if wants_table(headers) => Ok(Reply::Json(200, table::table(rd, &[obj], st.current_rv()))),
                _ => Ok(Reply::Json(200, obj)),
            }
        }
        "list" => {
            let items = select(st, rd, t.namespace.as_deref(), params)?;
            let rv = st.current_rv();
            if wants_table(headers) {
                return Ok(Reply::Json(200, table::table(rd, &items, rv)));
            }
            Ok(Reply::Json(200, list_json(rd, items, rv)))
        }
        "watch" => {
            // Selectors are checked here so a bad one is a 400, not a broken stream.
            selectors(params)?;
            Ok(Reply::Watch)
        }
        "create" => {
            if rd.namespaced && t.namespace.is_none() {
                return Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ));
            }
            let (obj, dups) = parse_body_dups(body, headers, body_kind(t))?;
            let mut obj = check_body(rd, obj, &ns, None)?;
            fv::enforce(
                rd,
                &mut obj,
                &dups,
                fv::directive(params, options_kind)?,
                Wording::Decode,
            )?;
            managed_fields::record_create(
                &mut obj,
                &managed_fields::manager_of(params, headers),
                &rd.api_version(),
            );
            let created = create(st, rd, obj, dry_run(params))?;
            Ok(Reply::Json(201, created))
        }
        "update" => {
            let (new, dups) = parse_body_dups(body, headers, body_kind(t))?;
            let manager = managed_fields::manager_of(params, headers);
            let old = st
                .get(rd, &ns, &name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(rd, &name))?;
            let updated = match t.sub.as_deref() {
                Some("scale") => {
                    let replicas = util::i64_at(&new, "spec.replicas").unwrap_or(0);
                    check_rv(rd, &name, &old, &new)?;
                    let mut o = old.clone();
                    util::set_path(&mut o, "spec.replicas", json!(replicas));
                    let owner = Some((manager.as_str(), Some("scale")));
                    let saved = update(st, rd, &old, o, false, dry_run(params), owner)?;
                    return Ok(Reply::Json(200, scale_of(&saved)));
                }
                Some("status") => {
                    let new = check_body(rd, new, &ns, Some(&name))?;
                    check_rv(rd, &name, &old, &new)?;
                    update(st, rd, &old, new, true, dry_run(params), None)?
                }
                _ => {
                    let mut new = check_body(rd, new, &ns, Some(&name))?;
                    check_rv(rd, &name, &old, &new)?;
                    fv::enforce(
                        rd,
                        &mut new,
                        &dups,
                        fv::directive(params, options_kind)?,
                        Wording::Decode,
                    )?;
                    let owner = Some((manager.as_str(), None));
                    update(st, rd, &old, new, false, dry_run(params), owner)?
                }
            };
            Ok(Reply::Json(200, updated))
        }
        "patch" => patch_object(st, who, rd, t, headers, body, params),
        "delete" => {
            let opts = delete_options(body, headers);
            let dry = super::dry_run::requested_delete(params, &opts)?;
            let old = st
                .get(rd, &ns, &name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(rd, &name))?;
            if let Some(want) = util::path(&opts, "preconditions.resourceVersion").and_then(Value::as_str)
                && want != util::str_at(&old, "metadata.resourceVersion")
            {
                return Err(ApiError::conflict(
                    rd,
                    &name,
                    &format!(
                        "the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({}). The object might have been modified",
                        util::str_at(&old, "metadata.resourceVersion")
                    ),
                ));
            }
            if let Some(want) = util::path(&opts, "preconditions.uid").and_then(Value::as_str)
                && want != util::str_at(&old, "metadata.uid")
            {
                return Err(ApiError::conflict(
                    rd,
                    &name,
                    &format!(
                        "the UID in the precondition ({want}) does not match the UID in record ({}). The object might have been modified",
                        util::str_at(&old, "metadata.uid")
                    ),
                ));
            }
            let policy = params
                .get("propagationPolicy")
                .cloned()
                .or_else(|| {
                    opts.get("propagationPolicy")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            delete(st, rd, old, &policy, dry).map(|v| Reply::Json(200, v))
        }
        "deletecollection" => {
            let opts = delete_options(body, headers);
            let dry = super::dry_run::requested_delete(params, &opts)?;
            let items = select(st, rd, t.namespace.as_deref(), params)?;
            let rv = st.current_rv();
            let mut deleted = Vec::new();
            for obj in items {
                if !dry {
                    let (ons, oname) = store::ns_name(&obj);
                    st.delete(rd, &ons, &oname);
                }
                deleted.push(obj);
            }
            Ok(Reply::Json(200, list_json(rd, deleted, rv)))
        }
        _ => Err(ApiError::no_route()),
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

pub(super) fn selectors(params: &Params) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let l = LabelSelector::parse(params.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let f = FieldSelector::parse(params.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((l, f))
}

fn select(st: &State, rd: &ResourceDef, ns: Option<&str>, params: &Params) -> Result<Vec<Value>, ApiError> {
    let (l, f) = selectors(params)?;
    Ok(st
        .list(rd, ns)
        .into_iter()
        .filter(|o| l.matches_object(o) && f.matches(o))
        .collect())
}

pub fn list_json(rd: &ResourceDef, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", rd.kind),
        "apiVersion": rd.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

/// The autoscaling/v1 Scale view of a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = util::path(obj, "spec.selector")
        .map(LabelSelector::from_object)
        .unwrap_or_default()
        .to_query();
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let keep = ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"];
    let meta: serde_json::Map<String, Value> = meta
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": util::i64_at(obj, "spec.replicas").unwrap_or(0)},
        "status": {"replicas": util::i64_at(obj, "status.replicas").unwrap_or(0), "selector": selector},
    })
}

/// (apiVersion, kind) a create or update body must be: the Scale view for `/scale`.
fn body_kind(t: &Target) -> (String, &'static str) {
    match t.sub.as_deref() {
        Some("scale") => ("autoscaling/v1".into(), "Scale"),
        _ => (t.rd.api_version(), t.rd.kind),
    }
}

/// DeleteOptions from a delete's body (JSON, or protobuf from client-go); none is Null.
fn delete_options(body: &Bytes, headers: &HeaderMap) -> Value {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if protobuf::is_protobuf(ct) {
        return protobuf::decode_options(body).unwrap_or(Value::Null);
    }
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// The body and the paths of its duplicate JSON keys (for field validation). Bodies are JSON;
/// YAML is accepted as well (apply-patch is nominally YAML), and protobuf for built-in kinds
/// (`expect`: the apiVersion and kind the URL names).
fn parse_body_dups(
    body: &Bytes,
    headers: &HeaderMap,
    expect: (String, &str),
) -> Result<(Value, Vec<String>), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if protobuf::is_protobuf(ct) {
        return protobuf::decode_object(body, &expect.0, expect.1, ct).map(|v| (v, Vec::new()));
    }
    if ct.contains("protobuf") {
        return Err(ApiError::unsupported_media_type(ct));
    }
    match fv::parse_json(body) {
        Ok(v) => Ok(v),
        Err(json_err) => yaml_serde::from_slice::<Value>(body)
            .map(|v| (v, Vec::new()))
            .map_err(|_| ApiError::bad_request(format!("the body of the request could not be decoded: {json_err}"))),
    }
}

/// Checks apiVersion/kind/namespace/name of a body against the URL, and fills them in.
fn check_body(rd: &ResourceDef, mut obj: Value, ns: &str, name: Option<&str>) -> Result<Value, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    let av = util::str_at(&obj, "apiVersion").to_string();
    if !av.is_empty() && av != rd.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rd.api_version()
        )));
    }
    let kind = util::str_at(&obj, "kind").to_string();
    if !kind.is_empty() && kind != rd.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rd.kind
        )));
    }
    let body_ns = util::str_at(&obj, "metadata.namespace").to_string();
    if rd.namespaced {
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        admission::ensure_metadata(&mut obj).insert("namespace".into(), json!(ns));
    }
    if let Some(name) = name {
        let body_name = util::str_at(&obj, "metadata.name").to_string();
        if body_name.is_empty() {
            admission::ensure_metadata(&mut obj).insert("name".into(), json!(name));
        } else if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    Ok(obj)
}

fn check_rv(rd: &ResourceDef, name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    let want = util::str_at(new, "metadata.resourceVersion");
    if !want.is_empty() && want != util::str_at(old, "metadata.resourceVersion") {
        return Err(ApiError::stale(rd, name));
    }
    Ok(())
}

/// Create through admission; shared by POST and server-side apply of a new object.
pub fn create(st: &mut State, rd: &ResourceDef, mut obj: Value, dry_run: bool) -> Result<Value, ApiError> {
    // Field ownership is computed by the caller (managed_fields.rs); the rest is the server's.
    let managed = util::path(&obj, "metadata.managedFields").cloned();
    admission::strip_system_fields(&mut obj);
    let mut obj = admission::prepare_create(st, rd, obj)?;
    super::rbac_escalation::check(st, rd, &obj)?;
    if let Some(m) = managed {
        util::set_path(&mut obj, "metadata.managedFields", m);
    }
    let (ns, name) = store::ns_name(&obj);
    if st.get(rd, &ns, &name).is_some() {
        return Err(ApiError::already_exists(rd, &name));
    }
    if dry_run {
        return Ok(obj);
    }
    Ok(st.create(rd, obj))
}

/// Update through admission; `owner` (field manager, subresource) takes ownership of the
/// fields the update changes (managed_fields.rs).
fn update(
    st: &mut State,
    rd: &ResourceDef,
    old: &Value,
    new: Value,
    status_only: bool,
    dry_run: bool,
    owner: Option<(&str, Option<&str>)>,
) -> Result<Value, ApiError> {
    let mut obj = admission::prepare_update(rd, old, new, status_only)?;
    super::rbac_escalation::check(st, rd, &obj)?;
    if let Some((manager, sub)) = owner {
        managed_fields::record_update(old, &mut obj, manager, &rd.api_version(), sub);
    }
    if dry_run {
        return Ok(obj);
    }
    Ok(st.update(rd, obj))
}

fn delete(st: &mut State, rd: &ResourceDef, old: Value, policy: &str, dry_run: bool) -> Result<Value, ApiError> {
    let (ns, name) = store::ns_name(&old);
    if rd.kind == "Namespace" {
        if matches!(name.as_str(), "default" | "kube-system" | "kube-public") {
            return Err(ApiError::forbidden(rd, &name, "this namespace may not be deleted"));
        }
        if util::path(&old, "metadata.deletionTimestamp").is_some() {
            return Err(ApiError::conflict(
                rd,
                &name,
                "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
            ));
        }
        let mut o = old.clone();
        util::set_path(&mut o, "metadata.deletionTimestamp", json!(util::fmt_time(util::now())));
        util::set_path(&mut o, "status.phase", json!("Terminating"));
        if dry_run {
            return Ok(o);
        }
        // The namespace controller (controllers.rs) empties and removes it a step later.
        return Ok(st.update(rd, o));
    }
    if dry_run {
        // The answer the real delete would give, with nothing removed.
        if rd.kind == "Pod" {
            return Ok(old);
        }
        return Ok(status::success_status(rd, &name, util::str_at(&old, "metadata.uid")));
    }
    if policy == "Orphan" {
        let uid = util::str_at(&old, "metadata.uid").to_string();
        for (drd, mut dep) in st.all_objects() {
            let Some(refs) = util::path(&dep, "metadata.ownerReferences")
                .and_then(Value::as_array)
                .cloned()
            else {
                continue;
            };
            if refs.iter().any(|r| util::str_at(r, "uid") == uid) {
                let kept: Vec<Value> = refs.into_iter().filter(|r| util::str_at(r, "uid") != uid).collect();
                util::set_path(&mut dep, "metadata.ownerReferences", json!(kept));
                st.update(drd, dep);
            }
        }
    }
    // Dependents (ReplicaSets of a Deployment, pods of a ReplicaSet or Job) are removed by the
    // garbage collector on its next pass, as in a real cluster.
    let gone = st.delete(rd, &ns, &name).unwrap_or(old);
    if rd.kind == "Pod" {
        return Ok(gone);
    }
    Ok(status::success_status(rd, &name, util::str_at(&gone, "metadata.uid")))
}

fn patch_object(
    st: &mut State,
    who: &Identity,
    rd: &'static ResourceDef,
    t: &Target,
    headers: &HeaderMap,
    body: &Bytes,
    params: &Params,
) -> Result<Reply, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    if ct.contains("protobuf") {
        return Err(ApiError::unsupported_media_type(&ct));
    }
    let (patch_body, dups) = parse_body_dups(body, headers, (rd.api_version(), rd.kind))?;
    let dry = dry_run(params);
    let directive = fv::directive(params, "PatchOptions")?;
    let old = st.get(rd, &ns, &name).cloned();

    // An apply that creates the object is authorized a second time, as `create`
    // (apiserver endpoints/handlers/patch.go): `patch` alone cannot make new objects.
    if ct == "application/apply-patch+yaml" && old.is_none() {
        st.also_checked
            .insert((rd.group.to_string(), rd.plural.to_string(), "create".to_string()));
        let create = rbac::Attrs {
            verb: "create",
            group: rd.group,
            resource: rd.plural,
            sub: None,
            namespace: t.namespace.as_deref(),
            name: &name,
        };
        if st.denies(who, &create) {
            return Err(ApiError::rbac(
                &who.user,
                rd,
                None,
                "create",
                t.namespace.as_deref(),
                &name,
            ));
        }
    }
    if ct == "application/apply-patch+yaml" {
        let manager = params.get("fieldManager").cloned().unwrap_or_default();
        if manager.is_empty() {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        if t.sub.is_some() {
            return apply_subresource(st, rd, t, old, patch_body, dry);
        }
        let mut applied = check_body(rd, patch_body, &ns, Some(&name))?;
        if util::str_at(&applied, "apiVersion").is_empty() || util::str_at(&applied, "kind").is_empty() {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an apply patch",
            ));
        }
        fv::enforce_apply(rd, &applied, &ns, &name, &dups, directive)?;
        let force = is_true(params, "force");
        let Some(old) = old else {
            admission::strip_system_fields(&mut applied);
            let mut obj = applied.clone();
            managed_fields::record_apply(None, &mut obj, &applied, &manager, &rd.api_version(), force)?;
            let created = create(st, rd, obj, dry)?;
            return Ok(Reply::Json(201, created));
        };
        check_rv(rd, &name, &old, &applied)?;
        admission::strip_system_fields(&mut applied);
        let mut merged = old.clone();
        patch::strategic_merge(&mut merged, &applied);
        managed_fields::record_apply(Some(&old), &mut merged, &applied, &manager, &rd.api_version(), force)?;
        let saved = update(st, rd, &old, merged, false, dry, None)?;
        return Ok(Reply::Json(200, saved));
    }

    let old = old.ok_or_else(|| ApiError::not_found(rd, &name))?;
    let manager = managed_fields::manager_of(params, headers);
    let apply = |target: &mut Value| -> Result<(), ApiError> {
        match ct.as_str() {
            "application/merge-patch+json" => {
                patch::merge_patch(target, &patch_body);
                Ok(())
            }
            "application/strategic-merge-patch+json" => {
                patch::strategic_merge(target, &patch_body);
                Ok(())
            }
            "application/json-patch+json" => {
                patch::json_patch(target, &patch_body).map_err(|e| ApiError::new(422, "Invalid", e))
            }
            other => Err(ApiError::unsupported_media_type(other)),
        }
    };
    match t.sub.as_deref() {
        Some("scale") => {
            let mut scale = scale_of(&old);
            apply(&mut scale)?;
            check_rv(rd, &name, &old, &scale)?;
            let mut o = old.clone();
            util::set_path(
                &mut o,
                "spec.replicas",
                json!(util::i64_at(&scale, "spec.replicas").unwrap_or(0)),
            );
            let saved = update(st, rd, &old, o, false, dry, Some((&manager, Some("scale"))))?;
            Ok(Reply::Json(200, scale_of(&saved)))
        }
        Some("status") => {
            let mut o = old.clone();
            apply(&mut o)?;
            check_rv(rd, &name, &old, &o)?;
            Ok(Reply::Json(200, update(st, rd, &old, o, true, dry, None)?))
        }
        Some(_) => Err(ApiError::method_not_allowed("this subresource cannot be patched")),
        None => {
            let mut o = old.clone();
            apply(&mut o)?;
            // A resourceVersion in the patch is a precondition.
            if util::str_at(&o, "metadata.resourceVersion") != util::str_at(&old, "metadata.resourceVersion") {
                return Err(ApiError::stale(rd, &name));
            }
            let mut o = check_body(rd, o, &ns, Some(&name))?;
            fv::enforce(rd, &mut o, &dups, directive, Wording::Patch)?;
            Ok(Reply::Json(
                200,
                update(st, rd, &old, o, false, dry, Some((&manager, None)))?,
            ))
        }
    }
}

/// Server-side apply to /scale or /status.
fn apply_subresource(
    st: &mut State,
    rd: &ResourceDef,
    t: &Target,
    old: Option<Value>,
    body: Value,
    dry: bool,
) -> Result<Reply, ApiError> {
    let name = t.name.clone().unwrap_or_default();
    let old = old.ok_or_else(|| ApiError::not_found(rd, &name))?;
    if t.sub.as_deref() == Some("scale") {
        let mut o = old.clone();
        if let Some(r) = util::i64_at(&body, "spec.replicas") {
            util::set_path(&mut o, "spec.replicas", json!(r));
        }
        let saved = update(st, rd, &old, o, false, dry, None)?;
        return Ok(Reply::Json(200, scale_of(&saved)));
    }
    let mut o = old.clone();
    if let Some(s) = body.get("status") {
        let mut merged_status = old.get("status").cloned().unwrap_or(json!({}));
        patch::strategic_merge(&mut merged_status, s);
        util::set_path(&mut o, "status", merged_status);
    }
    Ok(Reply::Json(200, update(st, rd, &old, o, true, dry, None)?))
}
