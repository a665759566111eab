//! Conformance of the test API server with real clients (issue 16): what kubectl and the
//! Python kubernetes client do every day works against it as against a cluster, each command
//! checked on its effect (the object read back from the server), not on its exit code alone.
//!
//! - Protobuf: client-go sends `kubectl create <kind>` bodies in protobuf and asks for
//!   protobuf back; raw requests pin the envelope, the answers and the real error texts.
//! - kubectl: create (namespace, deployment, configmap, secret, service, serviceaccount, job),
//!   apply, get -o yaml, label, annotate, patch (merge, json, strategic), scale, set image,
//!   rollout status/history/undo, wait, expose, logs, exec, delete. (Server-side apply, watches,
//!   tables, validation and dry-run are in kube_testserver.rs and kube_strict.rs.)
//! - Python (Debian's python3-kubernetes): create/read/patch/list/delete of a ConfigMap and a
//!   Deployment; skipped, saying so, only where the module is missing.
//!
//! The kubectl tests are gated like the others: kubectl must be on PATH unless
//! DECKHAND_KUBECTL_TESTS=off.

#[path = "support/kube/mod.rs"]
mod kube_fake;
#[path = "support/kubectl.rs"]
mod kubectl_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{self, Method};
use http_body_util::BodyExt;
use kube_fake::KubeTestServer;
use kube_fake::custom::CustomKind;
use kubectl_support::{kubectl, kubectl_ok, kubectl_present, python_kubernetes_present, python_script};
use serde_json::{Value, json};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// A server with a kubeconfig for it in a temporary directory.
async fn server() -> (KubeTestServer, tempfile::TempDir, PathBuf) {
    let k8s = KubeTestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    k8s.write_kubeconfig(&kubeconfig).unwrap();
    (k8s, dir, kubeconfig)
}

// Protobuf on the wire ---------------------------------------------------------------------------

/// A length-delimited protobuf field, written by hand so these tests do not depend on the
/// server's own encoder.
fn ld(field: u8, bytes: &[u8]) -> Vec<u8> {
    assert!(bytes.len() < 128, "one-byte lengths only");
    let mut v = vec![(field << 3) | 2, bytes.len() as u8];
    v.extend_from_slice(bytes);
    v
}

/// `k8s\0` + runtime.Unknown{typeMeta{apiVersion, kind}, raw}.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    out.extend(ld(1, &[ld(1, api_version.as_bytes()), ld(2, kind.as_bytes())].concat()));
    out.extend(ld(2, raw));
    out
}

struct Answer {
    code: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn contains(&self, needle: &[u8]) -> bool {
        self.body.windows(needle.len()).any(|w| w == needle)
    }
}

async fn send(
    k8s: &KubeTestServer,
    method: Method,
    path: &str,
    content_type: &str,
    accept: &str,
    body: Vec<u8>,
) -> Answer {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, accept)
        .body(kube::client::Body::from(body))
        .unwrap();
    let res = k8s.client().send(req).await.expect("the server answers");
    let code = res.status().as_u16();
    let content_type = res
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer {
        code,
        content_type,
        body,
    }
}

