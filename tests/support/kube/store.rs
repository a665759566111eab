//! The object store: every object as JSON, one global resourceVersion counter, and a
//! history of watch events so watches can resume from any recent resourceVersion.
//!
//! Everything sits behind one `std::sync::Mutex` (never held across an `.await`): the fake
//! favours obviously-correct ordering over throughput.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::resources::{self, ResourceDef};
use super::util::{self, Rng};

/// How many watch events are kept for resuming watches; older ones answer 410 Gone.
const HISTORY_LIMIT: usize = 10_000;

#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub rv: u64,
    pub key: String,
    pub namespace: String,
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    pub object: Value,
    /// The object before a MODIFIED, so a selector watch can turn "left the selection" into
    /// DELETED and "entered it" into ADDED, as the real watch cache does.
    pub old: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path_substring: String,
    pub code: u16,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// (API group, resource[/subresource], verb) as an authorizer would see the request.
    pub rbac: Option<(String, String, String)>,
}

pub struct State {
    /// resource key ("pods", "deployments.apps") -> (namespace, name) -> object.
    objects: BTreeMap<String, BTreeMap<(String, String), Value>>,
    rv: u64,
    history: VecDeque<Arc<WatchEvent>>,
    /// Watches from a resourceVersion below this get 410 Gone.
    pub compacted_rv: u64,
    pub tx: broadcast::Sender<Arc<WatchEvent>>,
    pub rng: Rng,
    uid_counter: u64,
    pub requests: Vec<Request>,
    pub faults: Vec<Fault>,
    /// (verb, resource) pairs answered with an RBAC 403; "*" matches any verb.
    pub forbidden: Vec<(String, String)>,
    /// Whether RBAC is enforced from the stored roles and bindings (rbac.rs).
    pub rbac: bool,
    /// The name of the ClusterRole `authorize_with` stored for deckhand.
    pub deckhand_role: Option<String>,
    /// Who the API request being served (under this lock) comes from: the escalation check
    /// of roles and bindings it stores asks. None outside requests (seeding, controllers).
    pub caller: Option<super::rbac::Identity>,
    /// Authorization checks beyond each request's own verb (an apply that creates).
    pub also_checked: BTreeSet<(String, String, String)>,
    pub step: Duration,
    /// Controllers stopped by the test.
    pub paused: bool,
    /// (namespace, pod name prefix, text) set by tests.
    pub log_overrides: Vec<(String, String, String)>,
    /// Log lines written by the fake kubelet, per pod uid.
    pub pod_logs: HashMap<String, Vec<(jiff::Timestamp, String)>>,
    /// Controller bookkeeping per object uid (ticks spent in the current phase).
    pub ticks: HashMap<String, u32>,
    pub next_ip: u32,
    pub server_address: String,
    /// (namespace, service or pod name) -> (status code, body) for proxied requests.
    pub proxy_responses: HashMap<(String, String), (u16, String)>,
    /// Provisioning controllers for custom kinds, set by tests (custom.rs).
    pub provisioners: Vec<super::custom::Provisioner>,
    /// Job pods whose process the test supplies.
    pub pod_runners: super::pod_runner::PodRunners,
}

