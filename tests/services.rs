//! Cloud services from templates against the test API server, whose provisioning
//! controller marks claims ready and writes their connection Secrets with real values: the
//! values must reach the app's pods through Kubernetes and nowhere else.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::{
    collections::BTreeMap,
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use cluster::{Env, messages, outcome, start_on, state};
use kube_fake::custom::Provisioner;
use serde_json::{Value, json};
use support::{Backend, backends};

use cluster::{DB_PASSWORD as PASSWORD, DB_USERNAME as USERNAME, install_service_providers as install_providers};

/// Every log line deckhand writes in this test binary (tracing, all levels deckhand has).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buf
    })
    .clone()
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn start(backend: Backend) -> Env {
    let env = start_on(backend, |c| {
        c.services.ready_deadline = "20s".parse().expect("duration")
    })
    .await;
    install_providers(&env.kube);
    env
}

fn id(v: &Value) -> String {
    v["request"]["id"].as_str().expect("request id").to_owned()
}

/// Approves `v`'s request as an ops person and waits for it to end.
async fn approve(env: &Env, v: &Value) -> Value {
    let id = id(v);
    let (status, body) = env.app.approve("olga", &id).await;
    assert_eq!(status, 200, "{body}");
    env.app.wait_for_state(&id, &["succeeded", "failed", "cancelled"]).await
}