#[tokio::test]
async fn protobuf_bodies_are_stored_as_json_and_answered_in_the_encoding_asked_for() {
    let k8s = KubeTestServer::start().await;
    // Namespace{metadata{name: proto-ns, labels{team: blue}}}
    let meta = [ld(1, b"proto-ns"), ld(11, &[ld(1, b"team"), ld(2, b"blue")].concat())].concat();
    let ns = envelope("v1", "Namespace", &ld(1, &meta));
    let a = send(&k8s, Method::POST, "/api/v1/namespaces", PROTOBUF, PROTOBUF, ns).await;
    assert_eq!(a.code, 201, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.content_type, PROTOBUF);
    assert!(a.body.starts_with(b"k8s\0") && a.contains(b"proto-ns") && a.contains(b"Namespace"));
    let stored = k8s.object("namespaces", "", "proto-ns").expect("stored");
    assert_eq!(
        stored["metadata"]["labels"],
        json!({"team": "blue", "kubernetes.io/metadata.name": "proto-ns"})
    );
    assert_eq!(stored["status"]["phase"], "Active");
    // The uid the server made comes back in a protobuf GET; JSON when JSON is preferred.
    let uid = stored["metadata"]["uid"].as_str().unwrap().to_string();
    let a = send(
        &k8s,
        Method::GET,
        "/api/v1/namespaces/proto-ns",
        PROTOBUF,
        PROTOBUF,
        vec![],
    )
    .await;
    assert!(a.content_type == PROTOBUF && a.contains(uid.as_bytes()));
    let a = send(
        &k8s,
        Method::GET,
        "/api/v1/namespaces/proto-ns",
        PROTOBUF,
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(a.json()["metadata"]["uid"], uid);

    // ConfigMap{metadata{name}, data{k: v}, binaryData{bin: 00 01 02}}: bytes become base64.
    let cm = [
        ld(1, &ld(1, b"pb-cm")),
        ld(2, &[ld(1, b"k"), ld(2, b"v")].concat()),
        ld(3, &[ld(1, b"bin"), ld(2, &[0, 1, 2])].concat()),
    ]
    .concat();
    let path = "/api/v1/namespaces/default/configmaps";
    let a = send(
        &k8s,
        Method::POST,
        path,
        PROTOBUF,
        "application/json",
        envelope("v1", "ConfigMap", &cm),
    )
    .await;
    assert_eq!(a.code, 201, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.content_type, "application/json");
    let stored = k8s.object("configmaps", "default", "pb-cm").unwrap();
    assert_eq!(stored["data"], json!({"k": "v"}));
    assert_eq!(stored["binaryData"], json!({"bin": "AAEC"}));
    assert_eq!(a.json()["metadata"]["uid"], stored["metadata"]["uid"]);

    // DeleteOptions in protobuf (as client-go's typed clients send them) are honoured.
    let cm_path = "/api/v1/namespaces/default/configmaps/pb-cm";
    let wrong_uid = ld(2, &ld(1, b"not-the-uid"));
    let a = send(
        &k8s,
        Method::DELETE,
        cm_path,
        PROTOBUF,
        "application/json",
        envelope("v1", "DeleteOptions", &wrong_uid),
    )
    .await;
    assert_eq!(a.code, 409, "{}", String::from_utf8_lossy(&a.body));
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("the UID in the precondition (not-the-uid)")
    );
    let dry = ld(5, b"All");
    let a = send(
        &k8s,
        Method::DELETE,
        cm_path,
        PROTOBUF,
        "application/json",
        envelope("v1", "DeleteOptions", &dry),
    )
    .await;
    assert_eq!(a.code, 200);
    assert!(
        k8s.object("configmaps", "default", "pb-cm").is_some(),
        "a dry-run delete deletes nothing"
    );

    // Go writes unset fields as zeros; JSON leaves those out but keeps a pointer's explicit
    // false: ServiceAccount{metadata{name: robot, generateName: ""}, automountServiceAccountToken: false}.
    let sa = [ld(1, &[ld(1, b"robot"), ld(2, b"")].concat()), vec![4 << 3, 0]].concat();
    let path = "/api/v1/namespaces/default/serviceaccounts";
    let a = send(
        &k8s,
        Method::POST,
        path,
        PROTOBUF,
        PROTOBUF,
        envelope("v1", "ServiceAccount", &sa),
    )
    .await;
    assert_eq!(a.code, 201, "{}", String::from_utf8_lossy(&a.body));
    let stored = k8s.object("serviceaccounts", "default", "robot").unwrap();
    assert_eq!(stored["automountServiceAccountToken"], false);
    assert!(stored["metadata"].get("generateName").is_none(), "{stored}");

    // Errors are Status objects, in protobuf too when that is preferred.
    let a = send(
        &k8s,
        Method::GET,
        "/api/v1/namespaces/default/configmaps/nope",
        "",
        PROTOBUF,
        vec![],
    )
    .await;
    assert_eq!((a.code, a.content_type.as_str()), (404, PROTOBUF));
    assert!(a.contains(b"Status") && a.contains(br#"configmaps "nope" not found"#));
}

/// Reads one length-prefixed frame of a protobuf watch: the bare WatchEvent message.
async fn next_frame(body: &mut kube::client::Body, buf: &mut Vec<u8>) -> Vec<u8> {
    use http_body_util::BodyExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() >= 4 + len {
                let frame = buf[4..4 + len].to_vec();
                buf.drain(..4 + len);
                return frame;
            }
        }
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("a watch event within 10s")
            .expect("the stream goes on")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
    }
}

