//! The platforms' deadlines hold whatever a command does: Slack's acknowledgement comes well
//! inside 3 s and Discord's deferred reply at once, even for an inline command that takes
//! longer; it goes on in the background and its answer reaches the thread.

#[path = "support/discord/mod.rs"]
mod discord_fake;
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
    slack::SlackConfig,
    startup::Builder,
};
use discord_fake::{APPLICATION_ID, FakeDiscordServer, InteractionSigner, command_payload, new_interaction, unix_now};
use support::{ADMIN, Backend, TestApp, TestDb, backends, discord_id, slack_id, test_config};

/// An inline command (like `status` against a slow cluster) that takes 4 s.
struct Slowpoke;

#[async_trait]
impl Action for Slowpoke {
    fn name(&self) -> &'static str {
        "test.slowpoke"
    }
    fn inline(&self) -> bool {
        true
    }
    async fn run(&self, _ctx: &ActionContext) -> Result<String, ActionError> {
        tokio::time::sleep(Duration::from_secs(4)).await;
        Ok("slow answer ready".into())
    }
}

const SLOWPOKE_SPEC: &str = r#"
- name: slowpoke
  help: An inline command that takes 4 s
  pattern: '^slowpoke$'
  action: test.slowpoke
  allow: [group:developers]
"#;

async fn start(config: Config) -> TestApp {
    support::init_tls();
    let probe = Arc::new(support::actions::Probe::default());
    let mut specs = support::test_specs();
    specs.push(("tests/slowpoke.yaml".into(), SLOWPOKE_SPEC.into()));
    let running = support::actions::register(Builder::new(config), &probe)
        .action(Arc::new(Slowpoke))
        .specs(specs)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("app starts");
    let mut app = TestApp::from_running(running);
    app.probe = probe;
    app
}

/// Waits until some request ended with `outcome`.
async fn wait_outcome(app: &TestApp, outcome: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = app.get_as(ADMIN, "/api/v1/requests?scope=all").await;
        if let Some(r) = v["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["outcome"] == outcome)
        {
            return r["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no request ended with {outcome:?}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_inline_command_is_acknowledged_in_time_on_slack() {
    for backend in backends() {
        let slack = slack_fake::FakeSlack::start().await;
        let db = TestDb::new(backend).await;
        let mut config = test_config(&db.url);
        config.slack = SlackConfig {
            bot_token: slack_fake::BOT_TOKEN.into(),
            signing_secret: slack_fake::SIGNING_SECRET.into(),
            api_url: slack.api_url(),
            ..SlackConfig::default()
        };
        let app = start(config).await;
        let body = slack_fake::command_form(&slack_id("alice"), "C1", "slowpoke", "t1", &slack.response_url("t1"));
        let mut req = app
            .http
            .post(format!("{}/slack/commands", app.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        for (k, v) in slack_fake::signed_headers(&body, slack_fake::now()) {
            req = req.header(k, v);
        }
        let sent = Instant::now();
        let status = req.send().await.unwrap().status();
        let took = sent.elapsed();
        assert_eq!(status, 200);
        assert!(took < Duration::from_millis(2500), "{backend:?}: Slack waited {took:?}");
        // It went on, and its answer reached the thread.
        wait_outcome(&app, "slow answer ready").await;
        slack
            .wait_for(10, "the answer in the thread", |cs| {
                cs.iter()
                    .any(|c| c.body["text"].as_str().is_some_and(|t| t.contains("slow answer ready")))
            })
            .await;
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_inline_command_gets_discords_deferred_reply_at_once() {
    for backend in backends() {
        discord_deferred_reply_at_once(backend).await;
    }
}

async fn discord_deferred_reply_at_once(backend: Backend) {
    let discord = FakeDiscordServer::start().await;
    let signer = InteractionSigner::generate();
    let db = TestDb::new(backend).await;
    let mut config = test_config(&db.url);
    config.discord.public_key = signer.public_key_hex();
    config.discord.application_id = APPLICATION_ID.into();
    config.discord.bot_token = discord_fake::BOT_TOKEN.into();
    config.discord.api_base = discord.api_base();
    let app = start(config).await;

    let (id, token) = new_interaction();
    let payload = command_payload(&id, &token, &discord_id("alice"), &[], &["slowpoke"], &[]);
    discord.fake.issue_token_to(&token, &discord_id("alice"));
    let body = payload.to_string();
    let ts = unix_now().to_string();
    let sig = signer.sign(&ts, body.as_bytes());
    let sent = Instant::now();
    let resp = app
        .http
        .post(format!("{}/discord/interactions", app.url))
        .header("content-type", "application/json")
        .header("x-signature-timestamp", &ts)
        .header("x-signature-ed25519", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    let took = sent.elapsed();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["type"], 5, "a deferred reply: {v}");
    assert!(
        took < Duration::from_millis(1000),
        "{backend:?}: Discord waited {took:?}"
    );

    wait_outcome(&app, "slow answer ready").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !discord
        .fake
        .public()
        .iter()
        .any(|m| m.content.contains("slow answer ready"))
    {
        assert!(Instant::now() < deadline, "{backend:?}: {:#?}", discord.fake.public());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_waits_for_an_inline_answer_within_its_budget() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let app = start(test_config(&db.url)).await;
        let (status, v) = app.submit_as("alice", "slowpoke").await;
        assert_eq!(status, 201, "{backend:?}: {v}");
        assert_eq!(
            v["request"]["state"], "succeeded",
            "{backend:?}: the answer is in the response: {v:#}"
        );
        assert_eq!(v["request"]["outcome"], "slow answer ready");
        app.shutdown().await;
    }
}
