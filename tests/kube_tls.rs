//! Real connections: deckhand reaching an HTTPS API server with `kubernetes.url` and the
//! credential keys (ca_file or ca_data, token_file, client_cert_file + client_key_file),
//! against the test API server with a CA made for each test, a required bearer token and
//! client certificates. Each test runs on SQLite and PostgreSQL.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/kube/mod.rs"]
mod kube_fake;
mod support;

use std::path::{Path, PathBuf};

use base64::Engine;
use cluster::{Env, start_against, state};
use kube_fake::{KubeTestServer, tls::TestCa};
use support::{Backend, backends};

const TOKEN: &str = "dh-token-3nq8Vd0sLr7KmW2x";
const ROTATED: &str = "dh-token-Yp4cH9tQe1ZbN6uF";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// Replaces `path` the way the kubelet rotates a projected token: a new file moved over.
fn rotate(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).expect("write new token");
    std::fs::rename(&next, path).expect("move new token in place");
}

async fn https_server(ca: &std::sync::Arc<TestCa>) -> KubeTestServer {
    KubeTestServer::builder()
        .https(ca.clone())
        .bearer_token(TOKEN)
        .start()
        .await
}

fn namespace_exists(env: &Env, name: &str) -> bool {
    env.kube.get_object(&format!("/api/v1/namespaces/{name}")).is_some()
}

/// What deckhand answers to `env create name` when it cannot use the cluster: the command
/// is refused at once (its ownership check reads the cluster) with this message.
async fn refused(env: &Env, name: &str) -> String {
    let (status, v) = env.app.submit_as("alice", &format!("env create {name}")).await;
    assert_eq!(status, 422, "{v}");
    assert!(!namespace_exists(env, name), "nothing was created");
    v["error"]["message"].as_str().unwrap_or_default().to_owned()
}

