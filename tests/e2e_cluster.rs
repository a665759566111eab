//! The Kubernetes scenarios against a real cluster, when DECKHAND_E2E_KUBECONFIG names a
//! kubeconfig whose identity has the permissions in deploy/clusterrole.yaml. Without it the
//! test says so and does nothing (no cluster is reachable from CI).

mod support;

use support::{TestApp, TestDb, backends, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environments_and_deploys_on_a_real_cluster() {
    let Ok(kubeconfig) = std::env::var("DECKHAND_E2E_KUBECONFIG") else {
        eprintln!("note: DECKHAND_E2E_KUBECONFIG is not set; the real-cluster suite did not run");
        return;
    };
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let mut config = test_config(&db.url);
        config.kubernetes.kubeconfig = kubeconfig.clone().into();
        config.kubernetes.rollout_deadline = "3m".parse().unwrap();
        support::init_tls();
        let running = deckhand::startup::Builder::new(config)
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let app = TestApp::from_running(running);
        let name = format!("dh-e2e-{}", deckhand::domain::new_token(6));
        let run = |text: String| {
            let app = &app;
            async move {
                let (s, v) = app.submit_as("alice", &text).await;
                assert_eq!(s, 201, "{text}: {v}");
                let id = v["request"]["id"].as_str().unwrap().to_owned();
                let done = app.wait_for_state(&id, &["succeeded", "failed"]).await;
                assert_eq!(done["request"]["state"], "succeeded", "{text}: {done:#}");
                done
            }
        };
        run(format!("env create {name} dev 1h")).await;
        run(format!("env create {name} dev 1h")).await;
        // pause runs as a non-root user and writes nothing, so the platform's defaults fit it.
        run(format!(
            "deploy registry.k8s.io/pause:3.10 to {name} as idle replicas=2"
        ))
        .await;
        run(format!("status idle in {name}")).await;
        run(format!("scale idle in {name} to 1")).await;
        run(format!("restart idle in {name}")).await;
        run(format!("env delete {name}")).await;
        app.shutdown().await;
    }
}