fn leaks(text: &str) -> Vec<&'static str> {
    static B64: OnceLock<(String, String)> = OnceLock::new();
    let (pw64, user64) = B64.get_or_init(|| {
        use base64::Engine;
        let e = base64::engine::general_purpose::STANDARD;
        (e.encode(PASSWORD), e.encode(USERNAME))
    });
    let mut found = Vec::new();
    if text.contains(PASSWORD) {
        found.push("the password");
    }
    if text.contains(USERNAME) {
        found.push("the username");
    }
    if text.contains(pw64.as_str()) || text.contains(user64.as_str()) {
        found.push("a base64-encoded secret value");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provision_bind_and_delete_a_database_without_leaking_its_secret() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let logs = captured_logs();
        let env = start(backend).await;
        assert_eq!(state(&env.run("alice", "env create checkout").await), "succeeded");
        let deployed = env
            .run("alice", "deploy ghcr.io/acme/shop:1.4.2 to checkout port=8080")
            .await;
        assert_eq!(state(&deployed), "succeeded", "{deployed:#}");

        // A cost-bearing class waits for ops, and the prompt says what would be bought where.
        let asked = env
            .run("alice", "service provision postgres orders-db in checkout storage=50")
            .await;
        assert_eq!(state(&asked), "pending_approval", "{asked:#}");
        let prompt = messages(&asked)
            .into_iter()
            .find(|m| m.starts_with("Waiting for approval"))
            .expect("an approval event");
        assert!(
            prompt.contains("by 1 of group:ops")
                && prompt.contains(
                    "class postgres, cost-bearing (size=small storage=50 highly_available=false), orders-db in checkout"
                ),
            "{prompt}"
        );
        assert!(
            env.kube
                .object("postgresqlinstances", "checkout", "orders-db")
                .is_none(),
            "nothing is applied before the approval"
        );

        let provisioned = approve(&env, &asked).await;
        assert_eq!(state(&provisioned), "succeeded", "{provisioned:#}");
        let msgs = messages(&provisioned);
        for expected in [
            "PostgreSQLInstance orders-db applied (size=small storage=50 highly_available=false)",
            "waiting for PostgreSQLInstance orders-db to be ready (Ready=True)",
            "PostgreSQLInstance orders-db: Ready=False (Creating)",
            "PostgreSQLInstance orders-db: Ready=True (Available)",
        ] {
            assert!(msgs.iter().any(|m| m == expected), "missing {expected:?} in {msgs:#?}");
        }
        assert_eq!(
            outcome(&provisioned),
            "orders-db (postgres) is ready in checkout at orders-db.c7x2.eu-west-1.rds.amazonaws.com:5432; \
         connection details in Secret orders-db-conn (endpoint, port, username, password); \
         `service bind orders-db to <app> in checkout` wires it into an app"
        );
        let claim = env.object("postgresqlinstances", "checkout", "orders-db");
        assert_eq!(claim["spec"]["parameters"]["storageGB"], 50);
        assert_eq!(claim["spec"]["parameters"]["size"], "small");
        assert_eq!(claim["spec"]["writeConnectionSecretToRef"]["name"], "orders-db-conn");
        let labels = &claim["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "deckhand");
        assert_eq!(labels["deckhand.dev/service"], "orders-db");
        assert_eq!(labels["deckhand.dev/class"], "postgres");
        assert_eq!(labels["deckhand.dev/owner"], "alice");
        assert_eq!(labels["deckhand.dev/request"], asked["request"]["id"]);
        // The claim is deckhand's by server-side apply, field by field.
        let managers: Vec<(&str, &str)> = claim["metadata"]["managedFields"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|f| {
                        (
                            f["manager"].as_str().unwrap_or(""),
                            f["operation"].as_str().unwrap_or(""),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(managers, vec![("deckhand", "Apply")], "{claim:#}");
        assert!(
            claim["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:parameters"]
                .get("f:storageGB")
                .is_some(),
            "{claim:#}"
        );

        // A variable someone set by hand is a conflict the binding reports, not takes over.
        let by_hand = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "shop", "env": [{"name": "PGDATABASE", "value": "legacy"}]}
        ]}}}});
        env.kube
            .patch_as(
                "kubectl-edit",
                "/apis/apps/v1/namespaces/checkout/deployments/shop",
                &by_hand,
            )
            .await;
        let refused = env.run("alice", "service bind orders-db to shop in checkout").await;
        assert_eq!(state(&refused), "failed", "{refused:#}");
        assert_eq!(
            outcome(&refused),
            "shop already sets some of these variables another way (Apply failed with 1 conflict: \
             conflict with \"kubectl-edit\" using apps/v1: \
             .spec.template.spec.containers[name=\"shop\"].env[name=\"PGDATABASE\"].value); \
             remove them or bind under other names"
        );
        let d = env.object("deployments", "checkout", "shop");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "legacy",
            "{d:#}"
        );
        let removed = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "shop", "env": [{"name": "PGDATABASE", "$patch": "delete"}]}
        ]}}}});
        env.kube
            .patch_as(
                "kubectl-edit",
                "/apis/apps/v1/namespaces/checkout/deployments/shop",
                &removed,
            )
            .await;

        // Binding: the Secret's keys as variables, the IAM role on a ServiceAccount, a rollout.
        let bound = env.run("alice", "service bind orders-db to shop in checkout").await;
        assert_eq!(state(&bound), "succeeded", "{bound:#}");
        let msgs = messages(&bound);
        assert!(
            msgs.iter()
                .any(|m| m == "ServiceAccount shop applied with eks.amazonaws.com/role-arn"),
            "{msgs:#?}"
        );
        assert!(
        msgs.iter().any(|m| m
            == "Deployment shop: PGHOST, PGPASSWORD, PGPORT, PGUSER, PGDATABASE, serviceAccountName shop; watching the rollout"),
        "{msgs:#?}"
    );
        assert!(
            outcome(&bound).starts_with("orders-db (postgres) is bound to shop in checkout (1/1 updated, 1 available"),
            "{}",
            outcome(&bound)
        );
        let d = env.object("deployments", "checkout", "shop");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "shop");
        let container = &pod["containers"][0];
        assert_eq!(
            container["image"], "ghcr.io/acme/shop:1.4.2",
            "the deploy's fields stay"
        );
        let vars: BTreeMap<&str, &Value> = container["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|v| (v["name"].as_str().unwrap_or_default(), v))
            .collect();
        for (var, key) in [
            ("PGHOST", "endpoint"),
            ("PGPORT", "port"),
            ("PGUSER", "username"),
            ("PGPASSWORD", "password"),
        ] {
            assert_eq!(
                vars[var]["valueFrom"]["secretKeyRef"],
                json!({ "name": "orders-db-conn", "key": key }),
                "{var}"
            );
        }
        assert_eq!(vars["PGDATABASE"]["value"], "orders_db");
        assert_eq!(d["metadata"]["labels"]["service.deckhand.dev/orders-db"], "postgres");
        let sa = env.object("serviceaccounts", "checkout", "shop");
        assert_eq!(
            sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::123456789012:role/deckhand-checkout-shop"
        );
        // The rollout really replaced the pods: the new ones carry the binding.
        let pods = env.kube.list_objects("pods", Some("checkout"));
        assert!(
            pods.iter()
                .any(|p| p["spec"]["serviceAccountName"] == "shop" && p["metadata"]["deletionTimestamp"].is_null()),
            "{pods:#?}"
        );
        // A redeploy keeps the binding: it belongs to its own field manager.
        let redeployed = env
            .run("alice", "deploy ghcr.io/acme/shop:1.4.3 to checkout port=8080")
            .await;
        assert_eq!(state(&redeployed), "succeeded", "{redeployed:#}");
        let d = env.object("deployments", "checkout", "shop");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/acme/shop:1.4.3"
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array()
                .map(Vec::len),
            Some(5)
        );

        let listed = env.run("bob", "service list checkout").await;
        assert_eq!(state(&listed), "succeeded");
        let text = support::output_of(&listed);
        assert!(
        text.contains("orders-db  postgres  checkout  ready  size=small storage=50 highly_available=false  orders-db.c7x2.eu-west-1.rds.amazonaws.com:5432  bound to shop"),
        "{text}"
    );

        // Deleting names the apps that would break, before anything is stored or deleted.
        let (status, refused) = env.app.submit_as("alice", "service delete orders-db in checkout").await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(
            refused["error"]["message"],
            "orders-db is bound to shop in checkout; deleting it would break them. Unbind or delete those apps first, or add `force` (ops approve it)"
        );
        assert!(
            env.kube
                .object("postgresqlinstances", "checkout", "orders-db")
                .is_some()
        );
        let forced = env.run("alice", "service delete orders-db in checkout force").await;
        assert_eq!(state(&forced), "pending_approval", "{forced:#}");
        let deleted = approve(&env, &forced).await;
        assert_eq!(state(&deleted), "succeeded", "{deleted:#}");
        assert!(
            messages(&deleted)
                .iter()
                .any(|m| m.starts_with("orders-db is bound to shop:")),
            "{deleted:#}"
        );
        assert!(
            env.kube
                .object("postgresqlinstances", "checkout", "orders-db")
                .is_none()
        );

        // The Secret holds the values (so the check below could fail) ...
        let secret = env.object("secrets", "checkout", "orders-db-conn");
        assert!(!leaks(&secret.to_string()).is_empty(), "{secret}");
        // ... and they appear in no chat message (the stored events are what surfaces post),
        // no API response and no log line.
        let mut answers = Vec::new();
        for v in [&asked, &provisioned, &bound, &listed, &forced, &deleted] {
            let (_, view) = env.app.get_as("olga", &format!("/api/v1/requests/{}", id(v))).await;
            answers.push(view.to_string());
            let sse = env
                .app
                .http
                .get(format!("{}/api/v1/requests/{}/events", env.app.url, id(v)))
                .bearer_auth(support::token("olga"))
                .send()
                .await
                .expect("events")
                .text()
                .await
                .expect("events body");
            answers.push(sse);
        }
        let (_, all) = env.app.get_as("olga", "/api/v1/requests?scope=all&limit=100").await;
        answers.push(all.to_string());
        for (i, a) in answers.iter().enumerate() {
            assert!(leaks(a).is_empty(), "API answer {i} leaks {:?}: {a}", leaks(a));
        }
        let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
        if std::env::var_os("SHOW_LOGS").is_some() {
            eprintln!("{logged}");
        }
        assert!(logged.contains("orders-db"), "deckhand's logs are captured: {logged}");
        assert!(leaks(&logged).is_empty(), "the logs leak {:?}", leaks(&logged));
        // Deckhand never asked the API server for a Secret at all.
        let secret_calls: Vec<_> = env
            .kube
            .requests()
            .into_iter()
            .filter(|(_, p)| p.contains("/secrets"))
            .collect();
        assert!(secret_calls.is_empty(), "{secret_calls:?}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_parameters_are_refused_before_anything_is_stored_or_applied() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend).await;
        assert_eq!(state(&env.run("alice", "env create params").await), "succeeded");
        env.kube.reset_requests();
        let (_, before) = env.app.get_as("root", "/api/v1/requests?scope=all").await;
        let cases = [
            (
                "service provision postgres db in params size=huge",
                "parameter `size`: 'huge' is not allowed; use one of small, medium, large (class postgres)",
            ),
            (
                "service provision postgres db in params storage=5000",
                "parameter `storage`: '5000' is not allowed; use a whole number from 20 to 1000 (class postgres)",
            ),
            (
                "service provision postgres db in params highly_available=yes",
                "parameter `highly_available`: 'yes' is not allowed; use true or false (class postgres)",
            ),
            (
                "service provision postgres db in params colour=blue",
                "unknown parameter `colour`; this class takes size, storage, version, highly_available (class postgres)",
            ),
            (
                "service provision postgres db in params size={{7*7}}",
                "parameter `size`: '{{7*7}}' is not allowed; use one of small, medium, large (class postgres)",
            ),
            (
                "service provision mysql db in params",
                "there is no service class 'mysql'; the classes are dynamodb-table, postgres, s3-bucket",
            ),
        ];
        for (text, want) in cases {
            let (status, v) = env.app.submit_as("alice", text).await;
            assert_eq!(status, 422, "{text}: {v}");
            assert_eq!(v["error"]["message"], want, "{text}");
        }
        let (_, after) = env.app.get_as("root", "/api/v1/requests?scope=all").await;
        assert_eq!(before, after, "no request was stored");
        let writes: Vec<_> = env.kube.api_calls().into_iter().filter(|(m, _)| m != "GET").collect();
        assert!(writes.is_empty(), "nothing was applied: {writes:?}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bucket_needs_no_approval_and_binds_by_identity_alone() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend).await;
        assert_eq!(state(&env.run("bob", "env create media").await), "succeeded");
        assert_eq!(
            state(&env.run("bob", "deploy ghcr.io/acme/thumbs:2.0 to media").await),
            "succeeded"
        );
        let made = env
            .run(
                "bob",
                "service provision s3-bucket uploads in media region=eu-central-1 versioning=true",
            )
            .await;
        assert_eq!(state(&made), "succeeded", "{made:#}");
        assert_eq!(
            outcome(&made),
            "uploads (s3-bucket) is ready in media at s3://acme-media-uploads; `service bind uploads to <app> in media` wires it into an app"
        );
        let bucket = env.object("buckets", "media", "uploads");
        assert_eq!(bucket["spec"]["versioning"]["status"], "Enabled");
        assert_eq!(
            bucket["metadata"]["annotations"]["services.k8s.aws/region"],
            "eu-central-1"
        );
        let bound = env.run("bob", "service bind uploads to thumbs in media").await;
        assert_eq!(state(&bound), "succeeded", "{bound:#}");
        let d = env.object("deployments", "media", "thumbs");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["env"],
            json!([{ "name": "AWS_REGION", "value": "eu-central-1" }, { "name": "S3_BUCKET", "value": "acme-media-uploads" }])
        );
        assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "thumbs");
        // Binding again converges: the same variables, once each.
        let again = env.run("bob", "service bind uploads to thumbs in media").await;
        assert_eq!(state(&again), "succeeded", "{again:#}");
        let d = env.object("deployments", "media", "thumbs");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        // Unbound services delete without approval outside prod.
        let (status, v) = env
            .app
            .submit_as("bob", "service bind nothing to thumbs in media")
            .await;
        assert_eq!(status, 422);
        assert_eq!(
            v["error"]["message"],
            "there is no service nothing in media; `service list media` shows what there is"
        );
        let (status, v) = env.app.submit_as("bob", "service bind uploads to ghost in media").await;
        assert_eq!(status, 201, "{v}");
        let ghost = env.app.wait_for_state(&id(&v), &["succeeded", "failed"]).await;
        assert_eq!(
            outcome(&ghost),
            "there is no app ghost in media; deploy it first (`deploy <image> to media as ghost`)"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_that_never_gets_ready_fails_with_the_deadline_and_its_state() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_on(backend, |c| c.services.ready_deadline = "2s".parse().expect("duration")).await;
        install_providers(&env.kube);
        env.kube.provision(Provisioner {
            plural: "tables".into(),
            condition: "ACK.ResourceSynced".into(),
            after_steps: u32::MAX,
            status: json!({}),
            secret_name_at: String::new(),
            secret_data: BTreeMap::new(),
        });
        assert_eq!(state(&env.run("alice", "env create slow").await), "succeeded");
        let asked = env
            .run("alice", "service provision dynamodb-table events in slow")
            .await;
        assert_eq!(state(&asked), "pending_approval");
        let failed = approve(&env, &asked).await;
        assert_eq!(state(&failed), "failed", "{failed:#}");
        assert_eq!(
            outcome(&failed),
            "Table events in slow is not ready after 2s (ACK.ResourceSynced=False (Creating)); the platform team can look at it with `kubectl describe tables events -n slow`"
        );
        env.app.shutdown().await;
    }
}

