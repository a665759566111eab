//! Approval rules end to end through the API, on SQLite and PostgreSQL: distinct approvers,
//! self-approval, denial, expiry, and twenty concurrent approvals running an action once.

mod support;

use std::sync::atomic::Ordering;

use futures_util::future::join_all;
use support::{ADMIN, Backend, TestApp, TestDb, backends, spawn_app};

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Backend, TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        f(backend, app).await;
    }
}

fn id_of(v: &serde_json::Value) -> String {
    v["request"]["id"].as_str().expect("request id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_distinct_approvers_are_needed_and_each_counts_once() {
    each_backend(|backend, app| async move {
        let (status, v) = app.submit_as("alice", "release web").await;
        assert_eq!(status, 201, "{backend:?}: {v}");
        assert_eq!(v["request"]["state"], "pending_approval");
        let id = id_of(&v);
        let msg = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "approval")
            .unwrap()["message"]
            .clone();
        assert!(
            msg.as_str().unwrap().contains("Waiting for approval by 2 of group:ops"),
            "{msg}"
        );

        let (s, v) = app.approve("olga", &id).await;
        assert_eq!(
            (s, v["approvals"].as_i64(), v["request"]["state"].as_str()),
            (200, Some(1), Some("pending_approval")),
            "{v}"
        );
        // A double click by the same person does not count twice.
        let (s, v) = app.approve("olga", &id).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("already_decided")), "{v}");
        assert_eq!(
            app.probe.count("web"),
            0,
            "{backend:?}: nothing runs before the second approval"
        );

        let (s, v) = app.approve("omar", &id).await;
        assert_eq!(s, 200, "{v}");
        let done = app.wait_for_state(&id, &["succeeded"]).await;
        assert_eq!(app.probe.count("web"), 1, "{backend:?}");
        let approvals = done["approvals"].as_array().unwrap();
        let who: Vec<&str> = approvals.iter().map(|a| a["approver"].as_str().unwrap()).collect();
        assert_eq!(who, ["olga", "omar"]);

        // Every transition is in the audit log with who and from where.
        let audit = app
            .app()
            .store
            .audit(&deckhand::domain::RequestId::parse(&id).unwrap())
            .await
            .unwrap();
        let trail: Vec<(String, Option<String>)> =
            audit.iter().map(|a| (a.actor.clone(), a.to_state.clone())).collect();
        assert!(
            trail.contains(&("alice".into(), Some("pending_approval".into()))),
            "{trail:?}"
        );
        assert!(trail.contains(&("omar".into(), Some("queued".into()))), "{trail:?}");
        assert!(
            trail.contains(&("deckhand".into(), Some("succeeded".into()))),
            "{trail:?}"
        );
        assert!(audit.iter().all(|a| !a.surface.is_empty()));
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requester_and_outsiders_cannot_approve() {
    each_backend(|backend, app| async move {
        // olga is ops herself, but asked for it: someone else has to approve.
        let (_, v) = app.submit_as("olga", "deploy nginx:1.27 to shop tier=prod").await;
        let id = id_of(&v);
        let (s, v) = app.approve("olga", &id).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("self_approval")),
            "{backend:?} {v}"
        );
        let (s, v) = app.approve("bob", &id).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")), "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("that takes group:ops"),
            "{v}"
        );
        // A rule may allow self-approval.
        let (_, v) = app.submit_as("otto", "hotfix api").await;
        let (s, _) = app.approve("otto", &id_of(&v)).await;
        assert_eq!(s, 200);
        app.wait_for_state(&id_of(&v), &["succeeded"]).await;
        let (_, v) = app.get_as("olga", &format!("/api/v1/requests/{id}")).await;
        assert_eq!(v["request"]["state"], "pending_approval");
        assert_eq!(app.probe.count("shop"), 0);
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn denial_needs_a_reason_and_stops_the_request() {
    each_backend(|backend, app| async move {
        let (_, v) = app.submit_as("alice", "deploy nginx:1.27 to shop tier=prod").await;
        let id = id_of(&v);
        let (s, v) = app
            .post_as(
                "omar",
                &format!("/api/v1/requests/{id}/deny"),
                serde_json::json!({ "reason": " " }),
            )
            .await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("reason_required")), "{v}");
        let (s, v) = app
            .post_as(
                "omar",
                &format!("/api/v1/requests/{id}/deny"),
                serde_json::json!({ "reason": "change freeze" }),
            )
            .await;
        assert_eq!(
            (s, v["request"]["state"].as_str()),
            (200, Some("denied")),
            "{backend:?} {v}"
        );
        assert_eq!(v["request"]["outcome"], "denied by omar: change freeze");
        // Too late to approve now.
        let (s, v) = app.approve("olga", &id).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("wrong_state")), "{v}");
        // Denied, never claimed (the store's count), and a denied request can no longer be
        // claimed: it never ran and never will.
        let (_, denied) = app.get_as(ADMIN, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(denied["request"]["attempts"], 0, "{backend:?}: {denied:#}");
        assert_eq!(app.probe.count("shop"), 0);
        // The chat command does the same as the endpoint.
        let (_, v) = app.submit_as("alice", "deploy nginx:1.27 to cart tier=prod").await;
        let (s, d) = app.submit_as("olga", &format!("deny {} not today", id_of(&v))).await;
        assert_eq!((s, d["request"]["state"].as_str()), (201, Some("succeeded")), "{d}");
        app.wait_for_state(&id_of(&v), &["denied"]).await;
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unapproved_requests_expire() {
    each_backend(|backend, app| async move {
        let (_, v) = app.submit_as("alice", "flash web").await;
        let id = id_of(&v);
        // The worker sweeps expired approvals on its own.
        let done = app.wait_for_state(&id, &["expired"]).await;
        assert_eq!(
            done["request"]["outcome"], "no decision before the approval deadline",
            "{backend:?}"
        );
        let (s, v) = app.approve("olga", &id).await;
        assert_eq!(s, 409, "{v}");
        assert_eq!(app.probe.count("web"), 0);
        app.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_approvals_execute_once() {
    each_backend(|backend, app| async move {
        for round in 0..3 {
            let env = format!("race-{round}");
            let (_, v) = app
                .submit_as("alice", &format!("deploy nginx:1.27 to {env} tier=prod"))
                .await;
            let id = id_of(&v);
            let calls = (1..=20).map(|i| {
                let app = &app;
                let id = id.clone();
                async move { app.approve(&format!("ops{i:02}"), &id).await.0 }
            });
            let statuses = join_all(calls).await;
            // Each approver is answered (200) or told it already moved on (409), never 5xx.
            assert!(
                statuses.iter().all(|s| *s == 200 || *s == 409),
                "{backend:?}: {statuses:?}"
            );
            let done = app.wait_for_state(&id, &["succeeded"]).await;
            // A run needs a claim, and a succeeded request can no longer be claimed: claimed
            // once (the store's count) means no second execution is under way or to come.
            assert_eq!(done["request"]["attempts"], 1, "{backend:?}: {done:#}");
            assert_eq!(
                app.probe.count(&env),
                1,
                "{backend:?} round {round}: executed more than once"
            );
        }
        assert_eq!(app.probe.executions.load(Ordering::SeqCst), 3);
        app.shutdown().await;
    })
    .await;
}
