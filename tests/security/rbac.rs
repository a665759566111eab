//! Security tests: deckhand's own Kubernetes permissions (issue 12, item 9). The test API
//! server authorizes deckhand against deploy/clusterrole.yaml with the real verb mapping
//! (tests/support/cluster.rs), so a verb the ClusterRole lacks fails a test the way a real
//! cluster would fail deckhand: with the authorizer's 403 Status.

use serde_json::Value;

use crate::{
    cluster::{self, Env, outcome, state},
    support::{Backend, backends},
};

/// alice's `shop` (port 8080) in `ex`, and an open proxy link's path on deckhand.
async fn with_link(backend: Backend) -> (Env, String) {
    let env = cluster::start_on(backend, |_| {}).await;
    for text in ["env create ex", "deploy ghcr.io/acme/shop:1.0 to ex port=8080"] {
        let v = env.run("alice", text).await;
        assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
    }
    let v = env.run("alice", "proxy open shop in ex").await;
    assert_eq!(state(&v), "succeeded", "{v:#}");
    let url = v["events"]
        .as_array()
        .and_then(|es| es.iter().find_map(|e| e["data"]["url"].as_str()))
        .expect("alice reads her link")
        .to_owned();
    let path = url[url.find("/p/").expect("a /p/ link")..]
        .trim_end_matches('/')
        .to_owned();
    (env, path)
}

/// A proxied POST, PUT, PATCH and DELETE need services/proxy create, update, patch and
/// delete: the shipped ClusterRole grants them, so an app's forms and APIs work through a link.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_links_pass_every_method_under_the_shipped_cluster_role() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, path) = with_link(backend).await;
        let http = reqwest::Client::new();
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
            let r = http
                .request(method.parse().unwrap(), format!("{}{path}/form", env.app.url))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{method}: {}", r.status());
        }
        env.app.shutdown().await;
    }
}

/// Without a verb, the API server answers 403 with a Status naming the user, verb, resource
/// and namespace; deckhand passes the refusal on and GETs still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_proxy_verb_is_refused_with_the_real_forbidden_status() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, path) = with_link(backend).await;
        env.kube.revoke("", "services/proxy", "create");

        // What the API server says to deckhand's service account.
        let r = reqwest::Client::new()
            .post(format!(
                "{}/api/v1/namespaces/ex/services/shop:8080/proxy/form",
                env.kube.url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let status: Value = r.json().await.unwrap();
        assert_eq!(
            (
                &status["kind"],
                &status["apiVersion"],
                &status["status"],
                &status["reason"],
                &status["code"]
            ),
            (
                &"Status".into(),
                &"v1".into(),
                &"Failure".into(),
                &"Forbidden".into(),
                &403.into()
            ),
            "{status:#}"
        );
        assert_eq!(
            status["message"],
            "services \"shop:8080\" is forbidden: User \"system:serviceaccount:deckhand:deckhand\" cannot create resource \"services/proxy\" in API group \"\" in the namespace \"ex\"",
            "{status:#}"
        );

        // Through the link: the POST is refused, the GET is not.
        let http = reqwest::Client::new();
        let post = http.post(format!("{}{path}/form", env.app.url)).send().await.unwrap();
        assert_eq!(post.status(), 403, "the refusal reaches the browser");
        let get = http.get(format!("{}{path}/form", env.app.url)).send().await.unwrap();
        assert!(get.status().is_success(), "{}", get.status());
        env.app.shutdown().await;
    }
}

/// exec is authorized as `create` on pods/exec (the WebSocket GET too, since Kubernetes 1.35);
/// without it the request fails and says what the service account lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_exec_verb_fails_exec_with_a_clear_message() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = cluster::start_on(backend, |_| {}).await;
        for text in ["env create ex", "deploy ghcr.io/acme/shop:1.0 to ex"] {
            assert_eq!(state(&env.run("alice", text).await), "succeeded", "{text}");
        }
        env.kube.revoke("", "pods/exec", "create");
        let done = env.run("alice", "exec shop in ex -- echo hi").await;
        assert_eq!(state(&done), "failed", "{done:#}");
        assert!(
            outcome(&done).contains("deckhand's service account is not allowed to do this"),
            "{}",
            outcome(&done)
        );
        env.app.shutdown().await;
    }
}

/// Server-side apply is a PATCH, but one that creates the object is also authorized as
/// `create` (as a real API server does): without it a new environment fails, while
/// re-applying an existing one still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apply_that_creates_needs_create_as_well_as_patch() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = cluster::start_on(backend, |_| {}).await;
        assert_eq!(state(&env.run("alice", "env create ex").await), "succeeded");
        env.kube.revoke("", "namespaces", "create");
        let again = env.run("alice", "env create ex").await;
        assert_eq!(state(&again), "succeeded", "re-applying needs only patch: {again:#}");
        let new = env.run("alice", "env create fresh").await;
        assert_eq!(state(&new), "failed", "{new:#}");
        assert!(
            outcome(&new).contains("deckhand's service account is not allowed to do this"),
            "{}",
            outcome(&new)
        );
        assert!(env.kube.get_object("/api/v1/namespaces/fresh").is_none());
        env.app.shutdown().await;
    }
}
