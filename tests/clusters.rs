//! Several clusters (`clusters.NAME`): two test API servers, environments created in each
//! (by the tier's default and by `TIER@CLUSTER`), actions on an environment reaching its own
//! cluster, and `env list` / `status` once one server is stopped mid-run.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::{collections::BTreeMap, time::Duration};

use cluster::{messages, outcome, output_data, start_against, state};
use deckhand::{cluster::clusters::ClusterConfig, domain::Name};
use kube_fake::KubeTestServer;
use support::backends;

fn cluster_config(url: String, tiers: &[&str], default: bool) -> ClusterConfig {
    ClusterConfig {
        url,
        tiers: tiers.iter().map(|t| Name::parse(t).expect("tier name")).collect(),
        default,
        ..Default::default()
    }
}

/// The output event's text of a finished request.
fn output_text(v: &serde_json::Value) -> String {
    v["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["kind"] == "output"))
        .and_then(|e| e["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environments_live_in_their_cluster_and_a_stopped_one_is_named() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let eu = KubeTestServer::start().await;
        let us = KubeTestServer::start().await;
        us.set_step(Duration::from_millis(15));
        us.authorize_with(include_str!("../deploy/clusterrole.yaml"));
        let (eu_url, us_url) = (eu.url(), us.url());
        let env = start_against(eu, backend, move |c| {
            c.clusters = BTreeMap::from([
                (
                    Name::parse("eu").unwrap(),
                    cluster_config(eu_url, &["dev", "stage", "prod"], true),
                ),
                (Name::parse("us").unwrap(), cluster_config(us_url, &["stage"], false)),
            ]);
            c.kubernetes.cluster_deadline = "1s".parse().unwrap();
        })
        .await;

        // The tier's default cluster, and one picked with TIER@CLUSTER.
        let a = env.run("alice", "env create alpha stage").await;
        assert_eq!(state(&a), "succeeded", "{a:#}");
        assert!(
            outcome(&a).starts_with("environment alpha (stage, cluster eu) is ready"),
            "{}",
            outcome(&a)
        );
        let b = env.run("alice", "env create beta stage@us").await;
        assert_eq!(state(&b), "succeeded", "{b:#}");
        assert!(
            outcome(&b).starts_with("environment beta (stage, cluster us) is ready"),
            "{}",
            outcome(&b)
        );
        assert!(env.kube.get_object("/api/v1/namespaces/alpha").is_some());
        assert!(env.kube.get_object("/api/v1/namespaces/beta").is_none());
        assert!(us.get_object("/api/v1/namespaces/beta").is_some());
        assert!(us.get_object("/api/v1/namespaces/alpha").is_none());
        assert_eq!(
            us.object("resourcequotas", "beta", "deckhand-quota").unwrap()["spec"]["hard"]["pods"],
            "50"
        );

        // Names are unique across clusters.
        let again = env.run("alice", "env create beta dev").await;
        assert_eq!(
            (state(&again), outcome(&again).as_str()),
            (
                "failed",
                "environment beta already exists in cluster us; pick another name"
            )
        );
        // A cluster that is not configured, or does not serve the tier, is refused up front.
        let (s, v) = env.app.submit_as("alice", "env create gamma stage@mars").await;
        assert_eq!((s, v["error"]["argument"].as_str()), (400, Some("tier")), "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("there is no cluster 'mars'; the clusters are eu, us"),
            "{v}"
        );
        let (s, v) = env.app.submit_as("alice", "env create gamma prod@us").await;
        assert_eq!(s, 400, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("cluster us does not serve tier prod"),
            "{v}"
        );
        // The approval rule still sees the tier alone.
        let pending = env.run("alice", "env create pay prod@eu").await;
        assert_eq!(state(&pending), "pending_approval", "{pending:#}");

        // Actions on an environment reach its cluster.
        let d = env
            .run("alice", "deploy ghcr.io/acme/shop:1.4.2 to beta replicas=1")
            .await;
        assert_eq!(state(&d), "succeeded", "{d:#}");
        assert!(us.object("deployments", "beta", "shop").is_some());
        assert!(env.kube.object("deployments", "beta", "shop").is_none());
        let d = env
            .run("alice", "deploy ghcr.io/acme/shop:1.4.2 to alpha replicas=1")
            .await;
        assert_eq!(state(&d), "succeeded", "{d:#}");
        assert!(env.kube.object("deployments", "alpha", "shop").is_some());

        us.set_pod_logs("beta", "shop", "hello from us\n");
        let logs = env.run("alice", "logs shop in beta").await;
        assert_eq!(state(&logs), "succeeded", "{logs:#}");
        assert!(output_text(&logs).contains("hello from us"), "{logs:#}");
        let expiry = |ns: serde_json::Value| ns["metadata"]["annotations"]["deckhand.dev/expires-at"].clone();
        let before = expiry(us.get_object("/api/v1/namespaces/beta").unwrap());
        let ext = env.run("alice", "env extend beta 2d").await;
        assert_eq!(state(&ext), "succeeded", "{ext:#}");
        assert_ne!(expiry(us.get_object("/api/v1/namespaces/beta").unwrap()), before);

        let list = env.run("alice", "env list").await;
        assert_eq!(state(&list), "succeeded", "{list:#}");
        assert_eq!(outcome(&list), "2 environment(s)");
        assert_eq!(output_data(&list)["environments"], serde_json::json!(["alpha", "beta"]));
        let text = output_text(&list);
        assert!(text.starts_with("CLUSTER"), "{text}");
        assert!(
            text.lines().any(|l| l.starts_with("us") && l.contains("beta")),
            "{text}"
        );

        // us stops mid-run.
        drop(us);
        let list = env.run("alice", "env list").await;
        assert_eq!(state(&list), "succeeded", "{list:#}");
        assert!(
            outcome(&list).starts_with("1 environment(s) (partial: cluster us did not answer: "),
            "{}",
            outcome(&list)
        );
        assert_eq!(output_data(&list)["environments"], serde_json::json!(["alpha"]));
        assert_eq!(output_data(&list)["silent_clusters"], serde_json::json!(["us"]));
        let text = output_text(&list);
        assert!(
            text.lines().any(|l| l.starts_with("eu") && l.contains("alpha")),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("cluster us did not answer: ")),
            "{text}"
        );

        // Status in the cluster that answers works; in the stopped one it names the cluster.
        let st = env.run("alice", "status shop in alpha").await;
        assert_eq!(state(&st), "succeeded", "{st:#}");
        assert!(outcome(&st).starts_with("shop in alpha: "), "{}", outcome(&st));
        let (s, v) = env.app.submit_as("alice", "status shop in beta").await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("precondition")), "{v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("cluster us did not answer: "), "{v}");
        // An environment no cluster that answered has: the silent one may have it.
        let (s, v) = env.app.submit_as("alice", "status shop in nowhere").await;
        assert_eq!(s, 422, "{v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(
                "there is no environment nowhere in the clusters that answered; cluster us did not answer: "
            ),
            "{v}"
        );
        // Creating a name a silent cluster might hold is refused, not guessed.
        let c = env.run("alice", "env create delta dev").await;
        assert_eq!(state(&c), "failed", "{c:#}");
        assert!(
            outcome(&c).starts_with("cannot tell whether delta is free: cluster us did not answer"),
            "{}",
            outcome(&c)
        );
        assert!(messages(&c).iter().all(|m| !m.starts_with("✓")), "nothing was created");

        // With no cluster answering there is nothing partial to show: the list fails.
        let cluster::Env { app, kube, .. } = env;
        drop(kube);
        let (s, v) = app.submit_as("alice", "env list").await;
        assert!(s == 201 || s == 200, "{s} {v}");
        let id = v["request"]["id"].as_str().expect("request id").to_owned();
        let list = app.wait_for_state_as("alice", &id, &["succeeded", "failed"]).await;
        assert_eq!(state(&list), "failed", "{list:#}");
        assert!(
            outcome(&list).starts_with("no cluster answered: cluster eu did not answer: "),
            "{}",
            outcome(&list)
        );
        assert!(
            outcome(&list).contains("; cluster us did not answer: "),
            "{}",
            outcome(&list)
        );
        app.shutdown().await;
    }
}

