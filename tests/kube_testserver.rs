//! Tests of the fake Kubernetes API server itself (tests/support/kube), through kube-rs and
//! through the real kubectl. The fake is only worth something if code written against it
//! also works against a cluster, so these tests pin the behaviour a client can observe.

#[path = "support/kube/mod.rs"]
mod kube_fake;
#[path = "support/kubectl.rs"]
mod kubectl_support;

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::{wait::await_condition, watcher};
use kube_fake::KubeTestServer;
use kubectl_support::{kubectl, kubectl_present};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn api_err(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]}
            }
        }
    }))
    .unwrap()
}

fn configmap(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})).unwrap()
}

fn rv<K: kube::Resource>(o: &K) -> u64 {
    o.meta().resource_version.as_deref().unwrap().parse().unwrap()
}

fn names<K: kube::Resource>(list: impl IntoIterator<Item = K>) -> Vec<String> {
    let mut v: Vec<String> = list.into_iter().map(|o| o.meta().name.clone().unwrap()).collect();
    v.sort();
    v
}

/// Waits until a deployment has rolled out (observedGeneration caught up, Available, all
/// replicas updated and available).
async fn rolled_out(api: &Api<Deployment>, name: &str) -> Deployment {
    let cond = |d: Option<&Deployment>| {
        d.is_some_and(|d| {
            let Some(st) = &d.status else { return false };
            let want = d.spec.replicas.unwrap_or(1);
            st.observed_generation >= d.metadata.generation
                && st.updated_replicas.unwrap_or(0) == want
                && st.available_replicas.unwrap_or(0) == want
                && st.replicas.unwrap_or(0) == want
        })
    };
    tokio::time::timeout(WAIT, await_condition(api.clone(), name, cond))
        .await
        .expect("rollout in time")
        .unwrap()
        .unwrap()
}

