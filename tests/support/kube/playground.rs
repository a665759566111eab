//! The test API server as a local playground, where every deckhand command family works as on
//! a cluster with the shipped service classes' providers installed: what
//! `cargo run --example kube-testserver` sets up, and what tests/playground.rs runs the
//! README's walkthrough against (one function, so the two cannot drift).
//!
//! - The kinds of the shipped service classes (`services/`) are served with CRDs holding their
//!   schemas, and a provisioning controller makes their objects ready, writing the connection
//!   Secret the postgres class expects (tests/services.rs uses the same providers).
//! - Pods of load-test Jobs (deckhand's image, `loadtest.image`) run deckhand's real load
//!   generator in-process with the pod's own args, against the app the URL names.
//! - Every Service backed by a Deployment's ready pods answers HTTP (200 `hello from
//!   <deployment>` on any path and port) through the API server's service proxy, which proxy
//!   links use, and load tests reach the same server.
//! - deckhand may do exactly what the shipped ClusterRole (deploy/clusterrole.yaml) grants.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, Weak},
};

use serde_json::{Value, json};

use super::KubeTestServer;
use super::api::Shared;
use super::custom::{CustomKind, Provisioner};
use super::pod_runner::RunFn;
use super::{resources, util};

/// What the database provider writes into a postgres class's connection Secret.
pub const DB_PASSWORD: &str = "pw-Zq8v1TtPSyN2";
pub const DB_USERNAME: &str = "orders_app_user";

/// Load-test pods whose image starts with this run the load generator (the default
/// `loadtest.image` is `ghcr.io/acme/deckhand:0.1.0`).
pub const LOADGEN_IMAGE: &str = "ghcr.io/acme/deckhand";

/// Sets up `kube` as the playground (see the module docs).
pub fn install(kube: &KubeTestServer) {
    kube.authorize_with(include_str!("../../../deploy/clusterrole.yaml"));
    install_service_providers(kube);
    let apps = Apps::new(&kube.shared);
    let resolver = apps.clone();
    super::proxy::set_resolver(
        &kube.shared,
        Arc::new(move |ns: &str, service: &str| resolver.url_for_service(ns, service)),
    );
    kube.set_pod_runner(LOADGEN_IMAGE, loadgen_pod(apps));
}

/// An openAPIV3Schema of tests/support/crds/, served in its kind's CRD.
pub fn crd_schema(json: &str) -> Value {
    serde_json::from_str(json).expect("a schema in JSON")
}

/// The kinds of the shipped classes, served with CRDs holding their schemas, with a provider
/// that gets them ready in a few steps.
pub fn install_service_providers(kube: &KubeTestServer) {
    kube.register_custom(
        CustomKind::namespaced(
            "database.example.org/v1alpha1",
            "PostgreSQLInstance",
            "postgresqlinstances",
        )
        .with_schema(crd_schema(include_str!("../crds/postgresqlinstances.json"))),
    );
    kube.register_custom(
        CustomKind::namespaced("s3.services.k8s.aws/v1alpha1", "Bucket", "buckets")
            .with_schema(crd_schema(include_str!("../crds/buckets.json"))),
    );
    kube.register_custom(
        CustomKind::namespaced("dynamodb.services.k8s.aws/v1alpha1", "Table", "tables")
            .with_schema(crd_schema(include_str!("../crds/tables.json"))),
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

/// One small HTTP server per deployed app, started the first time something reaches it.
#[derive(Clone)]
struct Apps {
    shared: Weak<Shared>,
    /// (namespace, deployment) -> `http://127.0.0.1:PORT`
    running: Arc<Mutex<HashMap<(String, String), String>>>,
}

impl Apps {
    fn new(shared: &Arc<Shared>) -> Self {
        Apps {
            shared: Arc::downgrade(shared),
            running: Arc::default(),
        }
    }

    /// The server of the Deployment whose pods `service` selects; None when there is no such
    /// Service or Deployment (the API server's own 404/503 answer then).
    fn url_for_service(&self, ns: &str, service: &str) -> Option<String> {
        let shared = self.shared.upgrade()?;
        let deployment = {
            let st = shared.lock();
            let svc = st.get(resources::lookup("services")?, ns, service)?.clone();
            let selector = util::path(&svc, "spec.selector")?.as_object()?.clone();
            if selector.is_empty() {
                return None;
            }
            st.list(resources::lookup("deployments")?, Some(ns))
                .into_iter()
                .find(|d| {
                    let labels = util::path(d, "spec.template.metadata.labels");
                    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                })
                .map(|d| util::str_at(&d, "metadata.name").to_owned())?
        };
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let key = (ns.to_owned(), deployment.clone());
        if let Some(url) = running.get(&key) {
            return Some(url.clone());
        }
        let url = serve_app(&shared, &deployment)?;
        running.insert(key, url.clone());
        Some(url)
    }
}

/// Starts the app's server: 200 `hello from <deployment>` on any method and path, until the
/// API server stops.
fn serve_app(shared: &Shared, deployment: &str) -> Option<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    listener.set_nonblocking(true).ok()?;
    let addr = listener.local_addr().ok()?;
    let listener = tokio::net::TcpListener::from_std(listener).ok()?;
    let body = format!("hello from {deployment}\n");
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { body }
    });
    let mut stop = shared.shutdown.subscribe();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await;
    });
    Some(format!("http://{addr}"))
}

/// What a load-test pod's container does with its args (`loadgen --url U --rate R --duration D
/// --timeout T --json`): runs deckhand's load generator, with a Service URL
/// (`http://app.ns.svc:PORT/path`) sent to that app's server, and prints the JSON result.
fn loadgen_pod(apps: Apps) -> RunFn {
    use deckhand::loadgen::{self, Mode, Plan, Target, parse_duration};
    Arc::new(move |args: Vec<String>| {
        let apps = apps.clone();
        Box::pin(async move {
            let flag = |name: &str| {
                args.iter()
                    .position(|a| a == name)
                    .and_then(|i| args.get(i + 1))
                    .cloned()
                    .ok_or_else(|| format!("error: the pod has no {name}"))
            };
            if args.first().map(String::as_str) != Some("loadgen") || !args.iter().any(|a| a == "--json") {
                return Err(format!("error: unexpected args {args:?}"));
            }
            let url = flag("--url")?;
            let rest = url.strip_prefix("http://").unwrap_or(&url);
            let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = host_port.split(':').next().unwrap_or_default();
            let labels: Vec<&str> = host.split('.').collect();
            let target = match labels.as_slice() {
                [svc, ns, "svc", ..] => match apps.url_for_service(ns, svc) {
                    Some(base) => format!("{base}/{path}"),
                    None => return Err(format!("error: no app answers at {url}: connection refused")),
                },
                _ => url.clone(),
            };
            let plan = Plan {
                target: Target::new(&target).map_err(|e| format!("error: {e}"))?,
                mode: Mode::rate(flag("--rate")?.parse().map_err(|_| "error: bad --rate".to_owned())?)
                    .map_err(|e| format!("error: {e}"))?,
                duration: parse_duration(&flag("--duration")?).map_err(|e| format!("error: {e}"))?,
                timeout: parse_duration(&flag("--timeout")?).map_err(|e| format!("error: {e}"))?,
            };
            let mut report = loadgen::run(&plan).await.map_err(|e| format!("error: {e}"))?;
            // As the pod prints it: with its own URL.
            report.url = url;
            let json = serde_json::to_string(&report).map_err(|e| format!("error: {e}"))?;
            Ok(format!("{json}\n"))
        })
    })
}
