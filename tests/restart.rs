//! Crash and restart: nothing queued is lost, a half-run request is resumed only when its
//! action is safe to repeat, and a redelivered submission never creates a second request.

mod support;

use std::sync::Arc;

use support::{Backend, TestDb, actions::Probe, backends, spawn_app_with, test_config};

fn id_of(v: &serde_json::Value) -> String {
    v["request"]["id"].as_str().expect("request id").to_owned()
}

async fn killed_service_resumes_queued_work(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = test_config(&db.url);
    config.worker.concurrency = 2;
    let first = spawn_app_with(config.clone(), Arc::new(Probe::default())).await;

    // Two actions hold both worker slots; three more requests queue behind them.
    let (_, unsafe_run) = first.submit_as("alice", "hold unsafe").await;
    first.probe.started.notified().await;
    let (_, safe_run) = first.submit_as("alice", "hold-safe safe").await;
    first.probe.started.notified().await;
    let mut queued = Vec::new();
    for env in ["q1", "q2", "q3"] {
        let (status, v) = first.submit_as("bob", &format!("deploy nginx:1.27 to {env}")).await;
        assert_eq!(status, 201, "{v}");
        queued.push(id_of(&v));
    }
    let (_, v) = first.get_as("bob", &format!("/api/v1/requests/{}", queued[0])).await;
    assert_eq!(v["request"]["state"], "queued", "{backend:?}: both slots are busy");
    first.kill().await;

    // A new process on the same store, after the dead worker's lease ran out.
    let second = spawn_app_with(config, Arc::new(Probe::default())).await;
    for id in &queued {
        second.wait_for_state(id, &["succeeded"]).await;
    }
    for env in ["q1", "q2", "q3"] {
        assert_eq!(second.probe.count(env), 1, "{backend:?}: {env} ran once");
    }
    let failed = second.wait_for_state(&id_of(&unsafe_run), &["failed"]).await;
    let outcome = failed["request"]["outcome"].as_str().unwrap_or_default();
    assert!(
        outcome.contains("deckhand stopped while this was running") && outcome.contains("not safe to repeat"),
        "{outcome}"
    );
    assert_eq!(second.probe.count("unsafe"), 0, "an unsafe action is not re-run");

    // The safe one is picked up again and runs to the end when released.
    second.wait_for_state(&id_of(&safe_run), &["running"]).await;
    second.probe.started.notified().await;
    second.probe.release.notify_one();
    let done = second.wait_for_state(&id_of(&safe_run), &["succeeded"]).await;
    let messages: Vec<&str> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("resuming: deckhand restarted")),
        "{messages:?}"
    );
    assert_eq!(done["request"]["attempts"], 2);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_and_restarted_service_loses_nothing() {
    for backend in backends() {
        killed_service_resumes_queued_work(backend).await;
    }
}

/// With the shipped lease and poll interval (not the tests' shorter ones), a request a dead
/// replica was running is taken over by another within 10 s, and its thread says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_replicas_request_is_taken_over_within_ten_seconds() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let defaults = deckhand::configuration::Config::defaults().unwrap();
        let mut config = test_config(&db.url);
        config.worker.lease = defaults.worker.lease;
        config.worker.poll_interval = defaults.worker.poll_interval;
        let first = spawn_app_with(config.clone(), Arc::new(Probe::default())).await;
        let (_, v) = first.submit_as("alice", "hold-safe takeover").await;
        first.probe.started.notified().await;
        let died = std::time::Instant::now();
        // PostgreSQL: the other replica was already running when this one died. SQLite
        // serves one replica, so there it is the next start.
        let second = if backend == Backend::Postgres {
            let second = spawn_app_with(config, Arc::new(Probe::default())).await;
            first.kill().await;
            second
        } else {
            first.kill().await;
            spawn_app_with(config, Arc::new(Probe::default())).await
        };
        second.probe.started.notified().await;
        let took = died.elapsed();
        assert!(
            took < std::time::Duration::from_secs(10),
            "{backend:?}: taken over after {took:?}"
        );
        let (_, now) = second.get_as("alice", &format!("/api/v1/requests/{}", id_of(&v))).await;
        let said = now["events"].to_string();
        assert!(said.contains("resuming: deckhand restarted"), "{said}");
        second.probe.release.notify_one();
        second.wait_for_state(&id_of(&v), &["succeeded"]).await;
        second.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_drains_running_work() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app_with(test_config(&db.url), Arc::new(Probe::default())).await;
        let (_, v) = app.submit_as("alice", "hold drain").await;
        app.probe.started.notified().await;
        let probe = app.probe.clone();
        let running = app.running.as_ref().unwrap();
        let token = running.shutdown_token();
        let id = deckhand::domain::RequestId::parse(&id_of(&v)).unwrap();
        // Ask for shutdown, then let the action finish while the server drains.
        token.cancel();
        // The drain has begun once the server takes no new connection (a fresh client: a
        // pooled connection could outlive the listener); then the action may finish.
        let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while fresh.get(format!("{}/healthz", app.url)).send().await.is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: the server never stopped taking connections"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        probe.release.notify_one();
        app.shutdown().await;
        let store = deckhand::store::Store::connect(&db.url, 1).await.unwrap();
        let r = store.get(&id).await.unwrap().unwrap();
        assert_eq!(r.state.as_str(), "succeeded", "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_submission_creates_one_request() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let app = spawn_app_with(test_config(&db.url), Arc::new(Probe::default())).await;
        let body = serde_json::json!({ "text": "deploy nginx:1.27 to once", "idempotency_key": "slack-delivery-42" });
        let (s1, a) = app.post_as("alice", "/api/v1/requests", body.clone()).await;
        let (s2, b) = app.post_as("alice", "/api/v1/requests", body).await;
        assert_eq!((s1, s2), (201, 200), "{backend:?}");
        assert_eq!(id_of(&a), id_of(&b));
        assert_eq!(b["duplicate"], true);
        // The header works the same way.
        let resp = app
            .http
            .post(format!("{}/api/v1/requests", app.url))
            .bearer_auth(support::token("alice"))
            .header("Idempotency-Key", "slack-delivery-42")
            .json(&serde_json::json!({ "text": "deploy nginx:1.27 to once" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let done = app.wait_for_state(&id_of(&a), &["succeeded"]).await;
        // A run needs a claim, and a succeeded request can no longer be claimed: claimed
        // once (the store's count) means no second execution is under way or to come.
        assert_eq!(done["request"]["attempts"], 1, "{backend:?}: {done:#}");
        assert_eq!(app.probe.count("once"), 1, "{backend:?}");
        let (_, list) = app.get_as("alice", "/api/v1/requests?scope=mine").await;
        assert_eq!(list["requests"].as_array().unwrap().len(), 1, "{list}");
        app.shutdown().await;
    }
}
