//! Objects of kinds deckhand learns at run time (service classes) checked against the
//! `openAPIV3Schema` the cluster serves for them in their CustomResourceDefinition, before
//! anything is applied. Deckhand's own objects need no such check: they are k8s-openapi
//! types (see `objects`), so a misspelled field does not compile. A class's template is
//! YAML written by the platform team, so a misspelling there would otherwise be dropped by
//! the API server (a pruned field, and a database without the storage asked for) or refused
//! half-way through a class that renders several objects.
//!
//! What is checked is what a structural schema says about shape: unknown fields (where the
//! schema neither preserves unknown fields nor allows additional properties), required
//! fields, types (`x-kubernetes-int-or-string` included) and enums. Value limits (minimum,
//! pattern, CEL rules) are left to the API server, which reports them itself.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::{Api, api::ApiResource};
use serde_json::Value;

use super::{Cluster, ClusterError};

/// One way an object does not fit its schema; the path is dotted, with `[i]` for list items.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("{path}: unknown field{}", suggest(.suggestion))]
    Unknown { path: String, suggestion: Option<String> },
    #[error("{0}: required field is missing")]
    Missing(String),
    #[error("{path}: must be {expected}, not {found}")]
    WrongType {
        path: String,
        expected: String,
        found: &'static str,
    },
    #[error("{path}: {found} is not one of {allowed}")]
    NotAllowed {
        path: String,
        found: String,
        allowed: String,
    },
}

fn suggest(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
}