impl State {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(16_384);
        let mut s = State {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted_rv: 0,
            tx,
            rng: Rng::new(0x5eed_cafe_f00d),
            uid_counter: 0,
            requests: Vec::new(),
            faults: Vec::new(),
            forbidden: Vec::new(),
            rbac: false,
            deckhand_role: None,
            caller: None,
            also_checked: BTreeSet::new(),
            step: Duration::from_millis(30),
            paused: false,
            log_overrides: Vec::new(),
            pod_logs: HashMap::new(),
            ticks: HashMap::new(),
            next_ip: 10,
            server_address: String::new(),
            proxy_responses: HashMap::new(),
            provisioners: Vec::new(),
            pod_runners: Default::default(),
        };
        // The namespaces every cluster starts with.
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Some(rd) = resources::by_plural("", "namespaces") {
                let obj = super::admission::default_object(rd, obj);
                s.create(rd, obj);
            }
        }
        s
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let r = self.rng.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            self.uid_counter & 0xfff,
            (r >> 4) & 0xfff,
            (r.rotate_left(17) ^ self.uid_counter) & 0xffff_ffff_ffff
        )
    }

    pub fn get(&self, rd: &ResourceDef, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&rd.key())
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
    }

    /// Objects of one resource, in one namespace or all (sorted by namespace, then name).
    pub fn list(&self, rd: &ResourceDef, namespace: Option<&str>) -> Vec<Value> {
        let Some(m) = self.objects.get(&rd.key()) else {
            return Vec::new();
        };
        m.iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.keys().cloned().collect()
    }

    fn record(&mut self, rd: &ResourceDef, kind: &'static str, object: Value, old: Option<Value>) {
        let ev = Arc::new(WatchEvent {
            rv: self.rv,
            key: rd.key(),
            namespace: util::str_at(&object, "metadata.namespace").to_string(),
            kind,
            object,
            old,
        });
        self.history.push_back(ev.clone());
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev);
    }

    /// Drops the whole watch history: any watch from an older resourceVersion now gets 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }

    /// Events after `rv` (for resuming a watch), or None when they are no longer kept.
    pub fn history_since(&self, rv: u64) -> Option<Vec<Arc<WatchEvent>>> {
        if rv < self.compacted_rv {
            return None;
        }
        Some(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Stores a new object (already defaulted and validated): fills uid, creationTimestamp,
    /// resourceVersion and generation, and emits ADDED.
    pub fn create(&mut self, rd: &ResourceDef, mut obj: Value) -> Value {
        let uid = self.new_uid();
        let rv = self.next_rv();
        obj["apiVersion"] = json!(rd.api_version());
        obj["kind"] = json!(rd.kind);
        let has_generation = rd.has_generation();
        let meta = util::obj_mut(&mut obj, "metadata");
        meta.insert("uid".into(), json!(uid));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(util::fmt_time(util::now())));
        if has_generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if !rd.namespaced {
            meta.remove("namespace");
        }
        let ns = util::str_at(&obj, "metadata.namespace").to_string();
        let name = util::str_at(&obj, "metadata.name").to_string();
        self.objects
            .entry(rd.key())
            .or_default()
            .insert((ns, name), obj.clone());
        self.record(rd, "ADDED", obj.clone(), None);
        obj
    }

    /// Replaces a stored object. A write that changes nothing keeps the resourceVersion and
    /// emits no event (like the real storage layer's no-op update detection); a change to
    /// `spec` (or a new deletionTimestamp) bumps metadata.generation.
    pub fn update(&mut self, rd: &ResourceDef, mut obj: Value) -> Value {
        let ns = util::str_at(&obj, "metadata.namespace").to_string();
        let name = util::str_at(&obj, "metadata.name").to_string();
        let Some(old) = self.get(rd, &ns, &name).cloned() else {
            return self.create(rd, obj);
        };
        // Identity fields always come from the stored object.
        obj["apiVersion"] = json!(rd.api_version());
        obj["kind"] = json!(rd.kind);
        for f in ["uid", "creationTimestamp", "resourceVersion", "generation"] {
            match util::path(&old, &format!("metadata.{f}")) {
                Some(v) => {
                    util::obj_mut(&mut obj, "metadata").insert(f.into(), v.clone());
                }
                None => {
                    util::obj_mut(&mut obj, "metadata").remove(f);
                }
            }
        }
        // Field ownership is kept by the API layer (managed_fields.rs); a writer that does not
        // carry it (a controller building an object afresh) leaves it as it was.
        if util::path(&obj, "metadata.managedFields").is_none()
            && let Some(m) = util::path(&old, "metadata.managedFields").cloned()
        {
            util::obj_mut(&mut obj, "metadata").insert("managedFields".into(), m);
        }
        if obj == old {
            return old;
        }
        let spec_changed = old.get("spec") != obj.get("spec");
        let deleting = util::path(&old, "metadata.deletionTimestamp").is_none()
            && util::path(&obj, "metadata.deletionTimestamp").is_some();
        if (spec_changed || deleting) && rd.has_generation() {
            let g = util::i64_at(&old, "metadata.generation").unwrap_or(0) + 1;
            util::obj_mut(&mut obj, "metadata").insert("generation".into(), json!(g));
        }
        let rv = self.next_rv();
        util::obj_mut(&mut obj, "metadata").insert("resourceVersion".into(), json!(rv.to_string()));
        self.objects
            .entry(rd.key())
            .or_default()
            .insert((ns, name), obj.clone());
        self.record(rd, "MODIFIED", obj.clone(), Some(old));
        obj
    }

    /// Removes an object and emits DELETED (the object carries the deletion's resourceVersion).
    pub fn delete(&mut self, rd: &ResourceDef, namespace: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(&rd.key())?
            .remove(&(namespace.to_string(), name.to_string()))?;
        let rv = self.next_rv();
        util::obj_mut(&mut obj, "metadata").insert("resourceVersion".into(), json!(rv.to_string()));
        let uid = util::str_at(&obj, "metadata.uid").to_string();
        self.ticks.remove(&uid);
        self.record(rd, "DELETED", obj.clone(), None);
        Some(obj)
    }

    /// Every object with its resource definition (for garbage collection and namespace
    /// cleanup).
    pub fn all_objects(&self) -> Vec<(&'static ResourceDef, Value)> {
        let mut out = Vec::new();
        for rd in resources::all() {
            if let Some(m) = self.objects.get(&rd.key()) {
                out.extend(m.values().map(|v| (rd, v.clone())));
            }
        }
        out
    }

    pub fn uid_exists(&self, uid: &str) -> bool {
        self.objects
            .values()
            .any(|m| m.values().any(|v| util::str_at(v, "metadata.uid") == uid))
    }

    /// Records a core/v1 Event about `involved`, folding repeats into `count` like the
    /// kubelet's event correlator does (repeats within a second are not re-written).
    pub fn event(&mut self, involved: &Value, kind: &str, reason: &str, message: &str, component: &str) {
        let Some(rd) = resources::by_plural("", "events") else {
            return;
        };
        let ns = util::str_at(involved, "metadata.namespace").to_string();
        let ns = if ns.is_empty() { "default".to_string() } else { ns };
        if !self.namespace_active(&ns) {
            return;
        }
        let uid = util::str_at(involved, "metadata.uid").to_string();
        let now = util::now();
        let existing = self.list(rd, Some(&ns)).into_iter().find(|e| {
            util::str_at(e, "involvedObject.uid") == uid
                && util::str_at(e, "reason") == reason
                && util::str_at(e, "message") == message
        });
        if let Some(mut e) = existing {
            let last = util::parse_time(util::str_at(&e, "lastTimestamp"));
            if last.is_some_and(|l| now.as_second() - l.as_second() < 1) {
                return;
            }
            let count = util::i64_at(&e, "count").unwrap_or(1) + 1;
            e["count"] = json!(count);
            e["lastTimestamp"] = json!(util::fmt_time(now));
            self.update(rd, e);
            return;
        }
        let involved_name = util::str_at(involved, "metadata.name");
        let name = format!("{involved_name}.{:016x}", self.rng.next_u64() >> 1);
        let mut involved_ref = json!({
            "kind": util::str_at(involved, "kind"),
            "namespace": ns,
            "name": involved_name,
            "uid": uid,
            "apiVersion": util::str_at(involved, "apiVersion"),
            "resourceVersion": util::str_at(involved, "metadata.resourceVersion"),
        });
        if util::str_at(involved, "kind") == "Pod" {
            let container = util::path(involved, "spec.containers")
                .and_then(|c| c.get(0))
                .map_or("", |c| util::str_at(c, "name"));
            if !container.is_empty() && reason != "Scheduled" {
                involved_ref["fieldPath"] = json!(format!("spec.containers{{{container}}}"));
            }
        }
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved_ref,
            "reason": reason,
            "message": message,
            "source": {"component": component, "host": if component == "kubelet" { "fake-node" } else { "" }},
            "firstTimestamp": util::fmt_time(now),
            "lastTimestamp": util::fmt_time(now),
            "count": 1,
            "type": kind,
            "eventTime": null,
            "reportingComponent": component,
            "reportingInstance": if component == "kubelet" { "fake-node" } else { "" },
        });
        self.create(rd, ev);
    }

    pub fn namespace_active(&self, ns: &str) -> bool {
        resources::by_plural("", "namespaces")
            .and_then(|rd| self.get(rd, "", ns))
            .is_some_and(|n| util::path(n, "metadata.deletionTimestamp").is_none())
    }

    /// The next fake pod IP (10.244.0.x).
    pub fn next_pod_ip(&mut self) -> String {
        self.next_ip += 1;
        format!("10.244.{}.{}", (self.next_ip / 250) % 250, self.next_ip % 250 + 2)
    }

    /// Takes a matching injected fault, if any (each answers once).
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|f| f.method.eq_ignore_ascii_case(method) && path.contains(&f.path_substring))?;
        Some(self.faults.remove(i))
    }

    fn is_forbidden(&self, verb: &str, resource: &str) -> bool {
        self.forbidden
            .iter()
            .any(|(v, r)| (v == "*" || v == verb) && (r == "*" || r == resource))
    }

    /// Whether the authorizer refuses the request: nobody may do what `forbid` denied; beyond
    /// that, once RBAC is enforced, only what the stored roles and bindings grant `who`
    /// (rbac.rs; the tests' admin client is in system:masters).
    pub fn denies(&self, who: &super::rbac::Identity, a: &super::rbac::Attrs) -> bool {
        let resource = match a.sub {
            Some(s) => format!("{}/{s}", a.resource),
            None => a.resource.to_string(),
        };
        self.is_forbidden(a.verb, &resource) || (self.rbac && !super::rbac::allows(self, who, a))
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// The object with `metadata.namespace`/`metadata.name` split out.
pub fn ns_name(obj: &Value) -> (String, String) {
    (
        util::str_at(obj, "metadata.namespace").to_string(),
        util::str_at(obj, "metadata.name").to_string(),
    )
}

pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    util::path(obj, "metadata.labels").and_then(Value::as_object)
}

/// The token the tests' own client shows: a cluster admin, never subject to deckhand's role.
pub const ADMIN_TOKEN: &str = "kube-testserver-admin";

/// Whether the request comes from the tests' own (cluster-admin) client.
pub fn is_admin(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {ADMIN_TOKEN}"))
}
