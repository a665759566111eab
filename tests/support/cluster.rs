//! deckhand started against a fresh Kubernetes test API server, as the cluster-facing test
//! files use it. Included with `#[path]` next to `kube_fake`, so only those test binaries
//! compile the fake.
#![allow(dead_code)]

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};

use crate::{
    kube_fake::{
        KubeTestServer,
        custom::{CustomKind, Provisioner},
    },
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

/// What the test provider writes into a database's connection Secret.
pub const DB_PASSWORD: &str = "pw-Zq8v1TtPSyN2";
pub const DB_USERNAME: &str = "orders_app_user";

/// An openAPIV3Schema of tests/support/crds/, served in its kind's CRD.
pub fn crd_schema(json: &str) -> Value {
    serde_json::from_str(json).expect("a schema in JSON")
}

/// The kinds of the shipped classes, served with CRDs holding their schemas, with a provider that gets them ready in a few steps.
pub fn install_service_providers(kube: &KubeTestServer) {
    kube.register_custom(
        CustomKind::namespaced(
            "database.example.org/v1alpha1",
            "PostgreSQLInstance",
            "postgresqlinstances",
        )
        .with_schema(crd_schema(include_str!("crds/postgresqlinstances.json"))),
    );
    kube.register_custom(
        CustomKind::namespaced("s3.services.k8s.aws/v1alpha1", "Bucket", "buckets")
            .with_schema(crd_schema(include_str!("crds/buckets.json"))),
    );
    kube.register_custom(
        CustomKind::namespaced("dynamodb.services.k8s.aws/v1alpha1", "Table", "tables")
            .with_schema(crd_schema(include_str!("crds/tables.json"))),
    );
    kube.provision(Provisioner {
        plural: "postgresqlinstances".into(),
        condition: "Ready".into(),
        after_steps: 6,
        status: json!({ "address": "orders-db.c7x2.eu-west-1.rds.amazonaws.com", "port": 5432 }),
        secret_name_at: "spec.writeConnectionSecretToRef.name".into(),
        secret_data: BTreeMap::from([
            ("endpoint".into(), "orders-db.c7x2.eu-west-1.rds.amazonaws.com".into()),
            ("port".into(), "5432".into()),
            ("username".into(), DB_USERNAME.into()),
            ("password".into(), DB_PASSWORD.into()),
        ]),
    });
    kube.provision(Provisioner {
        plural: "buckets".into(),
        condition: "ACK.ResourceSynced".into(),
        after_steps: 3,
        status: json!({ "ackResourceMetadata": { "arn": "arn:aws:s3:::bucket" } }),
        secret_name_at: String::new(),
        secret_data: BTreeMap::new(),
    });
    kube.provision(Provisioner {
        plural: "tables".into(),
        condition: "ACK.ResourceSynced".into(),
        after_steps: 3,
        status: json!({ "tableStatus": "ACTIVE", "ackResourceMetadata": { "arn": "arn:aws:dynamodb:eu-west-1:1:table/t" } }),
        secret_name_at: String::new(),
        secret_data: BTreeMap::new(),
    });
}
