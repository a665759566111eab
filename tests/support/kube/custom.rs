//! Custom resources: kinds a test registers at run time (Crossplane claims, ACK resources),
//! served like built-in ones (discovery, SSA, get/list/watch/delete, a status subresource),
//! and a small provisioning controller that marks them Ready after a few controller steps and
//! writes their connection Secret, as a cloud provider's controller would.
//!
//! ```ignore
//! k8s.register_custom(CustomKind::namespaced("database.example.org/v1alpha1", "PostgreSQLInstance", "postgresqlinstances"));
//! k8s.provision(Provisioner { plural: "postgresqlinstances".into(), .. });
//! ```
//!
//! The kind table is process-wide (the static built-in table is, too): a kind registered by
//! one test is also served by other servers in the same test binary, which is harmless since
//! registering is idempotent and nothing is stored until a test creates objects.

use std::{
    collections::BTreeMap,
    sync::{LazyLock, RwLock},
};

use serde_json::{Value, json};

use super::KubeTestServer;
use super::resources::{NameRule, ResourceDef};
use super::store::State;
use super::util;

static KINDS: LazyLock<RwLock<Vec<&'static ResourceDef>>> = LazyLock::new(|| RwLock::new(Vec::new()));

/// A kind to serve: `apiVersion` (group/version), kind, plural, scope.
#[derive(Debug, Clone)]
pub struct CustomKind {
    pub api_version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// The openAPIV3Schema of its CRD (crd.rs); None: no CRD is served, nothing is pruned.
    pub schema: Option<Value>,
}

impl CustomKind {
    pub fn namespaced(api_version: &str, kind: &str, plural: &str) -> Self {
        CustomKind {
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
            schema: None,
        }
    }

    /// Served with a CRD holding this openAPIV3Schema, which the fake enforces.
    pub fn with_schema(mut self, schema: Value) -> Self {
        self.schema = Some(schema);
        self
    }
}

/// What the provisioning controller does for objects of one kind: after `after_steps`
/// controller steps it sets `status` (merged) with a `condition`=True condition (`Ready`,
/// `ACK.ResourceSynced`) and writes a Secret
/// named by the string at `secret_name_at` in the object (e.g.
/// `spec.writeConnectionSecretToRef.name`) in the object's namespace, holding `secret_data`.
#[derive(Debug, Clone)]
pub struct Provisioner {
    pub plural: String,
    pub condition: String,
    pub after_steps: u32,
    pub status: Value,
    pub secret_name_at: String,
    pub secret_data: BTreeMap<String, String>,
}

/// Every registered custom kind.
pub fn kinds() -> Vec<&'static ResourceDef> {
    KINDS.read().map(|k| k.clone()).unwrap_or_default()
}

pub fn is_custom(rd: &ResourceDef) -> bool {
    kinds().iter().any(|k| std::ptr::eq(*k, rd))
}

/// Registers a kind (a second registration of the same group/plural returns the first).
pub fn register(kind: &CustomKind) -> &'static ResourceDef {
    let (group, version) = kind
        .api_version
        .split_once('/')
        .unwrap_or(("", kind.api_version.as_str()));
    let mut kinds = KINDS.write().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = kinds.iter().find(|k| k.group == group && k.plural == kind.plural) {
        return existing;
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let def: &'static ResourceDef = Box::leak(Box::new(ResourceDef {
        group: leak(group),
        version: leak(version),
        plural: leak(&kind.plural),
        singular: leak(&kind.kind.to_ascii_lowercase()),
        kind: leak(&kind.kind),
        namespaced: kind.namespaced,
        short_names: &[],
        subresources: &["status"],
        name_rule: NameRule::Subdomain,
    }));
    kinds.push(def);
    def
}

impl KubeTestServer {
    /// Serves a custom resource kind from now on.
    pub fn register_custom(&self, kind: CustomKind) {
        let rd = register(&kind);
        self.install_crd(rd, &kind);
    }

    /// Runs the provisioning controller for objects of `p.plural`.
    pub fn provision(&self, p: Provisioner) {
        let mut st = self.shared.lock();
        st.provisioners.retain(|x| x.plural != p.plural);
        st.provisioners.push(p);
    }
}

fn ready_condition(kind: &str, now: &str) -> Value {
    json!({
        "type": kind,
        "status": "True",
        "reason": "Available",
        "lastTransitionTime": now,
    })
}

/// One pass of the provisioning controller.
pub fn tick(st: &mut State) {
    let provisioners = st.provisioners.clone();
    for p in provisioners {
        let Some(rd) = kinds().into_iter().find(|k| k.plural == p.plural) else {
            continue;
        };
        let Some(secrets) = super::resources::by_plural("", "secrets") else {
            continue;
        };
        for obj in st.list(rd, None) {
            let ns = util::str_at(&obj, "metadata.namespace").to_string();
            if util::path(&obj, "metadata.deletionTimestamp").is_some() || !st.namespace_active(&ns) {
                continue;
            }
            let ready = util::path(&obj, "status.conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == p.condition.as_str() && c["status"] == "True")
                });
            if ready {
                continue;
            }
            let uid = util::str_at(&obj, "metadata.uid").to_string();
            if !st.ticks.contains_key(&uid) {
                let mut creating = obj.clone();
                let now = util::fmt_time(util::now());
                let mut c = ready_condition(&p.condition, &now);
                c["status"] = json!("False");
                c["reason"] = json!("Creating");
                util::set_path(&mut creating, "status.conditions", json!([c]));
                st.update(rd, creating);
            }
            let spent = st.ticks.entry(uid).or_insert(0);
            *spent += 1;
            if *spent < p.after_steps {
                continue;
            }
            let secret_name = util::str_at(&obj, &p.secret_name_at).to_string();
            if !secret_name.is_empty() {
                let data: serde_json::Map<String, Value> = p
                    .secret_data
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(util::base64_encode(v.as_bytes()))))
                    .collect();
                let secret = json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": { "name": secret_name, "namespace": ns },
                    "type": "connection.crossplane.io/v1alpha1",
                    "data": data,
                });
                let secret = super::admission::default_object(secrets, secret);
                st.update(secrets, secret);
            }
            let mut updated = obj.clone();
            let now = util::fmt_time(util::now());
            if let Some(extra) = p.status.as_object() {
                let target = util::obj_mut(&mut updated, "status");
                for (k, v) in extra {
                    target.insert(k.clone(), v.clone());
                }
            }
            util::set_path(
                &mut updated,
                "status.conditions",
                json!([ready_condition(&p.condition, &now)]),
            );
            st.update(rd, updated);
            st.event(&obj, "Normal", "Available", "the resource is ready", "provider");
        }
    }
}
