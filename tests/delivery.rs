//! The chat outbox end to end: deckhand with the fake Slack, on SQLite and PostgreSQL. Every
//! event a thread must show is stored with a delivery row; an outage, a crash or a refusal
//! changes when (or whether) it is posted, never silently.

#[path = "support/slack/mod.rs"]
mod slack_fake;
mod support;

use std::time::{Duration, Instant};

use deckhand::slack::SlackConfig;
use serde_json::Value;
use slack_fake::{BOT_TOKEN, Call, FakeSlack, SIGNING_SECRET, command_form, now, signed_headers};
use support::{ADMIN, TestApp, TestDb, backends, slack_id, test_config};

const CHANNEL: &str = "C2147483705";

fn config(
    db: &TestDb,
    slack: &FakeSlack,
    edit: impl FnOnce(&mut deckhand::configuration::Config),
) -> deckhand::configuration::Config {
    let mut c = test_config(&db.url);
    c.slack = SlackConfig {
        bot_token: BOT_TOKEN.into(),
        signing_secret: SIGNING_SECRET.into(),
        api_url: slack.api_url(),
        progress_interval_ms: 300,
        // The call's own retries give up fast; the outbox waits outages out.
        retry_for: "1s".parse().unwrap(),
        ..SlackConfig::default()
    };
    c.delivery.lease = "3s".parse().unwrap();
    c.delivery.retry_for = "2m".parse().unwrap();
    edit(&mut c);
    c
}

async fn start(config: deckhand::configuration::Config) -> TestApp {
    support::spawn_app_with(config, std::sync::Arc::new(support::actions::Probe::default())).await
}

