//! The chaos tests' traffic: requests from Slack, Discord and the API, instant ones, the
//! chaos effect and real deploys, each at once or approval-gated (approved by a double click
//! that reaches two replicas at the same moment).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    deploy,
    discord_fake::{command_payload, component_payload, new_interaction},
    rig::{Rig, SLACK_CHANNEL},
    slack_fake::{block_actions, command_form, interaction_form},
    support::{discord_id, slack_id, token},
};

/// A tiny xorshift64*: reproducible runs without a crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Slack,
    Discord,
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Help,
    Whoami,
    /// `effect` in a dev tier: runs at once (chaos.effect: one ConfigMap per request).
    Effect,
    /// `effect ... tier=prod`: waits for one ops approval.
    Gated,
    /// The real `deploy` to the requester's own dev environment: runs at once.
    Deploy,
    /// The real `deploy` to the prod environment: waits for one ops approval.
    GatedDeploy,
}

impl Kind {
    /// Waits for an approval (approved by a double click).
    pub fn gated(self) -> bool {
        matches!(self, Kind::Gated | Kind::GatedDeploy)
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub n: usize,
    pub via: Via,
    pub kind: Kind,
    /// The replica the platform sends it to (the load balancer's pick).
    pub slot: usize,
    pub user: &'static str,
}

impl Job {
    /// Every eighth request is a real deploy (25 of 200), every third of those to prod.
    pub fn random(n: usize, rng: &mut Rng, replicas: usize) -> Job {
        let via = match rng.below(10) {
            0..=3 => Via::Slack,
            4..=7 => Via::Discord,
            _ => Via::Api,
        };
        let kind = match (n % 8, n % 24, rng.below(20)) {
            (0, 0, _) => Kind::GatedDeploy,
            (0, _, _) => Kind::Deploy,
            (_, _, 0..=3) => Kind::Help,
            (_, _, 4..=6) => Kind::Whoami,
            (_, _, 7..=12) => Kind::Effect,
            _ => Kind::Gated,
        };
        let slot = rng.below(replicas as u64) as usize;
        let user = if rng.below(2) == 0 { "alice" } else { "bob" };
        Job {
            n,
            via,
            kind,
            slot,
            user,
        }
    }

    /// The env an effect counts in (one per request), or the environment a deploy goes to.
    pub fn env(&self) -> String {
        match self.kind {
            Kind::Deploy => deploy::dev_env(self.user, self.n),
            Kind::GatedDeploy => deploy::PROD_ENV.into(),
            _ => format!("c{}", self.n),
        }
    }

    /// The app (Deployment) a real deploy makes: one per job.
    fn app(&self) -> String {
        format!("w{}", self.n)
    }

    pub fn text(&self) -> String {
        match self.kind {
            Kind::Help => "help".into(),
            Kind::Whoami => "whoami".into(),
            Kind::Effect => format!("effect nginx:1.27 to {}", self.env()),
            Kind::Gated => format!("effect nginx:1.27 to {} tier=prod", self.env()),
            Kind::Deploy | Kind::GatedDeploy => {
                format!("deploy nginx:1.27 to {} as {} replicas=1", self.env(), self.app())
            }
        }
    }

    fn discord_words(&self) -> (&'static str, Vec<(&'static str, Value)>) {
        let mut options = vec![("image", json!("nginx:1.27")), ("env", json!(self.env()))];
        match self.kind {
            Kind::Help => ("help", vec![]),
            Kind::Whoami => ("whoami", vec![]),
            Kind::Effect => ("effect", options),
            Kind::Gated => {
                options.push(("tier", json!("prod")));
                ("effect", options)
            }
            Kind::Deploy | Kind::GatedDeploy => {
                options.push(("app", json!(self.app())));
                options.push(("replicas", json!(1)));
                ("deploy", options)
            }
        }
    }

    /// The approver who double-clicks.
    fn approver(&self) -> String {
        format!("ops{:02}", self.n % 20 + 1)
    }
}

