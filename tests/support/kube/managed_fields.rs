//! Field ownership (`metadata.managedFields`) as server-side apply keeps it: one entry per
//! manager and operation (Apply or Update, plus the subresource), each holding the set of
//! fields it owns in the real `FieldsV1` form (`{"f:spec":{"f:replicas":{}}}`, list items by
//! merge key as `k:{"name":"web"}`, `"."` for an item or map that is itself owned).
//!
//! What the product relies on and a lenient fake would hide:
//! - an apply that changes a field another manager set (by apply or update) is refused with
//!   409 Conflict naming each manager and field, unless `force=true` takes them over;
//! - applying the value another manager already set shares the field (no conflict);
//! - an update (PUT/PATCH/create) takes the fields it changes from everyone else;
//! - an applier that stops applying a field removes it, unless someone else also owns it.
//!
//! Fields are compared by value at leaves only; list items are keyed by the strategic merge
//! keys patch.rs knows, other lists are atomic. Status is not tracked.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::status::ApiError;
use super::util;

/// One step of a field path: a field name, or a list item by (merge key, key value as JSON).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pe {
    F(String),
    K(String, String),
}

pub type FieldPath = Vec<Pe>;
pub type FieldSet = BTreeSet<FieldPath>;

/// Metadata the server owns; never part of anyone's field set.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Maps whose keys are owned one by one and which are owned themselves (`"."`).
fn is_granular_map(key: &str, v: &Value) -> bool {
    match key {
        "labels" | "annotations" | "data" | "stringData" | "binaryData" | "matchLabels" | "nodeSelector" | "limits"
        | "requests" => true,
        // A Service's selector is a map; a Deployment's is a LabelSelector struct.
        "selector" => v.get("matchLabels").is_none() && v.get("matchExpressions").is_none(),
        _ => false,
    }
}

fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    for (k, x) in m {
        if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "status") {
            continue;
        }
        if path.len() == 1 && path[0] == Pe::F("metadata".into()) && SYSTEM_METADATA.contains(&k.as_str()) {
            continue;
        }
        if x.is_null() {
            continue;
        }
        path.push(Pe::F(k.clone()));
        match x {
            Value::Object(inner) => {
                if inner.is_empty() || is_granular_map(k, x) {
                    out.insert(path.clone());
                }
                walk(x, path, out);
            }
            Value::Array(items) => {
                let mk = super::patch::merge_key(k, items.first())
                    .filter(|mk| !items.is_empty() && items.iter().all(|i| i.get(*mk).is_some()));
                match mk {
                    Some(mk) => {
                        for item in items {
                            let id = item.get(mk).map(Value::to_string).unwrap_or_default();
                            path.push(Pe::K(mk.to_string(), id));
                            out.insert(path.clone());
                            walk(item, path, out);
                            path.pop();
                        }
                    }
                    None => {
                        out.insert(path.clone());
                    }
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
        path.pop();
    }
}

/// Every field an object (or an apply patch) sets.
pub fn fields_of(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The value at a field path.
pub fn get<'a>(v: &'a Value, p: &[Pe]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in p {
        cur = match pe {
            Pe::F(k) => cur.get(k.as_str())?,
            Pe::K(mk, id) => cur
                .as_array()?
                .iter()
                .find(|i| i.get(mk.as_str()).map(Value::to_string).as_deref() == Some(id.as_str()))?,
        };
    }
    Some(cur)
}

/// Whether the value at a path is a leaf whose value can conflict (not an owned item or map
/// whose contents are owned field by field).
fn is_leaf(v: &Value) -> bool {
    v.as_object().is_none_or(Map::is_empty)
}

fn remove_at(v: &mut Value, p: &[Pe]) {
    let Some((last, parent)) = p.split_last() else { return };
    let mut cur = v;
    for pe in parent {
        let next = match pe {
            Pe::F(k) => cur.get_mut(k.as_str()),
            Pe::K(mk, id) => cur.as_array_mut().and_then(|a| {
                a.iter_mut()
                    .find(|i| i.get(mk.as_str()).map(Value::to_string).as_deref() == Some(id.as_str()))
            }),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        Pe::F(k) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(k);
            }
        }
        Pe::K(mk, id) => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| i.get(mk.as_str()).map(Value::to_string).as_deref() != Some(id.as_str()));
            }
        }
    }
}