const CACHE_CLASS: &str = r#"
name: cache
description: Redis cluster (found through discovery; no plural given)
parameters:
  nodes: { type: int, min: 1, max: 6, default: 1, size: true }
template: |
  apiVersion: cache.example.org/v1beta1
  kind: RedisCluster
  metadata:
    name: {{ name }}
  spec:
    nodes: {{ params.nodes }}
    secretName: {{ name }}-redis
ready: { path: status.phase, value: Running }
endpoint: "{{ status.host }}:6379"
connection: { secret: "{{ name }}-redis", keys: [REDIS_PASSWORD] }
bind:
  envFrom: true
  values: { REDIS_HOST: "{{ name }}.{{ env }}.cache.internal" }
"#;

const QUEUE_CLASS: &str = r#"
name: queue
description: a message queue whose provider this cluster lacks
template: |
  apiVersion: mq.example.org/v1
  kind: Queue
  metadata:
    name: {{ name }}
ready: { condition: Ready }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn classes_from_a_directory_use_discovery_and_say_when_a_provider_is_missing() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("cache.yaml"), CACHE_CLASS).expect("write");
        std::fs::write(dir.path().join("queue.yaml"), QUEUE_CLASS).expect("write");
        let path = dir.path().to_owned();
        let env = start_on(backend, move |c| {
            c.services.dir = path;
            c.services.ready_deadline = "20s".parse().expect("duration");
        })
        .await;
        env.kube.register_custom(kube_fake::custom::CustomKind::namespaced(
            "cache.example.org/v1beta1",
            "RedisCluster",
            "redisclusters",
        ));
        // The platform team adds the class's rule to deckhand's ClusterRole, as
        // deploy/clusterrole.yaml asks.
        let mut role = include_str!("../deploy/clusterrole.yaml").to_owned();
        role.push_str(
        "  - apiGroups: [cache.example.org]\n    resources: [redisclusters]\n    verbs: [list, watch, create, patch, delete]\n",
    );
        env.kube.authorize_with(&role);
        env.kube.provision(Provisioner {
            plural: "redisclusters".into(),
            condition: "Ready".into(),
            after_steps: 2,
            status: json!({ "phase": "Running", "host": "redis-7f.cache.internal" }),
            secret_name_at: "spec.secretName".into(),
            secret_data: BTreeMap::from([("REDIS_PASSWORD".into(), "redis-pw".into())]),
        });
        assert_eq!(state(&env.run("alice", "env create dir").await), "succeeded");
        let made = env
            .run("alice", "service provision cache sessions in dir nodes=3")
            .await;
        assert_eq!(state(&made), "succeeded", "{made:#}");
        assert_eq!(
            outcome(&made),
            "sessions (cache) is ready in dir at redis-7f.cache.internal:6379; connection details in Secret sessions-redis (REDIS_PASSWORD); `service bind sessions to <app> in dir` wires it into an app"
        );
        assert_eq!(env.object("redisclusters", "dir", "sessions")["spec"]["nodes"], 3);
        // envFrom: the whole Secret, and no ServiceAccount when the class names no identity.
        assert_eq!(
            state(&env.run("alice", "deploy ghcr.io/acme/web:1.0 to dir").await),
            "succeeded"
        );
        let bound = env.run("alice", "service bind sessions to web in dir").await;
        assert_eq!(state(&bound), "succeeded", "{bound:#}");
        assert!(
        messages(&bound)
            .iter()
            .any(|m| m == "Deployment web: REDIS_HOST and every key of Secret sessions-redis; watching the rollout"),
        "{bound:#}"
    );
        let pod = env.object("deployments", "dir", "web")["spec"]["template"]["spec"].clone();
        assert_eq!(
            pod["containers"][0]["envFrom"],
            json!([{ "secretRef": { "name": "sessions-redis" } }])
        );
        assert_eq!(
            pod["containers"][0]["env"],
            json!([{ "name": "REDIS_HOST", "value": "sessions.dir.cache.internal" }])
        );
        assert!(pod["serviceAccountName"].is_null(), "{pod}");
        assert!(env.kube.object("serviceaccounts", "dir", "web").is_none());

        let missing = env.run("alice", "service provision queue jobs in dir").await;
        assert_eq!(state(&missing), "failed", "{missing:#}");
        assert_eq!(
            outcome(&missing),
            "this cluster does not serve Queue (mq.example.org/v1), which class queue needs: its provider (CRD) is not installed; ask the platform team"
        );
        // The missing provider does not hide the services that exist.
        let listed = env.run("alice", "service list").await;
        assert_eq!(state(&listed), "succeeded", "{listed:#}");
        assert_eq!(
            support::output_of(&listed),
            "sessions  cache  dir  ready  nodes=3  redis-7f.cache.internal:6379  bound to web"
        );
        let deleted = env.run("alice", "service delete sessions in dir force").await;
        assert_eq!(state(&deleted), "pending_approval", "{deleted:#}");
        let deleted = approve(&env, &deleted).await;
        assert_eq!(state(&deleted), "succeeded", "{deleted:#}");
        assert!(messages(&deleted).iter().any(|m| m == "RedisCluster sessions deleted"));
        assert!(env.kube.object("redisclusters", "dir", "sessions").is_none());
        env.app.shutdown().await;
    }
}

