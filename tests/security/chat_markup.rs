//! Security tests: what deckhand shows in chat (issue 12, items 1 and 10).
//!
//! - Chat markup injection: command text that holds Slack's `<!channel>` or a disguised link
//!   `<https://evil|Approve>`, or Discord's `@everyone`, arrives as text, not as a ping or a
//!   link, and Discord messages allow no mentions.
//! - A proxy link is a credential: it goes to the requester alone (a Slack ephemeral
//!   message, a Discord ephemeral follow-up), never into a message the channel reads.
//!
//! Each runs deckhand against the local Slack or Discord fake (and the Kubernetes test API
//! server, for the links).

use serde_json::{Value, json};

use crate::{
    cluster::{self, Env, state},
    discord_fake::{self, FakeDiscordServer, InteractionSigner, command_payload, new_interaction, unix_now},
    slack_fake::{self, Call, FakeSlack, summary},
    support::{Backend, backends, discord_id, slack_id},
};

pub(super) const CHANNEL: &str = "C2147483705";

pub(super) async fn with_slack(backend: Backend, kube: bool) -> (Env, FakeSlack) {
    let slack = FakeSlack::start().await;
    let api_url = slack.api_url();
    let env = cluster::start_on(backend, |c| {
        c.slack = deckhand::slack::SlackConfig {
            bot_token: slack_fake::BOT_TOKEN.into(),
            signing_secret: slack_fake::SIGNING_SECRET.into(),
            api_url,
            ..Default::default()
        };
    })
    .await;
    if kube {
        deploy_shop(&env).await;
    }
    (env, slack)
}

pub(super) async fn with_discord(backend: Backend, kube: bool) -> (Env, FakeDiscordServer, InteractionSigner) {
    let discord = FakeDiscordServer::start().await;
    let signer = InteractionSigner::generate();
    let (key, base) = (signer.public_key_hex(), discord.api_base());
    let env = cluster::start_on(backend, |c| {
        c.discord.public_key = key;
        c.discord.application_id = discord_fake::APPLICATION_ID.into();
        c.discord.bot_token = discord_fake::BOT_TOKEN.into();
        c.discord.api_base = base;
    })
    .await;
    if kube {
        deploy_shop(&env).await;
    }
    (env, discord, signer)
}

async fn deploy_shop(env: &Env) {
    for text in ["env create shop", "deploy ghcr.io/acme/shop:1.4.2 to shop port=8080"] {
        let v = env.run("alice", text).await;
        assert_eq!(state(&v), "succeeded", "{text}: {v:#}");
    }
}

/// A signed `/deckhand <text>` from `user`, as Slack posts it (Slack escapes `&`, `<`, `>`
/// in what the person typed).
async fn slack_command(env: &Env, slack: &FakeSlack, user: &str, typed: &str) {
    slack_command_with(env, slack, user, typed, "t-1").await;
}