/// `.spec.template.spec.containers[name="web"].image`, as conflicts name fields.
pub fn path_string(p: &[Pe]) -> String {
    p.iter()
        .map(|pe| match pe {
            Pe::F(k) => format!(".{k}"),
            Pe::K(mk, id) => format!("[{mk}={id}]"),
        })
        .collect()
}

// ---- FieldsV1 --------------------------------------------------------------------------------

fn pe_key(pe: &Pe) -> String {
    match pe {
        Pe::F(k) => format!("f:{k}"),
        Pe::K(mk, id) => format!("k:{{{}:{id}}}", Value::String(mk.clone())),
    }
}

fn child(m: &mut Map<String, Value>, k: String) -> &mut Map<String, Value> {
    let e = m.entry(k).or_insert_with(|| Value::Object(Map::new()));
    if !e.is_object() {
        *e = Value::Object(Map::new());
    }
    e.as_object_mut().expect("just made an object")
}

/// The `fieldsV1` object of a field set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in set {
        let mut node = &mut root;
        for pe in p {
            node = child(node, pe_key(pe));
        }
    }
    // An owned item or map that also has owned contents says so with ".".
    for p in set {
        let mut node = &mut root;
        for pe in p {
            node = child(node, pe_key(pe));
        }
        if !node.is_empty() {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

fn parse_node(m: &Map<String, Value>, path: &mut FieldPath, out: &mut FieldSet) {
    if m.is_empty() && !path.is_empty() {
        out.insert(path.clone());
        return;
    }
    for (k, v) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        let pe = if let Some(f) = k.strip_prefix("f:") {
            Pe::F(f.to_string())
        } else if let Some(key) = k.strip_prefix("k:") {
            let Some((mk, id)) = serde_json::from_str::<Map<String, Value>>(key)
                .ok()
                .and_then(|o| o.into_iter().next())
            else {
                continue;
            };
            Pe::K(mk, id.to_string())
        } else {
            continue;
        };
        path.push(pe);
        if let Some(inner) = v.as_object() {
            parse_node(inner, path, out);
        }
        path.pop();
    }
}

/// The field set of a `fieldsV1` object.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(m) = v.as_object() {
        parse_node(m, &mut Vec::new(), &mut out);
    }
    out
}

// ---- entries ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == subresource
    }

    /// How a conflict names this manager: appliers by name, updaters with their apiVersion.
    fn printed(&self) -> String {
        if self.operation == "Update" {
            format!("{:?} using {}", self.manager, self.api_version)
        } else {
            format!("{:?}", self.manager)
        }
    }

    fn to_json(&self) -> Value {
        let mut e = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&self.fields),
        });
        if let Some(s) = &self.subresource {
            e["subresource"] = json!(s);
        }
        e
    }
}

pub fn entries(obj: &Value) -> Vec<Entry> {
    util::path(obj, "metadata.managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: util::str_at(e, "manager").to_string(),
            operation: util::str_at(e, "operation").to_string(),
            api_version: util::str_at(e, "apiVersion").to_string(),
            time: util::str_at(e, "time").to_string(),
            subresource: e.get("subresource").and_then(Value::as_str).map(str::to_string),
            fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
        })
        .collect()
}

fn store(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_json)
        .collect();
    util::set_path(obj, "metadata.managedFields", Value::Array(list));
}

fn now() -> String {
    util::fmt_time(util::now())
}

/// The manager a request acts as: `fieldManager`, else the User-Agent's product name, as the
/// real server derives it.
pub fn manager_of(params: &super::api::Params, headers: &axum::http::HeaderMap) -> String {
    if let Some(m) = params.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    let ua = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match ua.split('/').next().unwrap_or("") {
        "" => "unknown".to_string(),
        name => name.to_string(),
    }
}

/// A create by `manager`: it owns every field it sent.
pub fn record_create(obj: &mut Value, manager: &str, api_version: &str) {
    let e = Entry {
        manager: manager.to_string(),
        operation: "Update".into(),
        api_version: api_version.to_string(),
        time: now(),
        subresource: None,
        fields: fields_of(obj),
    };
    store(obj, vec![e]);
}

