//! The resource types the fake serves, and the discovery documents built from them.
//!
//! One static table drives routing, discovery (/api, /apis, APIResourceList), RBAC-style
//! messages and Status details, so they can never disagree with each other.

use serde_json::{Value, json};

#[derive(Debug, PartialEq, Eq)]
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Subresources served under `{name}/{sub}`.
    pub subresources: &'static [&'static str],
    /// Which naming rule applies to metadata.name (the real validation differs per kind).
    pub name_rule: NameRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: most kinds.
    Subdomain,
    /// RFC 1123 label: namespaces.
    Label,
    /// RFC 1035 label (must start with a letter): services.
    Dns1035,
    /// Any path segment: RBAC objects.
    PathSegment,
}

const fn def(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        subresources,
        name_rule: NameRule::Subdomain,
    }
}

const fn named(mut d: ResourceDef, rule: NameRule) -> ResourceDef {
    d.name_rule = rule;
    d
}

pub const CORE: &str = "";
pub const APPS: &str = "apps";
pub const BATCH: &str = "batch";
pub const NETWORKING: &str = "networking.k8s.io";
pub const RBAC: &str = "rbac.authorization.k8s.io";
pub const APIEXTENSIONS: &str = "apiextensions.k8s.io";

pub static RESOURCES: &[ResourceDef] = &[
    named(
        def(
            CORE,
            "namespaces",
            "namespace",
            "Namespace",
            false,
            &["ns"],
            &["status", "finalize"],
        ),
        NameRule::Label,
    ),
    def(CORE, "pods", "pod", "Pod", true, &["po"], &["log", "status"]),
    named(
        def(CORE, "services", "service", "Service", true, &["svc"], &["status"]),
        NameRule::Dns1035,
    ),
    def(CORE, "secrets", "secret", "Secret", true, &[], &[]),
    def(
        CORE,
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
    ),
    def(
        CORE,
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        &["quota"],
        &["status"],
    ),
    def(CORE, "limitranges", "limitrange", "LimitRange", true, &["limits"], &[]),
    def(CORE, "events", "event", "Event", true, &["ev"], &[]),
    def(CORE, "configmaps", "configmap", "ConfigMap", true, &["cm"], &[]),
    def(
        APPS,
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        &["scale", "status"],
    ),
    def(
        APPS,
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        &["scale", "status"],
    ),
    def(BATCH, "jobs", "job", "Job", true, &[], &["status"]),
    def(
        NETWORKING,
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
        &[],
    ),
    named(
        def(RBAC, "roles", "role", "Role", true, &[], &[]),
        NameRule::PathSegment,
    ),
    named(
        def(RBAC, "rolebindings", "rolebinding", "RoleBinding", true, &[], &[]),
        NameRule::PathSegment,
    ),
    named(
        def(RBAC, "clusterroles", "clusterrole", "ClusterRole", false, &[], &[]),
        NameRule::PathSegment,
    ),
    named(
        def(
            RBAC,
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            false,
            &[],
            &[],
        ),
        NameRule::PathSegment,
    ),
    // Served for the custom kinds tests register with a schema (crd.rs).
    def(
        APIEXTENSIONS,
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["status"],
    ),
];

