//! The test API server authorizes like a real one (issue 16): from the ClusterRoles, Roles,
//! ClusterRoleBindings and RoleBindings it holds, for the user a bearer token names. Each
//! test creates the RBAC objects as the cluster admin, then calls as a user and checks the
//! code and the authorizer's exact 403 text (through raw HTTP and the real kubectl).

#[path = "support/kube/mod.rs"]
mod kube_fake;
#[path = "support/kubectl.rs"]
mod kubectl_support;

use axum::http::{self, Method};
use base64::Engine;
use http_body_util::BodyExt;
use kube_fake::KubeTestServer;
use kube_fake::tls::TestCa;
use kubectl_support::{kubectl, kubectl_present};
use serde_json::{Value, json};

const ALICE: &str = "alice-token-5tGm2q";
const BOB: &str = "bob-token-Qw8zLp";
const CAROL: &str = "carol-token-Rn3vXk";
const CI: &str = "ci-token-Hd7sYb";

/// A server whose users are alice, bob (in group "ops"), carol (in "dev") and the service
/// account a:ci; plain HTTP unless given a CA.
async fn server_with(ca: Option<std::sync::Arc<TestCa>>) -> KubeTestServer {
    let mut builder = KubeTestServer::builder()
        .user(ALICE, "alice", &[])
        .user(BOB, "bob", &["ops"])
        .user(CAROL, "carol", &["dev"])
        .user(
            CI,
            "system:serviceaccount:a:ci",
            &["system:serviceaccounts", "system:serviceaccounts:a"],
        );
    if let Some(ca) = ca {
        builder = builder.https(ca);
    }
    let k8s = builder.start().await;
    k8s.set_paused(true);
    for ns in ["a", "b"] {
        admin(
            &k8s,
            Method::POST,
            "/api/v1/namespaces",
            json!({"metadata": {"name": ns}}),
        )
        .await;
    }
    k8s
}

async fn server() -> KubeTestServer {
    server_with(None).await
}

/// One request as the user of `token`: (status code, JSON body).
async fn call(k8s: &KubeTestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(kube::client::Body::from(
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        ))
        .unwrap();
    let res = k8s
        .client_with_token(token)
        .send(req)
        .await
        .expect("the server answers");
    let code = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A request as the tests' admin client, which must succeed.
async fn admin(k8s: &KubeTestServer, method: Method, path: &str, body: Value) -> Value {
    let (code, v) = call(k8s, kube_fake::store::ADMIN_TOKEN, method.clone(), path, Some(body)).await;
    assert!(code < 300, "{method} {path}: {code} {v:#}");
    v
}

/// A 403 with the authorizer's Status and exactly `message`.
fn assert_forbidden((code, v): (u16, Value), message: &str) {
    assert_eq!(code, 403, "{v:#}");
    assert_eq!(v["kind"], "Status", "{v:#}");
    assert_eq!(v["reason"], "Forbidden", "{v:#}");
    assert_eq!(v["message"], message, "{v:#}");
}

/// Creates an RBAC object (Role, ClusterRole or a binding) as the admin, at the path its
/// kind and namespace give.
async fn create(k8s: &KubeTestServer, object: Value) -> Value {
    let plural = match object["kind"].as_str() {
        Some("Role") => "roles",
        Some("RoleBinding") => "rolebindings",
        Some("ClusterRole") => "clusterroles",
        Some("ClusterRoleBinding") => "clusterrolebindings",
        other => panic!("not an RBAC kind: {other:?}"),
    };
    let path = match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{plural}"),
        None => format!("/apis/rbac.authorization.k8s.io/v1/{plural}"),
    };
    admin(k8s, Method::POST, &path, object).await
}

fn role(kind: &str, name: &str, ns: Option<&str>, rules: Value) -> Value {
    let mut meta = json!({"name": name});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules})
}

fn binding(kind: &str, name: &str, ns: Option<&str>, role_kind: &str, role: &str, subjects: Value) -> Value {
    let mut meta = json!({"name": name});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects,
    })
}

fn user(name: &str) -> Value {
    json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}])
}

const PODS_A: &str = "/api/v1/namespaces/a/pods";
const PODS_B: &str = "/api/v1/namespaces/b/pods";

