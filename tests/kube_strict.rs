//! The test API server refuses what a real one refuses (issue 16): unknown and duplicate
//! fields by `fieldValidation`, apply conflicts between field managers (managedFields), and
//! `dryRun` that stores nothing. Each answer is checked for the code, reason and text a real
//! server gives, through kube-rs, raw HTTP and the real kubectl.

#[path = "support/kube/mod.rs"]
mod kube_fake;
#[path = "support/kubectl.rs"]
mod kubectl_support;

use std::time::Duration;

use axum::http::{self, Method};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube_fake::KubeTestServer;
use kubectl_support::{kubectl, kubectl_present};
use serde_json::{Value, json};

/// One raw answer: status code, `Warning` headers, JSON body.
struct Answer {
    code: u16,
    warnings: Vec<String>,
    body: Value,
}

async fn raw(k8s: &KubeTestServer, method: Method, path: &str, content_type: &str, body: &str) -> Answer {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let res = k8s.client().send(req).await.expect("the server answers");
    let code = res.status().as_u16();
    let warnings = res
        .headers()
        .get_all(http::header::WARNING)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { code, warnings, body }
}

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOY_PATH: &str = "/apis/apps/v1/namespaces/default/deployments";
const JSON: &str = "application/json";
const APPLY: &str = "application/apply-patch+yaml";

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
            }
        }
    })
}

// 1 fieldValidation ----------------------------------------------------------------------------

