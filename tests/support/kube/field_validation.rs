//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`), as a real API server
//! does it since 1.27 (Warn is the default, kubectl sends Strict): unknown and duplicate
//! fields in a request body are refused, warned about (`Warning: 299 - "unknown field ..."`)
//! or dropped silently. Without this a misspelled field in one of deckhand's `json!` objects
//! would pass every test and be dropped or refused by a real cluster.
//!
//! Which fields exist is decided by the k8s-openapi types: the body is deserialized into the
//! kind's type and serialized back, and whatever the input had that the round trip lost is
//! unknown. Custom kinds are checked against the schema of their CRD (crd.rs), and kinds
//! registered without one are preserved, as a CRD with `x-kubernetes-preserve-unknown-fields`
//! would be. Server-side apply is stricter still: a real
//! server refuses unknown fields in an apply patch whatever the directive (structured-merge-diff
//! cannot type the patch), with a 500 whose message names the field
//! (kubernetes/kubernetes#122480).

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::api::Params;
use super::resources::ResourceDef;
use super::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Strict,
    Warn,
    Ignore,
}

thread_local! {
    /// Warnings of the request being handled: requests are handled synchronously on one
    /// thread between `take_warnings` calls, so no other request can interleave.
    static WARNINGS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Queues a `Warning: 299` response header for the current request.
pub fn warn(text: String) {
    WARNINGS.with(|w| w.borrow_mut().push(text));
}

/// The warnings queued since the last call (the HTTP layer turns them into headers).
pub fn take_warnings() -> Vec<String> {
    WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

/// The `Warning` header value for one warning text (RFC 7234 warn-code 299, agent `-`).
pub fn warning_header(text: &str) -> String {
    format!("299 - \"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The request's directive; an unknown value is the real 422 on the options object.
pub fn directive(params: &Params, options_kind: &str) -> Result<Directive, ApiError> {
    match params.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Ok(Directive::Warn),
        Some("Strict") => Ok(Directive::Strict),
        Some("Ignore") => Ok(Directive::Ignore),
        Some(other) => Err(options_invalid(
            options_kind,
            "fieldValidation",
            &format!("{other:?}"),
            r#""", "Ignore", "Strict", "Warn""#,
        )),
    }
}

/// `CreateOptions.meta.k8s.io "" is invalid: FIELD: Unsupported value: ...` (422), as the
/// handlers answer options that fail validation.
pub fn options_invalid(options_kind: &str, field: &str, value: &str, supported: &str) -> ApiError {
    let body = format!("Unsupported value: {value}: supported values: {supported}");
    let mut e = ApiError::new(
        422,
        "Invalid",
        format!("{options_kind}.meta.k8s.io \"\" is invalid: {field}: {body}"),
    );
    e.details = Some(serde_json::json!({
        "group": "meta.k8s.io",
        "kind": options_kind,
        "causes": [{"reason": "FieldValueNotSupported", "message": body, "field": field}],
    }));
    e
}

// ---- duplicate keys --------------------------------------------------------------------------

/// Builds a Value like serde_json does (the last of duplicate keys wins) and records the path
/// of every duplicate key, in the decoder's `spec.template.spec.containers[0].name` form.
struct Seed<'a> {
    path: String,
    dups: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let seed = Seed {
                path: format!("{}[{}]", self.path, out.len()),
                dups: self.dups,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if out.contains_key(&key) {
                self.dups.borrow_mut().push(path.clone());
            }
            let v = map.next_value_seed(Seed { path, dups: self.dups })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses a JSON body; Err when it is not JSON. Ok holds the value and the duplicate paths.
pub fn parse_json(body: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    let dups = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = Seed {
        path: String::new(),
        dups: &dups,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((v, dups.into_inner()))
}

// ---- unknown fields --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Idx(usize),
}

/// `spec.template.spec.containers[0].bogus`, the decoder's form.
pub fn decoder_path(p: &[Seg]) -> String {
    let mut s = String::new();
    for seg in p {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Idx(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// `.spec.template.spec.containers[name="web"].bogus`, structured-merge-diff's form (list
/// items by their merge key when they have one).
pub fn smd_path(obj: &Value, p: &[Seg]) -> String {
    let mut s = String::new();
    let mut cur = Some(obj);
    let mut last_key = "";
    for seg in p {
        match seg {
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
                cur = cur.and_then(|c| c.get(k));
                last_key = k;
            }
            Seg::Idx(i) => {
                let item = cur.and_then(|c| c.get(*i));
                let mk = item.and_then(|it| super::patch::merge_key(last_key, Some(it)));
                match (mk, item.and_then(|it| mk.and_then(|k| it.get(k)))) {
                    (Some(k), Some(id)) => s.push_str(&format!("[{k}={id}]")),
                    _ => s.push_str(&format!("[{i}]")),
                }
                cur = item;
            }
        }
    }
    s
}

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> Option<Value> {
    let typed: T = serde_json::from_value(v.clone()).ok()?;
    serde_json::to_value(typed).ok()
}

/// The body as its k8s-openapi type sees it, or None for kinds without one here (custom kinds)
/// or bodies the type cannot read (the real decoder's type errors are not modelled).
fn typed_view(rd: &ResourceDef, obj: &Value) -> Option<Value> {
    use k8s_openapi::api::{apps, batch, core, networking, rbac};
    let mut v = obj.clone();
    let m = v.as_object_mut()?;
    m.insert("apiVersion".into(), Value::String(rd.api_version()));
    m.insert("kind".into(), Value::String(rd.kind.to_string()));
    match (rd.group, rd.kind) {
        ("", "Namespace") => roundtrip::<core::v1::Namespace>(&v),
        ("", "Pod") => roundtrip::<core::v1::Pod>(&v),
        ("", "Service") => roundtrip::<core::v1::Service>(&v),
        ("", "Secret") => roundtrip::<core::v1::Secret>(&v),
        ("", "ServiceAccount") => roundtrip::<core::v1::ServiceAccount>(&v),
        ("", "ResourceQuota") => roundtrip::<core::v1::ResourceQuota>(&v),
        ("", "LimitRange") => roundtrip::<core::v1::LimitRange>(&v),
        ("", "Event") => roundtrip::<core::v1::Event>(&v),
        ("", "ConfigMap") => roundtrip::<core::v1::ConfigMap>(&v),
        ("apps", "Deployment") => roundtrip::<apps::v1::Deployment>(&v),
        ("apps", "ReplicaSet") => roundtrip::<apps::v1::ReplicaSet>(&v),
        ("batch", "Job") => roundtrip::<batch::v1::Job>(&v),
        ("networking.k8s.io", "NetworkPolicy") => roundtrip::<networking::v1::NetworkPolicy>(&v),
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<rbac::v1::Role>(&v),
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip::<rbac::v1::RoleBinding>(&v),
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip::<rbac::v1::ClusterRole>(&v),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => roundtrip::<rbac::v1::ClusterRoleBinding>(&v),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => roundtrip::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(&v),
        _ => None,
    }
}

/// Whether losing `v` in the round trip is legitimate (empty and null values are omitted).
fn vanishes(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(vanishes),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn diff(input: &Value, out: Option<&Value>, path: &mut Vec<Seg>, found: &mut Vec<Vec<Seg>>) {
    match input {
        Value::Object(m) => {
            for (k, v) in m {
                path.push(Seg::Key(k.clone()));
                match out.and_then(|o| o.get(k)) {
                    Some(o) => diff(v, Some(o), path, found),
                    None if vanishes(v) => {}
                    // A lost object may still hold known fields only (it vanished because
                    // everything in it was empty); look inside before blaming it.
                    None if v.is_object() && out.is_some_and(Value::is_object) => diff(v, None, path, found),
                    None => found.push(path.clone()),
                }
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Idx(i));
                diff(v, out.and_then(|o| o.get(i)), path, found);
                path.pop();
            }
        }
        _ => {
            if out.is_none() && !input.is_null() && !path.is_empty() {
                found.push(path.clone());
            }
        }
    }
}

/// The fields of `obj` its kind does not declare (empty for kinds without a schema here).
pub fn unknown_fields(rd: &ResourceDef, obj: &Value) -> Vec<Vec<Seg>> {
    let Some(typed) = typed_view(rd, obj) else {
        return super::crd::undeclared(rd, obj);
    };
    let mut found = Vec::new();
    diff(obj, Some(&typed), &mut Vec::new(), &mut found);
    found
}

fn remove(obj: &mut Value, p: &[Seg]) {
    let Some((last, parent)) = p.split_last() else { return };
    let mut cur = obj;
    for seg in parent {
        let next = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str()),
            Seg::Idx(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let (Seg::Key(k), Some(m)) = (last, cur.as_object_mut()) {
        m.remove(k);
    }
}

/// How the refusal is worded: create and update decode the body (`Deployment in version "v1"
/// cannot be handled as a Deployment: strict decoding error: ...`), patches only report the
/// strict decoding error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    Decode,
    Patch,
}

/// Applies the directive to a create/update/patch body: Strict refuses unknown or duplicate
/// fields (400), Warn drops them with a warning each, Ignore drops them.
pub fn enforce(
    rd: &ResourceDef,
    obj: &mut Value,
    dups: &[String],
    d: Directive,
    wording: Wording,
) -> Result<(), ApiError> {
    let unknown = unknown_fields(rd, obj);
    let mut problems: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{}\"", decoder_path(p)))
        .collect();
    problems.extend(dups.iter().map(|p| format!("duplicate field \"{p}\"")));
    if problems.is_empty() {
        return Ok(());
    }
    match d {
        Directive::Strict => {
            let strict = format!("strict decoding error: {}", problems.join(", "));
            let message = match wording {
                Wording::Decode => format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: {strict}",
                    kind = rd.kind,
                    v = rd.version
                ),
                Wording::Patch => strict,
            };
            return Err(ApiError::bad_request(message));
        }
        Directive::Warn => problems.into_iter().for_each(warn),
        Directive::Ignore => {}
    }
    for p in unknown.iter().rev() {
        remove(obj, p);
    }
    Ok(())
}

/// Server-side apply: unknown fields are refused whatever the directive (the real 500 of
/// structured-merge-diff's typed conversion); duplicates follow the directive.
pub fn enforce_apply(
    rd: &ResourceDef,
    obj: &Value,
    ns: &str,
    name: &str,
    dups: &[String],
    d: Directive,
) -> Result<(), ApiError> {
    let unknown = unknown_fields(rd, obj);
    if !unknown.is_empty() {
        let errs: Vec<String> = unknown
            .iter()
            .map(|p| format!("{}: field not declared in schema", smd_path(obj, p)))
            .collect();
        let group_version = if rd.group.is_empty() {
            format!("/{}", rd.version)
        } else {
            rd.api_version()
        };
        return Err(ApiError::new(
            500,
            "",
            format!(
                "failed to create typed patch object ({ns}/{name}; {group_version}, Kind={}): {}",
                rd.kind,
                errs.join(", ")
            ),
        ));
    }
    if dups.is_empty() {
        return Ok(());
    }
    let problems: Vec<String> = dups.iter().map(|p| format!("duplicate field \"{p}\"")).collect();
    match d {
        Directive::Strict => Err(ApiError::bad_request(format!(
            "error strict decoding YAML: {}",
            problems.join(", ")
        ))),
        Directive::Warn => {
            problems.into_iter().for_each(warn);
            Ok(())
        }
        Directive::Ignore => Ok(()),
    }
}
