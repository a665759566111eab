//! What deckhand's Discord messages say, as the JSON sent to Discord: pure functions of
//! the request, the event and the markup, so the surface (`publish.rs`, `prompts.rs`,
//! `private.rs`) only decides where a message goes, and the golden files
//! (`tests/golden/discord/`) pin every kind of message.

use serde_json::{Value, json};
use serenity::builder::CreateActionRow;

use super::{buttons, markup::escape};
use crate::{
    chat::links,
    command_buttons::LinkButton,
    domain::{State, human_duration_ms},
    events::{EventData, StateChange},
    signing::Signer,
    store::RequestRecord,
};

/// Discord's limit for a message's content.
pub const CONTENT_MAX: usize = 2000;
/// Discord's limits for a link button: its label, its url.
pub const LABEL_MAX: usize = 80;
pub const URL_MAX: usize = 512;

/// A message that may ping the people and roles named (an approval prompt mentions its
/// approvers); everything else in it stays inert.
pub fn prompt_body(content: &str, components: Option<&[CreateActionRow]>, users: &[String], roles: &[String]) -> Value {
    let mut body = message_body(content, components);
    body["allowed_mentions"] = json!({ "parse": [], "users": users, "roles": roles });
    body
}

/// A message body; `components: Some(vec![])` removes buttons, `None` leaves them.
pub fn message_body(content: &str, components: Option<&[CreateActionRow]>) -> Value {
    let mut body = json!({
        "content": truncate(content, CONTENT_MAX),
        // Text from commands and outcomes must never ping anyone.
        "allowed_mentions": { "parse": [] },
    });
    if let Some(c) = components {
        body["components"] = serde_json::to_value(c).unwrap_or_else(|_| json!([]));
    }
    body
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// Long output in code blocks of at most CONTENT_MAX characters, split on line ends.
pub fn output_chunks(text: &str) -> Vec<String> {
    const WRAP: usize = 8; // "```\n" + "\n```"
    let room = CONTENT_MAX - WRAP;
    let mut chunks = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let line = truncate(line, room);
        if cur.chars().count() + line.chars().count() + 1 > room && !cur.is_empty() {
            chunks.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(&line);
    }
    if !cur.is_empty() || chunks.is_empty() {
        chunks.push(cur);
    }
    // Backticks inside would close the block early.
    chunks
        .into_iter()
        .map(|c| format!("```\n{}\n```", c.replace("```", "ˋˋˋ")))
        .collect()
}

pub fn state_icon(state: State) -> &'static str {
    match state {
        State::PendingApproval => "⏳",
        State::Queued => "🕒",
        State::Running => "⚙️",
        State::Succeeded => "✅",
        State::Failed => "❌",
        State::Denied => "🚫",
        State::Expired => "⌛",
        State::Cancelled => "✖️",
    }
}

/// The status message: `line` is already Discord text; the request's own text is escaped.
pub fn status_text(record: &RequestRecord, line: &str) -> String {
    format!(
        "**{}** {} (asked by {})\n{line}",
        record.id,
        escape(&record.text),
        escape(&record.requester)
    )
}

/// A state change as the status message's line: "❌ failed: image not found".
pub fn state_line(change: &StateChange) -> String {
    let state = change.state;
    // The same words as the prompt's status (and Slack's), so the prompt needs no edit.
    let name = match state {
        State::PendingApproval => "waiting for approval".to_owned(),
        _ => state.as_str().replace('_', " "),
    };
    // "running" says it all; outcomes and "approved (1 of 1); queued" add to it.
    match change.why.as_deref().or(change.outcome.as_deref()) {
        Some(said) => format!("{} {name}: {}", state_icon(state), escape(said)),
        None => format!("{} {name}", state_icon(state)),
    }
}

/// The status message while the request runs: for how long (until `now`, Unix ms) and the
/// latest progress line.
pub fn progress_status(record: &RequestRecord, line: &str, now: i64) -> String {
    let since = record
        .started_at
        .map(|t| format!(" for {}", human_duration_ms(now - t)))
        .unwrap_or_default();
    let status = format!("{} running{since}\n{}", state_icon(State::Running), escape(line));
    status_text(record, &status)
}

/// An output as message bodies: the text in code blocks (the line that is just a link's
/// URL left out when a link button carries it), link buttons and command buttons under the
/// last one.
pub fn output_bodies(signer: &Signer, message: &str, data: &EventData) -> Vec<Value> {
    let shown: Vec<&LinkButton> = data.links().iter().filter(|l| fits(l)).collect();
    let text = links::without(message, &shown);
    let row = buttons::output_row(signer, data.buttons(), &shown);
    let chunks = if text.trim().is_empty() && row.is_some() {
        vec![String::new()]
    } else {
        output_chunks(&text)
    };
    let last = chunks.len().saturating_sub(1);
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let components = row.as_ref().filter(|_| i == last).map(std::slice::from_ref);
            message_body(chunk, components)
        })
        .collect()
}

/// Whether Discord takes `link` as a link button (else its URL stays in the text).
fn fits(link: &LinkButton) -> bool {
    link.url.chars().count() <= URL_MAX && (link.url.starts_with("https://") || link.url.starts_with("http://"))
}
