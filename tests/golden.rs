//! Golden files: every kind of message deckhand sends to Slack and Discord, rendered by the
//! adapters' pure renderers from a fixed request, events and mentions, and compared with
//! `tests/golden/{slack,discord}/KIND.json`. A change to what a user sees shows up as a diff
//! of these files, reviewed like code.
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files; read the diff before
//! committing it. The inputs quote user text full of markup (`<!channel>`, `@here`, `&`,
//! backticks, `*bold*`, a disguised link) so the files show that it arrives inert.

use std::path::PathBuf;

use deckhand::{
    chat::{Mentions, text},
    command_buttons::{CommandButton, LinkButton},
    commands::args::Args,
    discord::{markup::DiscordMarkup, prompts as dprompts, render as drender},
    domain::{RequestId, State, Surface},
    events::{ApprovalRequest, Decision, EventData, Output, Verdict},
    signing::Signer,
    slack::messages::{self as smessages, SlackMarkup},
    store::RequestRecord,
    surface,
    visibility::Audience,
};
use serde_json::{Value, json};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
/// What the user typed, and wrote into outcomes and reasons: all of it must stay inert.
const NASTY: &str = "<!channel> @here & <https://evil.example|Approve> *bold* `code` _x_ ```";

fn request(state: State) -> RequestRecord {
    let mut args = Args::default();
    args.insert("env", "web".into());
    RequestRecord {
        id: RequestId::parse("r-0g0de0000001").unwrap(),
        command: "deploy".into(),
        action: "deploy".into(),
        text: format!("deploy shop:1.4 to web note={NASTY}"),
        args,
        state,
        requester: "alice".into(),
        requester_groups: vec!["dev".into()],
        surface: Surface::Slack,
        channel: None,
        thread: None,
        surface_data: None,
        approval: None,
        approval_expires_at: Some(T0 + 3_600_000),
        created_at: T0,
        updated_at: T0,
        started_at: Some(T0 + 60_000),
        finished_at: None,
        worker: None,
        lease_until: None,
        attempts: 0,
        outcome: None,
    }
}

fn finished(state: State, outcome: &str) -> RequestRecord {
    RequestRecord {
        outcome: Some(outcome.into()),
        finished_at: Some(T0 + 572_000),
        ..request(state)
    }
}

fn mentions() -> Mentions {
    Mentions::new(
        [
            ("alice".into(), "U0ALICE".into()),
            ("olga".into(), "U0OLGA".into()),
            ("bob".into(), "<!here>".into()),
        ],
        [("ops".into(), "S0OPS".into())],
    )
}

fn discord_mentions() -> Mentions {
    Mentions::new(
        [
            ("alice".into(), "1000000000000000001".into()),
            ("olga".into(), "1000000000000000002".into()),
        ],
        [("ops".into(), "1000000000000000777".into())],
    )
}

fn signer() -> Signer {
    Signer::new(b"golden-files-fixed-key")
}

fn ask() -> ApprovalRequest {
    ApprovalRequest {
        approvers: vec!["group:ops".into(), "user:olga".into(), "group:<!here>".into()],
        count: 2,
        rule: Some(format!("tier is prod and note is {NASTY}")),
        expires_at: Some(T0 + 3_600_000),
        detail: Some("replicas=3 (default)".into()),
    }
}

fn decision(verdict: Verdict, approvals: i64, reason: Option<&str>) -> Decision {
    Decision {
        approver: "olga".into(),
        decision: verdict,
        reason: reason.map(str::to_owned),
        approvals,
        needed: Some(2),
    }
}

const OUTPUT: &str = "NAME  READY  <!channel>\nshop  2/2    @here & `x`\n``` closes a block";
const PROXY_URL: &str = "https://deckhand.example.test/p/0123456789abcdefghjkmnpqrs/";

fn output(kind: &str) -> (String, EventData) {
    match kind {
        "output_plain" => (OUTPUT.into(), EventData::Output(Output::default())),
        "output_links" => (
            format!(
                "{PROXY_URL}\nforwards to shop:8080 in web until 2023-11-14T23:13:20Z; close it with `proxy close p-1`"
            ),
            EventData::Output(
                Output::default()
                    .link(LinkButton::new("Open link", PROXY_URL))
                    .button(CommandButton::danger("Close link", "proxy close p-1".into()))
                    .to(Audience::Requester),
            ),
        ),
        _ => (
            "load test running: 20 workers, 50/s".into(),
            EventData::Output(
                Output::default().button(CommandButton::danger("Cancel test", "loadtest cancel r-1".into())),
            ),
        ),
    }
}

