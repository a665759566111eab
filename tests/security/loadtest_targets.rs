//! Security tests: load-test targets (issue 12, item 7). A target counts as inside the
//! environment only when the load generator's own URI parser reads its host as a Service of
//! the environment's namespace; everything else (fragments, userinfo, IP and numeric hosts,
//! other namespaces) waits for ops. Load-test pods may only reach their namespace and DNS
//! unless ops approved the run as outside. Runs deckhand against the Kubernetes test API
//! server with `shop` (port 8080) deployed in alice's environment `dev1`.

use std::{sync::Arc, time::Duration};

use axum::{Router, routing::get};
use deckhand::loadgen::{self, Mode, Plan, Target, parse_duration};
use serde_json::{Value, json};

use crate::{
    cluster::{self, Env, state},
    kube_fake::{pod_runner::RunFn, selectors::LabelSelector},
    support::{Backend, backends},
};

const IMAGE: &str = "ghcr.io/acme/deckhand";

/// A local app answering `ok` on every path.
async fn backend() -> String {
    let app = Router::new().fallback(get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// The load-test pod's process: deckhand's load generator with the pod's rate and duration,
/// sent to the local app instead of the in-cluster host.
fn loadgen_pod(backend: String) -> RunFn {
    Arc::new(move |args: Vec<String>| {
        let backend = backend.clone();
        Box::pin(async move {
            let flag = |name: &str| {
                args.iter()
                    .position(|a| a == name)
                    .and_then(|i| args.get(i + 1))
                    .cloned()
                    .ok_or_else(|| format!("error: the pod has no {name}"))
            };
            let url = flag("--url")?;
            let plan = Plan {
                target: Target::new(&format!("{backend}/")).map_err(|e| e.to_string())?,
                mode: Mode::rate(flag("--rate")?.parse().map_err(|_| "bad rate".to_owned())?)
                    .map_err(|e| e.to_string())?,
                duration: parse_duration(&flag("--duration")?).map_err(|e| e.to_string())?,
                timeout: parse_duration(&flag("--timeout")?).map_err(|e| e.to_string())?,
            };
            let mut report = loadgen::run(&plan).await.map_err(|e| format!("error: {e}"))?;
            report.url = url;
            Ok(format!("{}\n", serde_json::to_string(&report).expect("json")))
        })
    })
}

async fn start(store: Backend) -> Env {
    let env = cluster::start_on(store, |_| {}).await;
    env.kube.set_pod_runner(IMAGE, loadgen_pod(backend().await));
    for text in ["env create dev1", "deploy ghcr.io/acme/shop:1.0 to dev1 port=8080"] {
        let v = env.run("alice", text).await;
        assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
    }
    env
}

fn id(v: &Value) -> String {
    v["request"]["id"].as_str().expect("id").to_owned()
}

/// The approval prompt's text.
fn approval_message(v: &Value) -> String {
    v["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["kind"] == "approval"))
        .and_then(|e| e["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Submits a load test of `target` in dev1 and checks it waits for ops, says why, and made
/// no Job.
async fn assert_outside(env: &Env, target: &str, why: &str) {
    let v = env
        .run("alice", &format!("loadtest {target} in dev1 rate=5 duration=1s"))
        .await;
    assert_eq!(state(&v), "pending_approval", "{target}: {v:#}");
    let prompt = approval_message(&v);
    assert!(
        prompt.contains("outside dev1") && prompt.contains(why),
        "{target}: the approvers are told where the load goes ({why}): {prompt}"
    );
    assert!(
        env.kube.list_objects("jobs", Some("dev1")).is_empty(),
        "{target}: no Job before ops approve"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fragment_host_trick_counts_as_outside() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start(store).await;
        // The load generator connects to 2852039166 (= 169.254.169.254); `#x.dev1.svc` is a
        // fragment it never sends.
        assert_outside(&env, "http://2852039166#x.dev1.svc", "169.254.169.254").await;
        assert_outside(&env, "http://shop#.dev1.svc", "fragment").await;
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn numeric_and_ip_hosts_count_as_outside() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start(store).await;
        for (target, why) in [
            ("http://2852039166/", "169.254.169.254"),
            ("http://0xA9FEA9FE/", "169.254.169.254"),
            ("http://0251.0376.0251.0376/", "169.254.169.254"),
            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
            ("http://10.0.0.12:8080/", "10.0.0.12"),
            ("http://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254"),
            ("http://[fd00::1]:8080/", "fd00::1"),
        ] {
            assert_outside(&env, target, why).await;
        }
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn userinfo_target_is_refused_with_422() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start(store).await;
        // The generator sends no URL credentials, so ops could only approve a run that cannot
        // work: refused at once, saying why, and nothing stored or run.
        for target in [
            "http://shop.dev1.svc@169.254.169.254/",
            "http://u:p@shop.dev1.svc:8080/",
        ] {
            let (status, v) = env
                .app
                .submit_as("alice", &format!("loadtest {target} in dev1 rate=5 duration=1s"))
                .await;
            assert_eq!(status, 422, "{target}: {v}");
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("user@") && message.contains("not a Service of dev1"),
                "{target}: {message}"
            );
        }
        assert!(env.kube.list_objects("jobs", Some("dev1")).is_empty());
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_of_another_namespace_counts_as_outside() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start(store).await;
        for target in [
            "http://shop.other/",
            "http://shop.other.svc:8080/",
            "http://shop.other.svc.cluster.local/",
        ] {
            assert_outside(&env, target, "Service shop of namespace other").await;
        }
        for target in ["http://shop.dev1.svc.other.svc/", "http://shop.dev1.svc.example.com/"] {
            assert_outside(&env, target, "not a Service").await;
        }
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inside_service_still_runs_without_approval() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start(store).await;
        for target in [
            "shop",
            "http://shop:8080/",
            "http://shop.dev1:8080/",
            "http://shop.dev1.svc:8080/",
            "http://SHOP.dev1.svc.cluster.local:8080/x?y=1",
        ] {
            let v = env
                .run("alice", &format!("loadtest {target} in dev1 rate=5 duration=1s"))
                .await;
            assert_eq!(state(&v), "succeeded", "{target}: {v:#}");
            assert!(approval_message(&v).is_empty(), "{target}: no approval asked");
        }
        env.app.shutdown().await;
    }
}

/// The NetworkPolicies of dev1 that select a pod with these labels.
fn policies_for(env: &Env, labels: &Value) -> Vec<Value> {
    env.kube
        .list_objects("networkpolicies", Some("dev1"))
        .into_iter()
        .filter(|np| LabelSelector::from_object(&np["spec"]["podSelector"]).matches(labels.as_object()))
        .collect()
}

/// Egress rules of every policy selecting the pod, as a set.
fn egress_of(policies: &[Value]) -> Vec<Value> {
    let mut rules: Vec<Value> = policies
        .iter()
        .filter(|np| {
            np["spec"]["policyTypes"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("Egress")))
        })
        .flat_map(|np| np["spec"]["egress"].as_array().cloned().unwrap_or_default())
        .collect();
    rules.sort_by_key(Value::to_string);
    rules.dedup();
    rules
}

/// Starts a long load test of `target`, approves it if it waits, and returns its id and its
/// Job's pod labels once the Job exists.
async fn running(env: &Env, target: &str) -> (String, Value) {
    let (status, v) = env
        .app
        .submit_as("alice", &format!("loadtest {target} in dev1 rate=5 duration=60s"))
        .await;
    assert_eq!(status, 201, "{v}");
    let id = id(&v);
    if v["request"]["state"] == "pending_approval" {
        let (status, v) = env.app.approve("omar", &id).await;
        assert!(status == 200 || status == 201, "{v}");
    }
    let name = format!("loadtest-{}", id.trim_start_matches("r-"));
    assert!(
        env.kube
            .wait_for(Duration::from_secs(10), |k| k.object("jobs", "dev1", &name).is_some())
            .await,
        "the Job {name} is created"
    );
    let job = env.object("jobs", "dev1", &name);
    (id, job["spec"]["template"]["metadata"]["labels"].clone())
}

async fn cancel(env: &Env, id: &str) {
    let (status, v) = env.app.submit_as("alice", &format!("cancel {id}")).await;
    assert!(status == 201 || status == 200, "{v}");
    env.app.wait_for_state(id, &["cancelled", "failed", "succeeded"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loadtest_pods_get_egress_policy_limited_to_environment() {
    for store in backends() {
        eprintln!("-- {store:?}");
        let env = start(store).await;
        let namespace_and_dns = vec![
            json!({ "to": [{
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
            "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
        }], "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }] }),
            json!({ "to": [{ "podSelector": {} }] }),
        ];
        let (id, labels) = running(&env, "shop").await;
        // Policies add up: every policy selecting the pods counts, so the environment's own
        // (which lets pods reach the internet) must not select them.
        let policies = policies_for(&env, &labels);
        assert!(!policies.is_empty(), "a NetworkPolicy selects the load-test pods");
        assert_eq!(egress_of(&policies), namespace_and_dns, "{policies:#?}");
        for np in &policies {
            assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]), "{np:#}");
            assert!(np["spec"]["ingress"].as_array().is_none_or(Vec::is_empty), "{np:#}");
        }
        // The app's pods keep the environment's policy.
        let shop = env
            .kube
            .list_objects("pods", Some("dev1"))
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] == "shop")
            .expect("a shop pod");
        let app_policies = policies_for(&env, &shop["metadata"]["labels"]);
        assert!(
            app_policies
                .iter()
                .any(|np| np["metadata"]["name"] == "deckhand-default-deny"),
            "{app_policies:#?}"
        );
        cancel(&env, &id).await;

        // Approved by ops as outside: the environment's usual egress, for that run only.
        let (id, labels) = running(&env, "http://example.com/").await;
        let approved = env
            .kube
            .wait_for(Duration::from_secs(10), |k| {
                k.list_objects("networkpolicies", Some("dev1")).iter().any(|np| {
                    LabelSelector::from_object(&np["spec"]["podSelector"]).matches(labels.as_object())
                        && np["spec"]["egress"].to_string().contains("0.0.0.0/0")
                })
            })
            .await;
        assert!(approved, "the approved run may leave the namespace");
        cancel(&env, &id).await;
        let name = format!("loadtest-{}", id.trim_start_matches("r-"));
        assert!(
            env.kube
                .wait_for(Duration::from_secs(10), |k| k
                    .object("networkpolicies", "dev1", &name)
                    .is_none())
                .await,
            "the run's own policy goes with its Job"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_test_api_server_refuses_network_policies_a_real_one_refuses() {
    // One backend: this checks the test API server itself; deckhand only makes the namespace.
    let env = cluster::start().await;
    assert_eq!(state(&env.run("alice", "env create dev1").await), "succeeded");
    let url = format!(
        "{}/apis/networking.k8s.io/v1/namespaces/dev1/networkpolicies",
        env.kube.url()
    );
    let http = reqwest::Client::new();
    for (spec, field) in [
        (
            json!({ "podSelector": {}, "egress": [{ "to": [{}] }] }),
            "spec.egress[0].to[0]",
        ),
        (
            json!({ "podSelector": {}, "egress": [{ "to": [{ "podSelector": {}, "ipBlock": { "cidr": "0.0.0.0/0" } }] }] }),
            "spec.egress[0].to[0]",
        ),
        (
            json!({ "podSelector": {}, "egress": [{ "ports": [{ "protocol": "ICMP", "port": 53 }] }] }),
            "spec.egress[0].ports[0].protocol",
        ),
        (
            json!({ "podSelector": {}, "egress": [{ "to": [{ "ipBlock": { "cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"] } }] }] }),
            "spec.egress[0].to[0].ipBlock.except[0]",
        ),
        (
            json!({ "podSelector": { "matchExpressions": [{ "key": "a", "operator": "NotIn" }] } }),
            "spec.podSelector.matchExpressions[0].values",
        ),
        (json!({ "podSelector": {}, "egres": [] }), "spec.egres"),
        (
            json!({ "podSelector": {}, "policyTypes": ["Outgress"] }),
            "spec.policyTypes[0]",
        ),
    ] {
        let body = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": { "name": "bad" },
            "spec": spec,
        });
        let resp = http.post(&url).json(&body).send().await.expect("POST");
        assert_eq!(resp.status().as_u16(), 422, "{body}");
        let status: Value = resp.json().await.expect("a Status");
        let causes = status["details"]["causes"].to_string();
        assert!(causes.contains(field), "{field} in {causes}");
    }
    env.app.shutdown().await;
}