impl ResourceDef {
    /// `pods`, `deployments.apps`: the key of the store and the "qualified resource" that real
    /// Status messages use (`deployments.apps "web" not found`).
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps` / `Pod`: the qualified kind used by 422 Invalid messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `/api/v1` or `/apis/apps/v1`.
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The URL path of an object (used for selfLink-free lookups by tests).
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}/namespaces/{namespace}/{}/{name}", self.prefix(), self.plural)
        } else {
            format!("{}/{}/{name}", self.prefix(), self.plural)
        }
    }

    /// Kinds whose registry sets metadata.generation (and bumps it on spec changes).
    pub fn has_generation(&self) -> bool {
        matches!(self.kind, "Deployment" | "ReplicaSet" | "Job" | "NetworkPolicy" | "Pod")
            || super::custom::is_custom(self)
    }

    /// Kinds whose main endpoint ignores `status` (it is written through `/status`).
    pub fn has_status_subresource(&self) -> bool {
        self.subresources.contains(&"status")
    }
}

/// The built-in kinds and the custom ones tests registered (custom.rs).
pub fn all() -> impl Iterator<Item = &'static ResourceDef> {
    RESOURCES.iter().chain(super::custom::kinds())
}

/// Whether some kind is served at `group`/`version`.
pub fn serves(group: &str, version: &str) -> bool {
    all().any(|r| r.group == group && r.version == version)
}

pub fn by_plural(group: &str, plural: &str) -> Option<&'static ResourceDef> {
    all().find(|r| r.group == group && r.plural == plural)
}

pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    all().find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Resolves what a test might call a resource: `deployments`, `deployments.apps`, `deploy`,
/// `Deployment` or `deployment` (case-insensitive).
pub fn lookup(name: &str) -> Option<&'static ResourceDef> {
    let n = name.to_ascii_lowercase();
    all().find(|r| {
        r.plural == n
            || r.key() == n
            || r.singular == n
            || r.kind.eq_ignore_ascii_case(&n)
            || r.short_names.contains(&n.as_str())
    })
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_entries(r: &ResourceDef) -> Vec<Value> {
    let verbs: Vec<&str> = if r.plural == "namespaces" {
        ALL_VERBS.iter().copied().filter(|v| *v != "deletecollection").collect()
    } else {
        ALL_VERBS.to_vec()
    };
    let mut main = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": verbs,
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = json!(r.short_names);
    }
    if matches!(r.plural, "pods" | "deployments" | "replicasets" | "services" | "jobs") {
        main["categories"] = json!(["all"]);
    }
    let mut out = vec![main];
    for sub in r.subresources {
        let mut e = json!({
            "name": format!("{}/{sub}", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["get", "patch", "update"],
        });
        match *sub {
            "log" => {
                e["verbs"] = json!(["get"]);
            }
            "finalize" => {
                e["verbs"] = json!(["update"]);
            }
            "scale" => {
                e["kind"] = json!("Scale");
                e["group"] = json!("autoscaling");
                e["version"] = json!("v1");
            }
            _ => {}
        }
        out.push(e);
    }
    out
}

/// The APIResourceList for one group version, or None if the fake does not serve it.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = all().filter(|r| r.group == group && r.version == version).collect();
    if defs.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": defs.iter().flat_map(|r| resource_entries(r)).collect::<Vec<_>>(),
    }))
}

pub fn groups() -> Vec<&'static str> {
    let mut gs: Vec<&'static str> = Vec::new();
    for r in all() {
        if !r.group.is_empty() && !gs.contains(&r.group) {
            gs.push(r.group);
        }
    }
    gs
}

fn group_json(g: &str) -> Value {
    let version = all().find(|r| r.group == g).map_or("v1", |r| r.version);
    let gv = json!({"groupVersion": format!("{g}/{version}"), "version": version});
    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
}

pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups().iter().map(|g| group_json(g)).collect::<Vec<_>>(),
    })
}

pub fn api_group(group: &str) -> Option<Value> {
    if !groups().contains(&group) {
        return None;
    }
    let mut g = group_json(group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// /version: kubectl (and the version-dispatching kubectl wrapper on these machines) reads it.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4",
        "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T16:01:50Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `api/v1`, `apis/apps/v1`: the keys of the OpenAPI v3 root document.
fn openapi_paths() -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<(String, &str, &str)> = Vec::new();
    for r in all() {
        let p = r.prefix().trim_start_matches('/').to_string();
        if !out.iter().any(|(x, _, _)| *x == p) {
            out.push((p, r.group, r.version));
        }
    }
    out
}

/// The OpenAPI v3 root (`/openapi/v3`). kubectl reads it to learn whether the server does
/// field validation itself (`fieldValidation` on PATCH); with it, `kubectl apply` needs no
/// `--validate=false` and skips client-side schema validation.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    for (p, _, _) in openapi_paths() {
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=fake")}),
        );
    }
    json!({"paths": paths})
}

/// A minimal OpenAPI v3 document for one group version: only the PATCH operations with their
/// group-version-kind and the `fieldValidation` parameter, which is all kubectl looks for.
pub fn openapi_v3_group(path: &str) -> Option<Value> {
    let (_, group, version) = openapi_paths().into_iter().find(|(p, _, _)| p == path)?;
    let mut paths = serde_json::Map::new();
    for r in all().filter(|r| r.group == group && r.version == version) {
        let item = if r.namespaced {
            format!("{}/namespaces/{{namespace}}/{}/{{name}}", r.prefix(), r.plural)
        } else {
            format!("{}/{}/{{name}}", r.prefix(), r.plural)
        };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        ]);
        paths.insert(
            item,
            json!({"patch": {
                "operationId": format!("patch{}", r.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            }}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