/// As [`slack_command`], with its own trigger (and response_url named after it).
pub(super) async fn slack_command_with(env: &Env, slack: &FakeSlack, user: &str, typed: &str, trigger: &str) {
    let text = typed.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = slack_fake::command_form(&slack_id(user), CHANNEL, &text, trigger, &slack.response_url(trigger));
    let mut req = env
        .app
        .http
        .post(format!("{}/slack/commands", env.app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone());
    for (k, v) in slack_fake::signed_headers(&body, slack_fake::now()) {
        req = req.header(k, v);
    }
    let status = req.send().await.expect("POST").status();
    assert_eq!(status, 200);
}

/// A signed `/deckhand <words> <options>` interaction from `user`, as Discord posts it.
pub(super) async fn discord_command(
    env: &Env,
    discord: &FakeDiscordServer,
    signer: &InteractionSigner,
    user: &str,
    words: &[&str],
    options: &[(&str, Value)],
) {
    let (id, token) = new_interaction();
    discord.fake.issue_token_to(&token, &discord_id(user));
    let body = command_payload(&id, &token, &discord_id(user), &[], words, options).to_string();
    let ts = unix_now().to_string();
    let resp = env
        .app
        .http
        .post(format!("{}/discord/interactions", env.app.url))
        .header("content-type", "application/json")
        .header("x-signature-timestamp", &ts)
        .header("x-signature-ed25519", signer.sign(&ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .expect("POST interaction");
    assert_eq!(resp.status(), 200);
    // As Discord does: an ephemeral deferral makes the original the sender's alone.
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    discord.fake.responded(&token, &answer);
}

/// Everything a Slack channel reads: the text and blocks of posts and edits.
pub(super) fn slack_public_text(slack: &FakeSlack) -> Vec<String> {
    slack
        .public_messages()
        .iter()
        .map(|c| format!("{} {}", c.body["text"].as_str().unwrap_or_default(), c.body["blocks"]))
        .collect()
}

/// Whether `raw` occurs in `content` without a backslash before it.
fn unescaped(content: &str, raw: &str) -> bool {
    content.match_indices(raw).any(|(at, _)| !content[..at].ends_with('\\'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_channel_and_disguised_link_arrive_inert() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, slack) = with_slack(backend, false).await;
        // `--share`: help answers privately unless shared, and the channel is what is at stake.
        slack_command(
            &env,
            &slack,
            "alice",
            "help x <!channel> <https://evil|Approve> --share",
        )
        .await;
        let failed = |cs: &[Call]| {
            cs.iter().any(|c| {
                c.method == "chat.postMessage" && c.body["text"].as_str().is_some_and(|t| t.contains("Failed"))
            })
        };
        let calls = slack.wait_for(20, "the failure in the thread", failed).await;
        let shown = slack_public_text(&slack);
        for text in &shown {
            assert!(
                !text.contains("<!channel>") && !text.contains("<https://evil"),
                "raw Slack markup in a channel message: {text}\nall: {:#?}",
                summary(&calls)
            );
        }
        let root = calls
            .iter()
            .rev()
            .find(|c| c.method == "chat.update")
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        assert!(
            root.contains("&lt;!channel&gt;") && root.contains("&lt;https://evil|Approve&gt;"),
            "the status message shows the text, escaped: {root}"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discord_everyone_mention_arrives_inert() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, discord, signer) = with_discord(backend, false).await;
        let typed = "x @everyone <@&1000000000000000042> [Approve](https://evil)";
        discord_command(
            &env,
            &discord,
            &signer,
            "alice",
            &["help"],
            &[("command", json!(typed))],
        )
        .await;
        // `help` answers privately: the failure reaches alice alone.
        let alice = discord_id("alice");
        discord
            .fake
            .wait_until("alice is told it failed", |f| {
                f.private_to(&alice).iter().any(|m| m.content.contains("failed"))
            })
            .await;
        assert!(discord.fake.public().is_empty(), "{:#?}", discord.fake.public());
        let sent: Vec<_> = discord
            .fake
            .calls()
            .into_iter()
            .filter(|c| c.body.get("content").is_some())
            .collect();
        assert!(!sent.is_empty());
        for c in &sent {
            assert_eq!(
                c.body["allowed_mentions"],
                json!({ "parse": [] }),
                "{} {} may ping",
                c.method,
                c.path
            );
            let content = c.body["content"].as_str().unwrap_or_default();
            // Every `@` and `<`/`[` of the typed text is escaped with a backslash.
            for raw in ["@everyone", "<@&", "[Approve]"] {
                assert!(
                    !unescaped(content, raw),
                    "unescaped `{raw}` in {} {}: {content}",
                    c.method,
                    c.path
                );
            }
        }
        assert!(
            sent.iter().any(|c| {
                let content = c.body["content"].as_str().unwrap_or_default();
                content.contains("\\@everyone") && content.contains("\\[Approve\\]")
            }),
            "the text is shown, escaped: {sent:#?}"
        );
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_proxy_link_goes_ephemeral_to_requester_only() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, slack) = with_slack(backend, true).await;
        slack_command(&env, &slack, "alice", "proxy open shop in shop").await;
        let alice = slack_id("alice");
        let private = |cs: &[Call]| {
            cs.iter().any(|c| {
                c.method == "chat.postEphemeral" && c.ts.is_some() && c.body["text"].to_string().contains("/p/")
            })
        };
        let calls = slack.wait_for(20, "the link, privately", private).await;
        // Only alice was shown the link.
        for c in calls.iter().filter(|c| c.method == "chat.postEphemeral") {
            if c.body.to_string().contains("/p/") {
                assert_eq!(c.body["user"], alice, "{:?}", c.body);
                assert_eq!(c.body["channel"], CHANNEL);
            }
        }
        assert!(!slack.ephemerals_to(&alice).is_empty());
        slack
            .wait_for(10, "the neutral line in the thread", |cs| {
                cs.iter()
                    .any(|c| c.method == "chat.postMessage" && c.body.to_string().contains("sent privately"))
            })
            .await;
        for text in slack_public_text(&slack) {
            assert!(!text.contains("/p/"), "the link is in a channel message: {text}");
        }
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discord_proxy_link_goes_ephemeral_to_requester_only() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, discord, signer) = with_discord(backend, true).await;
        let options = [("app", json!("shop")), ("env", json!("shop"))];
        discord_command(&env, &discord, &signer, "alice", &["proxy", "open"], &options).await;
        let alice = discord_id("alice");
        discord
            .fake
            .wait_until("the link, privately to alice", |f| {
                // A link button (style 5) carries it, not the text.
                f.private_to(&alice)
                    .iter()
                    .any(|m| m.components.to_string().contains("/p/"))
            })
            .await;
        discord
            .fake
            .wait_until("the neutral line in the channel", |f| {
                f.public().iter().any(|m| m.content.contains("sent privately"))
            })
            .await;
        let link = discord.fake.private_to(&alice);
        assert!(link.iter().all(|m| m.flags == discord_fake::EPHEMERAL), "{link:#?}");
        let public = discord.fake.public();
        assert!(
            public
                .iter()
                .all(|m| !m.content.contains("/p/") && !m.components.to_string().contains("/p/")),
            "the link is in a channel message: {public:#?}"
        );
        env.app.shutdown().await;
    }
}