/// `env create` ran through to the end and its namespace is in the cluster.
async fn creates(env: &Env, name: &str) {
    let done = env.run("alice", &format!("env create {name}")).await;
    assert_eq!(state(&done), "succeeded", "{done:#}");
    assert!(namespace_exists(env, name), "namespace {name} in the cluster");
    let shown = done.to_string();
    assert!(
        !shown.contains("dh-token-"),
        "the token never reaches the request's events: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ca_file_and_token_file_run_a_real_action() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("deckhand-test-ca");
        let kube = https_server(&ca).await;
        assert!(kube.url().starts_with("https://127.0.0.1:"), "{}", kube.url());
        let ca_file = write(dir.path(), "ca.crt", ca.pem());
        let token_file = write(dir.path(), "token", &format!("{TOKEN}\n"));
        let env = start_against(kube, backend, |c| {
            assert!(c.kubernetes.url.starts_with("https://"), "deckhand is given https");
            c.kubernetes.ca_file = ca_file;
            c.kubernetes.token_file = token_file;
        })
        .await;
        creates(&env, "checkout").await;
        assert_eq!(env.kube.unauthorized(), 0, "every request carried the token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_ca_fails_with_a_clear_error_and_creates_nothing() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("deckhand-test-ca");
        let other = TestCa::new("someone-elses-ca");
        let kube = https_server(&ca).await;
        let ca_file = write(dir.path(), "ca.crt", other.pem());
        let token_file = write(dir.path(), "token", TOKEN);
        let env = start_against(kube, backend, |c| {
            c.kubernetes.ca_file = ca_file;
            c.kubernetes.token_file = token_file;
        })
        .await;
        let why = refused(&env, "checkout").await;
        assert!(
            why.contains("the Kubernetes API server's certificate is not trusted")
                && why.contains("UnknownIssuer")
                && why.contains("kubernetes.ca_file"),
            "{why}"
        );
        assert!(!namespace_exists(&env, "checkout"));
        assert!(
            !env.kube.handshake_failures().is_empty(),
            "the server saw the refused handshake"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_token_file_keeps_deckhand_working() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("deckhand-test-ca");
        let kube = https_server(&ca).await;
        let token_file = write(dir.path(), "token", TOKEN);
        let pem = ca.pem().to_owned();
        let env = start_against(kube, backend, |c| {
            // PEM text in ca_data.
            c.kubernetes.ca_data = pem;
            c.kubernetes.token_file = token_file.clone();
        })
        .await;
        creates(&env, "before").await;

        // The API server moves to a new token and the file gets it the way the kubelet writes
        // it (a new file moved over the old): deckhand notices the file changed and sends the
        // new token from the first call, so the server refuses nothing.
        env.kube.set_bearer_token(ROTATED);
        rotate(&token_file, ROTATED);
        let refusals = env.kube.unauthorized();
        creates(&env, "after").await;
        assert_eq!(
            env.kube.unauthorized(),
            refusals,
            "the new token was used from the first call"
        );

        // Rewritten in place (same length, same file) works too.
        const THIRD: &str = "dh-token-Ww5rJ2kXa8TcQ0pL";
        env.kube.set_bearer_token(THIRD);
        std::fs::write(&token_file, THIRD).expect("rewrite token");
        creates(&env, "third").await;

        // The server moves on but the file does not: refused, and said so; once the file has
        // the token, deckhand works again.
        const FOURTH: &str = "dh-token-Hb7mS3nVz5QeK1dR";
        env.kube.set_bearer_token(FOURTH);
        let why = refused(&env, "between").await;
        assert!(
            why.contains("the Kubernetes API refused deckhand's credentials (401 Unauthorized)"),
            "{why}"
        );
        rotate(&token_file, FOURTH);
        creates(&env, "fourth").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_certificate_authenticates_and_ca_data_may_be_base64() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("deckhand-test-ca");
        // A token is required, unless the client shows a certificate the CA signed.
        let kube = KubeTestServer::builder()
            .https(ca.clone())
            .client_certificates()
            .bearer_token(TOKEN)
            .start()
            .await;
        let issued = ca.client_cert("system:serviceaccount:deckhand:deckhand");
        let cert = write(dir.path(), "client.crt", &issued.cert_pem);
        let key = write(dir.path(), "client.key", &issued.key_pem);
        // As kubeconfig's certificate-authority-data writes it.
        let ca_data = base64::engine::general_purpose::STANDARD.encode(ca.pem());
        let env = start_against(kube, backend, |c| {
            c.kubernetes.ca_data = ca_data;
            c.kubernetes.client_cert_file = cert;
            c.kubernetes.client_key_file = key;
        })
        .await;
        creates(&env, "checkout").await;
        assert_eq!(env.kube.unauthorized(), 0, "no request was refused");
    }
}

/// A client certificate from another CA: the server ends the handshake, and deckhand says
/// the certificate is the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_certificate_from_another_ca_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("deckhand-test-ca");
    let kube = KubeTestServer::builder()
        .https(ca.clone())
        .client_certificates()
        .bearer_token(TOKEN)
        .start()
        .await;
    let issued = TestCa::new("someone-elses-ca").client_cert("system:serviceaccount:deckhand:deckhand");
    let cert = write(dir.path(), "client.crt", &issued.cert_pem);
    let key = write(dir.path(), "client.key", &issued.key_pem);
    let pem = ca.pem().to_owned();
    let env = start_against(kube, Backend::Sqlite, |c| {
        c.kubernetes.ca_data = pem;
        c.kubernetes.client_cert_file = cert;
        c.kubernetes.client_key_file = key;
    })
    .await;
    let why = refused(&env, "checkout").await;
    assert!(
        why.contains("the Kubernetes API server refused the TLS connection")
            && why.contains("kubernetes.client_cert_file"),
        "{why}"
    );
    assert!(!env.kube.handshake_failures().is_empty());
}

/// The same server refuses deckhand without a certificate or token: the certificate is
/// what authenticated it above.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_certificate_or_token_the_server_refuses() {
    let ca = TestCa::new("deckhand-test-ca");
    let kube = KubeTestServer::builder()
        .https(ca.clone())
        .client_certificates()
        .bearer_token(TOKEN)
        .start()
        .await;
    let pem = ca.pem().to_owned();
    let env = start_against(kube, Backend::Sqlite, |c| c.kubernetes.ca_data = pem).await;
    let why = refused(&env, "checkout").await;
    assert!(why.contains("401 Unauthorized"), "{why}");
    assert!(env.kube.unauthorized() > 0);
}

