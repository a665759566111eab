//! CustomResourceDefinitions for the custom kinds a test registers with a schema: the fake
//! serves the CRD (`apiextensions.k8s.io/v1`, named `{plural}.{group}`) as a real cluster
//! does for every CRD-defined kind, and prunes or refuses fields the schema does not declare
//! the way the real API server does for custom resources with a structural schema (unknown
//! fields are pruned, or refused under `fieldValidation=Strict` and in server-side apply).
//!
//! ```ignore
//! k8s.register_custom(CustomKind::namespaced(..).with_schema(json!({ "type": "object", .. })));
//! ```
//!
//! The walk here is the fake's own (deckhand's check is src/cluster/schema.rs), so the two
//! are not the same code testing itself.

use std::sync::{LazyLock, RwLock};

use serde_json::{Value, json};

use super::KubeTestServer;
use super::custom::CustomKind;
use super::field_validation::Seg;
use super::resources::{self, ResourceDef};

/// (group, plural) -> openAPIV3Schema, process-wide like the kind table.
static SCHEMAS: LazyLock<RwLock<Vec<(String, String, Value)>>> = LazyLock::new(|| RwLock::new(Vec::new()));

fn schema_of(rd: &ResourceDef) -> Option<Value> {
    let schemas = SCHEMAS.read().unwrap_or_else(|e| e.into_inner());
    schemas
        .iter()
        .find(|(g, p, _)| g == rd.group && p == rd.plural)
        .map(|(_, _, s)| s.clone())
}

/// The CRD object of a custom kind, as the API server stores it once established.
fn crd_object(rd: &ResourceDef, schema: &Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{}.{}", rd.plural, rd.group) },
        "spec": {
            "group": rd.group,
            "names": {
                "plural": rd.plural,
                "singular": rd.singular,
                "kind": rd.kind,
                "listKind": format!("{}List", rd.kind),
            },
            "scope": if rd.namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": rd.version,
                "served": true,
                "storage": true,
                "schema": { "openAPIV3Schema": schema },
                "subresources": { "status": {} },
            }],
        },
        "status": {
            "conditions": [
                { "type": "NamesAccepted", "status": "True", "reason": "NoConflicts" },
                { "type": "Established", "status": "True", "reason": "InitialNamesAccepted" },
            ],
            "acceptedNames": { "plural": rd.plural, "singular": rd.singular, "kind": rd.kind },
            "storedVersions": [rd.version],
        },
    })
}

impl KubeTestServer {
    /// Stores the CRD of a registered kind that has a schema, and enforces the schema.
    pub(super) fn install_crd(&self, rd: &'static ResourceDef, kind: &CustomKind) {
        let Some(schema) = &kind.schema else { return };
        {
            let mut schemas = SCHEMAS.write().unwrap_or_else(|e| e.into_inner());
            schemas.retain(|(g, p, _)| !(g == rd.group && p == rd.plural));
            schemas.push((rd.group.to_owned(), rd.plural.to_owned(), schema.clone()));
        }
        let Some(crds) = resources::by_plural(resources::APIEXTENSIONS, "customresourcedefinitions") else {
            return;
        };
        let mut st = self.shared.lock();
        let name = format!("{}.{}", rd.plural, rd.group);
        if st.get(crds, "", &name).is_none() {
            st.create(crds, crd_object(rd, schema));
        }
    }
}

/// The fields of a custom object its kind's schema does not declare (empty when the kind
/// was registered without a schema: everything is preserved, as
/// `x-kubernetes-preserve-unknown-fields` at the root would).
pub fn undeclared(rd: &ResourceDef, obj: &Value) -> Vec<Vec<Seg>> {
    let Some(schema) = schema_of(rd) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let Some(fields) = obj.as_object() else {
        return found;
    };
    for (k, v) in fields {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        let mut path = vec![Seg::Key(k.clone())];
        match schema["properties"].get(k) {
            Some(s) => walk(s, v, &mut path, &mut found),
            None if schema["x-kubernetes-preserve-unknown-fields"] == true => {}
            None => found.push(path),
        }
    }
    found
}

fn walk(schema: &Value, v: &Value, path: &mut Vec<Seg>, found: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(fields) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            let additional = &schema["additionalProperties"];
            for (k, item) in fields {
                path.push(Seg::Key(k.clone()));
                if let Some(s) = schema["properties"].get(k) {
                    walk(s, item, path, found);
                } else if additional.is_object() {
                    walk(additional, item, path, found);
                } else if !(preserve || *additional == true) {
                    found.push(path.clone());
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Idx(i));
                walk(&schema["items"], item, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}
