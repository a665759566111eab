//! A fake Kubernetes API server for tests: HTTP/1.1 on 127.0.0.1 (plain, or HTTPS with a bearer
//! token and client certificates through `KubeTestServer::builder()`) with the REST semantics
//! the product relies on (resourceVersion, Status errors, selectors, watch, server-side apply,
//! namespace cascade), plus small controllers that roll Deployments out, run Jobs and report
//! failures the way a cluster does. kube-rs, the real kubectl and the Python client all work
//! against it; bodies are JSON, YAML or, for built-in kinds, protobuf (protobuf.rs).
//!
//! ```ignore
//! let k8s = KubeTestServer::start().await;
//! let client = k8s.client();                 // a kube::Client for it
//! k8s.write_kubeconfig(dir.join("config"))?; // for kubectl or the product's own config
//! k8s.forbid("delete", "namespaces");        // RBAC-style 403 from now on
//! k8s.authorize_with(include_str!("../../../deploy/clusterrole.yaml")); // RBAC from objects
//! ```
//!
//! Failure modes are chosen by image name, with the statuses and kubelet events a cluster
//! shows: `does-not-exist`/`badimage` are missing from the registry (ErrImagePull, then
//! ImagePullBackOff, retried forever), `crashloop` exits 1 at once (restarted with a growing
//! back-off in CrashLoopBackOff, with logs).
//!
//! Included both as `support::kube` and via `#[path]`, so only relative paths are used inside,
//! and the kube crate is always named `::kube`.
#![allow(dead_code)]

pub mod admission;
pub mod api;
pub mod builder;
pub mod controllers;
pub mod crd;
pub mod custom;
pub mod dry_run;
pub mod exec;
pub mod field_validation;
pub mod logs;
pub mod managed_fields;
pub mod netpol;
pub mod patch;
pub mod playground;
pub mod pod_runner;
pub mod proto_codec;
pub mod proto_schema;
pub mod protobuf;
pub mod proxy;
pub mod rbac;
pub mod rbac_escalation;
pub mod resources;
pub mod selectors;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod util;
pub mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

#[allow(unused_imports)]
pub use self::controllers::{is_bad_image, is_crash_image};
#[allow(unused_imports)]
pub use self::status::{ApiError, BOT_USER};
pub use builder::KubeTestServerBuilder;

use self::api::Shared;
use self::store::Fault;