#[test]
fn services_validate_reports_every_problem_and_serve_refuses_them() {
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["services", "validate", concat!(env!("CARGO_MANIFEST_DIR"), "/services")])
        .output()
        .expect("run deckhand");
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("3 service class(es)")
            && String::from_utf8_lossy(&ok.stdout).contains("all valid (dynamodb-table, postgres, s3-bucket)")
    );

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("broken.yaml"),
        r#"
name: Broken_Class
description: ""
parameters:
  tier: { type: enum, values: [gold, "a b"] }
  size: { type: int, min: 5, max: 1 }
  kind: { type: float }
template: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
ready: { condition: Ready, path: status.phase }
bind:
  env: { 1BAD: password }
  envFrom: true
identity:
  annotations: { "Not A Key!": "x" }
"#,
    )
    .expect("write");
    std::fs::write(
        dir.path().join("typo.yaml"),
        "name: typo\ndescription: d\ntemplate: |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: {{ nmae }}\nready: { condition: Ready }\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("syntax.yaml"), "name: [unclosed\n").expect("write");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["services", "validate"])
        .arg(dir.path())
        .output()
        .expect("run deckhand");
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    for expected in [
        "broken.yaml: class `Broken_Class`: name: 'Broken_Class' is not a valid name",
        "broken.yaml: class `Broken_Class`: description: must say in a line what the class provisions",
        "broken.yaml: class `Broken_Class`: parameters.tier.values: 'a b' is not a safe value",
        "broken.yaml: class `Broken_Class`: parameters.size.min: must not be greater than max",
        "broken.yaml: class `Broken_Class`: parameters.kind.type: unknown type 'float' (use string, int, enum or bool)",
        "broken.yaml: class `Broken_Class`: ready: give either `condition: TYPE` (status.conditions) or `path` and `value`",
        "broken.yaml: class `Broken_Class`: bind.env.1BAD: is not an environment variable name",
        "broken.yaml: class `Broken_Class`: bind.envFrom: needs a `connection` Secret to take the variables from",
        "broken.yaml: class `Broken_Class`: identity.annotations.Not A Key!: is not an annotation key",
        "typo.yaml: class `typo`: template: does not render: undefined value at template line 4: `name: {{ nmae }}`",
        "syntax.yaml: yaml:",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }

    // `serve` refuses to start on the same classes, with the same messages.
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DECKHAND_SERVICES__DIR", dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite?mode=rwc", dir.path().display()),
        )
        .output()
        .expect("run deckhand");
    assert_eq!(serve.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(
        stderr.contains("problem(s) in service classes") && stderr.contains("typo.yaml: class `typo`: template"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_classes_lists_each_class_with_its_parameters() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend).await;
        let v = env.run("bob", "service classes").await;
        assert_eq!(state(&v), "succeeded", "{v:#}");
        assert_eq!(outcome(&v), "3 service class(es)");
        let text = support::output_of(&v);
        for line in [
            "postgres: PostgreSQL database (Amazon RDS, through a Crossplane claim), cost-bearing",
            "  size: one of small, medium, large, default small (instance class: small = db.t4g.micro, medium = db.t4g.large, large = db.r6g.xlarge)",
            "  storage: a whole number from 20 to 1000, default 20 (allocated storage in GiB)",
            "  highly_available: true or false, default false (a standby in a second availability zone)",
            "s3-bucket: S3 bucket (AWS Controllers for Kubernetes)",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        env.app.shutdown().await;
    }
}