/// What Slack is sent for `kind`: the root message as edited, and any thread message.
fn slack(kind: &str) -> Value {
    let m = mentions();
    let markup = SlackMarkup(&m);
    let signer = signer();
    let requester = "<@U0ALICE>";
    let root = |r: &RequestRecord, progress: Option<&str>| json!({ "text": smessages::root_text(r, requester, progress, T0 + 572_000) });
    let state = |r: RequestRecord, data: EventData| {
        let reply = smessages::state_reply(&r, &data).map(|t| json!({ "text": t }));
        json!({ "root": root(&r, None), "reply": reply })
    };
    let summary = || {
        let r = request(State::PendingApproval);
        smessages::approval_summary(&r, requester, &text::prompt_lines(&markup, &ask()))
    };
    let r = request(State::PendingApproval);
    let value = |c| serde_json::to_value(c).unwrap();
    match kind {
        "state_pending" => state(
            request(State::PendingApproval),
            EventData::state(State::PendingApproval, None, None),
        ),
        "state_running" => state(request(State::Running), EventData::state(State::Running, None, None)),
        "state_succeeded" => state(
            finished(State::Succeeded, NASTY),
            EventData::state(State::Succeeded, Some(NASTY.into()), None),
        ),
        "state_failed" => state(
            finished(State::Failed, "image not found"),
            EventData::state(State::Failed, Some(format!("image not found: {NASTY}")), None),
        ),
        "approval_requested" => value(smessages::prompt_content(&signer, &r.id, &summary(), None)),
        "decision_approve" => {
            let line = text::decision_summary(&markup, &decision(Verdict::Approve, 1, None), 2);
            value(smessages::prompt_content(&signer, &r.id, &summary(), Some(&line)))
        }
        "decision_deny_reason" => {
            let line = text::decision_summary(&markup, &decision(Verdict::Deny, 0, Some(NASTY)), 2);
            value(smessages::decided_content(&summary(), &line))
        }
        "decision_expired" => {
            let line = text::closed_summary(&markup, State::Expired, None).unwrap();
            value(smessages::decided_content(&summary(), &line))
        }
        "progress" => {
            json!({ "root": root(&request(State::Running), Some(&format!("rollout 7/12 updated, 5 available {NASTY}"))) })
        }
        "private_notice" => json!({ "text": surface::private_notice(&r, Audience::Requester, requester, true) }),
        out => {
            let (message, data) = output(out);
            value(smessages::output_content(
                &signer,
                &message,
                data.buttons(),
                data.links(),
            ))
        }
    }
}

/// What Discord is sent for `kind`: the message body (the status message's edit, the
/// prompt, an output's messages).
fn discord(kind: &str) -> Value {
    let m = discord_mentions();
    let markup = DiscordMarkup(&m);
    let signer = signer();
    let status = |r: RequestRecord, state: State, outcome: Option<&str>| {
        let change = deckhand::events::StateChange {
            state,
            outcome: outcome.map(str::to_owned),
            why: None,
        };
        drender::message_body(&drender::status_text(&r, &drender::state_line(&change)), None)
    };
    let r = request(State::PendingApproval);
    match kind {
        "state_pending" => status(request(State::PendingApproval), State::PendingApproval, None),
        "state_running" => status(request(State::Running), State::Running, None),
        "state_succeeded" => status(finished(State::Succeeded, NASTY), State::Succeeded, Some(NASTY)),
        "state_failed" => status(
            finished(State::Failed, "image not found"),
            State::Failed,
            Some(&format!("image not found: {NASTY}")),
        ),
        "approval_requested" => dprompts::prompt(&markup, &signer, &r, &ask()),
        "decision_approve" => dprompts::decision_body(&markup, &signer, &r, &decision(Verdict::Approve, 1, None), 2),
        "decision_deny_reason" => {
            dprompts::decision_body(&markup, &signer, &r, &decision(Verdict::Deny, 0, Some(NASTY)), 2)
        }
        "decision_expired" => {
            let line = text::closed_summary(&markup, State::Expired, None).unwrap();
            dprompts::closed_body(&r, &line)
        }
        "progress" => drender::message_body(
            &drender::progress_status(
                &request(State::Running),
                &format!("rollout 7/12 updated, 5 available {NASTY}"),
                T0 + 572_000,
            ),
            None,
        ),
        "private_notice" => drender::message_body(
            &surface::private_notice(&r, Audience::Requester, "<@1000000000000000001>", true),
            None,
        ),
        out => {
            let (message, data) = output(out);
            Value::Array(drender::output_bodies(&signer, &message, &data))
        }
    }
}

const KINDS: &[&str] = &[
    "state_pending",
    "state_running",
    "state_succeeded",
    "state_failed",
    "approval_requested",
    "decision_approve",
    "decision_deny_reason",
    "decision_expired",
    "output_plain",
    "output_links",
    "output_buttons",
    "progress",
    "private_notice",
];

#[test]
fn slack_messages_match_their_golden_files() {
    check("slack", slack);
}

#[test]
fn discord_messages_match_their_golden_files() {
    check("discord", discord);
}

fn check(platform: &str, render: fn(&str) -> Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(platform);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for kind in KINDS {
        let path = dir.join(format!("{kind}.json"));
        let actual = serde_json::to_string_pretty(&render(kind)).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            failures.push(format!("{}:\n{}", path.display(), diff(&expected, &actual)));
        }
    }
    assert!(
        failures.is_empty(),
        "rendered messages differ from their golden files (`UPDATE_GOLDEN=1 cargo test --test golden` \
         rewrites them; review the diff):\n\n{}",
        failures.join("\n")
    );
}

/// A line diff (longest common subsequence): `-` expected, `+` rendered.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out += &format!("+ {}\n", b[j]);
            j += 1;
        } else {
            out += &format!("- {}\n", a[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn the_diff_shows_what_changed() {
    assert_eq!(diff("a\nb\nc", "a\nx\nc"), "+ x\n- b\n");
}

#[path = "support/discord/limits.rs"]
#[allow(dead_code)]
mod discord_limits;

#[test]
fn discord_takes_the_rendered_link_buttons_and_the_fake_refuses_broken_ones() {
    let bodies = discord("output_links");
    for body in bodies.as_array().unwrap() {
        assert_eq!(discord_limits::check_message(body), Vec::<String>::new(), "{body}");
    }
    let mut broken = bodies[0].clone();
    broken["components"][0]["components"][0]["custom_id"] = json!("x");
    assert!(
        !discord_limits::check_message(&broken).is_empty(),
        "a link button with a custom_id"
    );
    let mut long = bodies[0].clone();
    long["components"][0]["components"][0]["label"] = json!("x".repeat(81));
    assert!(!discord_limits::check_message(&long).is_empty(), "a label over 80");
}
