//! Security tests: shell links and exec output reach the requester alone in chat (issue 12,
//! items 1 and 11), as proxy links do (`chat_markup`): a Slack ephemeral message or a
//! Discord ephemeral follow-up, and the channel gets only "sent privately". When the first
//! private route fails, the fallbacks docs/security.md names take over: Slack's
//! response_url when `chat.postEphemeral` is refused (the requester is not in the channel),
//! a Discord DM when the interaction token is refused. Never a channel message.
//!
//! Runs deckhand against the Slack or Discord fake and the Kubernetes test API server, on
//! SQLite and PostgreSQL.

use std::time::Duration;

use serde_json::json;

use crate::{
    chat_markup::{CHANNEL, discord_command, slack_command_with, slack_public_text, with_discord, with_slack},
    discord_fake::{self, FakeDiscordServer},
    slack_fake::{Call, FakeSlack},
    support::{backends, discord_id, slack_id},
};

/// What the pod prints for `echo 'pgpw''-7f3q'`: the quotes keep it out of the command
/// text, which is public.
const PRINTED: &str = "pgpw-7f3q";
const EXEC: &str = "echo 'pgpw''-7f3q'";

/// Whether some `method` call (`chat.postEphemeral`, `response_url`) Slack accepted carries
/// `needle`.
fn private_with(calls: &[Call], method: &str, needle: &str) -> bool {
    calls.iter().any(|c| {
        c.method == method
            && (c.method != "chat.postEphemeral" || c.ts.is_some())
            && c.body.to_string().contains(needle)
    })
}

/// Nothing the channel reads carries any of `secrets`.
fn slack_channel_clean(slack: &FakeSlack, secrets: &[&str]) {
    for text in slack_public_text(slack) {
        for s in secrets {
            assert!(!text.contains(s), "`{s}` is in a channel message: {text}");
        }
    }
}

/// Every private call carrying one of `secrets` went to `user` alone.
fn slack_only_to(slack: &FakeSlack, user: &str, secrets: &[&str]) {
    for c in slack.calls_to("chat.postEphemeral") {
        if secrets.iter().any(|s| c.body.to_string().contains(s)) {
            assert_eq!(c.body["user"], user, "{:?}", c.body);
            assert_eq!(c.body["channel"], CHANNEL, "{:?}", c.body);
        }
    }
}

async fn sent_privately_twice(slack: &FakeSlack) {
    slack
        .wait_for(10, "two neutral lines in the threads", |cs| {
            cs.iter()
                .filter(|c| c.method == "chat.postMessage" && c.body.to_string().contains("sent privately"))
                .count()
                >= 2
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_shell_link_and_exec_output_go_ephemeral_to_requester_only() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, slack) = with_slack(backend, true).await;
        let alice = slack_id("alice");
        slack_command_with(&env, &slack, "alice", "shell shop in shop", "t-shell").await;
        slack_command_with(&env, &slack, "alice", &format!("exec shop in shop -- {EXEC}"), "t-exec").await;
        slack
            .wait_for(20, "the shell link and the output, privately", |cs| {
                private_with(cs, "chat.postEphemeral", "/shell/") && private_with(cs, "chat.postEphemeral", PRINTED)
            })
            .await;
        sent_privately_twice(&slack).await;
        slack_only_to(&slack, &alice, &["/shell/", PRINTED]);
        slack_channel_clean(&slack, &["/shell/", PRINTED]);
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_private_output_falls_back_to_the_response_url_when_ephemeral_is_refused() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, slack) = with_slack(backend, true).await;
        // alice ran the command from a channel she is not a member of (a shared channel, or
        // she left): Slack refuses chat.postEphemeral to her there.
        slack.set_members(CHANNEL, &[]);
        slack_command_with(&env, &slack, "alice", "proxy open shop in shop", "t-proxy").await;
        slack_command_with(&env, &slack, "alice", &format!("exec shop in shop -- {EXEC}"), "t-exec").await;
        let calls = slack
            .wait_for(20, "the link and the output on the response_urls", |cs| {
                private_with(cs, "response_url", "/p/") && private_with(cs, "response_url", PRINTED)
            })
            .await;
        assert!(
            calls.iter().any(|c| c.method == "chat.postEphemeral" && c.ts.is_none()),
            "chat.postEphemeral was tried first and refused"
        );
        for c in calls.iter().filter(|c| c.method == "response_url") {
            if c.body.to_string().contains("/p/") || c.body.to_string().contains(PRINTED) {
                assert_eq!(c.body["response_type"], "ephemeral", "{:?}", c.body);
                let own = if c.body.to_string().contains("/p/") {
                    "t-proxy"
                } else {
                    "t-exec"
                };
                assert_eq!(c.path, own, "each answer on its own command's response_url");
            }
        }
        sent_privately_twice(&slack).await;
        slack_channel_clean(&slack, &["/p/", PRINTED]);
        env.app.shutdown().await;
    }
}

