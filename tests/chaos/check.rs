//! What the chaos tests assert about one request's chat thread: every stored event that
//! posts a message (prompt, progress, output, the final line) is in the thread once and in
//! `seq` order. A repeat is allowed only for a delivery whose `attempts` > 1: the call in
//! flight when a replica died is posted again after its lease (the documented case). Edits
//! of the root / status message are idempotent, so for them only the last one counts: it
//! shows the request's final state.

use serde_json::Value;

use crate::{discord_fake, slack_fake};

/// One message a stored event must post.
struct Expected {
    seq: i64,
    attempts: i64,
    what: What,
}

#[derive(Debug, Clone)]
enum What {
    Prompt,
    Progress(String),
    /// Output whose first line is this.
    Output(String),
    /// The final line (Slack only; Discord shows it in the status message).
    End,
}

fn expected(view: &Value, slack: bool) -> Vec<Expected> {
    let attempts = |seq: i64| {
        view["deliveries"]
            .as_array()
            .and_then(|d| d.iter().find(|x| x["seq"] == seq))
            .and_then(|x| x["attempts"].as_i64())
            .unwrap_or(0)
    };
    let terminal = ["succeeded", "failed", "denied", "expired", "cancelled"];
    let mut out = Vec::new();
    for e in view["events"].as_array().into_iter().flatten() {
        let seq = e["seq"].as_i64().unwrap_or(0);
        let message = e["message"].as_str().unwrap_or_default().to_owned();
        let what = match e["kind"].as_str().unwrap_or_default() {
            "approval" if e["data"]["approvers"].is_array() => What::Prompt,
            "progress" => What::Progress(message),
            "output" => What::Output(message.lines().next().unwrap_or_default().to_owned()),
            "state" if slack && terminal.iter().any(|s| e["data"]["state"] == *s) => What::End,
            _ => continue,
        };
        out.push(Expected {
            seq,
            attempts: attempts(seq),
            what,
        });
    }
    out
}

fn matches(what: &What, text: &str, slack: bool) -> bool {
    match what {
        What::Prompt if slack => text.contains("*Approval needed*"),
        What::Prompt => text.contains(" asks to run "),
        What::Progress(m) => text == m,
        What::Output(first) => text.contains(first.as_str()),
        What::End => [":white_check_mark: Succeeded:", ":x: Failed:"]
            .iter()
            .any(|p| text.starts_with(p)),
    }
}

/// Checks `posts` (the thread's messages in the order the platform got them) against the
/// request's stored events; the problems found.
fn compare(id: &str, view: &Value, posts: &[String], slack: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut at = 0;
    for e in expected(view, slack) {
        if !posts.get(at).is_some_and(|p| matches(&e.what, p, slack)) {
            problems.push(format!(
                "{id}: event {} ({:?}) expected as post #{at}, thread has {:?}",
                e.seq, e.what, posts
            ));
            return problems;
        }
        let first = posts[at].clone();
        at += 1;
        // Output can take several messages (Discord's 2000-character parts): the rest of
        // its parts, none repeated.
        let mut parts = vec![first];
        if let What::Output(_) = e.what {
            while let Some(p) = posts.get(at).filter(|p| !slack && !parts.contains(p) && !is_other(p)) {
                parts.push(p.clone());
                at += 1;
            }
        }
        while posts.get(at).is_some_and(|p| parts.contains(p)) {
            if e.attempts <= 1 {
                problems.push(format!(
                    "{id}: event {} ({:?}) posted twice though delivered at the first attempt: {posts:?}",
                    e.seq, e.what
                ));
            }
            at += 1;
        }
    }
    if at != posts.len() {
        problems.push(format!("{id}: posts no stored event accounts for: {:?}", &posts[at..]));
    }
    problems
}

/// A Discord post that is not an output part: a prompt or a progress line.
fn is_other(text: &str) -> bool {
    text.contains(" asks to run ") || text.starts_with("counted ")
}

/// A request left waiting is reported by the request checks; its root then says so.
fn terminal(state: &str) -> bool {
    ["succeeded", "failed", "denied", "expired", "cancelled"].contains(&state)
}

fn any_retried(view: &Value) -> bool {
    view["deliveries"]
        .as_array()
        .is_some_and(|d| d.iter().any(|x| x["attempts"].as_i64() > Some(1)))
}

/// The Slack thread of request `view`: one root, the replies in order, the root's last
/// edit showing the final state.
pub fn slack_thread(view: &Value, calls: &[slack_fake::Call]) -> Vec<String> {
    let id = view["request"]["id"].as_str().unwrap_or_default();
    let state = view["request"]["state"].as_str().unwrap_or_default();
    let tag = format!("(request {id})");
    let roots: Vec<String> = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.body["thread_ts"].is_null())
        .filter(|c| c.body["text"].as_str().is_some_and(|t| t.contains(&tag)))
        .filter_map(|c| c.ts.clone())
        .collect();
    let mut problems = Vec::new();
    if roots.is_empty() || (roots.len() > 1 && !any_retried(view)) {
        problems.push(format!("{id}: {} root messages in Slack", roots.len()));
    }
    let in_thread = |c: &&slack_fake::Call| {
        c.body["thread_ts"]
            .as_str()
            .is_some_and(|t| roots.iter().any(|r| r == t))
    };
    let posts: Vec<String> = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage")
        .filter(in_thread)
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    problems.extend(compare(id, view, &posts, true));
    let last_edit = calls
        .iter()
        .rev()
        .find(|c| c.method == "chat.update" && c.body["ts"].as_str().is_some_and(|t| roots.iter().any(|r| r == t)))
        .and_then(|c| c.body["text"].as_str())
        .unwrap_or_default();
    if terminal(state) && !last_edit.contains(&format!(" {state}")) {
        problems.push(format!("{id}: the root message ends as {last_edit:?}, not {state}"));
    }
    problems
}

/// The Discord conversation of request `view`: the follow-ups on its interaction in order,
/// the status message's last edit showing the final state.
pub fn discord_thread(view: &Value, calls: &[discord_fake::Call]) -> Vec<String> {
    let id = view["request"]["id"].as_str().unwrap_or_default();
    let state = view["request"]["state"].as_str().unwrap_or_default();
    let tag = format!("**{id}** ");
    let status = |c: &&discord_fake::Call| {
        c.method == "PATCH"
            && c.path.ends_with("/messages/@original")
            && c.body["content"].as_str().is_some_and(|t| t.starts_with(&tag))
    };
    let Some(original) = calls.iter().rev().find(status) else {
        return vec![format!("{id}: no status message in Discord")];
    };
    let webhook = original.path.trim_end_matches("/messages/@original").to_owned();
    let posts: Vec<String> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.path == webhook)
        .map(|c| c.body["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut problems = compare(id, view, &posts, false);
    let shown = original.body["content"].as_str().unwrap_or_default();
    if terminal(state) && !shown.contains(&format!(" {state}")) {
        problems.push(format!("{id}: the status message ends as {shown:?}, not {state}"));
    }
    problems
}
