//! Benchmarks of the request path: `cargo bench --bench core`.
//!
//! - routing: text -> spec -> typed args -> RBAC -> approval decision, with 50 specs loaded;
//! - submit: POST /api/v1/requests through the real HTTP server, including the durable
//!   write (request row, first event, audit row) before the answer, on SQLite and, when
//!   DECKHAND_BENCH_PG_URL is set, PostgreSQL;
//! - env ready: `env create` from the HTTP request to the end of its event stream, against
//!   the Kubernetes test API server, and how many API calls one environment takes.

#[path = "../tests/support/kube/mod.rs"]
mod kube_fake;

use std::{collections::HashMap, hint::black_box, sync::Arc};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use deckhand::{
    actions::{Action, ActionContext, ActionError},
    commands::{Router, SpecContext, spec},
    configuration::Config,
    identity::Directory,
    startup::Builder,
};

/// 43 synthetic families on top of the 7 built-in commands: 50 specs.
fn specs_50() -> Vec<(String, String)> {
    let mut yaml = String::new();
    for i in 0..43 {
        yaml.push_str(&format!(
            r#"
- name: fam{i} do
  help: Synthetic command {i}
  pattern: '^fam{i} do (?P<name>\S+) to (?P<image>\S+)(?: replicas=(?P<n>\S+))?(?: ttl=(?P<ttl>\S+))?$'
  args:
    name: {{ type: name }}
    image: {{ type: image }}
    n: {{ type: int, min: 1, max: 50, default: "1" }}
    ttl: {{ type: duration, default: 8h }}
  action: noop
  allow: [group:developers]
  approval: {{ when: "n == '50'", approvers: [group:ops] }}
"#
        ));
    }
    vec![
        (
            "commands/core.yaml".into(),
            include_str!("../commands/core.yaml").into(),
        ),
        ("bench.yaml".into(), yaml),
    ]
}

struct Noop;

#[async_trait]
impl Action for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }
    async fn run(&self, _ctx: &ActionContext) -> Result<String, ActionError> {
        Ok("ok".into())
    }
}

fn routing(c: &mut Criterion) {
    let config = Config::defaults().expect("defaults");
    let actions: HashMap<String, Vec<String>> = [
        "help", "whoami", "requests", "request", "cancel", "approve", "deny", "noop",
    ]
    .into_iter()
    .map(|a| (a.to_owned(), Vec::new()))
    .collect();
    let specs = spec::compile_sources(
        specs_50(),
        &SpecContext {
            actions: &actions,
            config: &config,
        },
    )
    .expect("specs");
    assert_eq!(specs.len(), 50);
    let router = Router::new(specs);
    let who = Directory::from_config(&config).user("local").expect("local user");
    let texts = [
        "fam42 do checkout-preview to ghcr.io/acme/shop:1.4.2 replicas=3 ttl=2d",
        "fam0 do web to nginx",
        "help",
        "fam17 do api to registry.internal:5000/team/api@sha256:0123456789abcdef0123456789abcdef",
    ];
    c.bench_function("route (50 specs, 4 command mix)", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(router.route(&who, black_box(t)).is_ok());
            }
        })
    });
    c.bench_function("route unknown command (suggestions over 50 specs)", |b| {
        b.iter(|| black_box(router.route(&who, black_box("fam4 dp web to nginx")).is_err()))
    });
}

/// A multi-threaded runtime for the servers and a scratch directory for SQLite.
fn runtime_and_dir() -> (tokio::runtime::Runtime, tempfile::TempDir) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (rt, tempfile::tempdir().expect("tempdir"))
}

fn submit(c: &mut Criterion) {
    let (rt, dir) = runtime_and_dir();
    let mut targets = vec![(
        "sqlite",
        format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()),
    )];
    if let Ok(url) = std::env::var("DECKHAND_BENCH_PG_URL") {
        targets.push(("postgres", url));
    }
    for (label, url) in targets {
        let mut config = Config::defaults().expect("defaults");
        config.store.url = url;
        let running = rt.block_on(async {
            Builder::new(config)
                .action(Arc::new(Noop))
                .specs(specs_50())
                .start("127.0.0.1:0".parse().expect("addr"))
                .await
                .expect("server starts")
        });
        let endpoint = format!("http://{}/api/v1/requests", running.addr);
        let http = reqwest::Client::new();
        let body = serde_json::json!({ "text": "fam3 do checkout to ghcr.io/acme/shop:1.4.2 replicas=2" });
        c.bench_function(&format!("submit via HTTP API, durable ({label})"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let r = http
                        .post(&endpoint)
                        .bearer_auth("deckhand-local-dev-token")
                        .json(&body)
                        .send()
                        .await
                        .expect("submit");
                    assert_eq!(r.status().as_u16(), 201);
                })
            })
        });
        rt.block_on(running.shutdown());
    }
}

fn env_ready(c: &mut Criterion) {
    let (rt, dir) = runtime_and_dir();
    let kube = rt.block_on(kube_fake::KubeTestServer::start());
    // env create needs no controllers; their periodic passes over every stored object would
    // be measured as API latency of the fake, not of deckhand.
    kube.set_paused(true);
    let mut config = Config::defaults().expect("defaults");
    config.store.url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    config.kubernetes.url = kube.url();
    let running = rt.block_on(async {
        Builder::new(config)
            .start("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("server starts")
    });
    let client = deckhand::client::Client::new(&format!("http://{}", running.addr), "deckhand-local-dev-token");
    let n = std::sync::atomic::AtomicUsize::new(0);
    let create = || {
        rt.block_on(async {
            let name = format!("bench-{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let v = client.submit(&format!("env create {name}")).await.expect("submit");
            let id = v["request"]["id"].as_str().expect("id").to_owned();
            client.follow(&id, 0, |_| {}).await.expect("events");
            let done = client.get(&id).await.expect("get");
            assert_eq!(done["request"]["state"], "succeeded", "{done}");
            done
        })
    };
    kube.reset_requests();
    let first = create();
    let events = first["events"].as_array().cloned().unwrap_or_default();
    let t0 = first["request"]["created_at"].as_i64().unwrap_or(0);
    for e in &events {
        println!(
            "  +{:>4} ms  {}",
            e["at"].as_i64().unwrap_or(0) - t0,
            e["message"].as_str().unwrap_or("")
        );
    }
    // Only this environment's calls: the reaper lists namespaces on its own schedule.
    let calls: Vec<_> = kube
        .api_calls()
        .into_iter()
        .filter(|(_, p)| p.contains("bench-0"))
        .collect();
    println!(
        "env create: {} Kubernetes API calls for 5 objects (floor 5): {}",
        calls.len(),
        calls
            .iter()
            .map(|(m, p)| format!("{m} {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    c.bench_function("env create -> ready (HTTP API + SSE, test API server)", |b| {
        b.iter(create)
    });
    rt.block_on(running.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = routing, submit, env_ready
}
criterion_main!(benches);