#[tokio::test]
async fn a_role_binding_grants_its_role_in_its_namespace_only_and_deleting_it_revokes_at_once() {
    let k8s = server().await;
    // Nothing binds alice yet.
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, PODS_A, None).await,
        r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "a""#,
    );
    let reader = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]);
    create(&k8s, role("Role", "pod-reader", Some("a"), reader)).await;
    create(
        &k8s,
        binding(
            "RoleBinding",
            "alice-reads",
            Some("a"),
            "Role",
            "pod-reader",
            user("alice"),
        ),
    )
    .await;

    let (code, list) = call(&k8s, ALICE, Method::GET, PODS_A, None).await;
    assert_eq!(code, 200, "{list:#}");
    assert_eq!(list["kind"], "PodList");
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, PODS_B, None).await,
        r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "b""#,
    );
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, "/api/v1/pods", None).await,
        r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" at the cluster scope"#,
    );
    // The role grants reading, not writing, and not other kinds.
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    assert_forbidden(
        call(&k8s, ALICE, Method::POST, PODS_A, Some(pod)).await,
        r#"pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "a""#,
    );
    assert_forbidden(
        call(&k8s, ALICE, Method::DELETE, "/api/v1/namespaces/a/pods/p", None).await,
        r#"pods "p" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "a""#,
    );
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, "/apis/apps/v1/namespaces/a/deployments", None).await,
        r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" in the namespace "a""#,
    );
    // Nor a subresource of what it grants: pods/log is its own resource to RBAC.
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, "/api/v1/namespaces/a/pods/p/log", None).await,
        r#"pods "p" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "a""#,
    );

    // Deleting the binding takes the grant away with the very next request.
    admin(
        &k8s,
        Method::DELETE,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings/alice-reads",
        json!({}),
    )
    .await;
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, PODS_A, None).await,
        r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "a""#,
    );
}

#[tokio::test]
async fn a_cluster_role_is_granted_everywhere_by_a_cluster_role_binding_and_in_one_namespace_by_a_role_binding() {
    let k8s = server().await;
    let viewer = json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]);
    create(&k8s, role("ClusterRole", "deploy-viewer", None, viewer)).await;
    create(
        &k8s,
        binding(
            "RoleBinding",
            "alice-views",
            Some("a"),
            "ClusterRole",
            "deploy-viewer",
            user("alice"),
        ),
    )
    .await;
    let deploys = |ns: &str| format!("/apis/apps/v1/namespaces/{ns}/deployments");
    assert_eq!(call(&k8s, ALICE, Method::GET, &deploys("a"), None).await.0, 200);
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, &deploys("b"), None).await,
        r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" in the namespace "b""#,
    );
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, "/apis/apps/v1/deployments", None).await,
        r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope"#,
    );

    create(
        &k8s,
        binding(
            "ClusterRoleBinding",
            "alice-views-all",
            None,
            "ClusterRole",
            "deploy-viewer",
            user("alice"),
        ),
    )
    .await;
    assert_eq!(call(&k8s, ALICE, Method::GET, &deploys("b"), None).await.0, 200);
    assert_eq!(
        call(&k8s, ALICE, Method::GET, "/apis/apps/v1/deployments", None)
            .await
            .0,
        200
    );
    // A cluster-scoped kind is out of reach of the namespaced role it did not name.
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, "/api/v1/namespaces/a", None).await,
        r#"namespaces "a" is forbidden: User "alice" cannot get resource "namespaces" in API group "" at the cluster scope"#,
    );
}

