//! The chaos tests' deckhand: N replicas on one store, with the fake Slack, the fake Discord
//! and one Kubernetes test API server, that the test kills and restarts while traffic flows.
//! Chat platforms and the API client reach "deckhand" as through a load balancer: a call a
//! dead replica dropped is sent again (Slack redelivers with X-Slack-Retry-Num, Discord's
//! interaction and the API's idempotency key make a resend the same request) to a live one.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use deckhand::configuration::Config;
use reqwest::RequestBuilder;
use serde_json::Value;

use crate::{
    discord_fake::{self, FakeDiscordServer, InteractionSigner},
    effect,
    kube_fake::KubeTestServer,
    slack_fake::{self, FakeSlack},
    support::{self, ADMIN, Backend, TestApp, TestDb, actions::Probe},
};

pub const SIGNING_KEY: &str = "chaos-test-signing-key-shared-by-every-replica";
pub const SLACK_CHANNEL: &str = "C2147483705";

#[allow(dead_code)] // `db` is held so the database lives as long as the replicas.
pub struct Rig {
    pub db: TestDb,
    pub slack: FakeSlack,
    pub discord: FakeDiscordServer,
    pub signer: InteractionSigner,
    pub probe: Arc<Probe>,
    /// The cluster every replica's effects and deploys go to.
    pub kube: KubeTestServer,
    pub config: Config,
    pub http: reqwest::Client,
    urls: Mutex<Vec<Option<String>>>,
    apps: tokio::sync::Mutex<Vec<Option<TestApp>>>,
}

/// Short leases and polls, so a dead replica's work and deliveries move on within ~2 s.
fn config(db: &TestDb, slack: &FakeSlack, discord: &FakeDiscordServer, signer: &InteractionSigner) -> Config {
    let mut c = support::test_config(&db.url);
    c.server.signing_key = SIGNING_KEY.into();
    c.worker.lease = "1s".parse().expect("duration");
    c.worker.poll_interval = "1s".parse().expect("duration");
    c.worker.concurrency = 8;
    c.delivery.lease = "3s".parse().expect("duration");
    c.delivery.retry_for = "2m".parse().expect("duration");
    c.slack = deckhand::slack::SlackConfig {
        bot_token: slack_fake::BOT_TOKEN.into(),
        signing_secret: slack_fake::SIGNING_SECRET.into(),
        api_url: slack.api_url(),
        progress_interval_ms: 300,
        retry_for: "1s".parse().expect("duration"),
        ..deckhand::slack::SlackConfig::default()
    };
    c.discord.public_key = signer.public_key_hex();
    c.discord.application_id = discord_fake::APPLICATION_ID.into();
    c.discord.bot_token = discord_fake::BOT_TOKEN.into();
    c.discord.api_base = discord.api_base();
    c
}

impl Rig {
    pub async fn start(backend: Backend, replicas: usize) -> Arc<Rig> {
        let db = TestDb::new(backend).await;
        let slack = FakeSlack::start().await;
        let discord = FakeDiscordServer::start().await;
        let signer = InteractionSigner::generate();
        let kube = KubeTestServer::start().await;
        // Quick rollouts; deckhand may do what the shipped ClusterRole grants, no more.
        kube.set_step(Duration::from_millis(15));
        kube.authorize_with(include_str!("../../deploy/clusterrole.yaml"));
        let mut config = config(&db, &slack, &discord, &signer);
        config.kubernetes.url = kube.url();
        config.kubernetes.rollout_deadline = "30s".parse().expect("duration");
        let probe = Arc::new(Probe::default());
        let mut apps = Vec::new();
        for _ in 0..replicas {
            apps.push(Some(effect::spawn(config.clone(), probe.clone(), kube.client()).await));
        }
        let urls = apps.iter().map(|a| a.as_ref().map(|a| a.url.clone())).collect();
        Arc::new(Rig {
            db,
            slack,
            discord,
            signer,
            probe,
            kube,
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            urls: Mutex::new(urls),
            apps: tokio::sync::Mutex::new(apps),
        })
    }

    /// Kills replica `slot` as a crash would, waits `pause`, and starts a new one on the store.
    pub async fn kill_and_restart(&self, slot: usize, pause: Duration) {
        let mut apps = self.apps.lock().await;
        self.urls.lock().expect("urls")[slot] = None;
        if let Some(app) = apps[slot].take() {
            app.kill().await;
        }
        // The downtime is a scenario parameter (drawn per kill), not a wait for a condition.
        tokio::time::sleep(pause).await;
        let app = effect::spawn(self.config.clone(), self.probe.clone(), self.kube.client()).await;
        self.urls.lock().expect("urls")[slot] = Some(app.url.clone());
        apps[slot] = Some(app);
    }