/// Every violation of `obj` against the schema of its kind (empty: it fits). The object's
/// `apiVersion`, `kind` and `metadata` are the API server's to check, as for every kind.
pub fn validate(schema: &JSONSchemaProps, obj: &Value) -> Vec<Violation> {
    let mut found = Vec::new();
    let Some(fields) = obj.as_object() else {
        found.push(Violation::WrongType {
            path: "(the object)".into(),
            expected: "an object".into(),
            found: kind_of(obj),
        });
        return found;
    };
    let mut rest = fields.clone();
    for k in ["apiVersion", "kind", "metadata"] {
        rest.remove(k);
    }
    let mut root = schema.clone();
    if let Some(props) = root.properties.as_mut() {
        props.remove("metadata");
    }
    if let Some(required) = root.required.as_mut() {
        required.retain(|r| !matches!(r.as_str(), "apiVersion" | "kind" | "metadata"));
    }
    check(&root, &Value::Object(rest), "", &mut found);
    found
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_fits(schema: &JSONSchemaProps, v: &Value) -> Option<String> {
    let int_or_string = schema.x_kubernetes_int_or_string == Some(true);
    let fits = match (schema.type_.as_deref(), v) {
        _ if int_or_string => v.is_string() || v.as_i64().is_some() || v.as_u64().is_some(),
        (None | Some(""), _) => true,
        (Some("object"), Value::Object(_))
        | (Some("array"), Value::Array(_))
        | (Some("string"), Value::String(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("number"), Value::Number(_)) => true,
        (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    if fits {
        return None;
    }
    Some(if int_or_string {
        "an integer or a string".to_owned()
    } else {
        match schema.type_.as_deref().unwrap_or_default() {
            "object" => "an object".to_owned(),
            "array" => "a list".to_owned(),
            "integer" => "an integer".to_owned(),
            t => format!("a {t}"),
        }
    })
}

fn check(schema: &JSONSchemaProps, v: &Value, path: &str, found: &mut Vec<Violation>) {
    // A null is how a template leaves an optional value out; the API server drops it.
    if v.is_null() {
        return;
    }
    let shown = || {
        if path.is_empty() {
            "(the object)".to_owned()
        } else {
            path.to_owned()
        }
    };
    if let Some(expected) = type_fits(schema, v) {
        found.push(Violation::WrongType {
            path: shown(),
            expected,
            found: kind_of(v),
        });
        return;
    }
    if let Some(allowed) = &schema.enum_
        && !allowed.iter().any(|a| a.0 == *v)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.0.to_string()).collect();
        found.push(Violation::NotAllowed {
            path: shown(),
            found: v.to_string(),
            allowed: list.join(", "),
        });
    }
    match v {
        Value::Object(fields) => check_object(schema, fields, path, found),
        Value::Array(items) => {
            let item_schema = match &schema.items {
                Some(JSONSchemaPropsOrArray::Schema(s)) => Some(s.as_ref()),
                Some(JSONSchemaPropsOrArray::Schemas(s)) => s.first(),
                None => None,
            };
            if let Some(s) = item_schema {
                for (i, item) in items.iter().enumerate() {
                    check(s, item, &format!("{}[{i}]", shown()), found);
                }
            }
        }
        _ => {}
    }
}

fn check_object(
    schema: &JSONSchemaProps,
    fields: &serde_json::Map<String, Value>,
    path: &str,
    found: &mut Vec<Violation>,
) {
    // A node that says nothing about objects (no type, no properties) is not one to check
    // fields against; structural schemas give every object node a type.
    if schema.type_.is_none() && schema.properties.is_none() && schema.additional_properties.is_none() {
        return;
    }
    let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    let embedded = schema.x_kubernetes_embedded_resource == Some(true);
    let props = schema.properties.as_ref();
    for (key, value) in fields {
        let here = join(path, key);
        if let Some(p) = props.and_then(|p| p.get(key)) {
            check(p, value, &here, found);
            continue;
        }
        match &schema.additional_properties {
            Some(JSONSchemaPropsOrBool::Schema(s)) => check(s, value, &here, found),
            Some(JSONSchemaPropsOrBool::Bool(true)) => {}
            _ if preserve || (embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata")) => {}
            _ => found.push(Violation::Unknown {
                suggestion: props.and_then(|p| closest(key, p.keys())),
                path: here,
            }),
        }
    }
    for r in schema.required.iter().flatten() {
        if fields.get(r).is_none_or(Value::is_null) {
            found.push(Violation::Missing(join(path, r)));
        }
    }
}

/// A declared field close to a misspelled one: the same but for case, or at most two edits
/// away.
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a String>) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    known
        .map(|k| {
            let d = if k.to_ascii_lowercase() == lower {
                0
            } else {
                distance(key, k)
            };
            (d, k)
        })
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k.clone())
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

impl Cluster {
    /// The `openAPIV3Schema` the cluster serves for `ar`'s version, read from its
    /// CustomResourceDefinition. None when the kind is not defined by a CRD (built-in kinds,
    /// aggregated APIs) or the version has no schema: there is nothing here to check against.
    pub async fn served_schema(&self, ar: &ApiResource) -> Result<Option<JSONSchemaProps>, ClusterError> {
        // A CRD's group has a dot; the built-in groups (core, apps, batch) do not.
        if !ar.group.contains('.') {
            return Ok(None);
        }
        let name = format!("{}.{}", ar.plural, ar.group);
        let what = format!("CustomResourceDefinition {name}");
        let crd = self
            .call(&what, |c| {
                let name = name.clone();
                async move { Api::<CustomResourceDefinition>::all(c).get_opt(&name).await }
            })
            .await?;
        let Some(crd) = crd else {
            return Ok(None);
        };
        let Some(version) = crd.spec.versions.into_iter().find(|v| v.name == ar.version) else {
            return Err(ClusterError::NotFound(format!(
                "version {} of {} in this cluster (its CRD does not define it)",
                ar.version, ar.kind
            )));
        };
        Ok(version.schema.and_then(|s| s.open_api_v3_schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> JSONSchemaProps {
        serde_json::from_value(json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["parameters"],
                    "properties": {
                        "parameters": {
                            "type": "object",
                            "required": ["storageGB"],
                            "properties": {
                                "size": { "type": "string", "enum": ["small", "medium", "large"] },
                                "storageGB": { "type": "integer" },
                                "multiAZ": { "type": "boolean" },
                            },
                        },
                        "selector": { "type": "object", "additionalProperties": { "type": "string" } },
                        "port": { "x-kubernetes-int-or-string": true },
                        "keys": { "type": "array", "items": {
                            "type": "object", "properties": { "name": { "type": "string" } },
                        }},
                        "extra": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                    },
                },
                "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
            },
        }))
        .unwrap()
    }

    fn object(spec: Value) -> Value {
        json!({ "apiVersion": "x.example.org/v1", "kind": "X", "metadata": { "name": "a" }, "spec": spec })
    }

    #[test]
    fn a_fitting_object_has_no_violations() {
        let o = object(json!({
            "parameters": { "size": "small", "storageGB": 20, "multiAZ": false },
            "selector": { "provider": "aws" },
            "port": "http",
            "keys": [{ "name": "a" }],
            "extra": { "anything": { "goes": 1 } },
        }));
        assert_eq!(validate(&schema(), &o), vec![]);
    }

    #[test]
    fn names_every_field_that_does_not_fit() {
        let o = object(json!({
            "parameters": { "size": "huge", "storageGb": 20, "multiAZ": "yes" },
            "selector": { "provider": 1 },
            "port": 1.5,
            "keys": [{ "name": "a" }, { "nmae": "b" }],
        }));
        let found: Vec<String> = validate(&schema(), &o).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "spec.keys[1].nmae: unknown field (did you mean name?)",
                "spec.parameters.multiAZ: must be a boolean, not a string",
                "spec.parameters.size: \"huge\" is not one of \"small\", \"medium\", \"large\"",
                "spec.parameters.storageGb: unknown field (did you mean storageGB?)",
                "spec.parameters.storageGB: required field is missing",
                "spec.port: must be an integer or a string, not a number",
                "spec.selector.provider: must be a string, not an integer",
            ]
        );
    }

    #[test]
    fn missing_required_sections_and_unknown_top_level_fields_are_named() {
        let o = json!({ "apiVersion": "x.example.org/v1", "kind": "X", "metadata": {}, "sepc": {} });
        let found: Vec<String> = validate(&schema(), &o).iter().map(ToString::to_string).collect();
        assert_eq!(found, ["sepc: unknown field (did you mean spec?)"]);
        let found = validate(&schema(), &object(json!({})));
        assert_eq!(found, vec![Violation::Missing("spec.parameters".into())]);
    }
}
