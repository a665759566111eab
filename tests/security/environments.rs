//! Security tests: environments and who may change them (issue 12, items 4, 5 and 6). Runs
//! deckhand against the Kubernetes test API server, on SQLite and PostgreSQL.

use crate::{
    cluster::{self, state},
    support::backends,
};

/// Item 6: one ownership rule in the shipped specs. Every command that changes an environment
/// someone else owns waits for ops, and changes nothing until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bob_changing_alices_environment_waits_for_ops() {
    for backend in backends() {
        let env = cluster::start_on(backend, |_| {}).await;
        cluster::install_service_providers(&env.kube);
        for text in ["env create ex", "deploy ghcr.io/acme/shop:1.0 to ex"] {
            let v = env.run("alice", text).await;
            assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
        }
        // A cost-bearing class: ops approve alice's database whoever owns the environment.
        let db = env.run("alice", "service provision postgres db in ex").await;
        let db = db["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("omar", &db).await;
        env.app.wait_for_state(&db, &["succeeded"]).await;
        let replicas = || env.object("deployments", "ex", "shop")["spec"]["replicas"].clone();
        let before = replicas();

        for text in [
            "deploy ghcr.io/acme/shop:2.0 to ex",
            "scale shop in ex to 5",
            "restart shop in ex",
            "rollback shop in ex",
            "exec shop in ex -- env",
            "shell shop in ex",
            "env extend ex 2h",
            "env delete ex",
            "service provision postgres other in ex",
            "service bind db to shop in ex",
            "service delete db in ex",
        ] {
            let v = env.run("bob", text).await;
            assert_eq!(state(&v), "pending_approval", "bob's `{text}` on alice's env: {v:#}");
        }
        assert_eq!(replicas(), before, "nothing changed before ops approved");
        assert!(env.kube.get_object("/api/v1/namespaces/ex").is_some());

        // ops approve bob's scale, and only then it happens; alice's own scale needs nobody.
        let (_, list) = env.app.get_as("omar", "/api/v1/requests?scope=pending").await;
        let scale = list["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["text"] == "scale shop in ex to 5")
            .expect("bob's scale is pending")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        env.app.approve("omar", &scale).await;
        env.app.wait_for_state(&scale, &["succeeded"]).await;
        assert_eq!(replicas(), 5);
        let own = env.run("alice", "scale shop in ex to 2").await;
        assert_eq!(state(&own), "succeeded", "{own:#}");
        assert_eq!(replicas(), 2);
        env.app.shutdown().await;
    }
}