#[tokio::test]
async fn strict_field_validation_refuses_unknown_and_duplicate_fields_with_the_real_text() {
    let k8s = KubeTestServer::start().await;
    k8s.set_paused(true); // the PUT below carries the resourceVersion it created
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1"},"data":{"k":"v"},"bogusField":3}"#;
    let a = raw(
        &k8s,
        Method::POST,
        &format!("{CM_PATH}?fieldValidation=Strict"),
        JSON,
        cm,
    )
    .await;
    assert_eq!(a.code, 400, "{}", a.body);
    assert_eq!(a.body["reason"], "BadRequest");
    assert_eq!(
        a.body["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogusField""#
    );
    assert!(
        k8s.object("configmaps", "default", "c1").is_none(),
        "a refused create stores nothing"
    );

    // Nested fields are named by their path, list items by index.
    let mut d = deployment("web", 1);
    d["spec"]["bogusField"] = json!(true);
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = json!("Always");
    let a = raw(
        &k8s,
        Method::POST,
        &format!("{DEPLOY_PATH}?fieldValidation=Strict"),
        JSON,
        &d.to_string(),
    )
    .await;
    assert_eq!(a.code, 400, "{}", a.body);
    let message = a.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: "),
        "{message}"
    );
    assert!(message.contains(r#"unknown field "spec.bogusField""#), "{message}");
    assert!(
        message.contains(r#"unknown field "spec.template.spec.containers[0].imagePullPolcy""#),
        "{message}"
    );

    // Duplicate keys, which serde_json alone would silently collapse.
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c2"},"data":{"a":"1","a":"2"}}"#;
    let a = raw(
        &k8s,
        Method::POST,
        &format!("{CM_PATH}?fieldValidation=Strict"),
        JSON,
        dup,
    )
    .await;
    assert_eq!(a.code, 400, "{}", a.body);
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .ends_with(r#"strict decoding error: duplicate field "data.a""#),
        "{}",
        a.body
    );

    // Update and patch are held to the same rule.
    let ok = raw(
        &k8s,
        Method::POST,
        &format!("{DEPLOY_PATH}?fieldValidation=Strict"),
        JSON,
        &deployment("web", 1).to_string(),
    )
    .await;
    assert_eq!(ok.code, 201, "{}", ok.body);
    let mut put = ok.body.clone();
    put["spec"]["replicaz"] = json!(3);
    let a = raw(
        &k8s,
        Method::PUT,
        &format!("{DEPLOY_PATH}/web?fieldValidation=Strict"),
        JSON,
        &put.to_string(),
    )
    .await;
    assert_eq!(
        (a.code, a.body["reason"].as_str()),
        (400, Some("BadRequest")),
        "{}",
        a.body
    );
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .ends_with(r#"strict decoding error: unknown field "spec.replicaz""#)
    );
    let a = raw(
        &k8s,
        Method::PATCH,
        &format!("{DEPLOY_PATH}/web?fieldValidation=Strict"),
        "application/merge-patch+json",
        r#"{"spec":{"bogusField":1}}"#,
    )
    .await;
    assert_eq!(a.code, 400, "{}", a.body);
    assert_eq!(
        a.body["message"],
        r#"strict decoding error: unknown field "spec.bogusField""#
    );
    let stored = k8s.object("deployments", "default", "web").unwrap();
    assert!(stored["spec"].get("bogusField").is_none() && stored["spec"].get("replicaz").is_none());

    // An unknown directive is the real 422 on the options.
    let a = raw(
        &k8s,
        Method::POST,
        &format!("{CM_PATH}?fieldValidation=strict"),
        JSON,
        cm,
    )
    .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        a.body["message"],
        r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn""#
    );
}

#[tokio::test]
async fn warn_is_the_default_and_drops_unknown_fields_with_a_warning_header_ignore_drops_silently() {
    let k8s = KubeTestServer::start().await;
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w"},"data":{"k":"v"},"bogusField":3}"#;
    let a = raw(&k8s, Method::POST, CM_PATH, JSON, cm).await;
    assert_eq!(a.code, 201, "{}", a.body);
    assert_eq!(a.warnings, vec![r#"299 - "unknown field \"bogusField\"""#.to_string()]);
    assert!(a.body.get("bogusField").is_none(), "{}", a.body);
    let stored = k8s.object("configmaps", "default", "w").unwrap();
    assert!(stored.get("bogusField").is_none());
    assert_eq!(stored["data"]["k"], "v");

    // Duplicates: a warning, and the last value wins.
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},"data":{"a":"1","a":"2"}}"#;
    let a = raw(
        &k8s,
        Method::POST,
        &format!("{CM_PATH}?fieldValidation=Warn"),
        JSON,
        dup,
    )
    .await;
    assert_eq!(a.code, 201);
    assert_eq!(a.warnings, vec![r#"299 - "duplicate field \"data.a\"""#.to_string()]);
    assert_eq!(k8s.object("configmaps", "default", "d").unwrap()["data"]["a"], "2");

    let quiet = cm.replace("\"w\"", "\"i\"");
    let a = raw(
        &k8s,
        Method::POST,
        &format!("{CM_PATH}?fieldValidation=Ignore"),
        JSON,
        &quiet,
    )
    .await;
    assert_eq!(a.code, 201);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    assert!(
        k8s.object("configmaps", "default", "i")
            .unwrap()
            .get("bogusField")
            .is_none()
    );

    // kube-rs sends no directive: the product's own creates get Warn.
    let cms: Api<ConfigMap> = Api::namespaced(k8s.client(), "default");
    let typed: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "typed"}, "data": {"a": "b"}})).unwrap();
    cms.create(&PostParams::default(), &typed).await.unwrap();
}