fn varint(b: &[u8], pos: &mut usize) -> usize {
    let (mut v, mut shift) = (0usize, 0);
    loop {
        let byte = b[*pos];
        *pos += 1;
        v |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

#[tokio::test]
async fn a_protobuf_watch_streams_length_prefixed_watch_events() {
    let k8s = KubeTestServer::start().await;
    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/configmaps?watch=true")
        .header(http::header::ACCEPT, PROTOBUF)
        .body(kube::client::Body::empty())
        .unwrap();
    let res = k8s.client().send(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()[http::header::CONTENT_TYPE],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let mut body = res.into_body();
    k8s.insert_object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched", "namespace": "default"}}),
    )
    .unwrap();
    let mut buf = Vec::new();
    let event = next_frame(&mut body, &mut buf).await;
    // WatchEvent{type: ADDED, object: RawExtension{raw: k8s\0 + Unknown{typeMeta{v1, ConfigMap}, ...}}}
    let added = ld(1, b"ADDED");
    assert!(event.starts_with(&added), "{event:?}");
    // Field 2 (length-delimited) holds a RawExtension whose field 1 holds the object.
    let mut pos = added.len();
    assert_eq!(event[pos], 2 << 3 | 2, "{event:?}");
    pos += 1;
    varint(&event, &mut pos);
    assert_eq!(event[pos], 1 << 3 | 2, "{event:?}");
    pos += 1;
    let len = varint(&event, &mut pos);
    let object = &event[pos..pos + len];
    assert!(object.starts_with(b"k8s\0"));
    let type_meta = ld(1, &[ld(1, b"v1"), ld(2, b"ConfigMap")].concat());
    assert!(object.windows(type_meta.len()).any(|w| w == type_meta.as_slice()));
    assert!(object.windows(7).any(|w| w == b"watched"));
}

#[tokio::test]
async fn bad_protobuf_gets_the_real_400_and_415_texts_and_stores_nothing() {
    let k8s = KubeTestServer::start().await;
    let path = "/api/v1/namespaces";
    let bad = |a: &Answer| a.json()["message"].as_str().unwrap_or("").to_string();

    let a = send(
        &k8s,
        Method::POST,
        path,
        PROTOBUF,
        "application/json",
        br#"{"x":1}"#.to_vec(),
    )
    .await;
    assert_eq!((a.code, a.json()["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        bad(&a),
        r#"the object provided is unrecognized (must be of type Namespace): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] ({"x":1})"#
    );

    let truncated = [b"k8s\0".as_slice(), &[0x0a, 0x05, 0x0a]].concat();
    let a = send(&k8s, Method::POST, path, PROTOBUF, "application/json", truncated).await;
    assert_eq!(a.code, 400);
    assert_eq!(
        bad(&a),
        "the object provided is unrecognized (must be of type Namespace): unexpected EOF (6b3873000a050a)"
    );

    let bogus = envelope("v1", "Bogus", &ld(1, &ld(1, b"x")));
    let a = send(&k8s, Method::POST, path, PROTOBUF, "application/json", bogus).await;
    assert_eq!(a.code, 400);
    assert_eq!(
        bad(&a),
        r#"Bogus in version "v1" cannot be handled as a Namespace: no kind "Bogus" is registered for version "v1" in scheme "pkg/api/legacyscheme/scheme.go:30""#
    );

    // A ConfigMap sent to the namespaces URL: the same refusal as in JSON.
    let wrong = envelope("v1", "ConfigMap", &ld(1, &ld(1, b"x")));
    let a = send(&k8s, Method::POST, path, PROTOBUF, "application/json", wrong).await;
    assert_eq!(a.code, 400);
    assert!(
        bad(&a).contains("the kind in the data (ConfigMap) does not match"),
        "{}",
        bad(&a)
    );

    // Custom resources have no protobuf form (415), and answer JSON whatever is asked.
    k8s.register_custom(CustomKind::namespaced("proto.example.org/v1", "Widget", "widgets"));
    let crd_path = "/apis/proto.example.org/v1/namespaces/default/widgets";
    let body = envelope("proto.example.org/v1", "Widget", &ld(1, &ld(1, b"w")));
    let a = send(&k8s, Method::POST, crd_path, PROTOBUF, "application/json", body).await;
    assert_eq!(
        (a.code, a.json()["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    assert!(
        bad(&a).starts_with(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
        ),
        "{}",
        bad(&a)
    );
    let widget = json!({"apiVersion": "proto.example.org/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let a = send(
        &k8s,
        Method::POST,
        crd_path,
        "application/json",
        PROTOBUF,
        widget.to_string().into_bytes(),
    )
    .await;
    assert_eq!((a.code, a.content_type.as_str()), (201, "application/json"));
    let a = send(&k8s, Method::GET, &format!("{crd_path}/nope"), "", PROTOBUF, vec![]).await;
    assert_eq!((a.code, a.content_type.as_str()), (404, "application/json"));

    // A patch is never protobuf.
    let a = send(
        &k8s,
        Method::PATCH,
        "/api/v1/namespaces/default",
        PROTOBUF,
        "application/json",
        b"k8s\0".to_vec(),
    )
    .await;
    assert_eq!(a.code, 415);
    assert!(bad(&a).contains("application/merge-patch+json"), "{}", bad(&a));

    assert!(k8s.object("namespaces", "", "x").is_none());
    assert!(k8s.list_objects("widgets", Some("default")).len() == 1);
}

// kubectl --------------------------------------------------------------------------------------

fn yaml(text: &str) -> Value {
    yaml_serde::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}): {text}"))
}

#[tokio::test]
async fn real_kubectl_creates_each_kind_in_protobuf_and_reads_it_back() {
    if !kubectl_present() {
        return;
    }
    let (k8s, _dir, kc) = server().await;
    let kc = kc.as_path();
    k8s.set_pod_logs("conf", "hello-", "hello from the job\n");

    assert!(
        kubectl_ok(kc, &["create", "namespace", "conf"])
            .await
            .contains("namespace/conf created")
    );
    assert_eq!(
        k8s.object("namespaces", "", "conf").unwrap()["status"]["phase"],
        "Active"
    );
    let n = &["-n", "conf"];
    let run = |args: &'static [&'static str]| async move { kubectl_ok(kc, &[args, n].concat()).await };

    run(&["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"]).await;
    let d = k8s.object("deployments", "conf", "web").unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"], json!({"app": "web"}));
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["name"], "nginx");
    // Go's zero values of unset fields are not stored as set (defaulting filled them in).
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    for unset in ["paused", "minReadySeconds"] {
        assert!(d["spec"].get(unset).is_none(), "{unset}: {d}");
    }
    assert!(d["spec"]["template"]["spec"].get("hostNetwork").is_none(), "{d}");

    run(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--from-literal=level=3",
    ])
    .await;
    let cm = k8s.object("configmaps", "conf", "settings").unwrap();
    assert_eq!(cm["data"], json!({"mode": "fast", "level": "3"}));

    run(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=hunter2",
    ])
    .await;
    let s = k8s.object("secrets", "conf", "creds").unwrap();
    assert_eq!(s["data"], json!({"password": "aHVudGVyMg=="}));
    assert_eq!(s["type"], "Opaque");

    run(&["create", "service", "clusterip", "api", "--tcp=80:8080"]).await;
    let svc = k8s.object("services", "conf", "api").unwrap();
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["selector"], json!({"app": "api"}));
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10."))
    );

    run(&["create", "serviceaccount", "robot"]).await;
    assert!(k8s.object("serviceaccounts", "conf", "robot").is_some());

    run(&["create", "job", "hello", "--image=busybox:1.36"]).await;
    let job = k8s.object("jobs", "conf", "hello").unwrap();
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:1.36"
    );
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");

    // get -o yaml shows what is stored (the answer came back in protobuf for create).
    let shown = yaml(&run(&["get", "deployment", "web", "-o", "yaml"]).await);
    let d = k8s.object("deployments", "conf", "web").unwrap();
    assert_eq!(shown["metadata"]["uid"], d["metadata"]["uid"]);
    assert_eq!(shown["spec"]["template"], d["spec"]["template"]);
    let shown = yaml(&run(&["get", "secret", "creds", "-o", "yaml"]).await);
    assert_eq!(shown["data"]["password"], "aHVudGVyMg==");

    // wait and logs on the Job.
    let out = run(&["wait", "--for=condition=complete", "job/hello", "--timeout=30s"]).await;
    assert!(out.contains("condition met"), "{out}");
    let job = k8s.object("jobs", "conf", "hello").unwrap();
    assert_eq!(job["status"]["succeeded"], 1);
    assert_eq!(run(&["logs", "job/hello"]).await, "hello from the job\n");

    // delete, by kind and name.
    for (kind, name, plural) in [
        ("configmap", "settings", "configmaps"),
        ("secret", "creds", "secrets"),
        ("service", "api", "services"),
        ("serviceaccount", "robot", "serviceaccounts"),
    ] {
        let out = kubectl_ok(kc, &["delete", kind, name, "-n", "conf"]).await;
        assert!(out.contains(&format!("\"{name}\" deleted")), "{out}");
        assert!(k8s.object(plural, "conf", name).is_none(), "{kind}/{name} still there");
    }
}