// 1 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn crud_round_trip_with_resource_versions_and_status_codes() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "crud").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "crud");

    let created = cms
        .create(&PostParams::default(), &configmap("one", json!({"a": "1"})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("crud"));
    let rv1 = rv(&created);

    // 409 AlreadyExists, worded and detailed like the real server.
    let e = api_err(
        cms.create(&PostParams::default(), &configmap("one", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "configmaps \"one\" already exists");
    let details = e.details.clone().unwrap();
    assert_eq!((details.name.as_str(), details.kind.as_str()), ("one", "configmaps"));

    let got = cms.get("one").await.unwrap();
    assert_eq!(got.data.as_ref().unwrap()["k"], "v");

    // Replace bumps the resourceVersion; replacing with the stale one is a 409 Conflict.
    let mut changed = got.clone();
    changed.data.as_mut().unwrap().insert("k".into(), "w".into());
    let replaced = cms.replace("one", &PostParams::default(), &changed).await.unwrap();
    assert!(rv(&replaced) > rv1);
    let e = api_err(cms.replace("one", &PostParams::default(), &changed).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(e.message.contains("the object has been modified"), "{}", e.message);

    // Merge patch.
    let patched = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "x"}})),
        )
        .await
        .unwrap();
    assert!(rv(&patched) > rv(&replaced));
    assert_eq!(patched.data.as_ref().unwrap()["extra"], "x");
    assert_eq!(patched.data.as_ref().unwrap()["k"], "w");

    // List carries a resourceVersion too.
    let list = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(list.items), vec!["one"]);
    assert!(list.metadata.resource_version.unwrap().parse::<u64>().unwrap() >= rv(&patched));

    // 422 for a name that is not DNS-1123, with a cause naming the field.
    let e = api_err(
        cms.create(&PostParams::default(), &configmap("Not_Valid", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .starts_with("ConfigMap \"Not_Valid\" is invalid: metadata.name: Invalid value"),
        "{}",
        e.message
    );
    assert_eq!(e.details.as_ref().unwrap().causes[0].field, "metadata.name");

    // 422 for a Deployment without containers, and for a label value a cluster rejects.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "crud");
    let mut d = deployment("web", "nginx:1.27", 1);
    d.spec.template.spec.as_mut().unwrap().containers.clear();
    let e = api_err(deploys.create(&PostParams::default(), &d).await.unwrap_err());
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("spec.template.spec.containers: Required value"),
        "{}",
        e.message
    );
    let e = api_err(
        cms.create(
            &PostParams::default(),
            &configmap("ts", json!({"expires": "2026-01-01T00:00:00Z"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422, "{}", e.message);

    // Delete, then 404s everywhere, worded like the real server.
    cms.delete("one", &DeleteParams::default()).await.unwrap();
    let e = api_err(cms.get("one").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "configmaps \"one\" not found");
    let e = api_err(cms.delete("one", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(e.code, 404);
    let e = api_err(deploys.get("nope").await.unwrap_err());
    assert_eq!(e.message, "deployments.apps \"nope\" not found");
    assert_eq!(e.details.unwrap().group, "apps");

    // Creating in a namespace that does not exist.
    let ghost: Api<ConfigMap> = Api::namespaced(client.clone(), "ghost");
    let e = api_err(
        ghost
            .create(&PostParams::default(), &configmap("x", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "namespaces \"ghost\" not found");

    // Every change moved the global resourceVersion forward.
    assert!(k8s.resource_version() > rv(&patched));
}

// 2 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn server_side_apply_twice_changes_nothing() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    k8s.set_paused(true); // controllers would legitimately write status
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let pp = PatchParams::apply("deckhand");
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "ssa", "labels": {"app.kubernetes.io/managed-by": "deckhand"}}
    }))
    .unwrap();
    let first = ns_api.patch("ssa", &pp, &Patch::Apply(&ns)).await.unwrap();
    let second = ns_api.patch("ssa", &pp, &Patch::Apply(&ns)).await.unwrap();
    assert_eq!(rv(&first), rv(&second));

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "ssa");
    let d = deployment("web", "nginx:1.27", 2);
    let a = deploys.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    let before = k8s.resource_version();
    let b = deploys.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    assert_eq!(rv(&a), rv(&b));
    assert_eq!(a.metadata.generation, b.metadata.generation);
    assert_eq!(k8s.resource_version(), before, "a no-op apply must not write");

    // A real change bumps resourceVersion and generation.
    let d2 = deployment("web", "nginx:1.28", 2);
    let c = deploys.patch("web", &pp, &Patch::Apply(&d2)).await.unwrap();
    assert!(rv(&c) > rv(&b));
    assert_eq!(c.metadata.generation, Some(2));

    // Dropping a field from the applied manifest removes it (field ownership).
    let mut d3 = d2.clone();
    d3.metadata.labels = None;
    let e = deploys.patch("web", &pp, &Patch::Apply(&d3)).await.unwrap();
    assert!(!e.metadata.labels.unwrap_or_default().contains_key("app"));

    // fieldManager is required for apply.
    let e = api_err(
        deploys
            .patch("web", &PatchParams::default(), &Patch::Apply(&d3))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
}

// 3 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn label_and_field_selectors() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "sel").await;
    namespace(&client, "other").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "sel");
    for (name, labels) in [
        ("a", json!({"tier": "dev", "team": "x"})),
        ("b", json!({"tier": "prod", "team": "y"})),
        ("c", json!({"tier": "staging"})),
        ("d", json!({})),
    ] {
        cms.create(&PostParams::default(), &configmap(name, labels))
            .await
            .unwrap();
    }
    Api::<ConfigMap>::namespaced(client.clone(), "other")
        .create(&PostParams::default(), &configmap("a", json!({"tier": "dev"})))
        .await
        .unwrap();

    let q = |sel: &'static str| {
        let cms = cms.clone();
        async move { names(cms.list(&ListParams::default().labels(sel)).await.unwrap().items) }
    };
    assert_eq!(q("tier=dev").await, ["a"]);
    assert_eq!(q("tier==prod").await, ["b"]);
    assert_eq!(q("tier!=dev").await, ["b", "c", "d"]);
    assert_eq!(q("tier in (dev, prod)").await, ["a", "b"]);
    assert_eq!(q("tier notin (dev,prod)").await, ["c", "d"]);
    assert_eq!(q("team").await, ["a", "b"]);
    assert_eq!(q("!team").await, ["c", "d"]);
    assert_eq!(q("tier,!team").await, ["c"]);
    assert_eq!(q("tier in (dev,staging),team=x").await, ["a"]);

    let by_field = cms
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(by_field.items), ["b"]);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let in_other = all
        .list(&ListParams::default().fields("metadata.namespace=other"))
        .await
        .unwrap();
    assert_eq!(names(in_other.items), ["a"]);
    let across = all.list(&ListParams::default().labels("tier=dev")).await.unwrap();
    assert_eq!(across.items.len(), 2, "list across all namespaces");

    let e = api_err(
        cms.list(&ListParams::default().labels("tier in (dev"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
}

// 10 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn forbid_and_fail_next() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    namespace(&client, "rbac").await;

    // Nobody may do what `forbid` denies, the tests' own client (the cluster admin) included;
    // the message names the caller.
    k8s.forbid("delete", "namespaces");
    let e = api_err(ns_api.delete("rbac", &DeleteParams::default()).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "namespaces \"rbac\" is forbidden: User \"kubernetes-admin\" cannot delete resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    ns_api.get("rbac").await.unwrap();

    k8s.forbid("create", "deployments");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "rbac");
    let e = api_err(
        deploys
            .create(&PostParams::default(), &deployment("web", "nginx", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "deployments.apps is forbidden: User \"kubernetes-admin\" cannot create resource \"deployments\" in API group \"apps\" in the namespace \"rbac\""
    );
    k8s.allow_all();
    deploys
        .create(&PostParams::default(), &deployment("web", "nginx", 1))
        .await
        .unwrap();

    // fail_next answers once with the chosen status, then the server is back to normal.
    k8s.fail_next("GET", "/deployments/web", 500, "InternalError");
    let e = api_err(deploys.get("web").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    deploys.get("web").await.unwrap();
    k8s.fail_next("PATCH", "/deployments/web", 409, "Conflict");
    let e = api_err(
        deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);

    // kube-rs 5 retries 429/503/504 by itself (Client's default retry policy): a single 503
    // is invisible to the caller, but shows in the request log.
    k8s.reset_requests();
    k8s.fail_next("GET", "/deployments/web", 503, "ServiceUnavailable");
    deploys.get("web").await.unwrap();
    assert_eq!(k8s.requests().len(), 2);

    // The request log counts API calls.
    k8s.reset_requests();
    deploys.get("web").await.unwrap();
    assert_eq!(
        k8s.requests(),
        vec![(
            "GET".to_string(),
            "/apis/apps/v1/namespaces/rbac/deployments/web".to_string()
        )]
    );
}

// 4 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn watcher_sees_added_modified_deleted_and_await_condition_works() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "watch").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "watch");
    cms.create(&PostParams::default(), &configmap("before", json!({"w": "1"})))
        .await
        .unwrap();

    // kube-runtime's watcher: list (with resourceVersion), then watch from it.
    let cfg = watcher::Config::default().labels("w=1");
    let mut events = watcher(cms.clone(), cfg).boxed();
    let mut seen: Vec<String> = Vec::new();
    let mut next = async || -> watcher::Event<ConfigMap> {
        tokio::time::timeout(WAIT, events.try_next())
            .await
            .expect("event in time")
            .unwrap()
            .unwrap()
    };
    let describe = |e: &watcher::Event<ConfigMap>| match e {
        watcher::Event::Init => "init".to_string(),
        watcher::Event::InitApply(o) => format!("initapply:{}", o.metadata.name.clone().unwrap()),
        watcher::Event::InitDone => "initdone".to_string(),
        watcher::Event::Apply(o) => format!(
            "apply:{}:{}",
            o.metadata.name.clone().unwrap(),
            o.data.as_ref().and_then(|d| d.get("k")).cloned().unwrap_or_default()
        ),
        watcher::Event::Delete(o) => format!("delete:{}", o.metadata.name.clone().unwrap()),
    };
    for _ in 0..3 {
        seen.push(describe(&next().await));
    }
    assert_eq!(seen, ["init", "initapply:before", "initdone"]);

    cms.create(&PostParams::default(), &configmap("live", json!({"w": "1"})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("unwatched", json!({"w": "2"})))
        .await
        .unwrap();
    cms.patch(
        "live",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    cms.delete("live", &DeleteParams::default()).await.unwrap();
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(describe(&next().await));
    }
    assert_eq!(live, ["apply:live:v", "apply:live:changed", "delete:live"]);

    // The streaming-list flavour (sendInitialEvents + the initial-events-end bookmark).
    let mut streaming = watcher(cms.clone(), watcher::Config::default().streaming_lists().labels("w=1")).boxed();
    let mut first = Vec::new();
    for _ in 0..3 {
        let e = tokio::time::timeout(WAIT, streaming.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        first.push(describe(&e));
    }
    assert_eq!(first, ["init", "initapply:before", "initdone"]);

    // A raw watch from an old resourceVersion replays history; one from before the
    // compacted history gets an ERROR event with 410 Gone (and the watcher re-lists).
    let rv_now = k8s.resource_version();
    k8s.compact_history();
    let stale = cms
        .watch(&kube::api::WatchParams::default().timeout(1), &(rv_now - 3).to_string())
        .await
        .unwrap()
        .boxed()
        .try_next()
        .await;
    match stale {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 410),
        Ok(Some(kube::api::WatchEvent::Error(s))) => assert_eq!(s.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }

    // await_condition on a Deployment: Available with observedGeneration caught up.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "watch");
    deploys
        .patch(
            "web",
            &PatchParams::apply("deckhand"),
            &Patch::Apply(&deployment("web", "nginx:1.27", 2)),
        )
        .await
        .unwrap();
    let available = |d: Option<&Deployment>| {
        d.is_some_and(|d| {
            let st = d.status.as_ref();
            st.and_then(|s| s.observed_generation) >= d.metadata.generation
                && st.and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
                })
                && st.and_then(|s| s.available_replicas) == Some(2)
        })
    };
    let d = tokio::time::timeout(WAIT, await_condition(deploys.clone(), "web", available))
        .await
        .expect("available in time")
        .unwrap()
        .unwrap();
    assert_eq!(d.status.unwrap().ready_replicas, Some(2));
}

// 5 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn rollout_good_image_then_update_then_rollback() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "roll").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "roll");
    let pp = PatchParams::apply("deckhand");
    deploys
        .patch("web", &pp, &Patch::Apply(&deployment("web", "nginx:1.27", 3)))
        .await
        .unwrap();
    let d = rolled_out(&deploys, "web").await;
    let conds = d.status.unwrap().conditions.unwrap();
    let progressing = conds
        .iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .unwrap();
    assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetAvailable"));
    assert_eq!(
        d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );

    let pods = k8s.list_objects("pods", Some("roll"));
    assert_eq!(pods.len(), 3);
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert!(p["metadata"]["labels"]["pod-template-hash"].is_string());
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    }
    let logs = Api::<Pod>::namespaced(client.clone(), "roll")
        .logs(pods[0]["metadata"]["name"].as_str().unwrap(), &LogParams::default())
        .await
        .unwrap();
    assert_eq!(logs, "starting nginx:1.27\nlistening on :8080\n");

    // New image: a second ReplicaSet takes over, the old one is scaled to zero.
    deploys
        .patch("web", &pp, &Patch::Apply(&deployment("web", "nginx:1.28", 3)))
        .await
        .unwrap();
    let d = rolled_out(&deploys, "web").await;
    assert_eq!(d.metadata.generation, Some(2));
    let rss = k8s.list_objects("replicasets", Some("roll"));
    assert_eq!(rss.len(), 2);
    let replicas: Vec<i64> = {
        let mut v: Vec<(String, i64)> = rss
            .iter()
            .map(|rs| {
                (
                    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    rs["spec"]["replicas"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, r)| r).collect()
    };
    assert_eq!(replicas, [0, 3]);

    // Rollback = re-apply the old template: the old ReplicaSet comes back as revision 3.
    deploys
        .patch("web", &pp, &Patch::Apply(&deployment("web", "nginx:1.27", 3)))
        .await
        .unwrap();
    rolled_out(&deploys, "web").await;
    assert_eq!(k8s.list_objects("replicasets", Some("roll")).len(), 2);
    let images: Vec<Value> = k8s
        .list_objects("pods", Some("roll"))
        .iter()
        .map(|p| p["spec"]["containers"][0]["image"].clone())
        .collect();
    assert_eq!(images, vec![json!("nginx:1.27"); 3]);

    // Scale through the /scale subresource.
    deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    rolled_out(&deploys, "web").await;
    assert_eq!(k8s.list_objects("pods", Some("roll")).len(), 1);
    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));

    // The deployment controller left events, as a cluster does.
    let reasons: Vec<String> = k8s
        .events("roll", "web")
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    for want in ["ScalingReplicaSet", "SuccessfulCreate", "Scheduled", "Started"] {
        assert!(reasons.iter().any(|r| r == want), "{want} missing from {reasons:?}");
    }
}

#[tokio::test]
async fn bad_image_sits_in_image_pull_back_off_with_an_event() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "bad").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "bad");
    let mut d = deployment("web", "registry.example/does-not-exist:1", 2);
    d.spec.progress_deadline_seconds = Some(1);
    deploys.create(&PostParams::default(), &d).await.unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), "bad");
    let backoff = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs[0].state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
            == Some("ImagePullBackOff".into())
    };
    assert!(
        k8s.wait_for(WAIT, |k| k.list_objects("pods", Some("bad")).iter().any(|p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
        }))
        .await
    );
    let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(list.items.len(), 1, "the rollout stalls at the first pod");
    let pod = &list.items[0];
    assert!(backoff(pod));
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    let pod_name = pod.metadata.name.clone().unwrap();

    // Logs of a container that never started: 400 like the kubelet's answer.
    let e = api_err(pods.logs(&pod_name, &LogParams::default()).await.unwrap_err());
    assert_eq!(e.code, 400);
    assert!(
        e.message
            .contains("is waiting to start: trying and failing to pull image"),
        "{}",
        e.message
    );

    // Events for the pod, found the way a client finds them.
    let events: Api<Event> = Api::namespaced(client.clone(), "bad");
    let evs = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod_name}")))
        .await
        .unwrap();
    let failed = evs
        .items
        .iter()
        .find(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("Failed"))
        .expect("a Failed warning");
    assert!(failed.message.as_deref().unwrap().contains("does-not-exist"));
    assert!(evs.items.iter().any(|e| e.reason.as_deref() == Some("BackOff")));

    // After progressDeadlineSeconds the Deployment says so.
    let deadline = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_.as_deref() == Some("Progressing")
                        && c.status.as_deref() == Some("False")
                        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                })
            })
    };
    tokio::time::timeout(WAIT, await_condition(deploys.clone(), "web", deadline))
        .await
        .expect("deadline exceeded in time")
        .unwrap();
}

