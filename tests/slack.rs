//! The Slack surface against a local fake Slack (Web API, response_url, uploads, Socket
//! Mode) and, for the end-to-end deploys, the Kubernetes test API server.

#[path = "support/kube/mod.rs"]
mod kube_fake;
#[path = "support/slack/mod.rs"]
mod slack_fake;
mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use deckhand::{
    actions::{Action, ActionContext, ActionError},
    configuration::Config,
    slack::{SlackConfig, WebApi, verify::RequestVerifier},
    startup::Builder,
};
use kube_fake::KubeTestServer;
use serde_json::{Value, json};
use slack_fake::{
    APP_TOKEN, BOT_TOKEN, Call, FakeSlack, SIGNING_SECRET, SocketServer, block_actions, command_form, interaction_form,
    now, picked, signed_headers, summary, typed, view_action, view_submission,
};
use support::{ADMIN, Backend, TestApp, TestDb, backends, slack_id, test_config};

const CHANNEL: &str = "C2147483705";

fn slack_config(fake: &FakeSlack) -> SlackConfig {
    SlackConfig {
        bot_token: BOT_TOKEN.into(),
        signing_secret: SIGNING_SECRET.into(),
        api_url: fake.api_url(),
        // The shipped default is 2 s; at 1 s the tests still show "at most one edit a second".
        progress_interval_ms: 1000,
        retry_for: "60s".parse().unwrap(),
        reconnect_min_ms: 100,
        ..SlackConfig::default()
    }
}

/// Emits many progress updates as fast as it can, to exercise coalescing.
struct Chatty;

#[async_trait]
impl Action for Chatty {
    fn name(&self) -> &'static str {
        "test.chatty"
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        for i in 1..=40 {
            ctx.progress(format!("step {i} of 40")).await?;
        }
        Ok("chatted".into())
    }
}

const CHATTY_SPEC: &str = r#"
- name: chatty
  help: Many progress updates, fast
  pattern: '^chatty$'
  action: test.chatty
  allow: [group:developers]
"#;

struct Env {
    app: TestApp,
    slack: FakeSlack,
    socket: Option<SocketServer>,
    kube: Option<KubeTestServer>,
    _db: TestDb,
}

type ConfigEdit = Box<dyn FnOnce(&mut Config)>;

#[derive(Default)]
struct Options {
    kube: bool,
    socket: bool,
    edit: Option<ConfigEdit>,
    /// More command specs, next to the test specs.
    specs: Vec<(String, String)>,
}

async fn start(backend: Backend, opts: Options) -> Env {
    support::init_tls();
    let slack = FakeSlack::start().await;
    let db = TestDb::new(backend).await;
    let mut config = test_config(&db.url);
    config.slack = slack_config(&slack);
    let socket = if opts.socket {
        let s = SocketServer::start().await;
        slack.set_socket_url(&s.url());
        config.slack.socket_mode = true;
        config.slack.app_token = APP_TOKEN.into();
        Some(s)
    } else {
        None
    };
    let kube = if opts.kube {
        let k = KubeTestServer::start().await;
        k.set_step(Duration::from_millis(15));
        config.kubernetes.url = k.url();
        config.kubernetes.rollout_deadline = "20s".parse().unwrap();
        config.kubernetes.stall_after = "1s".parse().unwrap();
        Some(k)
    } else {
        None
    };
    if let Some(edit) = opts.edit {
        edit(&mut config);
    }
    let probe = Arc::new(support::actions::Probe::default());
    let mut builder = Builder::new(config);
    if !opts.kube {
        let mut specs = support::test_specs();
        specs.push(("tests/chatty.yaml".into(), CHATTY_SPEC.into()));
        specs.extend(opts.specs);
        builder = support::actions::register(builder, &probe)
            .action(Arc::new(Chatty))
            .specs(specs);
    }
    let running = builder.start("127.0.0.1:0".parse().unwrap()).await.expect("app starts");
    let app = TestApp {
        addr: running.addr,
        url: format!("http://{}", running.addr),
        running: Some(running),
        probe,
        http: reqwest::Client::new(),
    };
    Env {
        app,
        slack,
        socket,
        kube,
        _db: db,
    }
}