/// `service …` acts in the environment's cluster: provisioned, listed and bound there, while the default cluster (which does not even serve the class's kind) is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_live_in_their_environments_cluster() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let eu = KubeTestServer::start().await;
        let us = KubeTestServer::start().await;
        us.set_step(Duration::from_millis(15));
        us.authorize_with(include_str!("../deploy/clusterrole.yaml"));
        cluster::install_service_providers(&us);
        let (eu_url, us_url) = (eu.url(), us.url());
        let env = start_against(eu, backend, move |c| {
            c.clusters = BTreeMap::from([
                (
                    Name::parse("eu").unwrap(),
                    cluster_config(eu_url, &["dev", "stage", "prod"], true),
                ),
                (Name::parse("us").unwrap(), cluster_config(us_url, &["stage"], false)),
            ]);
            c.kubernetes.cluster_deadline = "1s".parse().unwrap();
            c.services.ready_deadline = "20s".parse().unwrap();
        })
        .await;
        let b = env.run("bob", "env create media stage@us").await;
        assert_eq!(state(&b), "succeeded", "{b:#}");
        let deployed = env.run("bob", "deploy ghcr.io/acme/thumbs:2.0 to media").await;
        assert_eq!(state(&deployed), "succeeded", "{deployed:#}");
        let made = env
            .run(
                "bob",
                "service provision s3-bucket uploads in media region=eu-central-1 versioning=true",
            )
            .await;
        assert_eq!(state(&made), "succeeded", "{made:#}");
        assert!(
            outcome(&made).starts_with("uploads (s3-bucket) is ready in media"),
            "{}",
            outcome(&made)
        );
        assert!(
            us.object("buckets", "media", "uploads").is_some(),
            "the bucket is in us"
        );
        let listed = env.run("bob", "service list media").await;
        assert_eq!(state(&listed), "succeeded", "{listed:#}");
        assert!(output_text(&listed).contains("uploads"), "{listed:#}");
        let bound = env.run("bob", "service bind uploads to thumbs in media").await;
        assert_eq!(state(&bound), "succeeded", "{bound:#}");
        let app = us.object("deployments", "media", "thumbs").expect("thumbs in us");
        assert!(
            app.to_string().contains("uploads"),
            "thumbs is wired to the bucket in us: {app}"
        );

        // Without an environment every cluster is asked: the bucket in us is listed although
        // the default cluster, eu, holds no services.
        let everywhere = env.run("bob", "service list").await;
        assert_eq!(state(&everywhere), "succeeded", "{everywhere:#}");
        assert_eq!(outcome(&everywhere), "1 service(s)", "{everywhere:#}");
        let text = output_text(&everywhere);
        assert!(
            text.starts_with("uploads  s3-bucket  media  ready") && text.contains("bound to thumbs"),
            "{text}"
        );
        assert_eq!(output_data(&everywhere)["services"][0]["env"], "media");
        // A cluster that stops answering is named; the list of the others still comes.
        drop(us);
        let partial = env.run("bob", "service list").await;
        assert_eq!(state(&partial), "succeeded", "{partial:#}");
        assert!(
            outcome(&partial).starts_with("no services (partial: cluster us did not answer: "),
            "{}",
            outcome(&partial)
        );
        assert_eq!(output_data(&partial)["silent_clusters"], serde_json::json!(["us"]));
        assert!(
            output_text(&partial)
                .lines()
                .any(|l| l.starts_with("cluster us did not answer: ")),
            "{partial:#}"
        );
    }
}