#[tokio::test]
async fn real_kubectl_day_two_commands_change_what_they_say() {
    if !kubectl_present() {
        return;
    }
    let (k8s, dir, kc) = server().await;
    let kc = kc.as_path();
    let get = || k8s.object("deployments", "default", "web").unwrap();

    // Client-side apply: creates, then patches from the last-applied configuration.
    let manifest = dir.path().join("web.yaml");
    let write = |image: &str, note: &str| {
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations: {{note: {note}}}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
            ),
        )
        .unwrap()
    };
    let m = manifest.to_str().unwrap();
    write("nginx:1.26", "one");
    assert!(
        kubectl_ok(kc, &["apply", "-f", m])
            .await
            .contains("deployment.apps/web created")
    );
    write("nginx:1.26", "two");
    assert!(
        kubectl_ok(kc, &["apply", "-f", m])
            .await
            .contains("deployment.apps/web configured")
    );
    let d = get();
    assert_eq!(d["metadata"]["annotations"]["note"], "two");
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("last-applied annotation");
    assert!(last.contains(r#""note":"two""#), "{last}");
    kubectl_ok(kc, &["rollout", "status", "deploy/web", "--timeout=30s"]).await;

    // label, annotate, and the three patch types.
    kubectl_ok(kc, &["label", "deploy", "web", "tier=front"]).await;
    kubectl_ok(kc, &["annotate", "deploy", "web", "owner=team-a"]).await;
    let d = get();
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["metadata"]["annotations"]["owner"], "team-a");
    kubectl_ok(kc, &["label", "deploy", "web", "tier-"]).await;
    assert!(get()["metadata"]["labels"].get("tier").is_none());

    kubectl_ok(
        kc,
        &[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"merged":"yes"}}}"#,
        ],
    )
    .await;
    assert_eq!(get()["metadata"]["labels"]["merged"], "yes");
    kubectl_ok(
        kc,
        &[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
        ],
    )
    .await;
    assert_eq!(get()["spec"]["replicas"], 1);
    // Strategic: the container list merges by name, so the image stays.
    kubectl_ok(
        kc,
        &[
            "patch",
            "deploy",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"MODE","value":"fast"}]}]}}}}"#,
        ],
    )
    .await;
    let c = &get()["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (c["image"].as_str(), &c["env"]),
        (Some("nginx:1.26"), &json!([{"name": "MODE", "value": "fast"}]))
    );

    // scale, set image, rollout status/history/undo, wait.
    kubectl_ok(kc, &["scale", "deploy/web", "--replicas=3"]).await;
    assert_eq!(get()["spec"]["replicas"], 3);
    kubectl_ok(kc, &["set", "image", "deploy/web", "web=nginx:1.27"]).await;
    assert_eq!(
        get()["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let out = kubectl_ok(kc, &["rollout", "status", "deploy/web", "--timeout=30s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = get();
    assert_eq!(
        (
            d["status"]["updatedReplicas"].as_i64(),
            d["status"]["readyReplicas"].as_i64()
        ),
        (Some(3), Some(3))
    );
    let history = kubectl_ok(kc, &["rollout", "history", "deploy/web"]).await;
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "{history}");
    kubectl_ok(kc, &["rollout", "undo", "deploy/web"]).await;
    kubectl_ok(kc, &["rollout", "status", "deploy/web", "--timeout=30s"]).await;
    let d = get();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26");
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "4");
    let out = kubectl_ok(
        kc,
        &["wait", "--for=condition=Available", "deploy/web", "--timeout=30s"],
    )
    .await;
    assert!(out.contains("condition met"), "{out}");

    // expose makes a Service selecting the Deployment's pods.
    kubectl_ok(
        kc,
        &[
            "expose",
            "deploy/web",
            "--port=80",
            "--target-port=8080",
            "--name=web-svc",
        ],
    )
    .await;
    let svc = k8s.object("services", "default", "web-svc").unwrap();
    assert_eq!(svc["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(
        (
            svc["spec"]["ports"][0]["port"].as_i64(),
            &svc["spec"]["ports"][0]["targetPort"]
        ),
        (Some(80), &json!(8080))
    );

    // logs and exec reach the Deployment's pods.
    k8s.set_pod_logs("default", "web-", "GET / 200\n");
    assert_eq!(kubectl_ok(kc, &["logs", "deploy/web"]).await, "GET / 200\n");
    assert_eq!(
        kubectl_ok(kc, &["exec", "deploy/web", "--", "echo", "hi", "there"]).await,
        "hi there\n"
    );
    let (code, _, err) = kubectl(kc, &["exec", "deploy/web", "--", "sh", "-c", "exit 3"]).await;
    assert_eq!(code, 3, "{err}");

    // delete; the garbage collector then takes the ReplicaSets and pods.
    kubectl_ok(kc, &["delete", "deploy", "web"]).await;
    assert!(k8s.object("deployments", "default", "web").is_none());
    let gone = k8s
        .wait_for(Duration::from_secs(10), |k| {
            k.list_objects("replicasets", Some("default")).is_empty()
                && k.list_objects("pods", Some("default")).is_empty()
        })
        .await;
    assert!(gone, "ReplicaSets or pods outlived their Deployment");
    kubectl_ok(kc, &["delete", "service", "web-svc"]).await;
    assert!(k8s.object("services", "default", "web-svc").is_none());
}