/// The 401 is the API server's own Status, byte for byte.
#[tokio::test]
async fn the_server_answers_401_with_the_real_status() {
    support::init_tls();
    let ca = TestCa::new("deckhand-test-ca");
    let kube = https_server(&ca).await;
    let http = reqwest::Client::builder()
        .tls_certs_only([])
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA"))
        .build()
        .expect("client");
    for token in [None, Some("wrong")] {
        let mut req = http.get(format!("{}/api/v1/namespaces", kube.url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("GET");
        assert_eq!(resp.status().as_u16(), 401);
        assert_eq!(
            resp.text().await.expect("body"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }
    let ok = http
        .get(format!("{}/api/v1/namespaces", kube.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(ok.status().as_u16(), 200);
}

/// `deckhand serve` with a credential key it cannot use stops before doing anything, naming
/// the key and what to do; its store is not even created.
#[test]
fn serve_refuses_a_bad_credential_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("deckhand-test-ca");
    let ca_file = write(dir.path(), "ca.crt", ca.pem());
    let db = dir.path().join("db.sqlite");
    let cases: [(&str, &str, String, &str); 3] = [
        (
            "kubernetes.client_key_file",
            "DECKHAND_KUBERNETES__CLIENT_KEY_FILE",
            ca_file.display().to_string(),
            "is set without kubernetes.client_cert_file; set both",
        ),
        (
            "kubernetes.token_file",
            "DECKHAND_KUBERNETES__TOKEN_FILE",
            dir.path().join("missing-token").display().to_string(),
            "cannot read",
        ),
        (
            "kubernetes.ca_data",
            "DECKHAND_KUBERNETES__CA_DATA",
            "bm90IGEgY2VydGlmaWNhdGU=".to_owned(),
            "is not a PEM certificate",
        ),
    ];
    for (key, var, value, says) in cases {
        let serve = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DECKHAND_KUBERNETES__URL", "https://127.0.0.1:6443")
            .env(var, value)
            .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", db.display()))
            .output()
            .expect("run deckhand serve");
        let stderr = String::from_utf8_lossy(&serve.stderr);
        assert_eq!(serve.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("`{key}`")) && stderr.contains(says),
            "{stderr}"
        );
        assert!(!stderr.contains(TOKEN));
        assert!(!db.exists(), "nothing was set up");
    }
}

/// A kubeconfig context whose user is an exec credential plugin (as EKS's `aws eks get-token`,
/// GKE's `gke-gcloud-auth-plugin` and AKS's `kubelogin` are): deckhand runs the plugin, sends
/// the token it prints, and trusts the CA from the kubeconfig. The plugin here is a shell
/// script printing an ExecCredential, which is all those plugins do on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kubeconfig_exec_plugin_supplies_the_token() {
    use std::os::unix::fs::PermissionsExt;
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("deckhand-test-ca");
        let kube = https_server(&ca).await;
        let runs = dir.path().join("plugin-runs");
        let plugin = write(
            dir.path(),
            "get-token.sh",
            &format!(
                "#!/bin/sh\necho run >> '{}'\n\
                 printf '%s' '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{TOKEN}\"}}}}'\n",
                runs.display()
            ),
        );
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let ca_data = base64::engine::general_purpose::STANDARD.encode(ca.pem());
        let kubeconfig = write(
            dir.path(),
            "kubeconfig",
            &format!(
                "apiVersion: v1\nkind: Config\n\
                 clusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority-data: {ca_data}\n\
                 users:\n- name: plugin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n\
                 contexts:\n- name: other\n  context:\n    cluster: test\n    user: nobody\n\
                 - name: with-plugin\n  context:\n    cluster: test\n    user: plugin\n\
                 current-context: other\n",
                kube.url(),
                plugin.display()
            ),
        );
        let env = start_against(kube, backend, |c| {
            c.kubernetes.url = String::new();
            c.kubernetes.kubeconfig = kubeconfig;
            c.kubernetes.context = "with-plugin".into();
        })
        .await;
        creates(&env, "checkout").await;
        assert_eq!(env.kube.unauthorized(), 0, "every request carried the plugin's token");
        assert!(
            std::fs::read_to_string(&runs).is_ok_and(|r| r.lines().count() >= 1),
            "deckhand ran the plugin"
        );
    }
}
