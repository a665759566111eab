//! The HTTP API end to end through a spawned server.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::{ADMIN, TestDb, backends, spawn_app, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_readiness_and_metrics() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let text = |path: &'static str| {
            let url = format!("{}{path}", app.url);
            let http = app.http.clone();
            async move {
                let r = http.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        assert_eq!(text("/healthz").await, (200, "ok".into()));
        assert_eq!(text("/readyz").await, (200, "ready".into()));
        app.submit_as("alice", "whoami").await;
        let (_, v) = app.submit_as("alice", "release web").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        app.approve("olga", &id).await;
        app.approve("omar", &id).await;
        app.wait_for_state(&id, &["succeeded"]).await;
        let (status, metrics) = text("/metrics").await;
        assert_eq!(status, 200);
        assert!(
            metrics.contains(r#"deckhand_requests{command="whoami",state="succeeded"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"deckhand_requests{command="release",state="succeeded"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"deckhand_action_duration_seconds_count{action="test.count",outcome="succeeded"} 1"#),
            "{metrics}"
        );
        assert!(metrics.contains("deckhand_approval_wait_seconds_count 1"), "{metrics}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_are_json_and_say_what_to_do() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let url = format!("{}/api/v1/requests", app.url);

        let r = app
            .http
            .post(&url)
            .json(&serde_json::json!({ "text": "help" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unauthorized");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer")
        );
        let r = app
            .http
            .get(&url)
            .bearer_auth("not-a-real-token-at-all")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);

        let r = app
            .http
            .post(&url)
            .bearer_auth(token("alice"))
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "bad_json");

        let (s, v) = app.submit_as("alice", "deplyo nginx to web").await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("unknown_command")), "{v}");
        assert_eq!(v["error"]["suggestions"], serde_json::json!(["deploy"]));

        let (s, v) = app.submit_as("alice", "deploy nginx to web replicas=99").await;
        assert_eq!(
            (s, v["error"]["code"].as_str(), v["error"]["argument"].as_str()),
            (400, Some("invalid_argument"), Some("replicas")),
            "{v}"
        );

        let (s, v) = app.submit_as("alice", "sweep").await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")), "{v}");

        let (s, v) = app.get_as("alice", "/api/v1/requests/r-doesnotexist").await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");
        let (s, _) = app.get_as("alice", "/api/v1/requests/garbage!").await;
        assert_eq!(s, 404);
        let (s, v) = app.get_as("alice", "/api/v1/requests?scope=everything").await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("bad_scope")), "{v}");

        // PostgreSQL cannot store a NUL: it is refused as input, the same on both backends.
        let (s, v) = app.submit_as("alice", "deploy nginx\u{0}:1 to web").await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("control_character")),
            "{v}"
        );
        let text = message(&v);
        assert!(
            text.contains("(U+0000) at character 13") && text.contains("without it"),
            "{text}"
        );

        // The idempotency key is stored too: a NUL in it is refused, from the body or the header.
        let nul_key = serde_json::json!({ "text": "deploy nginx:1.27 to web", "idempotency_key": "k\u{0}1" });
        let (s, v) = app.post_as("alice", "/api/v1/requests", nul_key).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("bad_idempotency_key")),
            "{v}"
        );
        assert!(message(&v).contains("U+0000"), "{v}");
        let (s, v) = submit_with_key_header(&app, "x".repeat(201).parse().unwrap()).await;
        assert_eq!(s, 400);
        assert!(message(&v).contains("at most 200"), "{v}");
        let not_ascii = reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        let (s, v) = submit_with_key_header(&app, not_ascii).await;
        assert_eq!(s, 400, "a header key that is not ASCII is refused, not ignored");
        assert!(message(&v).contains("JSON body"), "{v}");

        let huge = "x".repeat(70_000);
        let (s, _) = app.submit_as("alice", &huge).await;
        assert_eq!(s, 413, "bodies over server.body_limit are refused");

        // Nothing above created a request.
        let (_, v) = app.get_as(ADMIN, "/api/v1/requests?scope=all").await;
        assert_eq!(v["requests"].as_array().unwrap().len(), 0, "{v}");
        app.shutdown().await;
    }
}

