//! The test API server is as strict as a real one (issue 16): field validation, field
//! ownership with apply conflicts, and dry runs.

#[path = "support/kube/mod.rs"]
mod kube_fake;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use kube_fake::KubeTestServer;
use serde_json::json;

#[tokio::test]
async fn debug_apply() {
    let k8s = KubeTestServer::start().await;
    let client = k8s.client();
    k8s.set_paused(true);
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("deckhand");
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 8080}]}]}}}
    })).unwrap();
    let a = deploys.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    println!("{}", serde_json::to_string_pretty(&a.metadata.managed_fields).unwrap());
    let mut d3 = d.clone();
    d3.metadata.labels = None;
    let e = deploys.patch("web", &pp, &Patch::Apply(&d3)).await.unwrap();
    println!("{}", serde_json::to_string_pretty(&e.metadata).unwrap());
}