    pub async fn shutdown(&self) {
        let mut apps = self.apps.lock().await;
        self.urls.lock().expect("urls").iter_mut().for_each(|u| *u = None);
        for app in apps.iter_mut().filter_map(Option::take) {
            app.shutdown().await;
        }
    }

    /// The URL of replica `slot`, or of any live one while it is down.
    pub fn url(&self, slot: usize) -> Option<String> {
        let urls = self.urls.lock().expect("urls");
        urls.get(slot)
            .cloned()
            .flatten()
            .or_else(|| urls.iter().flatten().next().cloned())
    }

    /// Whether `url` is a replica still running (not killed since it was picked).
    fn live(&self, url: &str) -> bool {
        self.urls.lock().expect("urls").iter().flatten().any(|u| u == url)
    }

    pub fn replicas(&self) -> usize {
        self.urls.lock().expect("urls").len()
    }

    /// Sends what `build(url, attempt)` makes to replica `slot` (or a live one), again on
    /// another live replica when the connection fails, until it is answered; the status.
    pub async fn send(&self, slot: usize, build: impl Fn(&str, u32) -> RequestBuilder) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut attempt = 0;
        loop {
            if let Some(url) = self.url(slot) {
                match build(&url, attempt).send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        // A replica killed mid-answer: the body never comes, or its store is
                        // gone (503); the platform sends it again. Handlers already running
                        // when the test killed a replica carry on with a closed store and
                        // answer with its errors, where a real crash would send nothing: any
                        // answer from a replica killed meanwhile counts as never sent.
                        if let Ok(bytes) = resp.bytes().await
                            && status < 500
                            && self.live(&url)
                        {
                            let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                            return (status, v);
                        }
                    }
                    Err(e) => assert!(Instant::now() < deadline, "no replica answered: {e}"),
                }
                attempt += 1;
            }
            assert!(Instant::now() < deadline, "no replica was up for 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GET as the admin from any live replica.
    pub async fn get(&self, path: &str) -> Value {
        let http = self.http.clone();
        let (status, v) = self
            .send(0, |url, _| {
                http.get(format!("{url}{path}")).bearer_auth(support::token(ADMIN))
            })
            .await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// A signed form POST as Slack sends it. A resend is Slack's redelivery (with
    /// X-Slack-Retry-Num) when `redeliver`, else the person doing it again (a click).
    pub async fn slack_post(&self, slot: usize, path: &str, body: String, redeliver: bool) -> u16 {
        let http = self.http.clone();
        let signed_at = slack_fake::now();
        self.send(slot, |url, attempt| {
            let mut req = http
                .post(format!("{url}{path}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone());
            for (k, v) in slack_fake::signed_headers(&body, signed_at) {
                req = req.header(k, v);
            }
            if redeliver && attempt > 0 {
                req = req
                    .header("x-slack-retry-num", attempt.to_string())
                    .header("x-slack-retry-reason", "http_error");
            }
            req
        })
        .await
        .0
    }

    /// A Discord interaction, signed now; a resend carries the same interaction.
    pub async fn discord_post(&self, slot: usize, payload: &Value) -> (u16, Value) {
        if let Some(t) = payload["token"].as_str() {
            let user = payload["member"]["user"]["id"].as_str().unwrap_or_default();
            self.discord.fake.issue_token_to(t, user);
        }
        let body = payload.to_string();
        let http = self.http.clone();
        self.send(slot, |url, _| {
            let ts = discord_fake::unix_now().to_string();
            let sig = self.signer.sign(&ts, body.as_bytes());
            http.post(format!("{url}/discord/interactions"))
                .header("content-type", "application/json")
                .header("x-signature-timestamp", ts)
                .header("x-signature-ed25519", sig)
                .body(body.clone())
        })
        .await
    }

    /// POST /api/v1/requests as `user`, with an idempotency key so a resend is the same.
    pub async fn api_submit(&self, slot: usize, user: &str, text: &str, key: &str) -> (u16, Value) {
        let http = self.http.clone();
        let body = serde_json::json!({ "text": text, "idempotency_key": key });
        self.send(slot, |url, _| {
            http.post(format!("{url}/api/v1/requests"))
                .bearer_auth(support::token(user))
                .json(&body)
        })
        .await
    }

    /// Every stored request (newest first).
    pub async fn requests(&self) -> Vec<Value> {
        let v = self.get("/api/v1/requests?scope=all&limit=10000").await;
        v["requests"].as_array().cloned().unwrap_or_default()
    }
}