async fn discord_shell_and_exec(
    env: &crate::cluster::Env,
    discord: &FakeDiscordServer,
    signer: &discord_fake::InteractionSigner,
) {
    let at = [("app", json!("shop")), ("env", json!("shop"))];
    discord_command(env, discord, signer, "alice", &["shell"], &at).await;
    let exec = [("app", json!("shop")), ("env", json!("shop")), ("command", json!(EXEC))];
    discord_command(env, discord, signer, "alice", &["exec"], &exec).await;
}

/// Whether `m` carries `needle` in its text or its buttons.
fn carries(m: &discord_fake::Message, needle: &str) -> bool {
    m.content.contains(needle) || m.components.to_string().contains(needle)
}

fn discord_channel_clean(discord: &FakeDiscordServer, secrets: &[&str]) {
    let public = discord.fake.public();
    for s in secrets {
        assert!(
            public.iter().all(|m| !carries(m, s)),
            "`{s}` is in a channel message: {public:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discord_shell_link_and_exec_output_go_ephemeral_to_requester_only() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, discord, signer) = with_discord(backend, true).await;
        discord_shell_and_exec(&env, &discord, &signer).await;
        let alice = discord_id("alice");
        discord
            .fake
            .wait_until("the shell link and the output, privately to alice", |f| {
                let mine = f.private_to(&alice);
                mine.iter().any(|m| carries(m, "/shell/")) && mine.iter().any(|m| carries(m, PRINTED))
            })
            .await;
        discord
            .fake
            .wait_until("two neutral lines in the channel", |f| {
                f.public()
                    .iter()
                    .filter(|m| m.content.contains("sent privately"))
                    .count()
                    >= 2
            })
            .await;
        for m in discord.fake.private_to(&alice) {
            if carries(&m, "/shell/") || carries(&m, PRINTED) {
                assert_eq!(m.flags, discord_fake::EPHEMERAL, "an ephemeral follow-up: {m:#?}");
            }
        }
        discord_channel_clean(&discord, &["/shell/", PRINTED]);
        env.app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discord_private_output_falls_back_to_a_dm_when_the_token_is_refused() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let (env, discord, signer) = with_discord(backend, true).await;
        // Discord refuses every interaction token at once, as after its 15 minutes.
        discord.fake.set_token_lifetime(Duration::ZERO);
        discord_shell_and_exec(&env, &discord, &signer).await;
        let alice = discord_id("alice");
        discord
            .fake
            .wait_until("the shell link and the output in alice's DMs", |f| {
                let mine = f.private_to(&alice);
                mine.iter().any(|m| carries(m, "/shell/")) && mine.iter().any(|m| carries(m, PRINTED))
            })
            .await;
        for m in discord.fake.private_to(&alice) {
            if carries(&m, "/shell/") || carries(&m, PRINTED) {
                assert!(m.token.is_empty(), "sent by the bot, not on the refused token: {m:#?}");
                assert_ne!(m.channel_id, discord_fake::CHANNEL_ID, "a DM, not the channel: {m:#?}");
            }
        }
        discord_channel_clean(&discord, &["/shell/", PRINTED]);
        env.app.shutdown().await;
    }
}
