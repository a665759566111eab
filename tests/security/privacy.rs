//! Security tests: what one person is handed is not readable by another (issue 12, items 1,
//! 2, 3 and 11). Each runs deckhand against the Kubernetes test API server, on SQLite and
//! PostgreSQL, with `shop` deployed in alice's environment `ex`.

use serde_json::Value;

use crate::{
    cluster::{self, Env, state},
    support::{Backend, backends},
};

const MARKER: &str = "only-for-alice-7f3";

async fn start(backend: Backend) -> Env {
    let env = cluster::start_on(backend, |_| {}).await;
    for text in ["env create ex", "deploy ghcr.io/acme/shop:1.0 to ex"] {
        let v = env.run("alice", text).await;
        assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
    }
    env
}

fn id(v: &Value) -> String {
    v["request"]["id"].as_str().expect("id").to_owned()
}

async fn text_of(env: &Env, user: &str, path: &str) -> String {
    let resp = env
        .app
        .http
        .get(format!("{}{path}", env.app.url))
        .bearer_auth(crate::support::token(user))
        .send()
        .await
        .expect("GET");
    resp.text().await.expect("body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eve_cannot_read_alices_exec_output_anywhere() {
    for backend in backends() {
        let env = start(backend).await;
        let done = env
            .run("alice", &format!("exec shop in ex -- echo {MARKER} PGPASSWORD=hunter2"))
            .await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        let rid = id(&done);

        // alice reads her output, with the credential redacted.
        let mine = text_of(&env, "alice", &format!("/api/v1/requests/{rid}/output")).await;
        assert!(mine.contains(MARKER), "{mine}");
        assert!(
            !mine.contains("hunter2") && mine.contains("PGPASSWORD=[redacted]"),
            "credential not redacted in what the pod printed: {mine}"
        );

        // eve reads none of it: request detail, output download, event stream, `request`.
        // (The command text is alice's and public; what the pod printed is not. Only the
        // output has the redacted form.)
        let printed = "PGPASSWORD=[redacted]";
        for path in [
            format!("/api/v1/requests/{rid}"),
            format!("/api/v1/requests/{rid}/output"),
            format!("/api/v1/requests/{rid}/events"),
        ] {
            let body = text_of(&env, "eve", &path).await;
            assert!(!body.contains(printed), "{path} leaked to eve: {body}");
        }
        let shown = env.run("eve", &format!("request {rid}")).await;
        assert_eq!(state(&shown), "succeeded", "{shown:#}");
        assert!(!shown.to_string().contains(printed), "`request` leaked: {shown:#}");
        assert!(shown.to_string().contains("private"), "{shown:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eve_cannot_list_alices_shell_link() {
    for backend in backends() {
        let env = start(backend).await;
        let done = env.run("alice", "shell shop in ex").await;
        assert_eq!(state(&done), "succeeded", "{done:#}");
        let mine = text_of(&env, "alice", &format!("/api/v1/requests/{}", id(&done))).await;
        assert!(mine.contains("/shell/"), "alice gets her link: {mine}");
        for path in [
            "/api/v1/requests?scope=all".to_owned(),
            format!("/api/v1/requests/{}", id(&done)),
        ] {
            let body = text_of(&env, "eve", &path).await;
            assert!(!body.contains("/shell/"), "{path} shows a shell link to eve: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eve_reusing_alices_idempotency_key_gets_her_own_request() {
    for backend in backends() {
        let env = start(backend).await;
        let body = serde_json::json!({
            "text": format!("exec shop in ex -- echo {MARKER}"),
            "idempotency_key": "ci-build-1234",
        });
        let (status, first) = env.app.post_as("alice", "/api/v1/requests", body).await;
        assert_eq!(status, 201, "{first}");
        env.app.wait_for_state(&id(&first), &["succeeded"]).await;

        let again = serde_json::json!({ "text": "whoami", "idempotency_key": "ci-build-1234" });
        let (status, eves) = env.app.post_as("eve", "/api/v1/requests", again).await;
        assert_eq!(status, 201, "eve's submission is her own: {eves}");
        assert_ne!(id(&eves), id(&first));
        assert_eq!(eves["request"]["requester"], "eve");
        assert!(!eves.to_string().contains(MARKER), "{eves}");

        // alice's own retry still finds her request.
        let retry = serde_json::json!({ "text": "whoami", "idempotency_key": "ci-build-1234" });
        let (status, dup) = env.app.post_as("alice", "/api/v1/requests", retry).await;
        assert_eq!((status, id(&dup)), (200, id(&first)), "{dup}");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests WHERE idempotency_key = 'ci-build-1234'")
            .fetch_one(env.app.app().store.pool())
            .await
            .expect("count");
        assert_eq!(rows, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn surface_data_never_leaves_deckhand() {
    for backend in backends() {
        let env = cluster::start_on(backend, |_| {}).await;
        let done = env.run("alice", "whoami").await;
        let rid = id(&done);
        for (user, path) in [
            ("eve", "/api/v1/requests?scope=all".to_owned()),
            ("alice", format!("/api/v1/requests/{rid}")),
            ("alice", "/api/v1/requests?scope=mine".to_owned()),
        ] {
            let body = text_of(&env, user, &path).await;
            assert!(body.contains(&rid), "{path}: {body}");
            assert!(!body.contains("surface_data"), "{path} shows surface_data: {body}");
        }
    }
}

/// alice's prod environment `pay` (approved by olga) with `shop` deployed (approved by omar).
async fn start_prod(backend: Backend) -> Env {
    let env = cluster::start_on(backend, |_| {}).await;
    for text in ["env create pay prod", "deploy ghcr.io/acme/shop:1.0 to pay port=8080"] {
        let asked = env.run("alice", text).await;
        assert_eq!(state(&asked), "pending_approval", "{text}: {asked:#}");
        approved(&env, &id(&asked)).await;
    }
    env
}

/// omar approves request `rid`; returns its view once it ended.
async fn approved(env: &Env, rid: &str) -> Value {
    let (status, v) = env.app.approve("omar", rid).await;
    assert_eq!(status, 200, "{v}");
    let done = env.app.wait_for_state(rid, &["succeeded", "failed"]).await;
    assert_eq!(state(&done), "succeeded", "{done:#}");
    done
}

/// Issue 12, item 1, as it was found: ops approved alice's prod proxy link, and eve (in no
/// group) read it with `request <id>`. Neither `request` nor any API path shows it to eve
/// or to bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eve_cannot_read_alices_proxy_link_with_request() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_prod(backend).await;
        let asked = env.run("alice", "proxy open shop in pay").await;
        assert_eq!(state(&asked), "pending_approval", "{asked:#}");
        let rid = id(&asked);
        approved(&env, &rid).await;

        let mine = text_of(&env, "alice", &format!("/api/v1/requests/{rid}")).await;
        assert!(mine.contains("/p/"), "alice gets her link: {mine}");

        let shown = env.run("eve", &format!("request {rid}")).await;
        assert_eq!(state(&shown), "succeeded", "eve may look at the request: {shown:#}");
        assert!(
            !shown.to_string().contains("/p/"),
            "`request` shows eve the link: {shown:#}"
        );
        assert!(shown.to_string().contains("private"), "{shown:#}");
        for user in ["eve", "bob"] {
            for path in [
                format!("/api/v1/requests/{rid}"),
                format!("/api/v1/requests/{rid}/events"),
                "/api/v1/requests?scope=all".to_owned(),
            ] {
                let body = text_of(&env, user, &path).await;
                assert!(body.contains(&rid), "{user} {path}: {body}");
                assert!(!body.contains("/p/"), "{path} shows {user} alice's link: {body}");
            }
        }
        env.app.shutdown().await;
    }
}

/// A file announced by a private event is as private as the event: another user is told
/// there is no such file, the requester downloads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eve_cannot_download_alices_private_attachment() {
    use deckhand::{
        attachments::Attachments,
        domain::RequestId,
        events::{EventData, Output},
        visibility::Audience,
    };
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = cluster::start_on(backend, |_| {}).await;
        let rid = id(&env.run("alice", "whoami").await);
        let app = env.app.app();
        let record = app
            .store
            .get(&RequestId::parse(&rid).expect("id"))
            .await
            .expect("read")
            .expect("stored");
        let file = Attachments::new(app.store.pool().clone())
            .put(&rid, "dump.txt", "text/plain", "dump", MARKER.as_bytes())
            .await
            .expect("stored file");
        let output = Output {
            attachment: Some(file.clone()),
            ..Output::default()
        }
        .to(Audience::Requester);
        app.emit(&record, "a file for alice", EventData::Output(output))
            .await
            .expect("event");

        let path = format!("/api/v1/requests/{rid}/attachments/{}", file.id);
        let get = |user: &'static str| {
            env.app
                .http
                .get(format!("{}{path}", env.app.url))
                .bearer_auth(crate::support::token(user))
                .send()
        };
        let r = get("alice").await.expect("GET");
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), MARKER);
        for user in ["eve", "bob", "omar"] {
            let r = get(user).await.expect("GET");
            assert_eq!(r.status(), 404, "{user} got alice's file");
            let body = r.text().await.unwrap();
            assert!(!body.contains(MARKER), "{user}: {body}");
        }
        env.app.shutdown().await;
    }
}

/// Exec output in prod is for the requester and the approvers, who vouched for the command:
/// omar (ops, an approver of alice's prod exec) reads it through the API; bob (a developer,
/// no approver) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvers_read_alices_prod_exec_output_and_bob_does_not() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start_prod(backend).await;
        let asked = env.run("alice", &format!("exec shop in pay -- echo {MARKER}")).await;
        assert_eq!(state(&asked), "pending_approval", "{asked:#}");
        let rid = id(&asked);
        approved(&env, &rid).await;
        let printed = format!("{MARKER}\n");
        for user in ["alice", "omar", "olga"] {
            let out = text_of(&env, user, &format!("/api/v1/requests/{rid}/output")).await;
            assert!(out.contains(&printed), "{user} may read the output: {out}");
            let detail = text_of(&env, user, &format!("/api/v1/requests/{rid}")).await;
            assert!(detail.contains("\"stdout\""), "{user}: {detail}");
        }
        for user in ["bob", "eve"] {
            for path in [
                format!("/api/v1/requests/{rid}/output"),
                format!("/api/v1/requests/{rid}"),
                format!("/api/v1/requests/{rid}/events"),
            ] {
                let body = text_of(&env, user, &path).await;
                assert!(!body.contains(&printed), "{path} shows {user} the output: {body}");
                assert!(!body.contains("\"stdout\""), "{path} shows {user} the output: {body}");
            }
        }
        env.app.shutdown().await;
    }
}