/// `/deckhand <text>` from alice; the request's id once it is stored.
async fn slash(app: &TestApp, slack: &FakeSlack, text: &str) -> String {
    let body = command_form(&slack_id("alice"), CHANNEL, text, "t1", &slack.response_url("t1"));
    let mut req = app
        .http
        .post(format!("{}/slack/commands", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone());
    for (k, v) in signed_headers(&body, now()) {
        req = req.header(k, v);
    }
    assert_eq!(
        req.send().await.unwrap().status(),
        200,
        "the slash command is acknowledged"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = app.get_as(ADMIN, "/api/v1/requests?scope=all").await;
        if let Some(id) = v["requests"][0]["id"].as_str() {
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "the request was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the request's API view until `check` holds for its deliveries.
async fn wait_deliveries(app: &TestApp, id: &str, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = app.get_as(ADMIN, &format!("/api/v1/requests/{id}")).await;
        let d = v["deliveries"].as_array().cloned().unwrap_or_default();
        if check(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {v:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `deploy web:1 to ENV` from alice, run to its end with every delivery made: its id and
/// its deliveries.
async fn deployed(app: &TestApp, slack: &FakeSlack, env: &str) -> (String, Vec<Value>) {
    let id = slash(app, slack, &format!("deploy web:1 to {env}")).await;
    app.wait_for_state(&id, &["succeeded"]).await;
    let d = wait_deliveries(app, &id, "every delivery", |d| all_in(d, "delivered")).await;
    (id, d)
}

/// The /metrics text.
async fn metrics(app: &TestApp) -> String {
    reqwest::get(format!("{}/metrics", app.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn all_in(d: &[Value], state: &str) -> bool {
    !d.is_empty() && d.iter().all(|x| x["state"] == state)
}

/// Thread posts (not the root message, not edits) whose text contains `needle`.
fn posts_with(calls: &[Call], needle: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.body["text"].as_str().is_some_and(|t| t.contains(needle)))
        .count()
}

/// Edits of the root message whose text holds `needle` (progress shows there).
fn edits_with(calls: &[Call], needle: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.method == "chat.update" && c.body["text"].as_str().is_some_and(|t| t.contains(needle)))
        .count()
}

/// What the thread's root message shows last: its latest edit, or the post itself when it
/// was never edited (a root first posted after the request ended already shows its end, and
/// an edit to the same text is skipped).
fn root_text(calls: &[Call]) -> String {
    calls
        .iter()
        .rev()
        .find(|c| c.method == "chat.update" || (c.method == "chat.postMessage" && c.body["thread_ts"].is_null()))
        .and_then(|c| c.body["text"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_delays_thread_updates_but_loses_none() {
    for backend in backends() {
        let slack = FakeSlack::start().await;
        let db = TestDb::new(backend).await;
        let app = start(config(&db, &slack, |_| {})).await;
        slack.set_down(true);
        let id = slash(&app, &slack, "deploy web:1 to dev1").await;
        app.wait_for_state(&id, &["succeeded"]).await;
        // Tried, and waiting: the API view says so.
        let d = wait_deliveries(&app, &id, "a retried delivery", |d| {
            all_in(d, "pending") && d.iter().any(|x| x["attempts"].as_i64() >= Some(1))
        })
        .await;
        assert!(d.len() >= 4, "queued, running, progress, succeeded: {d:#?}");

        slack.set_down(false);
        wait_deliveries(&app, &id, "every delivery", |d| all_in(d, "delivered")).await;
        let calls = slack.calls();
        // The progress line was shown (in the root message, not as a reply).
        assert_eq!(
            posts_with(&calls, "counted dev1"),
            0,
            "{:#?}",
            slack_fake::summary(&calls)
        );
        assert!(
            edits_with(&calls, "counted dev1") >= 1,
            "{:#?}",
            slack_fake::summary(&calls)
        );
        assert!(
            root_text(&calls).contains("done with dev1"),
            "{:#?}",
            slack_fake::summary(&calls)
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_deckhand_posts_every_stored_event_after_restart() {
    for backend in backends() {
        let slack = FakeSlack::start().await;
        let db = TestDb::new(backend).await;
        let app = start(config(&db, &slack, |_| {})).await;
        slack.set_down(true);
        let id = slash(&app, &slack, "deploy web:1 to dev2").await;
        app.wait_for_state(&id, &["succeeded"]).await;
        app.kill().await;

        slack.set_down(false);
        let app = start(config(&db, &slack, |_| {})).await;
        wait_deliveries(&app, &id, "every delivery after the restart", |d| {
            all_in(d, "delivered")
        })
        .await;
        let calls = slack.calls();
        // The progress line was shown (in the root message, not as a reply).
        assert_eq!(
            posts_with(&calls, "counted dev2"),
            0,
            "{:#?}",
            slack_fake::summary(&calls)
        );
        assert!(
            edits_with(&calls, "counted dev2") >= 1,
            "{:#?}",
            slack_fake::summary(&calls)
        );
        assert!(
            root_text(&calls).contains("done with dev2"),
            "{:#?}",
            slack_fake::summary(&calls)
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_delivery_is_failed_counted_and_the_thread_goes_on() {
    for backend in backends() {
        let slack = FakeSlack::start().await;
        let db = TestDb::new(backend).await;
        let app = start(config(&db, &slack, |_| {})).await;
        // The first post (the thread's root) is refused for good.
        slack.fail_next("chat.postMessage", "channel_not_found");
        let id = slash(&app, &slack, "deploy web:1 to dev3").await;
        app.wait_for_state(&id, &["succeeded"]).await;
        let d = wait_deliveries(&app, &id, "the rest delivered", |d| {
            d.len() >= 4 && d.iter().skip(1).all(|x| x["state"] == "delivered")
        })
        .await;
        assert_eq!(d[0]["state"], "failed", "{d:#?}");
        assert!(
            d[0]["error"].as_str().unwrap_or_default().contains("channel_not_found"),
            "{d:#?}"
        );
        assert_eq!(d[0]["attempts"], 1, "a refusal is not retried: {d:#?}");

        let metrics = metrics(&app).await;
        assert!(
            metrics.contains("deckhand_deliveries{surface=\"slack\",state=\"failed\"} 1"),
            "{metrics}"
        );
        let calls = slack.calls();
        assert!(
            root_text(&calls).contains("done with dev3"),
            "{:#?}",
            slack_fake::summary(&calls)
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_longer_than_retry_for_fails_the_deliveries() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let slack = FakeSlack::start().await;
        let db = TestDb::new(backend).await;
        let app = start(config(&db, &slack, |c| c.delivery.retry_for = "2s".parse().unwrap())).await;
        slack.set_down(true);
        let id = slash(&app, &slack, "deploy web:1 to dev4").await;
        app.wait_for_state(&id, &["succeeded"]).await;
        let d = wait_deliveries(&app, &id, "the deliveries given up", |d| all_in(d, "failed")).await;
        assert!(d.iter().all(|x| x["attempts"].as_i64() >= Some(1)), "{d:#?}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_view_shows_the_slack_ts_of_each_delivered_message() {
    for backend in backends() {
        let slack = FakeSlack::start().await;
        let db = TestDb::new(backend).await;
        let app = start(config(&db, &slack, |_| {})).await;
        let (id, d) = deployed(&app, &slack, "dev4").await;
        let calls = slack.calls();
        let tag = format!("(request {id})");
        let root = calls
            .iter()
            .find(|c| {
                c.method == "chat.postMessage"
                    && c.body["thread_ts"].is_null()
                    && c.body["text"].as_str().is_some_and(|t| t.contains(&tag))
            })
            .and_then(|c| c.ts.clone())
            .unwrap_or_else(|| panic!("{backend:?}: no root message: {:#?}", slack_fake::summary(&calls)));
        // The first event posted the root message: its delivery records Slack's ts for it.
        assert_eq!(d[0]["platform_id"], root.as_str(), "{backend:?}: {d:#?}");
        // Every ts shown is one Slack gave.
        let given: Vec<&str> = calls.iter().filter_map(|c| c.ts.as_deref()).collect();
        for x in &d {
            if let Some(ts) = x["platform_id"].as_str() {
                assert!(given.contains(&ts), "{backend:?}: {ts} is no ts Slack gave: {d:#?}");
            }
        }
        app.shutdown().await;
    }
}

/// Issue 14: a new chat request goes to this replica's deliverer in memory, its first
/// delivery row stored already claimed (that claim its one attempt), with no poll to find it
/// and no read of it; /metrics counts the hand-over. And nothing is lost when a replica dies
/// between storing such a row and posting it: the row waits out the dead replica's claim and
/// a poll here posts it (a second attempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_requests_go_to_the_deliverer_in_memory_and_a_dead_replicas_claim_runs_out() {
    use deckhand::{
        domain::{State, Surface},
        store::{Actor, Lease, NewRequest},
    };
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let slack = FakeSlack::start().await;
        let db = TestDb::new(backend).await;
        let app = start(config(&db, &slack, |_| {})).await;
        let (_, d) = deployed(&app, &slack, "dev5").await;
        assert_eq!(d[0]["attempts"], 1, "posted once, by the hand-over's claim: {d:#?}");
        assert!(root_text(&slack.calls()).contains("done with dev5"));
        let metrics = metrics(&app).await;
        assert!(metrics.contains("\ndeckhand_outbox_handoffs_total 1\n"), "{metrics}");

        // What a replica that died after its commit leaves: a first row claimed for 1 s by a
        // deliverer that will never post it.
        let new = NewRequest {
            command: "whoami".into(),
            action: "whoami".into(),
            text: "whoami".into(),
            args: Default::default(),
            state: State::Succeeded,
            requester: "alice".into(),
            requester_groups: Vec::new(),
            surface: Surface::Slack,
            channel: Some(CHANNEL.into()),
            thread: None,
            surface_data: Some(serde_json::json!({
                "channel": CHANNEL, "user": slack_id("alice"), "response_url": slack.response_url("t2"),
            })),
            idempotency_key: Some("slack:t2".into()),
            approval: None,
            approval_expires_at: None,
            prompt: None,
        };
        let claimed = Lease {
            owner: "w-gone".into(),
            until: deckhand::domain::now_ms() + 1_000,
        };
        let actor = Actor {
            who: "alice",
            surface: "slack",
        };
        let (orphan, created, _) = app
            .app()
            .store
            .insert_request(&new, actor, Some(&claimed))
            .await
            .expect("stored");
        assert!(created);
        let before = slack.calls_to("chat.postMessage").len();
        let d = wait_deliveries(&app, orphan.id.as_str(), "the orphan posted", |d| {
            all_in(d, "delivered")
        })
        .await;
        assert_eq!(d[0]["attempts"], 2, "the dead claim, then this replica's: {d:#?}");
        assert_eq!(
            slack.calls_to("chat.postMessage").len(),
            before + 1,
            "posted once: {:#?}",
            slack_fake::summary(&slack.calls())
        );
        app.shutdown().await;
    }
}