/// A running fake API server; dropping it stops the server and its controllers.
pub struct KubeTestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// The path of every server-side apply (PATCH with application/apply-patch+yaml), in order.
    applies: Arc<std::sync::Mutex<Vec<String>>>,
    /// The CA of the serving certificate when the server speaks HTTPS.
    ca: Option<Arc<tls::TestCa>>,
    auth: Arc<tls::Auth>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KubeTestServer {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        Self::start_on(0).await.expect("bind 127.0.0.1:0")
    }

    /// Starts on 127.0.0.1:`port` (0 picks a free one).
    pub async fn start_on(port: u16) -> std::io::Result<Self> {
        Self::builder().port(port).start_io().await
    }

    /// For HTTPS, bearer tokens and client certificates.
    pub fn builder() -> KubeTestServerBuilder {
        KubeTestServerBuilder::default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://` when the server speaks TLS.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// From now on the server accepts `token` instead of the one it accepted (rotation).
    pub fn set_bearer_token(&self, token: &str) {
        self.auth.set_token(Some(token.to_owned()));
    }

    /// How many requests were answered 401 Unauthorized so far.
    pub fn unauthorized(&self) -> usize {
        self.auth.unauthorized()
    }

    /// Why TLS handshakes failed so far (the server's side of it).
    pub fn handshake_failures(&self) -> Vec<String> {
        self.auth.handshake_failures()
    }

    /// A kube client for this server (default namespace "default").
    /// A client for the tests themselves: a cluster admin, whatever deckhand may do.
    pub fn client(&self) -> ::kube::Client {
        self.client_with_token(store::ADMIN_TOKEN)
    }

    /// A kube client showing bearer `token` (a user's of the builder, say), trusting the
    /// server's CA.
    pub fn client_with_token(&self, token: &str) -> ::kube::Client {
        let uri = self.url().parse().expect("the server URL is a valid URI");
        let mut config = ::kube::Config::new(uri);
        config.auth_info =
            serde_json::from_value(serde_json::json!({ "token": token })).expect("an AuthInfo with a token");
        if let Some(ca) = &self.ca {
            config.root_cert = Some(vec![ca.der()]);
        }
        ::kube::Client::try_from(config).expect("kube client for the test server")
    }

    /// Turns RBAC on and grants deckhand's service account `cluster_role` (a ClusterRole's
    /// YAML, e.g. deploy/clusterrole.yaml): the server stores the ClusterRole and a
    /// ClusterRoleBinding `kube-testserver:deckhand` to it (replacing what an earlier call
    /// stored), and from now on authorizes every request but the tests' own client's by the
    /// roles and bindings it holds (rbac.rs), with the real verb mapping (subresources, proxy
    /// methods, exec as `create`) and the authorizer's 403 Status. Callers that are not
    /// users of the builder authenticate as deckhand.
    pub fn authorize_with(&self, cluster_role: &str) {
        let mut role: Value = yaml_serde::from_str(cluster_role).expect("a ClusterRole in YAML");
        assert_eq!(role["kind"], "ClusterRole", "{role}");
        let name = util::str_at(&role, "metadata.name").to_string();
        assert!(!name.is_empty(), "the ClusterRole has a name");
        let mut st = self.shared.lock();
        st.rbac = true;
        st.deckhand_role = Some(name.clone());
        if let Some(meta) = role.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| matches!(k.as_str(), "name" | "labels" | "annotations"));
        }
        let binding = serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": DECKHAND_BINDING},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "deckhand", "namespace": "deckhand"}],
        });
        for (plural, obj) in [("clusterroles", role), ("clusterrolebindings", binding)] {
            let rd = resources::by_plural(resources::RBAC, plural).expect("RBAC kinds are served");
            // A binding's roleRef cannot change: replace both rather than update them.
            st.delete(rd, "", util::str_at(&obj, "metadata.name"));
            api::create(&mut st, rd, obj, false).expect("the ClusterRole and its binding are valid");
        }
    }

    /// Takes one grant away from the ClusterRole `authorize_with` stored (the rules naming it
    /// are split so that everything else they granted stays).
    pub fn revoke(&self, group: &str, resource: &str, verb: &str) {
        let mut st = self.shared.lock();
        let Some(name) = st.deckhand_role.clone() else {
            return;
        };
        let rd = resources::by_plural(resources::RBAC, "clusterroles").expect("RBAC kinds are served");
        if let Some(mut role) = st.get(rd, "", &name).cloned() {
            let rules = role["rules"].as_array().cloned().unwrap_or_default();
            role["rules"] = Value::Array(rbac_escalation::without_grant(&rules, group, resource, verb));
            st.update(rd, role);
        }
    }

    /// A kubeconfig (YAML) for this server: plain http, a bearer-token user, current-context set.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url(), "default")
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    // ---- inspection -----------------------------------------------------------------------

    /// The object at an API path such as `/apis/apps/v1/namespaces/ns/deployments/web`.
    pub fn get_object(&self, api_path: &str) -> Option<Value> {
        let (rd, ns, name) = api::object_path(api_path)?;
        self.shared.lock().get(rd, &ns, &name).cloned()
    }

    /// Objects of a resource (`deployments`, `deployments.apps`, `deploy` or `Deployment`),
    /// in one namespace or in all.
    pub fn list_objects(&self, kind_plural: &str, namespace: Option<&str>) -> Vec<Value> {
        match resources::lookup(kind_plural) {
            Some(rd) => self.shared.lock().list(rd, namespace),
            None => Vec::new(),
        }
    }

    /// One object by resource, namespace ("" for cluster-scoped) and name.
    pub fn object(&self, kind_plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let rd = resources::lookup(kind_plural)?;
        self.shared.lock().get(rd, namespace, name).cloned()
    }

    /// Events in a namespace whose involvedObject.name starts with `involved_prefix`, oldest
    /// first.
    pub fn events(&self, namespace: &str, involved_prefix: &str) -> Vec<Value> {
        let mut evs: Vec<Value> = self
            .list_objects("events", Some(namespace))
            .into_iter()
            .filter(|e| util::str_at(e, "involvedObject.name").starts_with(involved_prefix))
            .collect();
        evs.sort_by_key(|e| util::str_at(e, "metadata.resourceVersion").parse::<u64>().unwrap_or(0));
        evs
    }

    /// Creates an object directly (through admission, without a request): for seeding.
    pub fn insert_object(&self, obj: Value) -> Result<Value, ApiError> {
        let rd = resources::by_kind(util::str_at(&obj, "apiVersion"), util::str_at(&obj, "kind"))
            .ok_or_else(|| ApiError::bad_request("unknown apiVersion/kind"))?;
        let mut st = self.shared.lock();
        api::create(&mut st, rd, obj, false)
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().current_rv()
    }

    /// Every request so far as (method, path without query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared
            .lock()
            .requests
            .iter()
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect()
    }

    /// Every request so far as (method, path, query).
    pub fn requests_with_query(&self) -> Vec<(String, String, String)> {
        self.shared
            .lock()
            .requests
            .iter()
            .map(|r| (r.method.clone(), r.path.clone(), r.query.clone()))
            .collect()
    }

    /// Requests other than discovery and watches: the API calls an action made.
    pub fn api_calls(&self) -> Vec<(String, String)> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| {
                let discovery = r.path == "/version"
                    || r.path == "/api"
                    || r.path == "/apis"
                    || r.path.starts_with("/openapi")
                    || r.path == "/api/v1"
                    || (r.path.starts_with("/apis/") && r.path.split('/').count() <= 4);
                let watch = r.query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
                !discovery && !watch
            })
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect()
    }

    /// The distinct (API group, resource[/subresource], verb) triples the requests so far
    /// needed, as an RBAC authorizer sees them: what a least-privilege ClusterRole must grant.
    pub fn rbac_usage(&self) -> std::collections::BTreeSet<(String, String, String)> {
        let st = self.shared.lock();
        st.requests
            .iter()
            .filter_map(|r| r.rbac.clone())
            .chain(st.also_checked.iter().cloned())
            .collect()
    }

    /// The path of every server-side apply request so far (PATCH with
    /// `application/apply-patch+yaml`, whatever it was answered), in arrival order.
    pub fn applies(&self) -> Vec<String> {
        self.applies.lock().expect("applies").clone()
    }

    pub fn reset_requests(&self) {
        self.shared.lock().requests.clear();
    }

    // ---- fault injection --------------------------------------------------------------------

    /// The next request with this method whose path contains `path_substring` is answered
    /// with a Failure Status of `status_code`/`reason` (once; queue several for several).
    pub fn fail_next(&self, method: &str, path_substring: &str, status_code: u16, reason: &str) {
        self.shared.lock().faults.push(Fault {
            method: method.to_string(),
            path_substring: path_substring.to_string(),
            code: status_code,
            reason: reason.to_string(),
        });
    }

    /// Denies `verb` (get, list, watch, create, update, patch, delete, deletecollection, or
    /// "*") on `resource` (plural, e.g. "namespaces" or "deployments/scale", or "*") to every
    /// caller, the tests' own client (user "kubernetes-admin") included, with the authorizer's
    /// 403 naming the caller, until `allow`/`allow_all`.
    pub fn forbid(&self, verb: &str, resource: &str) {
        self.shared
            .lock()
            .forbidden
            .push((verb.to_string(), resource.to_string()));
    }

    pub fn allow(&self, verb: &str, resource: &str) {
        self.shared
            .lock()
            .forbidden
            .retain(|(v, r)| !(v == verb && r == resource));
    }

    pub fn allow_all(&self) {
        self.shared.lock().forbidden.clear();
    }

    /// Forgets the watch history: watches from an older resourceVersion get 410 Gone.
    pub fn compact_history(&self) {
        self.shared.lock().compact();
    }

    // ---- controllers --------------------------------------------------------------------------

    /// Time per controller step (default 30ms). A rollout takes about two steps per pod.
    pub fn set_step(&self, step: Duration) {
        self.shared.lock().step = step.max(Duration::from_millis(1));
    }

    pub fn step(&self) -> Duration {
        self.shared.lock().step
    }

    /// Stops (true) or resumes (false) the controllers, to look at an intermediate state.
    pub fn set_paused(&self, paused: bool) {
        self.shared.lock().paused = paused;
    }

    /// Runs one controller pass now (works while paused).
    pub fn tick(&self) {
        controllers::tick(&mut self.shared.lock());
    }

    /// Log text for pods in `namespace` whose name starts with `pod_name_prefix` (the latest
    /// matching call wins). Replaces what the fake kubelet would log.
    pub fn set_pod_logs(&self, namespace: &str, pod_name_prefix: &str, text: &str) {
        self.shared
            .lock()
            .log_overrides
            .push((namespace.to_string(), pod_name_prefix.to_string(), text.to_string()));
    }

    /// Runs the pods of Jobs whose image starts with `image_prefix` through `run` (given the
    /// container's args; its Ok text becomes the pod's log and the pod succeeds, Err fails it)
    /// instead of the fake kubelet's fixed script.
    pub fn set_pod_runner(&self, image_prefix: &str, run: pod_runner::RunFn) {
        self.shared.lock().pod_runners.add(image_prefix, run);
    }

    /// What a request proxied to a service or pod (`.../services/{name}[:port]/proxy/...`)
    /// answers. Without it the fake answers 200 with a one-line echo once a ready pod backs the
    /// service (503 "no endpoints available" before that, like the real API server).
    pub fn set_proxy_response(&self, namespace: &str, name: &str, status: u16, body: &str) {
        self.shared
            .lock()
            .proxy_responses
            .insert((namespace.to_string(), name.to_string()), (status, body.to_string()));
    }

    /// Sends what is proxied to service `name` in `namespace` to a real HTTP server at
    /// `base_url` (`http://127.0.0.1:PORT`): method, path, query, end-to-end headers and body
    /// go there, and its answer is streamed back. The 404/503 checks still come first.
    pub fn set_service_backend(&self, namespace: &str, name: &str, base_url: &str) {
        proxy::set_backend(&self.shared, namespace, name, base_url);
    }

    /// Polls `check` every 10ms until it holds or `timeout` passes; returns whether it held.
    /// (For tests only; the product waits with watches.)
    pub async fn wait_for(&self, timeout: Duration, check: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if check(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for KubeTestServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Records the path of each server-side apply before the API handles it.
fn apply_counter(
    applies: Arc<std::sync::Mutex<Vec<String>>>,
) -> tower::util::MapRequestLayer<impl Fn(axum::extract::Request) -> axum::extract::Request + Clone> {
    tower::util::MapRequestLayer::new(move |req: axum::extract::Request| {
        let apply = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/apply-patch"));
        if req.method() == axum::http::Method::PATCH && apply {
            applies.lock().expect("applies").push(req.uri().path().to_owned());
        }
        req
    })
}

async fn controller_loop(shared: Arc<Shared>) {
    loop {
        let step = shared.lock().step;
        tokio::time::sleep(step).await;
        let mut st = shared.lock();
        if st.paused {
            continue;
        }
        // A bug in a controller must not stop the others for the rest of the test.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| controllers::tick(&mut st)));
        if result.is_err() {
            eprintln!("kube test server: a controller pass panicked");
        }
    }
}

/// A kubeconfig for `server` with one context (`kube-testserver`) and a token user.
pub fn kubeconfig_yaml(server: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-testserver
  cluster:
    server: {server}
contexts:
- name: kube-testserver
  context:
    cluster: kube-testserver
    user: deckhand
    namespace: {namespace}
current-context: kube-testserver
preferences: {{}}
users:
- name: deckhand
  user:
    token: kube-testserver-token
"
    )
}

/// The ClusterRoleBinding `authorize_with` stores for deckhand's service account.
pub const DECKHAND_BINDING: &str = "kube-testserver:deckhand";

/// Every (API group, resource, verb) a ClusterRole's rules grant. Rules limited to
/// resourceNames (such as `bind` on the team role) grant nothing a request here checks.
pub fn cluster_role_rules(yaml: &str) -> std::collections::BTreeSet<(String, String, String)> {
    let role: Value = yaml_serde::from_str(yaml).expect("a ClusterRole in YAML");
    assert_eq!(role["kind"], "ClusterRole", "{role}");
    let strings = |rule: &Value, k: &str| -> Vec<String> {
        rule[k]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let mut grants = std::collections::BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        if !strings(rule, "resourceNames").is_empty() {
            continue;
        }
        for g in strings(rule, "apiGroups") {
            for r in strings(rule, "resources") {
                for v in strings(rule, "verbs") {
                    grants.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    grants
}