#[tokio::test]
async fn resource_names_limit_a_rule_to_the_objects_it_names() {
    let k8s = server().await;
    for name in ["settings", "secrets-ish"] {
        admin(
            &k8s,
            Method::POST,
            "/api/v1/namespaces/a/configmaps",
            json!({"metadata": {"name": name}, "data": {"k": "v"}}),
        )
        .await;
    }
    let one = json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "update"]}]);
    create(&k8s, role("Role", "settings", Some("a"), one)).await;
    create(
        &k8s,
        binding(
            "RoleBinding",
            "carol-settings",
            Some("a"),
            "Role",
            "settings",
            user("carol"),
        ),
    )
    .await;
    let (code, cm) = call(
        &k8s,
        CAROL,
        Method::GET,
        "/api/v1/namespaces/a/configmaps/settings",
        None,
    )
    .await;
    assert_eq!((code, cm["data"]["k"].as_str()), (200, Some("v")), "{cm:#}");
    assert_forbidden(
        call(
            &k8s,
            CAROL,
            Method::GET,
            "/api/v1/namespaces/a/configmaps/secrets-ish",
            None,
        )
        .await,
        r#"configmaps "secrets-ish" is forbidden: User "carol" cannot get resource "configmaps" in API group "" in the namespace "a""#,
    );
    // A list names no object, so a rule limited to names never grants it.
    assert_forbidden(
        call(&k8s, CAROL, Method::GET, "/api/v1/namespaces/a/configmaps", None).await,
        r#"configmaps is forbidden: User "carol" cannot list resource "configmaps" in API group "" in the namespace "a""#,
    );
}