#[tokio::test]
async fn server_side_apply_refuses_unknown_fields_whatever_the_directive() {
    let k8s = KubeTestServer::start().await;
    let mut d = deployment("web", 1);
    d["spec"]["template"]["spec"]["containers"][0]["bogus"] = json!(1);
    for directive in ["Strict", "Warn", "Ignore"] {
        let path = format!("{DEPLOY_PATH}/web?fieldManager=deckhand&fieldValidation={directive}");
        let a = raw(&k8s, Method::PATCH, &path, APPLY, &d.to_string()).await;
        // A real server answers this with a 500 (kubernetes/kubernetes#122480), same text.
        assert_eq!(a.code, 500, "{}", a.body);
        assert!(a.body.get("reason").is_none(), "{}", a.body);
        assert_eq!(
            a.body["message"],
            r#"failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.template.spec.containers[name="app"].bogus: field not declared in schema"#
        );
    }
    assert!(k8s.object("deployments", "default", "web").is_none());

    // Duplicates in an apply follow the directive.
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1","a":"2"}}"#;
    let a = raw(
        &k8s,
        Method::PATCH,
        &format!("{CM_PATH}/c?fieldManager=m&fieldValidation=Strict"),
        APPLY,
        dup,
    )
    .await;
    assert_eq!(
        (a.code, a.body["reason"].as_str()),
        (400, Some("BadRequest")),
        "{}",
        a.body
    );
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains(r#"duplicate field "data.a""#),
        "{}",
        a.body
    );
    let a = raw(&k8s, Method::PATCH, &format!("{CM_PATH}/c?fieldManager=m"), APPLY, dup).await;
    assert_eq!(a.code, 201, "{}", a.body);
    assert_eq!(a.warnings, vec![r#"299 - "duplicate field \"data.a\"""#.to_string()]);
}

// 2 managedFields and apply conflicts ----------------------------------------------------------

fn managers(obj: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_string(),
                e["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn owns_replicas(obj: &Value, manager: &str) -> bool {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["manager"] == manager && e["fieldsV1"]["f:spec"].get("f:replicas").is_some())
}

#[tokio::test]
async fn apply_records_owned_fields_in_the_real_fields_v1_form() {
    let k8s = KubeTestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(k8s.client(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c", "labels": {"team": "a"}}, "data": {"k": "v"}}))
            .unwrap();
    let applied = cms
        .patch("c", &PatchParams::apply("deckhand"), &Patch::Apply(&cm))
        .await
        .unwrap();
    let mf = applied.metadata.managed_fields.unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("deckhand"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    assert_eq!(mf[0].api_version.as_deref(), Some("v1"));
    assert_eq!(mf[0].fields_type.as_deref(), Some("FieldsV1"));
    assert!(mf[0].time.is_some());
    assert_eq!(
        mf[0].fields_v1.as_ref().unwrap().0,
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:team": {}}}})
    );
}

#[tokio::test]
async fn apply_conflicts_name_the_other_manager_and_field_and_force_takes_ownership() {
    let k8s = KubeTestServer::start().await;
    k8s.set_paused(true);
    let path = |manager: &str, extra: &str| format!("{DEPLOY_PATH}/web?fieldManager={manager}{extra}");
    let a = raw(
        &k8s,
        Method::PATCH,
        &path("A", ""),
        APPLY,
        &deployment("web", 2).to_string(),
    )
    .await;
    assert_eq!(a.code, 201, "{}", a.body);

    // B changes A's replicas: 409 naming A (an applier) and the field.
    let b = raw(
        &k8s,
        Method::PATCH,
        &path("B", ""),
        APPLY,
        &deployment("web", 3).to_string(),
    )
    .await;
    assert_eq!(b.code, 409, "{}", b.body);
    assert_eq!(b.body["reason"], "Conflict");
    assert_eq!(
        b.body["message"],
        r#"Apply failed with 1 conflict: conflict with "A": .spec.replicas"#
    );
    assert_eq!(
        b.body["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"A\"", "field": ".spec.replicas"}])
    );
    assert_eq!(
        k8s.object("deployments", "default", "web").unwrap()["spec"]["replicas"],
        2
    );

    // The same values are shared, not a conflict.
    let same = raw(
        &k8s,
        Method::PATCH,
        &path("B", ""),
        APPLY,
        &deployment("web", 2).to_string(),
    )
    .await;
    assert_eq!(same.code, 200, "{}", same.body);
    assert!(
        owns_replicas(&same.body, "A") && owns_replicas(&same.body, "B"),
        "{}",
        same.body
    );

    // An update by another manager takes the field; a later apply conflicts with the updater,
    // named with its apiVersion as a real server does.
    let edit = raw(
        &k8s,
        Method::PATCH,
        &format!("{DEPLOY_PATH}/web?fieldManager=kubectl-edit"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":4}}"#,
    )
    .await;
    assert_eq!(edit.code, 200, "{}", edit.body);
    assert!(owns_replicas(&edit.body, "kubectl-edit"));
    assert!(
        !owns_replicas(&edit.body, "A") && !owns_replicas(&edit.body, "B"),
        "{}",
        edit.body
    );
    let c = raw(
        &k8s,
        Method::PATCH,
        &path("A", ""),
        APPLY,
        &deployment("web", 5).to_string(),
    )
    .await;
    assert_eq!(c.code, 409, "{}", c.body);
    assert_eq!(
        c.body["message"],
        r#"Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas"#
    );

    // Two fields of two managers: all listed.
    let mut two = deployment("web", 6);
    two["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    let d = raw(&k8s, Method::PATCH, &path("C", ""), APPLY, &two.to_string()).await;
    assert_eq!(d.code, 409, "{}", d.body);
    assert_eq!(
        d.body["message"],
        "Apply failed with 3 conflicts: conflict with \"A\":\n- .spec.template.spec.containers[name=\"app\"].image\n\
         conflict with \"B\":\n- .spec.template.spec.containers[name=\"app\"].image\n\
         conflict with \"kubectl-edit\" using apps/v1:\n- .spec.replicas"
    );
    assert_eq!(d.body["details"]["causes"].as_array().unwrap().len(), 3);

    // force=true takes ownership from everyone.
    let forced = raw(&k8s, Method::PATCH, &path("C", "&force=true"), APPLY, &two.to_string()).await;
    assert_eq!(forced.code, 200, "{}", forced.body);
    assert_eq!(forced.body["spec"]["replicas"], 6);
    assert!(owns_replicas(&forced.body, "C"));
    assert!(!owns_replicas(&forced.body, "kubectl-edit"));
    assert_eq!(
        managers(&forced.body),
        vec![
            ("A".to_string(), "Apply".to_string()),
            ("B".to_string(), "Apply".to_string()),
            ("C".to_string(), "Apply".to_string()),
        ],
        "kubectl-edit owned only replicas and lost it"
    );
}

#[tokio::test]
async fn a_field_stays_while_another_manager_owns_it() {
    let k8s = KubeTestServer::start().await;
    k8s.set_paused(true);
    let cms: Api<ConfigMap> = Api::namespaced(k8s.client(), "default");
    let both: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})).unwrap();
    let only_a: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    cms.patch("c", &PatchParams::apply("one"), &Patch::Apply(&both))
        .await
        .unwrap();
    cms.patch("c", &PatchParams::apply("two"), &Patch::Apply(&both))
        .await
        .unwrap();
    // "one" stops applying b: "two" still owns it, so it stays.
    let kept = cms
        .patch("c", &PatchParams::apply("one"), &Patch::Apply(&only_a))
        .await
        .unwrap();
    assert_eq!(kept.data.unwrap().get("b").map(String::as_str), Some("2"));
    // "two" stops too: nobody owns b any more and it goes.
    let gone = cms
        .patch("c", &PatchParams::apply("two"), &Patch::Apply(&only_a))
        .await
        .unwrap();
    assert!(!gone.data.unwrap().contains_key("b"));
}

// 3 dryRun -------------------------------------------------------------------------------------

#[tokio::test]
async fn dry_run_validates_and_answers_but_stores_nothing_and_sends_no_event() {
    let k8s = KubeTestServer::start().await;
    k8s.set_paused(true);
    let client = k8s.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let live: Deployment = serde_json::from_value(deployment("live", 1)).unwrap();
    deploys.create(&PostParams::default(), &live).await.unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let mut events = deploys
        .watch(&WatchParams::default(), &k8s.resource_version().to_string())
        .await
        .unwrap()
        .boxed();
    let rv = k8s.resource_version();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };

    // create
    let new: Deployment = serde_json::from_value(deployment("new", 2)).unwrap();
    let created = deploys.create(&dry, &new).await.unwrap();
    let spec = created.spec;
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(spec.revision_history_limit, Some(10), "defaults are applied");
    assert!(k8s.object("deployments", "default", "new").is_none());
    // Validation still runs: a bad object is refused as it would be.
    let mut bad = new.clone();
    bad.metadata.name = Some("Not_A_Name".into());
    let e = deploys.create(&dry, &bad).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 422), "{e:?}");

    // replace, merge patch, apply
    let mut current = deploys.get("live").await.unwrap();
    current.spec.replicas = Some(7);
    let replaced = deploys.replace("live", &dry, &current).await.unwrap();
    assert_eq!(replaced.spec.replicas, Some(7));
    let dry_patch = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let patched = deploys
        .patch("live", &dry_patch, &Patch::Merge(json!({"spec": {"replicas": 8}})))
        .await
        .unwrap();
    assert_eq!(patched.spec.replicas, Some(8));
    // (kube-rs's create above made its user agent the owner of replicas: force.)
    let applied = deploys
        .patch(
            "live",
            &PatchParams::apply("deckhand").force().dry_run(),
            &Patch::Apply(deployment("live", 9)),
        )
        .await
        .unwrap();
    assert_eq!(applied.spec.replicas, Some(9));
    let applied_new = deploys
        .patch(
            "other",
            &PatchParams::apply("deckhand").dry_run(),
            &Patch::Apply(deployment("other", 1)),
        )
        .await
        .unwrap();
    assert_eq!(applied_new.metadata.name.as_deref(), Some("other"));
    assert!(k8s.object("deployments", "default", "other").is_none());

    // delete (kube-rs puts dryRun in the DeleteOptions body): the answer a delete gives.
    let answer = deploys
        .delete("live", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    assert!(answer.is_right(), "a Deployment delete answers with a Status");
    let answer = pods.delete("p", &DeleteParams::default().dry_run()).await.unwrap();
    assert_eq!(answer.left().unwrap().metadata.name.as_deref(), Some("p"));

    assert_eq!(k8s.resource_version(), rv, "nothing was written");
    assert_eq!(
        k8s.object("deployments", "default", "live").unwrap()["spec"]["replicas"],
        1
    );
    assert!(k8s.object("pods", "default", "p").is_some());
    let quiet = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    assert!(
        !matches!(
            quiet,
            Ok(Some(Ok(WatchEvent::Added(_)
                | WatchEvent::Modified(_)
                | WatchEvent::Deleted(_))))
        ),
        "no watch event: {quiet:?}"
    );
}

#[tokio::test]
async fn an_unknown_dry_run_value_is_refused_and_nothing_happens() {
    let k8s = KubeTestServer::start().await;
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#;
    let a = raw(&k8s, Method::POST, &format!("{CM_PATH}?dryRun=all"), JSON, cm).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(a.body["reason"], "Invalid");
    assert_eq!(
        a.body["message"],
        r#"CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"all"}: supported values: "All""#
    );
    assert!(k8s.object("configmaps", "default", "c").is_none());

    let a = raw(&k8s, Method::POST, CM_PATH, JSON, cm).await;
    assert_eq!(a.code, 201);
    let a = raw(&k8s, Method::DELETE, &format!("{CM_PATH}/c?dryRun=yes"), JSON, "").await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .starts_with("DeleteOptions.meta.k8s.io")
    );
    assert!(
        k8s.object("configmaps", "default", "c").is_some(),
        "a refused delete deletes nothing"
    );
}

