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

/// Item 4: the names every environment's NetworkPolicy trusts, Kubernetes' own, deckhand's,
/// and namespaces deckhand did not create are refused before anything is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn developer_cannot_create_an_environment_named_like_a_trusted_namespace() {
    for backend in backends() {
        let env = cluster::start_on(backend, |_| {}).await;
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(env.kube.client());
        let foreign = serde_json::from_value(serde_json::json!({"metadata": {"name": "billing"}})).unwrap();
        namespaces
            .create(&Default::default(), &foreign)
            .await
            .expect("an admin's namespace");

        for (name, why) in [
            ("monitoring", "trust traffic from it"),
            ("ingress-nginx", "trust traffic from it"),
            ("kube-system", "Kubernetes keeps it"),
            ("kube-anything", "Kubernetes keeps it"),
            ("default", "Kubernetes keeps it"),
            ("deckhand", "deckhand runs there"),
            ("billing", "was not created by deckhand"),
        ] {
            let (status, v) = env.app.submit_as("alice", &format!("env create {name}")).await;
            assert_eq!(status, 422, "env create {name}: {v}");
            let said = v.to_string();
            assert!(
                said.contains(why) && said.contains("pick another name"),
                "{name}: {said}"
            );
        }
        assert!(env.kube.get_object("/api/v1/namespaces/monitoring").is_none());
        let (_, mine) = env.app.get_as("alice", "/api/v1/requests").await;
        assert_eq!(
            mine["requests"].as_array().map(Vec::len),
            Some(0),
            "nothing stored: {mine}"
        );
        env.app.shutdown().await;
    }
}

/// Item 4: a namespace is trusted by a label only cluster admins set, not by its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environments_trust_namespaces_by_admin_label_not_by_name() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = cluster::start_on(backend, |_| {}).await;
        let v = env.run("alice", "env create ex").await;
        assert_eq!(state(&v), "succeeded", "{v:#}");
        let policy = env.object("networkpolicies", "ex", "deckhand-default-deny");
        let from = &policy["spec"]["ingress"][0]["from"];
        let selector = &from[1]["namespaceSelector"];
        assert_eq!(
            selector["matchLabels"]["deckhand.dev/trusted"], "true",
            "trusted namespaces need the admin's label: {policy:#}"
        );
        assert_eq!(
            selector["matchExpressions"][0]["values"],
            serde_json::json!(["ingress-nginx", "monitoring"])
        );
        env.app.shutdown().await;
    }
}

/// Item 5: prod environments give the requester's groups `view`, not `edit`; a tier can set
/// its own role.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prod_environments_give_developers_read_only_access() {
    for backend in backends() {
        let env = cluster::start_on(backend, |c| {
            let stage = deckhand::domain::Name::parse("stage").unwrap();
            c.tiers.get_mut(&stage).unwrap().team_role = Some("deckhand-stage".into());
        })
        .await;
        // The operator lets deckhand bind the stage tier's role too, as deploy/ asks.
        env.kube
            .authorize_with(&include_str!("../../deploy/clusterrole.yaml").replace(
                "resourceNames: [edit, view]",
                "resourceNames: [edit, view, deckhand-stage]",
            ));
        let prod = env.run("alice", "env create payments prod").await;
        assert_eq!(state(&prod), "pending_approval", "{prod:#}");
        let id = prod["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("omar", &id).await;
        env.app.wait_for_state(&id, &["succeeded"]).await;
        for (ns, role) in [("payments", "view"), ("scratch", "edit"), ("shared", "deckhand-stage")] {
            if ns != "payments" {
                let tier = if ns == "shared" { "stage" } else { "dev" };
                let v = env.run("alice", &format!("env create {ns} {tier}")).await;
                assert_eq!(state(&v), "succeeded", "{v:#}");
            }
            let binding = env.object("rolebindings", ns, "deckhand-team");
            assert_eq!(binding["roleRef"]["name"], role, "{ns}: {binding:#}");
        }
        env.app.shutdown().await;
    }
}

/// A compromised app cannot ask the cloud's metadata service for the node's credentials:
/// the environment's egress to the internet excludes link-local addresses, as it excludes the
/// cluster's private ranges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environment_pods_cannot_reach_the_cloud_metadata_service() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = cluster::start_on(backend, |_| {}).await;
        assert_eq!(state(&env.run("alice", "env create ex").await), "succeeded");
        let policy = env.object("networkpolicies", "ex", "deckhand-default-deny");
        let blocks: Vec<&serde_json::Value> = policy["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| rule["to"].as_array().into_iter().flatten())
            .filter_map(|peer| peer.get("ipBlock"))
            .collect();
        assert_eq!(blocks.len(), 1, "{policy:#}");
        let except = blocks[0]["except"].as_array().unwrap();
        for range in ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] {
            assert!(except.iter().any(|e| e == range), "{range} not excluded: {policy:#}");
        }
        env.app.shutdown().await;
    }
}

/// Item 5 (the operator's side): a tier's team role deckhand may not `bind` fails the
/// environment with a message that says where to fix it, as on a real cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_role_deckhand_may_not_bind_fails_clearly() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = cluster::start_on(backend, |c| {
            let stage = deckhand::domain::Name::parse("stage").unwrap();
            c.tiers.get_mut(&stage).unwrap().team_role = Some("cluster-admin".into());
        })
        .await;
        let v = env.run("alice", "env create shared stage").await;
        assert_eq!(state(&v), "failed", "{v:#}");
        let why = crate::cluster::outcome(&v);
        assert!(
            why.contains("not allowed") && why.contains("cluster-admin") && why.contains("deploy/clusterrole.yaml"),
            "{why}"
        );
        assert!(env.kube.object("rolebindings", "shared", "deckhand-team").is_none());
        env.app.shutdown().await;
    }
}