#[tokio::test]
async fn crashloop_image_restarts_and_has_logs() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "crash").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "crash");
    deploys
        .create(&PostParams::default(), &deployment("api", "acme/crashloop:2", 1))
        .await
        .unwrap();
    assert!(
        k8s.wait_for(WAIT, |k| k.list_objects("pods", Some("crash")).iter().any(|p| {
            p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(2)
        }))
        .await
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "crash");
    let pod = pods.list(&ListParams::default()).await.unwrap().items.remove(0);
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let cs = &status.container_statuses.unwrap()[0];
    assert!(!cs.ready);
    assert_eq!(
        cs.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(
        cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code,
        1
    );
    let logs = pods
        .logs(
            pod.metadata.name.as_deref().unwrap(),
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(logs, "panic: config missing DATABASE_URL\n");
    let d = deploys.get("api").await.unwrap();
    assert_eq!(d.status.unwrap().available_replicas, None, "never available");
}

// 6 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn namespace_delete_goes_terminating_then_disappears_with_contents() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "doomed").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "doomed");
    deploys
        .create(&PostParams::default(), &deployment("web", "nginx", 1))
        .await
        .unwrap();
    rolled_out(&deploys, "web").await;
    Api::<ConfigMap>::namespaced(client.clone(), "doomed")
        .create(&PostParams::default(), &configmap("cfg", json!({})))
        .await
        .unwrap();

    k8s.set_paused(true);
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let answer = ns_api.delete("doomed", &DeleteParams::default()).await.unwrap();
    let ns = answer.left().expect("namespace delete returns the namespace");
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(ns.metadata.deletion_timestamp.is_some());
    // While terminating: no new content, 403 with the real message.
    let e = api_err(
        Api::<ConfigMap>::namespaced(client.clone(), "doomed")
            .create(&PostParams::default(), &configmap("late", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert!(e.message.contains("because it is being terminated"), "{}", e.message);

    // A watcher on the namespace sees it go.
    let gone = kube::runtime::wait::conditions::is_deleted(ns.metadata.uid.as_deref().unwrap());
    k8s.set_paused(false);
    tokio::time::timeout(WAIT, await_condition(ns_api.clone(), "doomed", gone))
        .await
        .expect("namespace gone in time")
        .unwrap();
    for kind in [
        "pods",
        "deployments",
        "replicasets",
        "configmaps",
        "events",
        "serviceaccounts",
    ] {
        assert!(k8s.list_objects(kind, Some("doomed")).is_empty(), "{kind} left behind");
    }
    let e = api_err(ns_api.get("doomed").await.unwrap_err());
    assert_eq!(e.code, 404);
}

// 7 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn quota_stops_the_second_pod_with_a_failed_create_event() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "quota").await;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "env-quota"},
        "spec": {"hard": {"pods": "1"}}
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(client.clone(), "quota")
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "quota");
    deploys
        .create(&PostParams::default(), &deployment("web", "nginx", 2))
        .await
        .unwrap();

    let failed_create = |k: &KubeTestServer| {
        k.events("quota", "web-")
            .iter()
            .any(|e| e["reason"] == "FailedCreate" && e["involvedObject"]["kind"] == "ReplicaSet")
    };
    assert!(k8s.wait_for(WAIT, failed_create).await);
    let ev = k8s
        .events("quota", "web-")
        .into_iter()
        .find(|e| e["reason"] == "FailedCreate")
        .unwrap();
    let msg = ev["message"].as_str().unwrap();
    assert!(msg.starts_with("Error creating: pods \"web-"), "{msg}");
    assert!(
        msg.ends_with("is forbidden: exceeded quota: env-quota, requested: pods=1, used: pods=1, limited: pods=1"),
        "{msg}"
    );
    assert_eq!(ev["type"], "Warning");

    // The Deployment carries a ReplicaFailure condition with the same message.
    let replica_failure = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_.as_deref() == Some("ReplicaFailure") && c.status.as_deref() == Some("True"))
            })
    };
    let d = tokio::time::timeout(WAIT, await_condition(deploys.clone(), "web", replica_failure))
        .await
        .expect("ReplicaFailure in time")
        .unwrap()
        .unwrap();
    let cond = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))
        .unwrap();
    assert!(cond.message.unwrap().contains("exceeded quota: env-quota"));

    // A direct create over quota is a 403 with the same wording; the quota status shows usage.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "extra"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    let e = api_err(
        Api::<Pod>::namespaced(client.clone(), "quota")
            .create(&PostParams::default(), &pod)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "pods \"extra\" is forbidden: exceeded quota: env-quota, requested: pods=1, used: pods=1, limited: pods=1"
    );
    let q = k8s.object("resourcequotas", "quota", "env-quota").unwrap();
    assert_eq!(q["status"]["used"]["pods"], "1");
}