// kubectl --------------------------------------------------------------------------------------

#[tokio::test]
async fn real_kubectl_meets_strict_validation_conflicts_and_server_dry_run() {
    if !kubectl_present() {
        return;
    }
    let k8s = KubeTestServer::start().await;
    k8s.set_paused(true);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    k8s.write_kubeconfig(&kubeconfig).unwrap();
    let kc = kubeconfig.as_path();
    let bogus = dir.path().join("bogus.yaml");
    std::fs::write(
        &bogus,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bogus\ndata:\n  k: v\nbogusField: 3\n",
    )
    .unwrap();
    let f = bogus.to_str().unwrap();

    // kubectl asks for Strict: client-side and server-side apply are both refused.
    let (code, _, err) = kubectl(kc, &["apply", "-f", f]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains(r#"strict decoding error: unknown field "bogusField""#),
        "{err}"
    );
    let (code, _, err) = kubectl(kc, &["apply", "--server-side", "-f", f]).await;
    assert_ne!(code, 0);
    assert!(err.contains(".bogusField: field not declared in schema"), "{err}");
    assert!(k8s.object("configmaps", "default", "bogus").is_none());
    // --validate=false sends Ignore for create: stored without the field.
    let (code, out, err) = kubectl(kc, &["create", "--validate=false", "-f", f]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        k8s.object("configmaps", "default", "bogus")
            .unwrap()
            .get("bogusField")
            .is_none()
    );

    // Server-side apply conflicts as kubectl reports them, and --force-conflicts.
    let deploy = dir.path().join("deploy.yaml");
    let write = |replicas: u32| {
        std::fs::write(
            &deploy,
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n"
            ),
        )
        .unwrap()
    };
    let d = deploy.to_str().unwrap();
    write(2);
    let (code, out, err) = kubectl(kc, &["apply", "--server-side", "--field-manager=A", "-f", d]).await;
    assert_eq!(code, 0, "{out}{err}");
    write(3);
    let (code, _, err) = kubectl(kc, &["apply", "--server-side", "--field-manager=B", "-f", d]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "A": .spec.replicas"#),
        "{err}"
    );
    let (code, out, err) = kubectl(
        kc,
        &[
            "apply",
            "--server-side",
            "--field-manager=B",
            "--force-conflicts",
            "-f",
            d,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let stored = k8s.object("deployments", "default", "web").unwrap();
    assert_eq!(stored["spec"]["replicas"], 3);
    assert!(owns_replicas(&stored, "B") && !owns_replicas(&stored, "A"));

    // --dry-run=server: answered, not stored. (From a file, so the body is JSON;
    // kube_conformance.rs covers the protobuf that `kubectl create deployment` sends.)
    let dry = dir.path().join("dry.yaml");
    std::fs::write(
        &dry,
        std::fs::read_to_string(&deploy)
            .unwrap()
            .replace("name: web", "name: dry"),
    )
    .unwrap();
    let (code, out, err) = kubectl(
        kc,
        &["create", "-f", dry.to_str().unwrap(), "--dry-run=server", "-o", "json"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["metadata"]["name"], "dry");
    assert!(k8s.object("deployments", "default", "dry").is_none());
    let (code, out, err) = kubectl(kc, &["delete", "deployment", "web", "--dry-run=server"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("deleted (server dry run)"), "{out}");
    assert!(k8s.object("deployments", "default", "web").is_some());
}

#[tokio::test]
async fn custom_kinds_with_a_crd_are_held_to_its_schema() {
    use kube_fake::custom::CustomKind;
    let k8s = KubeTestServer::start().await;
    k8s.register_custom(
        CustomKind::namespaced("widgets.example.org/v1", "Widget", "widgets").with_schema(json!({
            "type": "object",
            "properties": {
                "spec": { "type": "object", "properties": {
                    "size": { "type": "integer" },
                    "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                    "free": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
                }},
                "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
            },
        })),
    );
    // The CRD is served, with the schema, as deckhand reads it.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(k8s.client());
    let crd = crds.get("widgets.widgets.example.org").await.unwrap();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    assert!(
        schema
            .and_then(|s| s.properties.as_ref())
            .is_some_and(|p| p.contains_key("spec"))
    );

    let path = "/apis/widgets.example.org/v1/namespaces/default/widgets";
    let widget = |spec: Value| {
        json!({ "apiVersion": "widgets.example.org/v1", "kind": "Widget", "metadata": { "name": "w" }, "spec": spec })
            .to_string()
    };
    // Server-side apply refuses an undeclared field, as for built-in kinds.
    let a = raw(
        &k8s,
        Method::PATCH,
        &format!("{path}/w?fieldManager=deckhand"),
        APPLY,
        &widget(json!({ "size": 1, "sise": 2 })),
    )
    .await;
    assert_eq!(a.code, 500, "{}", a.body);
    assert!(
        a.body["message"]
            .as_str()
            .is_some_and(|m| m.ends_with(".spec.sise: field not declared in schema")),
        "{}",
        a.body
    );
    // A create without a directive prunes it, and keeps what the schema allows.
    let ok = widget(json!({ "size": 1, "sise": 2, "labels": { "a": "b" }, "free": { "x": { "y": 1 } } }));
    let c = raw(&k8s, Method::POST, path, JSON, &ok).await;
    assert_eq!(c.code, 201, "{}", c.body);
    let stored = k8s.object("widgets", "default", "w").unwrap();
    assert_eq!(
        stored["spec"],
        json!({ "size": 1, "labels": { "a": "b" }, "free": { "x": { "y": 1 } } })
    );
}
