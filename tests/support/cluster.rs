//! deckhand started against a fresh Kubernetes test API server, as the cluster-facing test
//! files use it. Included with `#[path]` next to `kube_fake`, so only those test binaries
//! compile the fake.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

use crate::{
    kube_fake::KubeTestServer,
    support::{Backend, TestApp, TestDb, init_tls, test_config},
};

pub struct Env {
    pub app: TestApp,
    pub kube: KubeTestServer,
    _db: TestDb,
}

/// Fast controllers and short deadlines, then whatever the test changes in `edit`.
pub async fn start_with(edit: impl FnOnce(&mut deckhand::configuration::Config)) -> Env {
    start_on(Backend::Sqlite, edit).await
}

/// As [`start_with`], on the given store backend.
pub async fn start_on(backend: Backend, edit: impl FnOnce(&mut deckhand::configuration::Config)) -> Env {
    start_against(KubeTestServer::start().await, backend, edit).await
}

/// As [`start_on`], against a server the test started itself (HTTPS, tokens).
pub async fn start_against(
    kube: KubeTestServer,
    backend: Backend,
    edit: impl FnOnce(&mut deckhand::configuration::Config),
) -> Env {
    kube.set_step(Duration::from_millis(15));
    // deckhand may do exactly what the shipped ClusterRole grants, as on a real cluster.
    kube.authorize_with(include_str!("../../deploy/clusterrole.yaml"));
    let db = TestDb::new(backend).await;
    let mut config = test_config(&db.url);
    config.kubernetes.url = kube.url();
    config.kubernetes.rollout_deadline = "20s".parse().expect("duration");
    config.kubernetes.stall_after = "1s".parse().expect("duration");
    config.kubernetes.reaper_interval = "1s".parse().expect("duration");
    edit(&mut config);
    init_tls();
    let running = deckhand::startup::Builder::new(config)
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("deckhand starts");
    Env {
        app: TestApp::from_running(running),
        kube,
        _db: db,
    }
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

impl Env {
    /// Submits as `user` and waits for the request to end (or to wait for approval);
    /// returns the request view.
    pub async fn run(&self, user: &str, text: &str) -> Value {
        let (status, v) = self.app.submit_as(user, text).await;
        assert!(status == 201 || status == 200, "{text}: {status} {v}");
        let id = v["request"]["id"].as_str().expect("request id").to_owned();
        self.app
            .wait_for_state_as(user, &id, &["succeeded", "failed", "cancelled", "pending_approval"])
            .await
    }

    pub fn object(&self, plural: &str, ns: &str, name: &str) -> Value {
        self.kube
            .object(plural, ns, name)
            .unwrap_or_else(|| panic!("{plural} {ns}/{name} exists"))
    }
}

pub fn state(v: &Value) -> &str {
    v["request"]["state"].as_str().unwrap_or_default()
}

pub fn outcome(v: &Value) -> String {
    v["request"]["outcome"].as_str().unwrap_or_default().to_owned()
}

pub fn messages(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The data of the request's first output event.
pub fn output_data(v: &Value) -> Value {
    v["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["kind"] == "output"))
        .map(|e| e["data"].clone())
        .unwrap_or(Value::Null)
}

/// The shipped classes' providers (and what the database provider writes into a connection
/// Secret), shared with the playground.
#[allow(unused_imports)]
pub use crate::kube_fake::playground::{DB_PASSWORD, DB_USERNAME, crd_schema, install_service_providers};