fn message(v: &serde_json::Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

/// A command submitted by alice with `key` in the `Idempotency-Key` header.
async fn submit_with_key_header(app: &support::TestApp, key: reqwest::header::HeaderValue) -> (u16, serde_json::Value) {
    let r = app
        .http
        .post(format!("{}/api/v1/requests", app.url))
        .bearer_auth(token("alice"))
        .header("idempotency-key", key)
        .json(&serde_json::json!({ "text": "deploy nginx:1.27 to web" }))
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inline_commands_answer_in_the_response() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let (s, v) = app.submit_as("alice", "help").await;
        assert_eq!((s, v["request"]["state"].as_str()), (201, Some("succeeded")), "{v}");
        let output = support::output_of(&v);
        assert!(output.contains("deploy <image> <env>"), "{output}");
        let (_, v) = app.submit_as("bob", "whoami").await;
        assert_eq!(support::output_of(&v), "You are bob (developers), via api.");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_stream_live_until_the_request_ends() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let (_, v) = app.submit_as("alice", "hold stream").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        app.probe.started.notified().await;
        let resp = app
            .http
            .get(format!("{}/api/v1/requests/{id}/events", app.url))
            .bearer_auth(token("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let body = tokio::time::timeout(Duration::from_secs(10), async {
            let mut body = String::new();
            let mut released = false;
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                // Release the action only once "holding" came over the open stream, so
                // what follows is delivered live.
                if !released && body.contains("\"holding\"") {
                    released = true;
                    app.probe.release.notify_one();
                }
            }
            body
        })
        .await
        .expect("the stream ends when the request ends");
        let data: Vec<serde_json::Value> = body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let seqs: Vec<i64> = data.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1) && seqs[0] == 1, "{seqs:?}");
        let messages: Vec<&str> = data.iter().map(|e| e["message"].as_str().unwrap()).collect();
        assert_eq!(messages, ["queued", "running", "holding", "released stream"]);

        // Resuming from an event id sends only what came after it.
        let resp = app
            .http
            .get(format!("{}/api/v1/requests/{id}/events", app.url))
            .bearer_auth(token("alice"))
            .header("Last-Event-ID", "3")
            .send()
            .await
            .unwrap();
        let rest = resp.text().await.unwrap();
        assert_eq!(rest.lines().filter(|l| l.starts_with("data: ")).count(), 1, "{rest}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_pending_and_running_requests() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let (_, v) = app.submit_as("alice", "deploy nginx:1 to web tier=prod").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        let (s, v) = app
            .post_as("bob", &format!("/api/v1/requests/{id}/cancel"), serde_json::Value::Null)
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "only the requester or an approver"
        );
        let (s, v) = app
            .post_as(
                "alice",
                &format!("/api/v1/requests/{id}/cancel"),
                serde_json::Value::Null,
            )
            .await;
        assert_eq!(
            (s, v["request"]["state"].as_str(), v["was"].as_str()),
            (200, Some("cancelled"), Some("pending_approval")),
            "{v}"
        );
        let (s, _) = app
            .post_as(
                "alice",
                &format!("/api/v1/requests/{id}/cancel"),
                serde_json::Value::Null,
            )
            .await;
        assert_eq!(s, 409, "already ended");

        // A running action is told to stop and stays cancelled.
        let (_, v) = app.submit_as("alice", "hold busy").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        app.probe.started.notified().await;
        let (s, v) = app.submit_as("alice", &format!("cancel {id}")).await;
        assert_eq!((s, v["request"]["state"].as_str()), (201, Some("succeeded")), "{v}");
        let done = app.wait_for_state(&id, &["cancelled"]).await;
        // A shut-down deckhand has let its worker's runs end (or cut them at the grace):
        // whatever the stopped action would still write came before this point.
        app.shutdown().await;
        let store = deckhand::store::Store::connect(&db.url, 1).await.unwrap();
        let rid = deckhand::domain::RequestId::parse(&id).unwrap();
        let again = store.get(&rid).await.unwrap().unwrap();
        assert_eq!(again.state.as_str(), "cancelled", "{backend:?}: {done}");
        assert_eq!(again.outcome.as_deref(), Some("cancelled by alice"));
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_scopes() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let (_, a) = app.submit_as("alice", "deploy nginx:1 to web tier=prod").await;
        app.submit_as("bob", "deploy nginx:1 to api").await;
        let (_, v) = app.get_as("olga", "/api/v1/requests?scope=pending").await;
        let pending: Vec<&str> = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(pending, [a["request"]["id"].as_str().unwrap()]);
        let (_, v) = app.get_as("bob", "/api/v1/requests?scope=pending").await;
        assert_eq!(v["requests"].as_array().unwrap().len(), 0, "bob approves nothing");
        let (_, v) = app.get_as("bob", "/api/v1/requests").await;
        assert!(
            v["requests"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["requester"] == "bob")
        );
        let (_, v) = app
            .get_as("bob", "/api/v1/requests?scope=all&state=pending_approval")
            .await;
        assert_eq!(v["requests"].as_array().unwrap().len(), 1);
        let (s, _) = app.get_as("bob", "/api/v1/requests?state=napping").await;
        assert_eq!(s, 400);
        // The chat command shows the same list.
        let (_, v) = app.submit_as("olga", "requests pending").await;
        let out = support::output_of(&v);
        assert!(
            out.starts_with("Waiting for your approval:") && out.contains(a["request"]["id"].as_str().unwrap()),
            "{out}"
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_from_the_chat_platform_reach_the_running_action() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        // eve is in no group in the configuration; a chat platform says she is ops (a Slack
        // user group or Discord role mapped to ops).
        let mut eve = app.app().directory.user("eve").unwrap();
        eve.groups.insert("ops".into());
        let inv = deckhand::app::Invocation {
            principal: eve,
            surface: deckhand::domain::Surface::Slack,
            text: "whoami".into(),
            channel: None,
            thread: None,
            surface_data: None,
            idempotency_key: None,
        };
        let done = app.app().submit(inv).await.unwrap();
        assert_eq!(done.request.requester_groups, ["ops"]);
        assert_eq!(done.request.outcome.as_deref(), Some("You are eve (ops), via slack."));
        app.shutdown().await;
    }
}