impl Env {
    async fn post_raw(&self, path: &str, body: &str, headers: Vec<(&'static str, String)>) -> (u16, Duration) {
        let mut req = self
            .app
            .http
            .post(format!("{}{path}", self.app.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let started = Instant::now();
        let resp = req.send().await.expect("POST");
        (resp.status().as_u16(), started.elapsed())
    }

    async fn post_signed(&self, path: &str, body: &str) -> (u16, Duration) {
        self.post_raw(path, body, signed_headers(body, now())).await
    }

    /// A signed slash command from `user`; the response_url is named after the trigger.
    async fn command(&self, user: &str, text: &str, trigger: &str) -> (u16, Duration) {
        self.slack.issue_trigger(trigger);
        let body = command_form(
            &slack_id(user),
            CHANNEL,
            text,
            trigger,
            &self.slack.response_url(trigger),
        );
        self.post_signed("/slack/commands", &body).await
    }

    async fn click(&self, user: &str, action_id: &str, value: &str, tag: &str) -> u16 {
        let mut payload = block_actions(&slack_id(user), action_id, value, &self.slack.response_url(tag));
        let trigger = format!("trigger-{tag}");
        self.slack.issue_trigger(&trigger);
        payload["trigger_id"] = json!(trigger);
        self.post_signed("/slack/interactions", &interaction_form(&payload))
            .await
            .0
    }

    /// A signed interactivity payload; Slack's status and the body deckhand answered with.
    async fn interact(&self, payload: &Value) -> (u16, Value) {
        let body = interaction_form(payload);
        let mut req = self
            .app
            .http
            .post(format!("{}/slack/interactions", self.app.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        for (k, v) in signed_headers(&body, now()) {
            req = req.header(k, v);
        }
        let resp = req.send().await.expect("POST");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Waits for the `n`-th call to `method` (views.open, views.update) and returns the
    /// modal Slack then shows.
    async fn modal(&self, method: &str, n: usize) -> Value {
        self.slack
            .wait_for(5, &format!("{method} #{n}"), |cs| {
                cs.iter().filter(|c| c.method == method).count() >= n
            })
            .await;
        self.slack.last_view().expect("an open modal")
    }

    /// Deny as `user`: the click opens the form, the form is sent with `reason`; returns
    /// deckhand's answer to the submission.
    async fn deny_with_reason(&self, user: &str, deny: &str, reason: &str, tag: &str) -> (u16, Value) {
        let opened = self.slack.calls_to("views.open").len();
        assert_eq!(self.click(user, "deny", deny, tag).await, 200);
        let form = self.modal("views.open", opened + 1).await;
        assert_eq!(form["callback_id"], "deckhand_deny");
        self.interact(&view_submission(
            &slack_id(user),
            &form,
            json!({ "reason": typed(reason) }),
        ))
        .await
    }

    async fn requests(&self) -> Vec<Value> {
        let (_, v) = self.app.get_as(ADMIN, "/api/v1/requests?scope=all").await;
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    async fn only_request(&self) -> Value {
        let rs = self.requests().await;
        assert_eq!(rs.len(), 1, "{rs:#?}");
        rs[0].clone()
    }

    /// Waits for the approval prompt and returns the (approve, deny) button values.
    async fn prompt(&self) -> (String, String, Call) {
        let calls = self
            .slack
            .wait_for(10, "an approval prompt", |cs| cs.iter().any(is_prompt))
            .await;
        let call = calls.into_iter().find(is_prompt).unwrap();
        let value = |action: &str| {
            call.body["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
                .find(|e| e["action_id"] == action)
                .and_then(|e| e["value"].as_str().map(str::to_owned))
                .unwrap()
        };
        (value("approve"), value("deny"), call)
    }

    fn ephemerals(&self, tag: &str) -> Vec<String> {
        self.slack
            .calls_to("response_url")
            .iter()
            .filter(|c| c.path == tag)
            .map(|c| {
                assert_eq!(c.body["response_type"], "ephemeral", "{:?}", c.body);
                c.body["text"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    }

    async fn ephemeral(&self, tag: &str) -> String {
        let t = tag.to_owned();
        self.slack
            .wait_for(5, &format!("an ephemeral answer on {tag}"), move |cs| {
                cs.iter().any(|c| c.method == "response_url" && c.path == t)
            })
            .await;
        self.ephemerals(tag).join("\n")
    }
}

fn is_prompt(c: &Call) -> bool {
    c.method == "chat.postMessage" && c.body["blocks"].to_string().contains("\"approve\"")
}

fn root_updates(calls: &[Call], root_ts: &str) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == "chat.update" && c.body["ts"] == root_ts)
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn thread_replies(calls: &[Call], root_ts: &str) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.body["thread_ts"] == root_ts)
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Verification and payload shapes

#[test]
fn slacks_signature_example_verifies_and_any_change_does_not() {
    let v: Value = serde_json::from_str(include_str!("support/slack/fixtures/signature_vector.json")).unwrap();
    let (secret, ts, body, sig) = (
        v["signing_secret"].as_str().unwrap(),
        v["timestamp"].as_str().unwrap(),
        v["body"].as_str().unwrap(),
        v["header_x_slack_signature"].as_str().unwrap(),
    );
    let at: i64 = ts.parse().unwrap();
    let pinned = RequestVerifier::with_clock(secret, Arc::new(move || at));
    assert!(pinned.verify_signature(sig, ts, body).is_ok());
    assert!(
        pinned.verify_signature(sig, ts, &format!("{body}&x=1")).is_err(),
        "body"
    );
    assert!(
        pinned.verify_signature(sig, &(at + 1).to_string(), body).is_err(),
        "timestamp"
    );
    let other = RequestVerifier::with_clock(&format!("{secret}x"), Arc::new(move || at));
    assert!(other.verify_signature(sig, ts, body).is_err(), "secret");
    // With the real clock, the 2018 example is stale.
    assert!(RequestVerifier::new(secret).verify_signature(sig, ts, body).is_err());
}

#[test]
fn fixture_payloads_parse_through_the_models() {
    let cmd =
        deckhand::slack::inbound::parse_command(include_str!("support/slack/fixtures/slash_command.form")).unwrap();
    assert_eq!(cmd.user_id.to_string(), "U2147483697");
    assert_eq!(cmd.text.as_deref(), Some("env create checkout-preview ttl=8h"));
    assert_eq!(cmd.channel_id.to_string(), CHANNEL);
    let payload: Value = serde_json::from_str(include_str!("support/slack/fixtures/block_actions.json")).unwrap();
    let ev = deckhand::slack::inbound::parse_interaction_form(&interaction_form(&payload)).unwrap();
    assert!(matches!(
        ev,
        slack_morphism::events::SlackInteractionEvent::BlockActions(_)
    ));
    assert!(deckhand::slack::inbound::parse_interaction_form("payload=%7Bnot-json").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_stale_replayed_oversized_and_malformed_requests_change_nothing() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        let body = command_form(
            &slack_id("alice"),
            CHANNEL,
            "deploy ghcr.io/acme/shop:1.2 to checkout",
            "t-bad",
            &env.slack.response_url("t-bad"),
        );
        // Forged: signed with another secret.
        let ts = now().to_string();
        let forged = deckhand::slack::verify::sign("not-the-secret", &ts, &body);
        let headers = vec![("x-slack-request-timestamp", ts.clone()), ("x-slack-signature", forged)];
        assert_eq!(env.post_raw("/slack/commands", &body, headers).await.0, 401, "forged");
        // Body changed after signing.
        let mut headers = signed_headers(&body, now());
        let tampered = body.replace("checkout", "checkoux");
        assert_eq!(
            env.post_raw("/slack/commands", &tampered, headers.clone()).await.0,
            401,
            "tampered"
        );
        // No signature at all.
        headers.truncate(1);
        assert_eq!(env.post_raw("/slack/commands", &body, headers).await.0, 401, "unsigned");
        // Stale: signed correctly, six minutes ago.
        let stale = signed_headers(&body, now() - 360);
        assert_eq!(env.post_raw("/slack/commands", &body, stale).await.0, 401, "stale");
        // Oversized: refused before it is read in full.
        let big = format!("{body}&pad={}", "x".repeat(70_000));
        assert_eq!(env.post_signed("/slack/commands", &big).await.0, 413, "oversized");
        // Malformed: signed, but not a slash command / not a payload.
        assert_eq!(
            env.post_signed("/slack/commands", "hello=world").await.0,
            400,
            "malformed command"
        );
        assert_eq!(
            env.post_signed("/slack/interactions", "payload=%7B%7D").await.0,
            400,
            "malformed payload"
        );
        assert_eq!(
            env.post_signed("/slack/interactions", "nothing=here").await.0,
            400,
            "no payload"
        );
        // Replayed: the same signed request twice, without Slack's retry header.
        let clean = body.replace("t-bad", "t-replay");
        let headers_clean = signed_headers(&clean, now());
        assert_eq!(
            env.post_raw("/slack/commands", &clean, headers_clean.clone()).await.0,
            200
        );
        let before = env.requests().await.len();
        assert_eq!(
            env.post_raw("/slack/commands", &clean, headers_clean).await.0,
            401,
            "replayed"
        );
        assert_eq!(env.requests().await.len(), before);
        assert_eq!(before, 1, "only the one genuine request is stored");
        // Nothing was posted for any of the rejected ones: only the genuine one's messages, once
        // its result is in Slack.
        env.slack
            .wait_for(10, "the genuine request's result", |cs| {
                cs.iter().any(|c| c.body.to_string().contains("done with checkout"))
            })
            .await;
        let calls = env.slack.calls();
        assert!(
            calls
                .iter()
                .all(|c| c.method == "chat.postMessage" || c.method == "chat.update"),
            "{:#?}",
            summary(&calls)
        );
        assert!(env.ephemerals("t-bad").is_empty());
        env.app.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------
// Commands, approvals, progress

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prod_deploy_end_to_end_over_http() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(
            backend,
            Options {
                kube: true,
                ..Default::default()
            },
        )
        .await;
        // A prod environment to deploy into (through the API, approved by ops).
        let (_, v) = env.app.submit_as("olga", "env create payments prod").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("omar", &id).await;
        env.app.wait_for_state(&id, &["succeeded"]).await;

        let (status, took) = env
            .command("olga", "deploy nginx:1.27.3 to payments replicas=12", "t-deploy")
            .await;
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(3), "acknowledged in {took:?}");
        let request = env.only_slack_request().await;
        assert_eq!(request["state"], "pending_approval");
        let id = request["id"].as_str().unwrap().to_owned();

        let (approve, _, prompt) = env.prompt().await;
        let calls = env.slack.calls();
        let root = calls
            .iter()
            .find(|c| c.method == "chat.postMessage" && c.body["thread_ts"].is_null())
            .expect("root message");
        let root_text = root.body["text"].as_str().unwrap();
        assert!(
            root_text.starts_with(&format!(
                "<@UOLGA>: deploy nginx:1.27.3 to payments replicas=12 (request {id})"
            )),
            "{root_text}"
        );
        assert_eq!(root.body["channel"], CHANNEL);
        let root_ts = root.ts.clone().unwrap();
        assert_eq!(prompt.body["thread_ts"], root_ts, "the prompt is in the thread");
        // Waiting costs the status message and the prompt: nothing re-sends the unchanged
        // status (the state event and the prompt each used to edit it with the same text).
        assert!(
            !calls
                .iter()
                .any(|c| c.method == "chat.update" && c.body["ts"] == root_ts),
            "{:#?}",
            summary(&calls)
        );
        let summary_text = prompt.body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            summary_text.contains("payments") && summary_text.contains("group:ops"),
            "{summary_text}"
        );
        assert!(
            env.kube
                .as_ref()
                .unwrap()
                .object("deployments", "payments", "nginx")
                .is_none()
        );

        // An approver clicks Approve.
        assert_eq!(env.click("omar", "approve", &approve, "c-omar").await, 200);
        let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
        assert_eq!(done["request"]["state"], "succeeded", "{done:#}");
        assert!(
            env.kube
                .as_ref()
                .unwrap()
                .object("deployments", "payments", "nginx")
                .is_some()
        );

        let rt = root_ts.clone();
        let calls = env
            .slack
            .wait_for(30, "the root message showing success", move |cs| {
                root_updates(cs, &rt).iter().any(|t| t.contains("succeeded"))
            })
            .await;
        // A quiet thread: the 12-replica rollout edits the root message; the thread holds
        // the approval prompt and nothing repeats the success.
        let replies = thread_replies(&calls, &root_ts);
        assert!(replies.len() <= 3, "at most 3 replies: {replies:#?}");
        assert!(!replies.iter().any(|r| r.contains("Succeeded")), "{replies:#?}");
        let edits: Vec<&Call> = calls
            .iter()
            .filter(|c| c.method == "chat.update" && c.body["ts"] == root_ts)
            .collect();
        let progress: Vec<&&Call> = edits
            .iter()
            .filter(|c| {
                let t = c.body["text"].as_str().unwrap_or_default();
                t.contains(":gear: running") && t.contains("/12 updated")
            })
            .collect();
        assert!(!progress.is_empty(), "rollout progress in the root message: {edits:#?}");
        for pair in progress.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(
                gap >= Duration::from_millis(950),
                "progress edits {gap:?} apart: {:#?}",
                progress
                    .iter()
                    .map(|c| (c.at.duration_since(progress[0].at), c.body["text"].to_string()))
                    .collect::<Vec<_>>()
            );
        }
        // The buttons were replaced by who decided and when.
        let prompt_ts = prompt.ts.clone().unwrap();
        let decided = calls
            .iter()
            .rev()
            .find(|c| c.method == "chat.update" && c.body["ts"] == prompt_ts)
            .expect("prompt updated");
        let blocks = decided.body["blocks"].to_string();
        assert!(!blocks.contains("\"actions\""), "buttons gone: {blocks}");
        assert!(blocks.contains("✅ <@UOMAR> approved (1 of 1)"), "{blocks}");
        assert!(
            env.ephemerals("c-omar").is_empty(),
            "a successful click needs no explanation"
        );
        env.app.shutdown().await;
    }
}

impl Env {
    /// The one request that came from Slack.
    async fn only_slack_request(&self) -> Value {
        let rs: Vec<Value> = self
            .requests()
            .await
            .into_iter()
            .filter(|r| r["surface"] == "slack")
            .collect();
        assert_eq!(rs.len(), 1, "{rs:#?}");
        rs[0].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prod_deploy_end_to_end_over_socket_mode() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(
            backend,
            Options {
                kube: true,
                socket: true,
                ..Default::default()
            },
        )
        .await;
        let socket = env.socket.as_ref().unwrap();
        socket.wait_connections(1, 10).await;
        // HTTP endpoints are off in Socket Mode.
        assert_eq!(env.command("olga", "help", "t-http").await.0, 404);

        let (_, v) = env.app.submit_as("olga", "env create payments prod").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        env.app.approve("omar", &id).await;
        env.app.wait_for_state(&id, &["succeeded"]).await;

        let form = command_form(
            &slack_id("olga"),
            CHANNEL,
            "deploy nginx:1.27.3 to payments",
            "t-sock",
            &env.slack.response_url("t-sock"),
        );
        let fields: Vec<(String, String)> = serde_urlencoded::from_str(&form).unwrap();
        let payload = Value::Object(fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
        let started = Instant::now();
        socket.envelope("env-cmd-1", "slash_commands", payload.clone());
        socket.wait_ack("env-cmd-1", 3).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        let request = env.only_slack_request().await;
        assert_eq!(request["state"], "pending_approval");
        let id = request["id"].as_str().unwrap().to_owned();
        // Slack redelivers an envelope it thinks was lost: still one request.
        socket.envelope("env-cmd-2", "slash_commands", payload);
        socket.wait_ack("env-cmd-2", 3).await;
        env.only_slack_request().await;

        let (approve, _, _) = env.prompt().await;
        let click = block_actions(
            &slack_id("omar"),
            "approve",
            &approve,
            &env.slack.response_url("c-sock"),
        );
        socket.envelope("env-click-1", "interactive", click);
        socket.wait_ack("env-click-1", 3).await;
        let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
        assert_eq!(done["request"]["state"], "succeeded", "{done:#}");
        let calls = env
            .slack
            .wait_for(10, "the root message showing success", |cs| {
                cs.iter().any(|c| {
                    c.method == "chat.update" && c.body["text"].as_str().unwrap_or_default().contains("succeeded")
                })
            })
            .await;
        assert!(calls.iter().any(|c| c.method == "apps.connections.open"));
        // Envelopes deckhand does not use are acknowledged too.
        socket.envelope("env-other", "events_api", json!({ "type": "event_callback" }));
        socket.wait_ack("env-other", 3).await;
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn socket_mode_reconnects_after_disconnect_and_dropped_sockets() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(
            backend,
            Options {
                socket: true,
                ..Default::default()
            },
        )
        .await;
        let socket = env.socket.as_ref().unwrap();
        socket.wait_connections(1, 10).await;
        socket.disconnect();
        socket.wait_connections(2, 5).await;
        socket.drop_connection();
        socket.wait_connections(3, 5).await;
        // Still working on the newest connection.
        let form = command_form(
            &slack_id("alice"),
            CHANNEL,
            "whoami",
            "t-who",
            &env.slack.response_url("t-who"),
        );
        let fields: Vec<(String, String)> = serde_urlencoded::from_str(&form).unwrap();
        let payload = Value::Object(fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
        socket.envelope("env-who", "slash_commands", payload);
        socket.wait_ack("env-who", 3).await;
        assert_eq!(env.slack.calls_to("apps.connections.open").len(), 3);
        // whoami answers privately, on the command's response_url.
        assert!(env.ephemeral("t-who").await.contains("alice"));
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_commands_answer_privately_once_unless_shared() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        assert_eq!(env.command("alice", "whoami", "t-me").await.0, 200);
        let answer = env.ephemeral("t-me").await;
        assert!(answer.contains("alice") && answer.contains("developers"), "{answer}");
        let id = env.only_request().await["id"].as_str().unwrap().to_owned();
        env.app.wait_for_state(&id, &["succeeded"]).await;
        // Nothing in the channel, and the answer once: no "Succeeded: <same text>".
        let posted = env.slack.calls_to("chat.postMessage");
        assert!(posted.is_empty(), "{:#?}", summary(&posted));
        assert_eq!(env.ephemerals("t-me").len(), 1, "{:#?}", env.ephemerals("t-me"));

        // `--share` posts the same command in the channel.
        assert_eq!(env.command("alice", "whoami --share", "t-share").await.0, 200);
        let calls = env
            .slack
            .wait_for(10, "the shared answer in the channel and its thread", |cs| {
                let post = |c: &&Call, thread: bool, text: &str| {
                    c.method == "chat.postMessage"
                        && c.body["thread_ts"].is_null() != thread
                        && c.body["text"].as_str().unwrap_or_default().contains(text)
                };
                cs.iter().any(|c| post(&c, false, ": whoami (request"))
                    && cs.iter().any(|c| post(&c, true, "developers"))
            })
            .await;
        assert_eq!(
            calls.iter().filter(|c| c.method == "chat.postMessage").count(),
            2,
            "{:#?}",
            summary(&calls)
        );
        assert!(env.ephemerals("t-share").is_empty());
        env.app.shutdown().await;
    }
}

/// Every message in the channel as it reads now (a post with its edits applied), by ts.
fn final_messages(calls: &[Call]) -> std::collections::BTreeMap<String, Value> {
    let mut messages = std::collections::BTreeMap::new();
    for c in calls {
        match c.method.as_str() {
            "chat.postMessage" => {
                if let Some(ts) = &c.ts {
                    messages.insert(ts.clone(), c.body.clone());
                }
            }
            "chat.update" => {
                if let Some(ts) = c.body["ts"].as_str() {
                    messages.insert(ts.to_owned(), c.body.clone());
                }
            }
            _ => {}
        }
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_answer_shows_its_output_once_and_the_status_says_finished() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        for (command, output) in [("whoami", "You are alice"), ("help", "Commands you can run")] {
            env.slack.clear();
            let trigger = format!("t-{command}");
            assert_eq!(
                env.command("alice", &format!("{command} --share"), &trigger).await.0,
                200
            );
            let calls = env
                .slack
                .wait_for(10, "the root says finished", |cs| {
                    cs.iter().any(|c| {
                        c.method == "chat.update"
                            && c.body["text"]
                                .as_str()
                                .unwrap_or_default()
                                .contains(":white_check_mark: finished in ")
                    })
                })
                .await;
            let messages = final_messages(&calls);
            let with_output: Vec<&Value> = messages.values().filter(|m| m.to_string().contains(output)).collect();
            assert_eq!(with_output.len(), 1, "{command}: {messages:#?}");
            assert!(
                !with_output[0]["thread_ts"].is_null(),
                "the output is the reply: {messages:#?}"
            );
            let root = messages
                .values()
                .find(|m| m["thread_ts"].is_null())
                .expect("a root message");
            let root = root["text"].as_str().unwrap_or_default();
            assert!(root.contains(&format!("{command} (request")), "{root}");
        }
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivery_and_double_click_each_run_once() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        let text = "deploy ghcr.io/acme/shop:1.2 to checkout tier=prod";
        let body = command_form(
            &slack_id("alice"),
            CHANNEL,
            text,
            "t-once",
            &env.slack.response_url("t-once"),
        );
        let ts = now();
        assert_eq!(
            env.post_raw("/slack/commands", &body, signed_headers(&body, ts))
                .await
                .0,
            200
        );
        // Slack's redelivery: same payload, X-Slack-Retry-Num.
        let mut retry = signed_headers(&body, ts);
        retry.push(("x-slack-retry-num", "1".into()));
        retry.push(("x-slack-retry-reason", "http_timeout".into()));
        assert_eq!(env.post_raw("/slack/commands", &body, retry).await.0, 200);
        // A redelivery signed anew (later timestamp): the trigger_id still makes it the same.
        let mut retry = signed_headers(&body, ts + 2);
        retry.push(("x-slack-retry-num", "2".into()));
        assert_eq!(env.post_raw("/slack/commands", &body, retry).await.0, 200);
        let request = env.only_request().await;
        let id = request["id"].as_str().unwrap().to_owned();

        let (approve, _, _) = env.prompt().await;
        let click = interaction_form(&block_actions(
            &slack_id("olga"),
            "approve",
            &approve,
            &env.slack.response_url("c1"),
        ));
        let ts = now();
        assert_eq!(
            env.post_raw("/slack/interactions", &click, signed_headers(&click, ts))
                .await
                .0,
            200
        );
        // Slack redelivering that very click: acknowledged, not handled again.
        let mut retry = signed_headers(&click, ts);
        retry.push(("x-slack-retry-num", "1".into()));
        assert_eq!(env.post_raw("/slack/interactions", &click, retry).await.0, 200);
        assert_eq!(env.click("olga", "approve", &approve, "c2").await, 200);
        assert_eq!(env.click("omar", "approve", &approve, "c3").await, 200);
        let done = env.app.wait_for_state(&id, &["succeeded"]).await;
        assert_eq!(done["request"]["state"], "succeeded");
        // A run needs a claim, and the request can no longer be claimed: claimed once (the
        // store's count) means no second run is under way or to come.
        assert_eq!(done["request"]["attempts"], 1, "claimed once: {done:#}");
        assert_eq!(env.app.probe.count("checkout"), 1, "the action ran once");
        assert!(env.ephemerals("c1").is_empty());
        assert!(!env.ephemeral("c2").await.is_empty(), "the double click is explained");
        assert!(!env.ephemeral("c3").await.is_empty());
        let calls = env.slack.calls();
        let roots = calls
            .iter()
            .filter(|c| c.method == "chat.postMessage" && c.body["thread_ts"].is_null())
            .count();
        assert_eq!(roots, 1, "one root message: {:#?}", summary(&calls));
        assert_eq!(calls.iter().filter(|c| is_prompt(c)).count(), 1);
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_and_argument_errors_are_ephemeral_and_change_nothing() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        // Someone deckhand does not know.
        assert_eq!(env.command("nobody", "help", "t-unknown").await.0, 200);
        let text = env.ephemeral("t-unknown").await;
        assert!(
            text.contains("Sorry") && text.contains("`slack:UNOBODY`") && text.contains("ops"),
            "{text}"
        );
        // Known, but may not run it.
        assert_eq!(
            env.command("eve", "deploy ghcr.io/acme/shop:1.2 to x", "t-eve").await.0,
            200
        );
        assert!(!env.ephemeral("t-eve").await.is_empty());
        // Argument error.
        assert_eq!(env.command("alice", "deploy NOT_AN_IMAGE to x", "t-arg").await.0, 200);
        assert!(!env.ephemeral("t-arg").await.is_empty());
        // Unknown command, with a suggestion.
        assert_eq!(
            env.command("alice", "deplyo ghcr.io/acme/shop:1.2 to x", "t-typo")
                .await
                .0,
            200
        );
        assert!(env.ephemeral("t-typo").await.contains("deploy"));
        // A marker after them: once its answer came, they were all handled; none stored a
        // request or posted anything but its explanation.
        assert_eq!(env.command("alice", "whoami", "t-marker").await.0, 200);
        assert!(!env.ephemeral("t-marker").await.is_empty());
        let stored: Vec<Value> = env.requests().await;
        assert!(stored.iter().all(|r| r["text"] == "whoami"), "{stored:#?}");
        assert!(
            env.slack.calls().iter().all(|c| c.method == "response_url"),
            "{:#?}",
            summary(&env.slack.calls())
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthorised_and_forged_clicks_change_nothing_and_deny_replaces_the_buttons() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        assert_eq!(
            env.command("alice", "deploy ghcr.io/acme/shop:1.2 to checkout tier=prod", "t-1")
                .await
                .0,
            200
        );
        let id = env.only_request().await["id"].as_str().unwrap().to_owned();
        let (approve, deny, prompt) = env.prompt().await;
        env.slack.clear();
        // A developer may not approve; the requester may not either.
        assert_eq!(env.click("bob", "approve", &approve, "c-bob").await, 200);
        assert!(env.ephemeral("c-bob").await.contains("group:ops"));
        assert_eq!(env.click("alice", "approve", &approve, "c-alice").await, 200);
        assert!(!env.ephemeral("c-alice").await.is_empty());
        // Forged values: the fixture's placeholder, another key's signature, approve-as-deny.
        assert_eq!(
            env.click(
                "olga",
                "approve",
                "REPLACE-WITH-THE-SIGNED-VALUE-THE-BOT-PUT-ON-THE-BUTTON",
                "c-f1"
            )
            .await,
            200
        );
        assert!(env.ephemeral("c-f1").await.contains("did not make this button"));
        let other = deckhand::signing::Signer::new(b"another key");
        let rid = deckhand::domain::RequestId::parse(&id).unwrap();
        let forged = deckhand::slack::buttons::value(&other, deckhand::slack::buttons::Decision::Approve, &rid);
        assert_eq!(env.click("olga", "approve", &forged, "c-f2").await, 200);
        assert!(env.ephemeral("c-f2").await.contains("did not make this button"));
        assert_eq!(env.click("olga", "deny", &approve, "c-f3").await, 200);
        assert!(env.ephemeral("c-f3").await.contains("did not make this button"));
        // None of those clicks changed the request; the deny below comes after them, and
        // its finding the request still waiting (it ends denied, no approval recorded)
        // shows none changed it later.
        assert_eq!(env.only_request().await["state"], "pending_approval");
        assert!(
            env.slack.calls().iter().all(|c| c.method == "response_url"),
            "nothing but explanations: {:#?}",
            summary(&env.slack.calls())
        );
        // An ops person denies, saying why: buttons replaced by who, when and why; root shows it.
        assert_eq!(
            env.deny_with_reason("otto", &deny, "change freeze until Monday", "c-otto")
                .await,
            (200, Value::Null)
        );
        let denied = env.app.wait_for_state(&id, &["denied"]).await;
        let decisions: Vec<(&str, &str)> = denied["approvals"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["approver"].as_str().unwrap_or(""),
                    a["decision"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            decisions,
            [("otto", "deny")],
            "only otto's denial was recorded: {denied:#}"
        );
        let calls = env
            .slack
            .wait_for(5, "the prompt showing the denial", |cs| {
                cs.iter().any(|c| {
                    c.method == "chat.update"
                        && c.body["blocks"].to_string().contains("🚫 <@UOTTO> denied")
                        && c.body["blocks"].to_string().contains("change freeze until Monday")
                })
            })
            .await;
        let decided = calls
            .iter()
            .find(|c| c.method == "chat.update" && c.body["blocks"].to_string().contains("denied"))
            .unwrap();
        assert!(!decided.body["blocks"].to_string().contains("\"actions\""));
        assert_eq!(decided.body["channel"], prompt.body["channel"]);
        env.slack
            .wait_for(5, "the root showing the denial", |cs| {
                cs.iter().any(|c| {
                    c.method == "chat.update"
                        && c.body["text"]
                            .as_str()
                            .unwrap_or_default()
                            .contains(":no_entry: denied")
                })
            })
            .await;
        assert_eq!(env.app.probe.count("checkout"), 0);
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_approvals_keep_the_buttons_until_the_second_and_approvals_channel_gets_a_copy() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(
            backend,
            Options {
                edit: Some(Box::new(|c: &mut Config| {
                    c.slack.approvals_channel = "CAPPROVALS".into()
                })),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(env.command("alice", "release checkout", "t-rel").await.0, 200);
        let id = env.only_request().await["id"].as_str().unwrap().to_owned();
        let (approve, _, _) = env.prompt().await;
        let calls = env
            .slack
            .wait_for(5, "the copy in the approvals channel", |cs| {
                cs.iter().any(|c| is_prompt(c) && c.body["channel"] == "CAPPROVALS")
            })
            .await;
        assert_eq!(calls.iter().filter(|c| is_prompt(c)).count(), 2);
        assert_eq!(env.click("olga", "approve", &approve, "c-1").await, 200);
        assert!(env.ephemeral("c-1").await.contains("1 of 2"));
        env.slack
            .wait_for(5, "both prompts showing 1 of 2 with buttons", |cs| {
                cs.iter()
                    .filter(|c| {
                        let b = c.body["blocks"].to_string();
                        c.method == "chat.update" && b.contains("(1 of 2)") && b.contains("\"actions\"")
                    })
                    .count()
                    == 2
            })
            .await;
        assert_eq!(env.click("omar", "approve", &approve, "c-2").await, 200);
        env.app.wait_for_state(&id, &["succeeded"]).await;
        env.slack
            .wait_for(5, "both prompts closed", |cs| {
                cs.iter()
                    .filter(|c| {
                        let b = c.body["blocks"].to_string();
                        c.method == "chat.update"
                            && b.contains("✅ <@UOMAR> approved (2 of 2)")
                            && !b.contains("\"actions\"")
                    })
                    .count()
                    == 2
            })
            .await;
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_user_groups_grant_deckhand_groups() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(
            backend,
            Options {
                edit: Some(Box::new(|c: &mut Config| {
                    for (name, group) in c.groups.iter_mut() {
                        if name.to_string() == "ops" {
                            group.identities.push("slack-group:SOPSONCALL".into());
                        }
                    }
                })),
                ..Default::default()
            },
        )
        .await;
        env.slack.set_usergroups(&[("SOPSONCALL", &["UBOB"])]);
        assert_eq!(
            env.command("alice", "deploy ghcr.io/acme/shop:1.2 to checkout tier=prod", "t-1")
                .await
                .0,
            200
        );
        let id = env.only_request().await["id"].as_str().unwrap().to_owned();
        let (approve, _, _) = env.prompt().await;
        // bob is only a developer in the configuration, but on call in Slack.
        assert_eq!(env.click("bob", "approve", &approve, "c-bob").await, 200);
        env.app.wait_for_state(&id, &["succeeded"]).await;
        assert!(env.slack.calls_to("usergroups.list").len() == 1, "cached");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_channel_the_bot_cannot_post_in_is_explained_to_the_person() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        env.slack.fail_next("chat.postMessage", "not_in_channel");
        assert_eq!(
            env.command("alice", "deploy ghcr.io/acme/shop:1.2 to checkout tier=prod", "t-priv")
                .await
                .0,
            200
        );
        let id = env.only_request().await["id"].as_str().unwrap().to_owned();
        let text = env.ephemeral("t-priv").await;
        assert!(
            text.contains(&id) && text.contains("/invite @deckhand") && text.contains("not_in_channel"),
            "{text}"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fast_progress_is_coalesced_per_thread() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        assert_eq!(env.command("alice", "chatty", "t-chat").await.0, 200);
        let calls = env
            .slack
            .wait_for(10, "the result in the root message", |cs| {
                cs.iter().any(|c| {
                    c.method == "chat.update"
                        && c.body["text"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("succeeded: chatted")
                })
            })
            .await;
        let root = calls
            .iter()
            .find(|c| c.method == "chat.postMessage")
            .unwrap()
            .ts
            .clone()
            .unwrap();
        // 40 progress lines: none is a thread reply; the root message shows the latest.
        let replies = thread_replies(&calls, &root);
        assert!(replies.iter().all(|r| !r.contains("step")), "{replies:#?}");
        let progress: Vec<String> = root_updates(&calls, &root)
            .into_iter()
            .filter(|t| t.contains("step"))
            .collect();
        assert!(
            !progress.is_empty() && progress.len() <= 3,
            "40 updates coalesced into a few edits: {progress:#?}"
        );
        assert!(progress.first().unwrap().contains("step 1 of 40"), "{progress:#?}");
        assert!(progress.last().unwrap().contains("step 40 of 40"), "{progress:#?}");
        // Order is kept: the last edit shows the result, not a progress line.
        let last = root_updates(&calls, &root).pop().unwrap();
        assert!(last.contains("succeeded: chatted") && !last.contains("step"), "{last}");
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_storm_delays_but_loses_no_message() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(backend, Options::default()).await;
        env.slack.rate_limit(4, 1);
        let started = Instant::now();
        let (status, took) = env
            .command("alice", "deploy ghcr.io/acme/shop:1.2 to checkout tier=prod", "t-storm")
            .await;
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_secs(1),
            "the ack does not wait for Slack: {took:?}"
        );
        let (approve, _, _) = env.prompt().await;
        assert!(started.elapsed() >= Duration::from_secs(3), "Retry-After was honoured");
        assert_eq!(env.slack.limited(), 4);
        env.slack.rate_limit(3, 1);
        assert_eq!(env.click("olga", "approve", &approve, "c-storm").await, 200);
        let id = env.only_request().await["id"].as_str().unwrap().to_owned();
        env.app.wait_for_state(&id, &["succeeded"]).await;
        let calls = env
            .slack
            .wait_for(20, "every message after the storm", |cs| {
                cs.iter().any(|c| {
                    c.body["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("succeeded: done with checkout")
                })
            })
            .await;
        let texts: Vec<String> = calls
            .iter()
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        for wanted in [
            "waiting for approval",
            "Approval needed",
            "queued",
            "running",
            "counted checkout",
            "succeeded",
        ] {
            assert!(texts.iter().any(|t| t.contains(wanted)), "{wanted} missing: {texts:#?}");
        }
        assert_eq!(env.slack.limited(), 7);
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_upload_in_three_steps_into_the_thread() {
    let fake = FakeSlack::start().await;
    support::init_tls();
    let web = WebApi::new(&slack_config(&fake));
    let png = vec![0x89u8, b'P', b'N', b'G', 1, 2, 3, 4];
    fake.rate_limit(1, 1);
    let up = web
        .upload_file(CHANNEL, Some("1700000000.000101"), "latency.png", "Latency", &png)
        .await
        .unwrap();
    let calls = fake.calls();
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(
        methods,
        ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    );
    assert_eq!(calls[0].body["filename"], "latency.png");
    assert_eq!(calls[0].body["length"], png.len().to_string());
    assert_eq!(fake.uploads(), vec![(up.file_id.clone(), png)]);
    assert_eq!(calls[2].body["files"][0]["id"], up.file_id.as_str());
    assert_eq!(calls[2].body["channel_id"], CHANNEL);
    assert_eq!(calls[2].body["thread_ts"], "1700000000.000101");
    // A failing step is an error, not a silent loss.
    fake.fail_next("files.completeUploadExternal", "invalid_channel");
    let err = web.upload_file("CNOPE", None, "x.png", "x", b"x").await.unwrap_err();
    assert!(err.to_string().contains("invalid_channel"), "{err}");
    // A wrong token is refused by the fake (and reported).
    let mut bad = slack_config(&fake);
    bad.bot_token = "xoxb-wrong".into();
    let err = WebApi::new(&bad)
        .call("chat.postMessage", &json!({ "channel": CHANNEL, "text": "hi" }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid_auth"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Configuration and manifest

#[test]
fn manifest_is_generated_from_the_command_specs() {
    let mut config = test_config("sqlite::memory:");
    config.slack.bot_token = BOT_TOKEN.into();
    config.slack.signing_secret = SIGNING_SECRET.into();
    let router = Builder::new(config.clone()).load_specs().unwrap();
    let text = deckhand::slack::manifest(&config, &router, "https://deckhand.example.com/").unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    let cmd = &m["features"]["slash_commands"][0];
    assert_eq!(cmd["command"], "/deckhand");
    assert_eq!(cmd["url"], "https://deckhand.example.com/slack/commands");
    assert!(cmd["description"].as_str().unwrap().contains("env create"));
    assert!(cmd["usage_hint"].as_str().unwrap().contains("deploy <image> to <env>"));
    assert_eq!(
        m["settings"]["interactivity"]["request_url"],
        "https://deckhand.example.com/slack/interactions"
    );
    assert_eq!(m["settings"]["interactivity"]["is_enabled"], true);
    assert_eq!(m["settings"]["socket_mode_enabled"], false);
    let scopes = m["oauth_config"]["scopes"]["bot"].to_string();
    for s in ["commands", "chat:write", "files:write"] {
        assert!(scopes.contains(s), "{scopes}");
    }
    assert!(deckhand::slack::manifest(&config, &router, "http://insecure.example.com").is_err());

    config.slack.socket_mode = true;
    config.slack.app_token = APP_TOKEN.into();
    let m: Value = serde_json::from_str(&deckhand::slack::manifest(&config, &router, "").unwrap()).unwrap();
    assert_eq!(m["settings"]["socket_mode_enabled"], true);
    assert!(m["features"]["slash_commands"][0]["url"].is_null());
}

#[test]
fn slack_configuration_is_checked_when_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.toml");
    let load = |body: &str| {
        std::fs::write(&path, body).unwrap();
        Config::build(Some(&path), std::iter::empty())
    };
    let c = load("[slack]\nbot_token = \"xoxb-1\"\nsigning_secret = \"s\"\n").unwrap();
    assert!(c.slack.enabled() && c.slack.http_enabled());
    assert_eq!(c.slack.api_url, "https://slack.com/api");
    let err = load("[slack]\nbot_token = \"xoxb-1\"\n").unwrap_err().to_string();
    assert!(err.contains("signing_secret"), "{err}");
    let err = load("[slack]\nbot_token = \"xoxb-1\"\nsocket_mode = true\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("app_token"), "{err}");
    let err = load("[slack]\nbot_tokn = \"x\"\n").unwrap_err().to_string();
    assert!(err.contains("bot_tokn"), "{err}");
    let c = load("").unwrap();
    assert!(!c.slack.enabled());
}

// ---------------------------------------------------------------------------------------
// Command buttons

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_close_button_on_a_proxy_link_closes_it() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(
            backend,
            Options {
                kube: true,
                ..Default::default()
            },
        )
        .await;
        for text in ["env create shop", "deploy ghcr.io/acme/shop:1.4.2 to shop port=8080"] {
            let (_, v) = env.app.submit_as("alice", text).await;
            let id = v["request"]["id"].as_str().unwrap().to_owned();
            let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
            assert_eq!(done["request"]["state"], "succeeded", "{done:#}");
        }
        assert_eq!(env.command("alice", "proxy open shop in shop", "t-open").await.0, 200);
        let calls = env
            .slack
            .wait_for(10, "the link message with its button", |cs| {
                cs.iter().any(|c| c.body["blocks"].to_string().contains("Close link"))
            })
            .await;
        let message = calls
            .iter()
            .find(|c| c.body["blocks"].to_string().contains("Close link"))
            .unwrap();
        assert!(message.body["thread_ts"].is_string(), "in the request's thread");
        // The link is a credential: an ephemeral message to alice, not a thread reply.
        assert_eq!(message.method, "chat.postEphemeral", "{:?}", message.body);
        assert_eq!(message.body["user"], slack_id("alice"));
        let public = env.slack.public_messages();
        assert!(
            public.iter().all(|c| !c.body.to_string().contains("/p/")),
            "the link is in a channel message: {:#?}",
            summary(&public)
        );
        assert!(
            message.body["text"].as_str().unwrap().contains("/p/"),
            "{:?}",
            message.body
        );
        let elements: Vec<Value> = message.body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .collect();
        // The link is a button that opens it, and a real link in the text, not in a code block.
        let open = elements.iter().find(|e| e["text"]["text"] == "Open link").unwrap();
        assert!(open["url"].as_str().unwrap().contains("/p/"), "{open}");
        assert!(open["action_id"].is_string(), "{open}");
        let text = message.body["text"].as_str().unwrap();
        assert!(text.starts_with("<http") && !text.contains("```"), "{text}");
        let button = elements.iter().find(|e| e["text"]["text"] == "Close link").unwrap();
        assert_eq!(button["style"], "danger");
        let (action_id, value) = (
            button["action_id"].as_str().unwrap().to_owned(),
            button["value"].as_str().unwrap().to_owned(),
        );

        // Opening the link: Slack still sends the click; it is acked and nothing is said.
        let link_action = open["action_id"].as_str().unwrap().to_owned();
        assert_eq!(env.click("alice", &link_action, "", "c-link").await, 200);

        // Someone without deckhand access clicks: nothing happens, they are told why.
        assert_eq!(env.click("eve", &action_id, &value, "c-eve").await, 200);
        let told = env.ephemeral("c-eve").await;
        assert!(told.contains("may not run `proxy close`"), "{told}");

        // A forged value (another command with the same signature) does nothing.
        let forged = format!("{}.{}", "ZW52IGRlbGV0ZSBzaG9w", value.split_once('.').unwrap().1);
        assert_eq!(env.click("bob", &action_id, &forged, "c-forged").await, 200);
        assert!(env.ephemeral("c-forged").await.contains("did not make this button"));
        assert!(env.ephemerals("c-link").is_empty(), "{:?}", env.ephemerals("c-link"));

        // bob clicks it: `proxy close <id>` runs as bob, and the link is closed.
        assert_eq!(env.click("bob", &action_id, &value, "c-bob").await, 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        let close = loop {
            assert!(Instant::now() < deadline, "the click never ran `proxy close`");
            let found = env
                .requests()
                .await
                .into_iter()
                .find(|r| r["text"].as_str().unwrap_or_default().starts_with("proxy close "));
            if let Some(r) = found {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(close["requester"], "bob", "{close:#}");
        let id = close["id"].as_str().unwrap().to_owned();
        let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
        assert!(
            done["request"]["outcome"]
                .as_str()
                .unwrap()
                .contains("closed after 0 requests"),
            "{done:#}"
        );
        let (_, list) = env.app.submit_as("alice", "proxy list").await;
        assert!(support::output_of(&list).contains("closed by bob"), "{list:#}");
        assert!(
            !env.requests().await.iter().any(|r| r["text"] == "env delete shop"),
            "the forged click ran nothing"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_prompt_shows_class_sizes_and_env_and_no_slack_message_carries_a_secret() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        use kube_fake::custom::{CustomKind, Provisioner};
        const PASSWORD: &str = "pw-slack-Qx81vR";
        let env = start(
            backend,
            Options {
                kube: true,
                ..Default::default()
            },
        )
        .await;
        let kube = env.kube.as_ref().unwrap();
        kube.register_custom(CustomKind::namespaced(
            "database.example.org/v1alpha1",
            "PostgreSQLInstance",
            "postgresqlinstances",
        ));
        kube.provision(Provisioner {
            plural: "postgresqlinstances".into(),
            condition: "Ready".into(),
            after_steps: 3,
            status: json!({ "address": "orders.rds.internal", "port": 5432 }),
            secret_name_at: "spec.writeConnectionSecretToRef.name".into(),
            secret_data: [("password".to_owned(), PASSWORD.to_owned())].into(),
        });
        let (_, v) = env.app.submit_as("alice", "env create shop").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        env.app.wait_for_state(&id, &["succeeded"]).await;

        let (status, _) = env
            .command(
                "alice",
                "service provision postgres orders in shop size=medium",
                "t-svc",
            )
            .await;
        assert_eq!(status, 200);
        let request = env.only_slack_request().await;
        assert_eq!(request["state"], "pending_approval");
        let (approve, _, prompt) = env.prompt().await;
        let text = prompt.body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            text.contains(
                "class postgres, cost-bearing (size=medium storage=20 highly_available=false), orders in shop"
            ),
            "{text}"
        );
        assert_eq!(env.click("olga", "approve", &approve, "c-olga").await, 200);
        let id = request["id"].as_str().unwrap().to_owned();
        let done = env.app.wait_for_state(&id, &["succeeded", "failed"]).await;
        assert_eq!(done["request"]["state"], "succeeded", "{done:#}");
        let secret = kube
            .object("secrets", "shop", "orders-conn")
            .expect("the provider wrote it");
        assert!(
            secret.to_string().contains("cHctc2xhY2st"),
            "the Secret holds the value: {secret}"
        );
        let calls = env
            .slack
            .wait_for(10, "the result in the thread", |cs| {
                cs.iter().any(|c| c.body.to_string().contains("is ready in shop"))
            })
            .await;
        for c in calls {
            let body = c.body.to_string();
            // The value, and its base64 as the Secret stores it.
            assert!(
                !body.contains(PASSWORD) && !body.contains("cHctc2xhY2st"),
                "{} leaks: {body}",
                c.method
            );
        }
        env.app.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------
// Modals: the command builder and the Deny reason

/// The first static_select of a modal's blocks, and its option values.
fn select_values(view: &Value, block: usize) -> Vec<String> {
    let e = &view["blocks"][block]["elements"][0];
    assert_eq!(e["type"], "static_select", "{view:#}");
    e["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap().to_owned())
        .collect()
}

fn input_block<'a>(view: &'a Value, block_id: &str) -> &'a Value {
    view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == block_id)
        .unwrap_or_else(|| panic!("no block {block_id}: {view:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_builder_submits_env_create_as_if_typed_and_deny_asks_why() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(
            backend,
            Options {
                kube: true,
                ..Default::default()
            },
        )
        .await;
        // A bare /deckhand opens the builder, nothing is stored or posted.
        assert_eq!(env.command("alice", "", "t-build").await.0, 200);
        let view = env.modal("views.open", 1).await;
        let commands = select_values(&view, 0);
        assert!(commands.contains(&"env create".to_owned()), "{commands:?}");
        let option =
            &view["blocks"][0]["elements"][0]["options"][commands.iter().position(|c| c == "env create").unwrap()];
        assert_eq!(
            option["description"]["text"],
            "Create an environment with the platform's defaults"
        );
        assert!(env.requests().await.is_empty());

        // Picking env create shows its fields, typed by the spec.
        let pick = view_action(&slack_id("alice"), &view, "deckhand_command_0", "env create", "t-pick");
        assert_eq!(env.interact(&pick).await.0, 200);
        let view = env.modal("views.update", 1).await;
        assert_eq!(input_block(&view, "arg:name")["element"]["type"], "plain_text_input");
        assert_eq!(input_block(&view, "arg:name")["optional"], false);
        let tier = input_block(&view, "arg:tier");
        assert_eq!(tier["element"]["type"], "static_select");
        let tiers: Vec<&str> = tier["element"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert!(tiers.contains(&"prod") && tiers.contains(&"dev"), "{tiers:?}");
        assert_eq!(input_block(&view, "arg:ttl")["optional"], true);

        // A bad value stays in the form, on its field; nothing is stored.
        let bad = json!({ "arg:name": typed("Not A Name"), "arg:tier": picked("prod"), "arg:ttl": typed("soon") });
        let (status, answer) = env.interact(&view_submission(&slack_id("alice"), &view, bad)).await;
        assert_eq!(status, 200);
        assert_eq!(answer["response_action"], "errors", "{answer:#}");
        assert!(
            answer["errors"]["arg:name"].is_string() && answer["errors"]["arg:ttl"].is_string(),
            "{answer:#}"
        );
        assert!(answer["errors"]["arg:tier"].is_null());
        assert!(env.requests().await.is_empty());

        // A forged form (metadata deckhand did not sign) is refused and stores nothing.
        let mut forged = view.clone();
        forged["private_metadata"] = json!(view["private_metadata"].as_str().unwrap().replacen(
            "env create",
            "app delete",
            1
        ));
        let good = json!({ "arg:name": typed("preview-1"), "arg:tier": picked("prod"), "arg:ttl": typed("2d") });
        let (_, answer) = env
            .interact(&view_submission(&slack_id("alice"), &forged, good.clone()))
            .await;
        assert!(answer.to_string().contains("did not make this form"), "{answer:#}");
        assert!(env.requests().await.is_empty());

        // Filled in: stored and shown exactly as the typed command would be.
        let (status, answer) = env.interact(&view_submission(&slack_id("alice"), &view, good)).await;
        assert_eq!((status, answer), (200, Value::Null));
        let request = env.only_request().await;
        assert_eq!(request["text"], "env create preview-1 prod 2d");
        assert_eq!(request["state"], "pending_approval");
        assert_eq!(request["requester"], "alice");
        let (_, deny, prompt) = env.prompt().await;
        assert_eq!(prompt.body["channel"], CHANNEL);
        assert_eq!(
            env.command("alice", "env create preview-2 prod 2d", "t-typed").await.0,
            200
        );
        let rs = env.requests().await;
        let typed_request = rs.iter().find(|r| r["text"] == "env create preview-2 prod 2d").unwrap();
        for key in [
            "state",
            "requester",
            "surface",
            "action",
            "command",
            "channel",
            "approval",
        ] {
            assert_eq!(typed_request[key], request[key], "{key}");
        }

        // Deny asks why: an empty reason stays in the form; a forged form changes nothing.
        let id = request["id"].as_str().unwrap().to_owned();
        let (_, answer) = env.deny_with_reason("otto", &deny, "  ", "d-empty").await;
        assert!(
            answer["errors"]["reason"].as_str().unwrap().contains("reason"),
            "{answer:#}"
        );
        let form = env.slack.last_view().unwrap();
        let other = deckhand::signing::Signer::new(b"another key");
        let rid = deckhand::domain::RequestId::parse(&id).unwrap();
        let mut forged = form.clone();
        forged["private_metadata"] = json!(deckhand::slack::buttons::value(
            &other,
            deckhand::slack::buttons::Decision::Deny,
            &rid
        ));
        let (_, answer) = env
            .interact(&view_submission(
                &slack_id("otto"),
                &forged,
                json!({ "reason": typed("forged") }),
            ))
            .await;
        assert!(
            answer["errors"]["reason"]
                .as_str()
                .unwrap()
                .contains("did not make this form")
        );
        let (_, v) = env.app.get_as(ADMIN, &format!("/api/v1/requests/{id}")).await;
        assert_eq!(v["request"]["state"], "pending_approval");
        assert_eq!(v["approvals"], json!([]), "no decision recorded");

        let (status, answer) = env
            .deny_with_reason("otto", &deny, "use the stage tier", "d-otto")
            .await;
        assert_eq!((status, answer), (200, Value::Null));
        let done = env.app.wait_for_state(&id, &["denied"]).await;
        assert_eq!(done["approvals"][0]["reason"], "use the stage tier", "{done:#}");
        env.slack
            .wait_for(5, "the thread showing the reason", |cs| {
                cs.iter().any(|c| {
                    c.method == "chat.update"
                        && c.body["blocks"]
                            .to_string()
                            .contains("🚫 <@UOTTO> denied: use the stage tier")
                        && c.body["blocks"].to_string().contains("use the stage tier")
                })
            })
            .await;
        env.app.shutdown().await;
    }
}

/// 120 commands and an enum of 150 values: more than one select holds.
fn many_specs() -> String {
    let values: Vec<String> = (0..150).map(|i| format!("v{i}")).collect();
    let mut yaml = format!(
        "- name: big\n  help: An enum too long for a select\n  pattern: '^big (?P<size>\\S+)$'\n  args:\n    size: {{ type: enum, values: [{}] }}\n  action: test.chatty\n  allow: [group:developers]\n",
        values.join(", ")
    );
    for i in 0..120 {
        yaml.push_str(&format!(
            "- name: many{i}\n  help: Command number {i}\n  pattern: '^many{i}$'\n  action: test.chatty\n  allow: [group:developers]\n"
        ));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_builder_fits_slacks_limits_with_more_commands_and_values_than_a_select_holds() {
    for backend in backends() {
        let env = start(
            backend,
            Options {
                specs: vec![("tests/many.yaml".into(), many_specs())],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(env.command("alice", "", "t-many").await.0, 200);
        let view = env.modal("views.open", 1).await;
        let first = select_values(&view, 0);
        let second = select_values(&view, 1);
        assert_eq!(first.len(), 100, "{backend:?}");
        assert!(second.contains(&"many119".to_owned()), "the rest in a second select");
        let pick = view_action(&slack_id("alice"), &view, "deckhand_command_0", "big", "t-big");
        assert_eq!(env.interact(&pick).await.0, 200);
        let view = env.modal("views.update", 1).await;
        let size = input_block(&view, "arg:size");
        assert_eq!(
            size["element"]["type"], "plain_text_input",
            "150 values: typed, listed in the hint"
        );
        assert!(size["hint"]["text"].as_str().unwrap().contains("v149"));
        let (_, answer) = env
            .interact(&view_submission(
                &slack_id("alice"),
                &view,
                json!({ "arg:size": typed("v999") }),
            ))
            .await;
        assert!(
            answer["errors"]["arg:size"].as_str().unwrap().contains("v0"),
            "{answer:#}"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fakes_views_refuse_what_slack_refuses() {
    let slack = FakeSlack::start().await;
    let web = WebApi::new(&slack_config(&slack));
    let modal = |blocks: Value| json!({ "type": "modal", "title": { "type": "plain_text", "text": "deckhand" }, "blocks": blocks });
    let section = json!({ "type": "section", "text": { "type": "plain_text", "text": "hi" } });
    let open = |trigger: &str, view: Value| {
        let web = web.clone();
        let body = json!({ "trigger_id": trigger, "view": view });
        async move { web.call("views.open", &body).await.map_err(|e| e.to_string()) }
    };
    slack.issue_trigger("t1");
    let opened = open("t1", modal(json!([section.clone()])))
        .await
        .expect("a good modal opens");
    assert!(
        open("t1", modal(json!([section.clone()])))
            .await
            .unwrap_err()
            .contains("exchanged_trigger_id")
    );
    assert!(
        open("never", modal(json!([])))
            .await
            .unwrap_err()
            .contains("invalid_trigger_id")
    );
    slack.issue_trigger_at("old", Instant::now() - Duration::from_secs(4));
    assert!(
        open("old", modal(json!([])))
            .await
            .unwrap_err()
            .contains("expired_trigger_id")
    );
    let select = |n: usize, len: usize| {
        let options: Vec<Value> = (0..n)
            .map(|i| json!({ "text": { "type": "plain_text", "text": format!("{i}{}", "x".repeat(len)) }, "value": i.to_string() }))
            .collect();
        json!([{ "type": "actions", "elements": [{ "type": "static_select", "action_id": "a", "options": options }] }])
    };
    let mut long_title = modal(json!([]));
    long_title["title"]["text"] = json!("x".repeat(25));
    let too_many_blocks = modal(Value::Array(vec![section.clone(); 101]));
    for (i, bad) in [
        modal(json!([{ "type": "carousel" }])),
        long_title,
        too_many_blocks,
        modal(select(101, 1)),
        modal(select(1, 75)),
        modal(json!([{ "type": "input", "label": { "type": "plain_text", "text": "x" }, "element": { "type": "plain_text_input" } }])),
    ]
    .into_iter()
    .enumerate()
    {
        let trigger = format!("bad-{i}");
        slack.issue_trigger(&trigger);
        assert!(open(&trigger, bad).await.unwrap_err().contains("invalid_arguments"), "case {i}");
    }
    slack.issue_trigger("fine");
    open("fine", modal(select(100, 70))).await.expect("at the limits");
    // views.update needs an open view and its current hash.
    let id = opened["view"]["id"].clone();
    let update = |hash: Value| json!({ "view_id": id, "hash": hash, "view": modal(json!([])) });
    assert!(
        web.call("views.update", &update(json!("stale")))
            .await
            .unwrap_err()
            .to_string()
            .contains("hash_conflict")
    );
    web.call("views.update", &update(opened["view"]["hash"].clone()))
        .await
        .expect("current hash");
}

#[test]
fn the_fake_refuses_buttons_slack_refuses() {
    let button = |text: &str, url: &str| {
        json!([{ "type": "actions", "elements": [
            { "type": "button", "action_id": "link-0", "text": { "type": "plain_text", "text": text }, "url": url }
        ]}])
    };
    assert_eq!(slack_fake::invalid_blocks(&button("Open link", "https://x/p/t/")), None);
    assert!(slack_fake::invalid_blocks(&button(&"x".repeat(76), "https://x/")).is_some());
    assert!(slack_fake::invalid_blocks(&button("Open", &format!("https://x/{}", "a".repeat(3000)))).is_some());
}

/// A slash command's form as the JSON payload of a Socket Mode envelope.
fn socket_command(user: &str, text: &str, trigger: &str, response_url: &str) -> Value {
    let form = command_form(&slack_id(user), CHANNEL, text, trigger, response_url);
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(&form).unwrap();
    Value::Object(fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_builder_and_deny_with_a_reason_work_over_socket_mode() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let env = start(
            backend,
            Options {
                kube: true,
                socket: true,
                ..Default::default()
            },
        )
        .await;
        let socket = env.socket.as_ref().unwrap();
        socket.wait_connections(1, 10).await;

        // A bare /deckhand over the socket opens the builder.
        env.slack.issue_trigger("t-sock-build");
        let open = socket_command("alice", "", "t-sock-build", &env.slack.response_url("t-sock-build"));
        socket.envelope("env-build", "slash_commands", open);
        socket.wait_ack("env-build", 3).await;
        let view = env.modal("views.open", 1).await;
        assert!(select_values(&view, 0).contains(&"env create".to_owned()), "{view:#}");
        env.slack.issue_trigger("t-sock-pick");
        let pick = view_action(
            &slack_id("alice"),
            &view,
            "deckhand_command_0",
            "env create",
            "t-sock-pick",
        );
        socket.envelope("env-pick", "interactive", pick);
        socket.wait_ack("env-pick", 3).await;
        let view = env.modal("views.update", 1).await;

        // A bad value: the errors ride on the acknowledgement, nothing is stored.
        let bad = json!({ "arg:name": typed("Not A Name"), "arg:tier": picked("prod"), "arg:ttl": typed("2d") });
        socket.envelope(
            "env-bad",
            "interactive",
            view_submission(&slack_id("alice"), &view, bad),
        );
        socket.wait_ack("env-bad", 3).await;
        let answer = socket.ack_payload("env-bad");
        assert_eq!(answer["response_action"], "errors", "{answer:#}");
        assert!(answer["errors"]["arg:name"].is_string(), "{answer:#}");
        assert!(env.requests().await.is_empty());

        // Filled in: stored, its message in the channel.
        let good = json!({ "arg:name": typed("preview-9"), "arg:tier": picked("prod"), "arg:ttl": typed("2d") });
        socket.envelope(
            "env-good",
            "interactive",
            view_submission(&slack_id("alice"), &view, good),
        );
        socket.wait_ack("env-good", 3).await;
        assert_eq!(socket.ack_payload("env-good"), Value::Null, "the modal closes");
        let request = env.only_slack_request().await;
        assert_eq!(request["text"], "env create preview-9 prod 2d");
        assert_eq!(request["state"], "pending_approval");
        let id = request["id"].as_str().unwrap().to_owned();
        let (_, deny, prompt) = env.prompt().await;
        assert_eq!(prompt.body["channel"], CHANNEL);
        env.slack
            .wait_for(5, "the request's message in the channel", |cs| {
                cs.iter().any(|c| {
                    c.method == "chat.postMessage"
                        && c.body["channel"] == CHANNEL
                        && c.body["text"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("env create preview-9")
                })
            })
            .await;

        // Deny over the socket: the click opens the reason form, an empty reason stays in
        // it, a reason denies the request and shows in the thread.
        let mut click = block_actions(&slack_id("otto"), "deny", &deny, &env.slack.response_url("d-sock"));
        env.slack.issue_trigger("trigger-d-sock");
        click["trigger_id"] = json!("trigger-d-sock");
        socket.envelope("env-deny", "interactive", click);
        socket.wait_ack("env-deny", 3).await;
        let form = env.modal("views.open", 2).await;
        assert_eq!(form["callback_id"], "deckhand_deny");
        let empty = view_submission(&slack_id("otto"), &form, json!({ "reason": typed(" ") }));
        socket.envelope("env-deny-empty", "interactive", empty);
        socket.wait_ack("env-deny-empty", 3).await;
        let answer = socket.ack_payload("env-deny-empty");
        assert!(
            answer["errors"]["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("reason"),
            "{answer:#}"
        );
        let why = view_submission(
            &slack_id("otto"),
            &form,
            json!({ "reason": typed("use the stage tier") }),
        );
        socket.envelope("env-deny-why", "interactive", why);
        socket.wait_ack("env-deny-why", 3).await;
        assert_eq!(socket.ack_payload("env-deny-why"), Value::Null, "the modal closes");
        let done = env.app.wait_for_state(&id, &["denied"]).await;
        assert_eq!(done["approvals"][0]["reason"], "use the stage tier", "{done:#}");
        env.slack
            .wait_for(5, "the thread showing the reason", |cs| {
                cs.iter().any(|c| {
                    c.method == "chat.update" && c.body["blocks"].to_string().contains("denied: use the stage tier")
                })
            })
            .await;
        env.app.shutdown().await;
    }
}