// Python ---------------------------------------------------------------------------------------

/// Runs with argv: kubeconfig, step. Prints one JSON line of what it read back.
const PYTHON: &str = r#"
import json, sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
core, apps = client.CoreV1Api(), client.AppsV1Api()
ns, step = "default", sys.argv[2]
if step == "create":
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-cm", labels={"from": "python"}), data={"k": "v"}))
    apps.create_namespaced_deployment(ns, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="py-web", labels={"from": "python"}),
        spec=client.V1DeploymentSpec(replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "py-web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "py-web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")])))))
    cm = core.read_namespaced_config_map("py-cm", ns)
    d = apps.read_namespaced_deployment("py-web", ns)
    print(json.dumps({"cm": cm.data, "cm_uid": cm.metadata.uid, "replicas": d.spec.replicas, "uid": d.metadata.uid}))
elif step == "patch":
    core.patch_namespaced_config_map("py-cm", ns, {"data": {"k": "v2", "extra": "x"}})
    apps.patch_namespaced_deployment("py-web", ns, {"spec": {"replicas": 3}})
    cms = core.list_namespaced_config_map(ns, label_selector="from=python").items
    ds = apps.list_namespaced_deployment(ns, label_selector="from=python").items
    print(json.dumps({"cms": [c.metadata.name for c in cms], "deployments": [d.metadata.name for d in ds],
                      "cm": cms[0].data, "replicas": ds[0].spec.replicas}))
elif step == "delete":
    apps.delete_namespaced_deployment("py-web", ns)
    core.delete_namespaced_config_map("py-cm", ns)
    try:
        core.read_namespaced_config_map("py-cm", ns)
        print(json.dumps({"read_after_delete": 200}))
    except client.exceptions.ApiException as e:
        print(json.dumps({"read_after_delete": e.status, "reason": e.reason}))
"#;

async fn python_step(k8s: &KubeTestServer, kc: &Path, step: &str) -> Value {
    let (code, out, err) = python_script(PYTHON, kc, &[step]).await;
    assert_eq!(
        code,
        0,
        "python step {step} failed: {out}{err}\nrequests: {:?}",
        k8s.api_calls()
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn python_kubernetes_client_creates_reads_patches_lists_and_deletes() {
    if !python_kubernetes_present() {
        return;
    }
    let (k8s, _dir, kc) = server().await;

    let seen = python_step(&k8s, &kc, "create").await;
    let cm = k8s.object("configmaps", "default", "py-cm").expect("ConfigMap created");
    let d = k8s
        .object("deployments", "default", "py-web")
        .expect("Deployment created");
    assert_eq!(cm["data"], json!({"k": "v"}));
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
    assert_eq!(seen["cm"], json!({"k": "v"}));
    assert_eq!(
        (&seen["cm_uid"], &seen["uid"]),
        (&cm["metadata"]["uid"], &d["metadata"]["uid"])
    );
    assert_eq!(seen["replicas"], 2);

    let seen = python_step(&k8s, &kc, "patch").await;
    assert_eq!(
        k8s.object("configmaps", "default", "py-cm").unwrap()["data"],
        json!({"k": "v2", "extra": "x"})
    );
    assert_eq!(
        k8s.object("deployments", "default", "py-web").unwrap()["spec"]["replicas"],
        3
    );
    assert_eq!(
        seen,
        json!({"cms": ["py-cm"], "deployments": ["py-web"], "cm": {"k": "v2", "extra": "x"}, "replicas": 3})
    );
    assert!(
        k8s.api_calls()
            .iter()
            .any(|(m, p)| m == "PATCH" && p == "/apis/apps/v1/namespaces/default/deployments/py-web"),
        "{:?}",
        k8s.api_calls()
    );

    let seen = python_step(&k8s, &kc, "delete").await;
    assert_eq!(seen, json!({"read_after_delete": 404, "reason": "Not Found"}));
    assert!(k8s.object("configmaps", "default", "py-cm").is_none());
    assert!(k8s.object("deployments", "default", "py-web").is_none());
}
