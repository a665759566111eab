//! Patch flavours: JSON merge patch (RFC 7386), strategic merge patch (lists of named things
//! merged by key), JSON patch (RFC 6902), and the merge used for server-side apply (whose field
//! ownership is in managed_fields.rs).

use serde_json::{Map, Value};

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The key by which a list field's items are merged (the `patchMergeKey` of the Kubernetes
/// types the actions touch); None means the list is replaced as a whole.
pub(super) fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        // Container ports merge by containerPort, Service ports by port.
        "ports" => {
            if sample.and_then(|s| s.get("containerPort")).is_some() {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

fn is_directive(k: &str) -> bool {
    k.starts_with("$setElementOrder/") || k.starts_with("$deleteFromPrimitiveList/") || k == "$retainKeys"
}

/// Strategic merge patch: like a merge patch, but keyed lists merge item by item and the
/// `$patch: delete|replace` directives are honoured; kubectl's `$setElementOrder` and
/// `$retainKeys` hints are accepted and ignored.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = p.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if k == "$patch" || is_directive(k) {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Array(existing)), Value::Array(items)) => {
                if let Some(mk) = merge_key(k, items.first().or(existing.first())) {
                    merge_list(existing, items, mk);
                } else {
                    *existing = items.iter().filter(|i| !is_delete_marker(i)).cloned().collect();
                }
            }
            (Some(existing), Value::Object(_)) if existing.is_object() => {
                strategic_merge(existing, v);
                if existing.is_null() {
                    t.remove(k);
                }
            }
            _ => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, v);
                if let Value::Array(items) = &mut fresh {
                    items.retain(|i| !is_delete_marker(i));
                }
                if !fresh.is_null() {
                    t.insert(k.clone(), strip_directives(fresh));
                }
            }
        }
    }
}

fn is_delete_marker(v: &Value) -> bool {
    v.get("$patch").and_then(Value::as_str) == Some("delete")
}

/// Removes patch directives from a value that is inserted wholesale.
fn strip_directives(mut v: Value) -> Value {
    match &mut v {
        Value::Object(m) => {
            m.retain(|k, _| k != "$patch" && !is_directive(k));
            for x in m.values_mut() {
                *x = strip_directives(std::mem::take(x));
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                *x = strip_directives(std::mem::take(x));
            }
        }
        _ => {}
    }
    v
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let Some(id) = item.get(key).cloned() else {
            continue;
        };
        let pos = existing.iter().position(|e| e.get(key) == Some(&id));
        match (pos, is_delete_marker(item)) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut existing[i], item),
            (None, false) => existing.push(strip_directives(item.clone())),
        }
    }
}

/// RFC 6902 JSON patch (add, remove, replace, move, copy, test).
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let Some(ops) = ops.as_array() else {
        return Err("json patch must be an array of operations".into());
    };
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).ok_or("operation without path")?;
        match kind {
            "add" => add(target, path, op.get("value").cloned().unwrap_or(Value::Null))?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, op.get("value").cloned().unwrap_or(Value::Null))?;
            }
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).ok_or("operation without from")?;
                let v = if kind == "move" {
                    remove(target, from)?
                } else {
                    target.pointer(from).cloned().ok_or(format!("path {from} not found"))?
                };
                add(target, path, v)?;
            }
            "test" => {
                if target.pointer(path) != op.get("value") {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown json patch op {other:?}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path.rsplit_once('/').ok_or(format!("invalid path {path:?}"))?;
    Ok((parent.to_string(), last.replace("~1", "/").replace("~0", "~")))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>().map_err(|_| format!("bad index {last:?}"))?
            };
            if idx > a.len() {
                return Err(format!("index {idx} out of range"));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("path {parent:?} not found")),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or(format!("path {path:?} not found")),
        Some(Value::Array(a)) => {
            let idx: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
            if idx >= a.len() {
                return Err(format!("index {idx} out of range"));
            }
            Ok(a.remove(idx))
        }
        _ => Err(format!("path {parent:?} not found")),
    }
}