/// Submits the job and, for a gated one, approves it with a double click; returns once the
/// clicks were answered (the request runs on its own).
pub async fn run(rig: Arc<Rig>, job: Job) {
    let id = match job.via {
        Via::Slack => {
            slack_command(&rig, &job).await;
            None
        }
        Via::Discord => {
            discord_command(&rig, &job).await;
            None
        }
        Via::Api => {
            let (status, v) = rig
                .api_submit(job.slot, job.user, &job.text(), &format!("chaos-{}", job.n))
                .await;
            assert!(status == 201 || status == 200, "{job:?}: {status} {v}");
            v["request"]["id"].as_str().map(str::to_owned)
        }
    };
    if !job.kind.gated() {
        return;
    }
    let approver = job.approver();
    let other = (job.slot + 1) % rig.replicas();
    match job.via {
        Via::Slack => {
            let Some(value) = slack_prompt(&rig, &job).await else {
                return;
            };
            let click = |slot: usize, tag: String| {
                let rig = rig.clone();
                let body = interaction_form(&block_actions(
                    &slack_id(&approver),
                    "approve",
                    &value,
                    &rig.slack.response_url(&tag),
                ));
                async move { rig.slack_post(slot, "/slack/interactions", body, false).await }
            };
            let (a, b) = tokio::join!(
                click(job.slot, format!("a{}", job.n)),
                click(other, format!("b{}", job.n))
            );
            assert_eq!((a, b), (200, 200), "{job:?}: the clicks are acknowledged");
        }
        Via::Discord => {
            let Some(custom_id) = discord_prompt(&rig, &job).await else {
                return;
            };
            let click = |slot: usize| discord_click(&rig, slot, &approver, &custom_id);
            tokio::join!(click(job.slot), click(other));
        }
        Via::Api => {
            let id = id.expect("the API answered with the request");
            let approve = |slot: usize| {
                let (rig, approver) = (rig.clone(), approver.clone());
                let path = format!("/api/v1/requests/{id}/approve");
                async move {
                    let http = rig.http.clone();
                    rig.send(slot, |url, _| {
                        http.post(format!("{url}{path}")).bearer_auth(token(&approver))
                    })
                    .await
                }
            };
            let (a, b) = tokio::join!(approve(job.slot), approve(other));
            // One is taken, the other is told it was decided (both, when a dying replica
            // took the first and the resend found it decided or already run).
            for (status, v) in [&a, &b] {
                let code = v["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    *status == 200 || ["already_decided", "wrong_state"].contains(&code),
                    "{job:?}: approvals answered {a:?} {b:?}"
                );
            }
        }
    }
}

async fn slack_command(rig: &Rig, job: &Job) {
    let trigger = format!("t{}", job.n);
    let body = command_form(
        &slack_id(job.user),
        SLACK_CHANNEL,
        &job.text(),
        &trigger,
        &rig.slack.response_url(&trigger),
    );
    let status = rig.slack_post(job.slot, "/slack/commands", body, true).await;
    assert_eq!(status, 200, "{job:?}");
}

/// A command; when a dying replica could not store it, the person sends it again.
async fn discord_command(rig: &Rig, job: &Job) {
    let (word, options) = job.discord_words();
    loop {
        let (id, token) = new_interaction();
        let p = command_payload(&id, &token, &discord_id(job.user), &[], &[word], &options);
        let (status, v) = rig.discord_post(job.slot, &p).await;
        assert_eq!(status, 200, "{job:?}: {v}");
        if !v.to_string().contains("try again") {
            assert_eq!(v["type"], 5, "{job:?}: a deferred answer: {v}");
            return;
        }
    }
}

async fn discord_click(rig: &Rig, slot: usize, approver: &str, custom_id: &str) {
    loop {
        let (id, token) = new_interaction();
        let p = component_payload(&id, &token, &discord_id(approver), &[], custom_id);
        let (status, v) = rig.discord_post(slot, &p).await;
        assert_eq!(status, 200, "click: {v}");
        // A dying replica answers with its store's error; the person clicks again.
        let said = v.to_string().to_lowercase();
        if !said.contains("try again") && !said.contains("store") && !said.contains("database") {
            return;
        }
    }
}

/// Waits for the approval prompt of the job's request in Slack; its Approve button's value.
/// `None` when none came: nobody can approve it, and the final checks say it is stuck.
async fn slack_prompt(rig: &Rig, job: &Job) -> Option<String> {
    let needle = format!("`{}`", job.text());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = rig.slack.calls().into_iter().find_map(|c| {
            let text = c.body["text"].as_str().unwrap_or_default();
            if c.method != "chat.postMessage" || !text.contains("*Approval needed*") || !text.contains(&needle) {
                return None;
            }
            c.body["blocks"]
                .as_array()?
                .iter()
                .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
                .find(|e| e["action_id"] == "approve")
                .and_then(|e| e["value"].as_str().map(str::to_owned))
        });
        if found.is_some() {
            return found;
        }
        if Instant::now() > deadline {
            eprintln!("{job:?}: no approval prompt in Slack");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the approval prompt of the job's request in Discord; its Approve custom_id.
async fn discord_prompt(rig: &Rig, job: &Job) -> Option<String> {
    let needle = format!("asks to run {} (", job.text());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = rig.discord.fake.calls().into_iter().find_map(|c| {
            let content = c.body["content"].as_str().unwrap_or_default();
            if c.method != "POST" || !content.contains(&needle) {
                return None;
            }
            let text = c.body["components"].to_string();
            let start = text.find("dh:a:")?;
            let rest = &text[start..];
            Some(rest[..rest.find('"')?].to_owned())
        });
        if found.is_some() {
            return found;
        }
        if Instant::now() > deadline {
            eprintln!("{job:?}: no approval prompt in Discord");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