// 8 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn job_completes_and_its_logs_can_be_read() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    namespace(&client, "load").await;
    k8s.set_pod_logs("load", "loadtest-", "requests=100 errors=0\np50=3ms p99=12ms\n");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "loadtest"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "load", "image": "ghcr.io/acme/deckhand:1"}]
            }}
        }
    }))
    .unwrap();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "load");
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let done = tokio::time::timeout(
        WAIT,
        await_condition(jobs.clone(), "loadtest", kube::runtime::conditions::is_job_completed()),
    )
    .await
    .expect("job completes in time")
    .unwrap()
    .unwrap();
    assert_eq!(done.status.unwrap().succeeded, Some(1));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "load");
    let list = pods
        .list(&ListParams::default().labels("job-name=loadtest"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let pod = &list.items[0];
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
    let logs = pods
        .logs(pod.metadata.name.as_deref().unwrap(), &LogParams::default())
        .await
        .unwrap();
    assert_eq!(logs, "requests=100 errors=0\np50=3ms p99=12ms\n");

    // A Job without a valid restartPolicy is rejected as on a cluster.
    let mut bad = job.clone();
    bad.metadata.name = Some("bad".into());
    bad.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .restart_policy = None;
    let e = api_err(jobs.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(e.code, 422);
    assert!(e.message.contains("spec.template.spec.restartPolicy"), "{}", e.message);
}

// 9 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn real_kubectl_applies_gets_watches_a_rollout_and_deletes_a_namespace() {
    if !kubectl_present() {
        return;
    }
    let k8s = KubeTestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    k8s.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("deploy.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1
kind: Namespace
metadata:
  name: kubectl-ns
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: kubectl-ns
  labels: {app: shop}
spec:
  replicas: 2
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: shop
        image: ghcr.io/acme/shop:1.2
        ports:
        - containerPort: 8080
",
    )
    .unwrap();

    // No --validate=false needed: the fake's OpenAPI v3 says it validates fields itself.
    let (code, out, err) = kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-f", manifest.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "apply failed: {out}{err}");
    assert!(out.contains("deployment.apps/shop serverside-applied"), "{out}");

    let (code, out, err) = kubectl(
        &kubeconfig,
        &["get", "deploy", "shop", "-n", "kubectl-ns", "-o", "json"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/acme/shop:1.2"
    );

    let (code, out, err) = kubectl(
        &kubeconfig,
        &["rollout", "status", "deploy/shop", "-n", "kubectl-ns", "--timeout=30s"],
    )
    .await;
    assert_eq!(code, 0, "rollout status failed: {out}{err}");
    assert!(out.contains("deployment \"shop\" successfully rolled out"), "{out}");
    assert_eq!(k8s.list_objects("pods", Some("kubectl-ns")).len(), 2);

    // Plain `kubectl get` uses server-side printing (a Table).
    let (code, out, _) = kubectl(&kubeconfig, &["get", "pods", "-n", "kubectl-ns"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("NAME") && out.contains("Running"), "{out}");

    // Re-applying the same manifest changes nothing.
    let before = k8s.resource_version();
    let (code, _, err) = kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-f", manifest.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let d = k8s
        .get_object("/apis/apps/v1/namespaces/kubectl-ns/deployments/shop")
        .unwrap();
    assert!(
        d["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            <= before
    );

    // delete waits (a watch on the namespace) until the namespace is gone.
    let (code, out, err) = kubectl(&kubeconfig, &["delete", "namespace", "kubectl-ns", "--timeout=30s"]).await;
    assert_eq!(code, 0, "delete failed: {out}{err}");
    assert!(out.contains("namespace \"kubectl-ns\" deleted"), "{out}");
    assert!(k8s.get_object("/api/v1/namespaces/kubectl-ns").is_none());
    assert!(k8s.list_objects("deployments", Some("kubectl-ns")).is_empty());
    let (code, _, err) = kubectl(&kubeconfig, &["get", "namespace", "kubectl-ns"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("namespaces \"kubectl-ns\" not found"), "{err}");
}

// Extras the actions rely on ---------------------------------------------------------------------

/// One raw HTTP/1.1 exchange (std networking on a blocking thread; no client library in the
/// way, so malformed requests reach the server as sent).
async fn raw(addr: std::net::SocketAddr, request: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    })
    .await
    .unwrap()
}

fn http_req(method: &str, path: &str, content_type: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer whatever\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn garbage_requests_get_status_errors_and_never_break_the_server() {
    let k8s = KubeTestServer::start().await;
    namespace(&k8s.client(), "g").await;
    let json = "application/json";
    let cases: Vec<(String, u16)> = vec![
        (http_req("GET", "/nope", json, ""), 404),
        (http_req("GET", "/api/v1/widgets", json, ""), 404),
        (http_req("GET", "/api/v1/namespaces/g/pods/x/y/z/w", json, ""), 404),
        (
            http_req("POST", "/api/v1/namespaces/g/configmaps", json, "{not json"),
            400,
        ),
        (http_req("POST", "/api/v1/namespaces/g/configmaps", json, "[1,2]"), 400),
        (
            http_req(
                "POST",
                "/api/v1/namespaces/g/configmaps",
                json,
                "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"}}",
            ),
            400,
        ),
        (
            http_req(
                "POST",
                "/api/v1/namespaces/g/configmaps",
                json,
                "{\"metadata\":{\"name\":\"a\",\"namespace\":\"h\"}}",
            ),
            400,
        ),
        (
            http_req("POST", "/api/v1/namespaces/g/configmaps", json, "{\"metadata\":7}"),
            422,
        ),
        (
            http_req(
                "POST",
                "/api/v1/namespaces/g/pods",
                json,
                "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":\"x\"}}",
            ),
            422,
        ),
        (
            http_req(
                "POST",
                "/apis/apps/v1/namespaces/g/deployments",
                json,
                "{\"metadata\":{\"name\":\"d\"},\"spec\":{\"replicas\":\"two\"}}",
            ),
            422,
        ),
        (
            http_req(
                "PATCH",
                "/api/v1/namespaces/g/configmaps/zz",
                "application/merge-patch+json",
                "{}",
            ),
            404,
        ),
        (
            http_req("PATCH", "/api/v1/namespaces/g", "application/xml", "<x/>"),
            415,
        ),
        (
            http_req(
                "PATCH",
                "/api/v1/namespaces/g",
                "application/json-patch+json",
                "{\"op\":1}",
            ),
            422,
        ),
        (
            http_req(
                "PATCH",
                "/api/v1/namespaces/g",
                "application/json-patch+json",
                "[{\"op\":\"remove\",\"path\":\"/nope/x\"}]",
            ),
            422,
        ),
        (
            http_req(
                "GET",
                "/api/v1/namespaces/g/pods?labelSelector=a%20in%20(b&watch=1",
                json,
                "",
            ),
            400,
        ),
        (
            http_req("GET", "/api/v1/namespaces/g/pods?watch=1&resourceVersion=abc", json, ""),
            400,
        ),
        (
            http_req("GET", "/api/v1/namespaces/g/pods?limit=-5&timeoutSeconds=-1", json, ""),
            200,
        ),
        (
            http_req("GET", "/api/v1/namespaces/g/pods/x/log?tailLines=abc", json, ""),
            404,
        ),
        (http_req("PUT", "/api/v1/namespaces/g/configmaps", json, "{}"), 405),
        (
            http_req(
                "DELETE",
                "/api/v1/namespaces/default",
                json,
                "{\"propagationPolicy\": 5}",
            ),
            403,
        ),
        (
            http_req("GET", "/api/v1/namespaces/g/services/nope:80/proxy/x", json, ""),
            404,
        ),
        (
            http_req(
                "PATCH",
                "/apis/apps/v1/namespaces/g/deployments/d/scale",
                "application/merge-patch+json",
                "{\"spec\":{\"replicas\":\"x\"}}",
            ),
            404,
        ),
    ];
    for (req, want) in cases {
        let (code, body) = raw(k8s.addr(), req.clone()).await;
        assert_eq!(code, want, "{req}\n-> {body}");
        let status: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        if want >= 400 {
            assert_eq!(status["kind"], "Status", "{body}");
            assert_eq!(status["code"], want, "{body}");
        }
    }
    // Still serving.
    Api::<Namespace>::all(k8s.client()).get("g").await.unwrap();
}

#[tokio::test]
async fn environment_objects_limits_quota_proxy_and_rbac_usage() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    let pp = PatchParams::apply("deckhand").force();
    let apply = |path: &'static str, obj: Value| {
        let client = client.clone();
        let pp = pp.clone();
        async move {
            let req = kube::api::Request::new(path);
            let name = obj["metadata"]["name"].as_str().unwrap().to_string();
            let r = req.patch(&name, &pp, &Patch::Apply(&obj)).unwrap();
            client.request::<Value>(r).await.unwrap()
        }
    };
    apply(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "env-a"}}),
    )
    .await;
    apply(
        "/api/v1/namespaces/env-a/limitranges",
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults"},
               "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                                    "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]}}),
    )
    .await;
    apply(
        "/api/v1/namespaces/env-a/resourcequotas",
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "env-quota"},
               "spec": {"hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "1Gi"}}}),
    )
    .await;
    apply(
        "/apis/networking.k8s.io/v1/namespaces/env-a/networkpolicies",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny"},
               "spec": {"podSelector": {}}}),
    )
    .await;
    apply(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/env-a/rolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "team"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "Group", "name": "team-a", "apiGroup": "rbac.authorization.k8s.io"}]}),
    )
    .await;
    let secret = apply(
        "/api/v1/namespaces/env-a/secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"url": "postgres://x"}}),
    )
    .await;
    assert_eq!(secret["data"]["url"], "cG9zdGdyZXM6Ly94");
    assert!(secret.get("stringData").is_none());
    let np = k8s.object("networkpolicies", "env-a", "default-deny").unwrap();
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));

    // Pods get LimitRange defaults, so the compute quota admits them and counts them.
    let mut d = deployment("web", "nginx", 2);
    d.metadata.namespace = Some("env-a".into());
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "env-a");
    deploys.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    rolled_out(&deploys, "web").await;
    let pod = &k8s.list_objects("pods", Some("env-a"))[0];
    assert_eq!(pod["spec"]["containers"][0]["resources"]["requests"]["cpu"], "100m");
    assert_eq!(pod["spec"]["containers"][0]["resources"]["limits"]["memory"], "256Mi");
    assert!(
        k8s.wait_for(WAIT, |k| {
            let q = k.object("resourcequotas", "env-a", "env-quota").unwrap();
            q["status"]["used"] == json!({"pods": "2", "requests.cpu": "200m", "limits.memory": "512Mi"})
        })
        .await
    );

    // A Service gets a cluster IP; proxying to it reaches a ready pod (503 before any).
    let svc = apply(
        "/api/v1/namespaces/env-a/services",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
    )
    .await;
    assert!(svc["spec"]["clusterIP"].as_str().unwrap().starts_with("10.96."));
    k8s.set_proxy_response("env-a", "web", 200, "hello from web");
    let req = axum::http::Request::get("/api/v1/namespaces/env-a/services/web:80/proxy/healthz")
        .body(Vec::new())
        .unwrap();
    assert_eq!(client.request_text(req).await.unwrap(), "hello from web");

    // strategic merge keeps the other containers' fields; json patch works too.
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]}}}})),
        )
        .await
        .unwrap();
    let d = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 1}])).unwrap(),
            ),
        )
        .await
        .unwrap();
    let c = &d.spec.template.spec.unwrap().containers[0];
    assert_eq!(c.image.as_deref(), Some("nginx"));
    assert_eq!(c.env.as_ref().unwrap()[0].name, "A");
    assert_eq!(d.spec.replicas, Some(1));

    // deletecollection by label.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "env-a");
    for n in ["c1", "c2", "c3"] {
        cms.create(
            &PostParams::default(),
            &configmap(n, json!({"batch": if n == "c3" { "no" } else { "yes" }})),
        )
        .await
        .unwrap();
    }
    cms.delete_collection(&DeleteParams::default(), &ListParams::default().labels("batch=yes"))
        .await
        .unwrap();
    assert_eq!(names(cms.list(&ListParams::default()).await.unwrap().items), ["c3"]);

    // The request log, seen as an authorizer sees it.
    let usage = k8s.rbac_usage();
    let has = |g: &str, r: &str, v: &str| usage.contains(&(g.to_string(), r.to_string(), v.to_string()));
    assert!(has("", "namespaces", "patch"));
    assert!(has("apps", "deployments", "watch"));
    assert!(has("", "services/proxy", "get"));
    assert!(has("", "configmaps", "deletecollection"));
    assert!(
        !has("", "pods", "create"),
        "pods are created by the controllers, not by the client"
    );
}

#[tokio::test]
async fn a_dropped_server_is_unreachable_even_over_kept_alive_connections() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    ns_api.get("default").await.unwrap(); // leaves a pooled keep-alive connection
    let mut watch = ns_api
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert!(watch.try_next().await.unwrap().is_some());
    drop(k8s);
    // The open watch ends, and new requests fail to connect instead of being answered.
    let ended = tokio::time::timeout(WAIT, async { while let Ok(Some(_)) = watch.try_next().await {} }).await;
    assert!(ended.is_ok(), "watch still open after the server was dropped");
    // The listener goes with the server's task: poll until a request fails, then check how.
    let deadline = std::time::Instant::now() + WAIT;
    let e = loop {
        match ns_api.get("default").await {
            Err(e) => break e,
            Ok(_) => assert!(
                std::time::Instant::now() < deadline,
                "still answered {WAIT:?} after the drop"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        !matches!(e, kube::Error::Api(_)),
        "expected a transport error, got {e:?}"
    );
}