#[tokio::test]
async fn group_and_service_account_subjects_and_wildcards_grant_as_rbac_does() {
    let k8s = server().await;
    // Everything in apps, subresources included, and the logs (not the pods) of the core group.
    let ops = json!([
        {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]);
    create(&k8s, role("ClusterRole", "ops", None, ops)).await;
    create(
        &k8s,
        binding(
            "ClusterRoleBinding",
            "ops",
            None,
            "ClusterRole",
            "ops",
            json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ops"}]),
        ),
    )
    .await;
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
    let (code, v) = call(
        &k8s,
        BOB,
        Method::POST,
        "/apis/apps/v1/namespaces/b/deployments",
        Some(deployment),
    )
    .await;
    assert_eq!(code, 201, "{v:#}");
    let (code, v) = call(
        &k8s,
        BOB,
        Method::GET,
        "/apis/apps/v1/namespaces/b/deployments/web/scale",
        None,
    )
    .await;
    assert_eq!((code, &v["kind"]), (200, &json!("Scale")), "{v:#}");
    // Authorized, so the answer is the object's absence rather than a 403.
    assert_eq!(
        call(&k8s, BOB, Method::GET, "/api/v1/namespaces/b/pods/nope/log", None)
            .await
            .0,
        404
    );
    assert_forbidden(
        call(&k8s, BOB, Method::GET, "/api/v1/namespaces/b/pods/nope", None).await,
        r#"pods "nope" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "b""#,
    );
    // Carol is not in the group.
    assert_forbidden(
        call(
            &k8s,
            CAROL,
            Method::GET,
            "/apis/apps/v1/namespaces/b/deployments/web",
            None,
        )
        .await,
        r#"deployments.apps "web" is forbidden: User "carol" cannot get resource "deployments" in API group "apps" in the namespace "b""#,
    );

    // A ServiceAccount subject is the user system:serviceaccount:NS:NAME.
    create(
        &k8s,
        binding(
            "RoleBinding",
            "ci",
            Some("b"),
            "ClusterRole",
            "ops",
            json!([{"kind": "ServiceAccount", "name": "ci", "namespace": "a"}]),
        ),
    )
    .await;
    assert_eq!(
        call(
            &k8s,
            CI,
            Method::DELETE,
            "/apis/apps/v1/namespaces/b/deployments/web",
            None
        )
        .await
        .0,
        200
    );
    assert_forbidden(
        call(&k8s, CI, Method::GET, "/apis/apps/v1/namespaces/a/deployments", None).await,
        r#"deployments.apps is forbidden: User "system:serviceaccount:a:ci" cannot list resource "deployments" in API group "apps" in the namespace "a""#,
    );
}

#[tokio::test]
async fn roles_and_bindings_cannot_grant_more_than_their_author_holds() {
    let k8s = server().await;
    let manager = json!([
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    ]);
    create(&k8s, role("Role", "manager", Some("a"), manager)).await;
    create(
        &k8s,
        binding(
            "RoleBinding",
            "alice-manages",
            Some("a"),
            "Role",
            "manager",
            user("alice"),
        ),
    )
    .await;
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/a/roles";
    let wider = json!([{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list", "delete"]}]);
    assert_forbidden(
        call(
            &k8s,
            ALICE,
            Method::POST,
            roles,
            Some(role("Role", "wider", Some("a"), wider)),
        )
        .await,
        "roles.rbac.authorization.k8s.io \"wider\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\" \"delete\"]}",
    );
    let same = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    let (code, v) = call(
        &k8s,
        ALICE,
        Method::POST,
        roles,
        Some(role("Role", "reader", Some("a"), same)),
    )
    .await;
    assert_eq!(code, 201, "{v:#}");

    // Binding a ClusterRole she does not hold needs `bind` on it.
    let all_pods = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]);
    create(&k8s, role("ClusterRole", "pod-admin", None, all_pods)).await;
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings";
    let grant = binding(
        "RoleBinding",
        "carol-pods",
        Some("a"),
        "ClusterRole",
        "pod-admin",
        user("carol"),
    );
    assert_forbidden(
        call(&k8s, ALICE, Method::POST, bindings, Some(grant.clone())).await,
        "rolebindings.rbac.authorization.k8s.io \"carol-pods\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"*\"]}",
    );
    assert!(k8s.object("rolebindings", "a", "carol-pods").is_none());
    let binder = json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["pod-admin"]}]);
    admin(&k8s, Method::POST, roles, role("Role", "binder", Some("a"), binder)).await;
    admin(
        &k8s,
        Method::POST,
        bindings,
        binding("RoleBinding", "alice-binds", Some("a"), "Role", "binder", user("alice")),
    )
    .await;
    let (code, v) = call(&k8s, ALICE, Method::POST, bindings, Some(grant)).await;
    assert_eq!(code, 201, "{v:#}");
    // And the binding she made works for carol, in that namespace.
    assert_eq!(
        call(&k8s, CAROL, Method::DELETE, "/api/v1/namespaces/a/pods", None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn deckhands_cluster_role_is_an_object_and_revoke_edits_it() {
    let k8s = server().await;
    k8s.authorize_with(include_str!("../deploy/clusterrole.yaml"));
    let role = k8s
        .object("clusterroles", "", "deckhand")
        .expect("the ClusterRole is stored");
    assert!(role["rules"].as_array().is_some_and(|r| r.len() > 10), "{role:#}");
    let b = k8s
        .object("clusterrolebindings", "", kube_fake::DECKHAND_BINDING)
        .expect("the binding is stored");
    assert_eq!(b["subjects"][0]["name"], "deckhand", "{b:#}");
    // Callers without a user token are deckhand.
    let anyone = "not-a-user-token";
    assert_eq!(call(&k8s, anyone, Method::GET, PODS_B, None).await.0, 200);
    assert_eq!(call(&k8s, anyone, Method::GET, "/api/v1/namespaces", None).await.0, 200);
    k8s.revoke("", "namespaces", "list");
    assert_forbidden(
        call(&k8s, anyone, Method::GET, "/api/v1/namespaces", None).await,
        r#"namespaces is forbidden: User "system:serviceaccount:deckhand:deckhand" cannot list resource "namespaces" in API group "" at the cluster scope"#,
    );
    // The rest of that rule stays granted.
    assert_eq!(
        call(&k8s, anyone, Method::GET, "/api/v1/namespaces/b", None).await.0,
        200
    );
    assert_eq!(call(&k8s, anyone, Method::GET, PODS_B, None).await.0, 200);
    // The users are still only what their bindings make them.
    assert_forbidden(
        call(&k8s, ALICE, Method::GET, PODS_A, None).await,
        r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "a""#,
    );
}

/// kubectl with a user's token shows the authorizer's message. (kubectl sends tokens over
/// HTTPS only, so this server speaks it.)
#[tokio::test]
async fn kubectl_with_a_token_sees_the_403() {
    if !kubectl_present() {
        return;
    }
    let ca = TestCa::new("rbac-test-ca");
    let k8s = server_with(Some(ca.clone())).await;
    let reader = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]);
    create(&k8s, role("Role", "pod-reader", Some("a"), reader)).await;
    create(
        &k8s,
        binding(
            "RoleBinding",
            "alice-reads",
            Some("a"),
            "Role",
            "pod-reader",
            user("alice"),
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca.pem());
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: {}\n    certificate-authority-data: {ca_data}\n\
             contexts:\n- name: k\n  context:\n    cluster: k\n    user: nobody\ncurrent-context: k\nusers:\n- name: nobody\n  user: {{}}\n",
            k8s.url()
        ),
    )
    .unwrap();
    let kc = kubeconfig.as_path();
    let (code, out, err) = kubectl(kc, &["--token", ALICE, "get", "pods", "-n", "a"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("No resources found in a namespace"), "{out}{err}");
    let (code, out, err) = kubectl(kc, &["--token", ALICE, "get", "pods", "-n", "b"]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains(r#"Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "b""#),
        "{err}"
    );
    assert!(k8s.requests().iter().any(|(m, p)| m == "GET" && p == PODS_B));
    // `auth can-i` asks the server (a SelfSubjectAccessReview) and hears the same rules.
    let (code, out, err) = kubectl(kc, &["--token", ALICE, "auth", "can-i", "list", "pods", "-n", "a"]).await;
    assert_eq!((code, out.trim()), (0, "yes"), "{err}");
    let (code, out, err) = kubectl(kc, &["--token", ALICE, "auth", "can-i", "list", "pods", "-n", "b"]).await;
    assert_eq!((code, out.trim()), (1, "no"), "{err}");
    let (code, out, err) = kubectl(kc, &["--token", ALICE, "auth", "can-i", "delete", "pods/x", "-n", "a"]).await;
    assert_eq!((code, out.trim()), (1, "no"), "{err}");
}

/// A client certificate is the user its CommonName names, in the groups its Organizations
/// name, and bindings to those groups apply.
#[tokio::test]
async fn a_client_certificate_names_the_user_and_its_organizations_the_groups() {
    let ca = TestCa::new("rbac-test-ca");
    let k8s = KubeTestServer::builder()
        .https(ca.clone())
        .client_certificates()
        .user(ALICE, "alice", &[])
        .start()
        .await;
    let ops = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]);
    create(&k8s, role("ClusterRole", "cm-lister", None, ops)).await;
    create(
        &k8s,
        binding(
            "ClusterRoleBinding",
            "ops-lists",
            None,
            "ClusterRole",
            "cm-lister",
            json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ops"}]),
        ),
    )
    .await;
    let as_cert = |issued: kube_fake::tls::Issued| {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut config = kube::Config::new(k8s.url().parse().unwrap());
        config.root_cert = Some(vec![ca.der()]);
        config.auth_info = serde_json::from_value(json!({
            "client-certificate-data": b64(&issued.cert_pem),
            "client-key-data": b64(&issued.key_pem),
        }))
        .unwrap();
        kube::Client::try_from(config).unwrap()
    };
    let list = |client: kube::Client| async move {
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "default");
        api.list(&Default::default()).await
    };
    assert!(list(as_cert(ca.client_cert_in("frank", &["ops"]))).await.is_ok());
    match list(as_cert(ca.client_cert_in("grace", &["dev"]))).await {
        Err(kube::Error::Api(s)) => assert_eq!(
            (s.code, s.message.as_str()),
            (
                403,
                r#"configmaps is forbidden: User "grace" cannot list resource "configmaps" in API group "" in the namespace "default""#
            )
        ),
        other => panic!("grace is not in ops: {other:?}"),
    }
}

/// nonResourceURLs grant paths, as a SelfSubjectAccessReview shows.
#[tokio::test]
async fn non_resource_urls_grant_paths() {
    let k8s = server().await;
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}});
    let ask = || {
        call(
            &k8s,
            ALICE,
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            Some(review.clone()),
        )
    };
    let (code, v) = ask().await;
    assert_eq!((code, &v["status"]["allowed"]), (201, &json!(false)), "{v:#}");
    let metrics = json!([{"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]}]);
    create(&k8s, role("ClusterRole", "metrics", None, metrics)).await;
    create(
        &k8s,
        binding(
            "ClusterRoleBinding",
            "alice-metrics",
            None,
            "ClusterRole",
            "metrics",
            user("alice"),
        ),
    )
    .await;
    let (code, v) = ask().await;
    assert_eq!((code, &v["status"]["allowed"]), (201, &json!(true)), "{v:#}");
    // Discovery is every authenticated user's (the bootstrap system:discovery role).
    assert_eq!(call(&k8s, ALICE, Method::GET, "/apis", None).await.0, 200);
}