/// An update (PUT or a non-apply PATCH) from `old` to `new` by `manager`: it takes the fields it
/// changed from everyone; fields it removed leave every owner. A client that sends its own
/// managedFields (different from the stored ones) replaces them, as on a real server.
pub fn record_update(old: &Value, new: &mut Value, manager: &str, api_version: &str, subresource: Option<&str>) {
    let sent = util::path(new, "metadata.managedFields").cloned();
    let stored = util::path(old, "metadata.managedFields").cloned();
    let mut list = match (&sent, &stored) {
        (Some(Value::Array(_)), _) if sent != stored => entries(new),
        _ => entries(old),
    };
    let before = fields_of(old);
    let after = fields_of(new);
    let changed: FieldSet = after
        .iter()
        .filter(|p| !before.contains(*p) || get(new, p).is_some_and(is_leaf) && get(old, p) != get(new, p))
        .cloned()
        .collect();
    let removed: FieldSet = before.difference(&after).cloned().collect();
    for e in list.iter_mut() {
        e.fields.retain(|p| !removed.contains(p));
        if !e.is(manager, "Update", subresource) {
            e.fields.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        match list.iter_mut().find(|e| e.is(manager, "Update", subresource)) {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now();
                e.api_version = api_version.to_string();
            }
            None => list.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now(),
                subresource: subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    store(new, list);
}

/// The 409 of an apply that would change fields other managers own.
fn conflict_error(mut conflicts: Vec<(String, String)>) -> ApiError {
    conflicts.sort();
    conflicts.dedup();
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p}))
        .collect();
    let message = if let [(m, p)] = conflicts.as_slice() {
        format!("Apply failed with 1 conflict: conflict with {m}: {p}")
    } else {
        let mut lines = Vec::new();
        let mut last: Option<&str> = None;
        for (m, p) in &conflicts {
            if last != Some(m.as_str()) {
                lines.push(format!("conflict with {m}:"));
                last = Some(m.as_str());
            }
            lines.push(format!("- {p}"));
        }
        format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
    };
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(json!({ "causes": causes }));
    e
}

/// Server-side apply of `applied` by `manager` onto `live` (None when the apply creates the
/// object); `merged` is the live object with the patch merged in. Refuses conflicts unless
/// `force`, removes what the manager stopped applying and nobody else owns, and records the
/// ownership in `merged`.
pub fn record_apply(
    live: Option<&Value>,
    merged: &mut Value,
    applied: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
) -> Result<(), ApiError> {
    let mut list = live.map(entries).unwrap_or_default();
    let mine = fields_of(applied);
    let mut conflicts = Vec::new();
    if let Some(live) = live {
        for p in &mine {
            let Some(want) = get(applied, p).filter(|v| is_leaf(v)) else {
                continue;
            };
            let have = get(live, p);
            if have == Some(want) {
                continue;
            }
            for e in list.iter_mut().filter(|e| !e.is(manager, "Apply", None)) {
                if e.fields.contains(p) {
                    if force {
                        e.fields.remove(p);
                    } else {
                        conflicts.push((e.printed(), path_string(p)));
                    }
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflict_error(conflicts));
    }
    let previous = list
        .iter()
        .find(|e| e.is(manager, "Apply", None))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let dropped: Vec<&FieldPath> = previous.difference(&mine).collect();
    for p in dropped.into_iter().rev() {
        let others_own = list
            .iter()
            .any(|e| !e.is(manager, "Apply", None) && e.fields.contains(p));
        if !others_own {
            remove_at(merged, p);
        }
    }
    // An apply that owns what it owned before keeps its entry (and time) as it was, so a
    // repeated apply writes nothing.
    match list.iter_mut().find(|e| e.is(manager, "Apply", None)) {
        Some(e) if e.fields == mine && e.api_version == api_version => {}
        Some(e) => {
            e.fields = mine;
            e.api_version = api_version.to_string();
            e.time = now();
        }
        None => list.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now(),
            subresource: None,
            fields: mine,
        }),
    }
    store(merged, list);
    Ok(())
}

impl super::KubeTestServer {
    /// A strategic merge patch of the object at `api_path` by field manager `manager` (a
    /// person's `kubectl edit`, say), through the API like any client; panics unless 2xx.
    pub async fn patch_as(&self, manager: &str, api_path: &str, patch: &Value) -> Value {
        let req = axum::http::Request::builder()
            .method(axum::http::Method::PATCH)
            .uri(format!("{api_path}?fieldManager={manager}"))
            .header(
                axum::http::header::CONTENT_TYPE,
                "application/strategic-merge-patch+json",
            )
            .body(patch.to_string().into_bytes())
            .expect("a valid request");
        let text = self
            .client()
            .request_text(req)
            .await
            .unwrap_or_else(|e| panic!("PATCH {api_path} as {manager}: {e}"));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}
