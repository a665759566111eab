//! What the chaos tests assert about one request's chat thread: every stored event that
//! posts a message (prompt, output, the final line of a request that did not succeed) is in
//! the thread once and in `seq` order; progress edits the status message and posts nothing. A repeat is allowed only for a delivery whose `attempts` > 1: the call in
//! flight when a replica died is posted again after its lease (the documented case). Edits
//! of the root / status message are idempotent, so for them only the last one counts: it
//! shows the request's final state.

use std::collections::HashSet;

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
    /// Output whose first line is this.
    Output(String),
    /// The final line of a request that did not succeed (Slack only; Discord shows it in
    /// the status message, and a success is shown by the root message alone).
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
    let terminal = ["failed", "denied", "expired", "cancelled"];
    let mut out = Vec::new();
    for e in view["events"].as_array().into_iter().flatten() {
        let seq = e["seq"].as_i64().unwrap_or(0);
        let message = e["message"].as_str().unwrap_or_default().to_owned();
        let what = match e["kind"].as_str().unwrap_or_default() {
            "approval" if e["data"]["approvers"].is_array() => What::Prompt,
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
        What::Output(first) => text.contains(first.as_str()),
        What::End => [":x: Failed:", "denied:", "expired:", "cancelled:"]
            .iter()
            .any(|p| text.starts_with(p)),
    }
}

/// Checks `posts` (the thread's messages in the order the platform got them) against the
/// request's stored events; the problems found.
fn compare(id: &str, view: &Value, posts: &[String], slack: bool) -> Vec<String> {
    let events = expected(view, slack);
    let mut walk = Walk {
        events: &events,
        posts,
        slack,
        failed: HashSet::new(),
        furthest: (0, 0),
    };
    if walk.from(0, 0) {
        return Vec::new();
    }
    let (i, at) = walk.furthest;
    let repeat = if posts[..at].iter().any(|p| Some(p) == posts.get(at)) {
        " (a repeat of an earlier post)"
    } else {
        ""
    };
    match events.get(i) {
        Some(e) => vec![format!(
            "{id}: event {} ({:?}, delivery attempts {}) expected as post #{at}{repeat}, thread has {posts:?}",
            e.seq, e.what, e.attempts
        )],
        None => vec![format!(
            "{id}: posts no stored event accounts for{repeat}: {:?}",
            &posts[at..]
        )],
    }
}

/// Matches events to posts in order, each event consuming its own posts: so identical
/// texts from distinct events (a rerunnable request run twice) each take one post. An
/// event's posts are its first, then (Discord output) its further 2000-character parts,
/// and repeats of those only when its delivery took more than one attempt.
struct Walk<'a> {
    events: &'a [Expected],
    posts: &'a [String],
    slack: bool,
    /// (event, post) positions already known not to lead to a full match.
    failed: HashSet<(usize, usize)>,
    /// The furthest (event, post) position reached, for the report.
    furthest: (usize, usize),
}

impl Walk<'_> {
    /// Whether events `i..` match posts `at..` exactly.
    fn from(&mut self, i: usize, at: usize) -> bool {
        self.furthest = self.furthest.max((i, at));
        let Some(e) = self.events.get(i) else {
            return at == self.posts.len();
        };
        if self.failed.contains(&(i, at)) {
            return false;
        }
        let ends = self.ends(e, at);
        let found = ends.into_iter().any(|end| self.from(i + 1, end));
        if !found {
            self.failed.insert((i, at));
        }
        found
    }

    /// Where event `e`'s posts may end when they start at `at` (none when `at` is not its).
    fn ends(&self, e: &Expected, at: usize) -> Vec<usize> {
        let posts = self.posts;
        if !posts.get(at).is_some_and(|p| matches(&e.what, p, self.slack)) {
            return Vec::new();
        }
        let multipart = !self.slack && matches!(e.what, What::Output(_));
        let mut parts = vec![&posts[at]];
        let mut ends = vec![at + 1];
        for p in &posts[at + 1..] {
            let repeat = parts.contains(&p) || matches(&e.what, p, self.slack);
            let ours = if repeat {
                e.attempts > 1
            } else {
                multipart && !is_other(p)
            };
            if !ours {
                break;
            }
            parts.push(p);
            ends.push(at + parts.len());
        }
        ends
    }
}

/// A Discord post that is not an output part: a prompt or a progress line.
fn is_other(text: &str) -> bool {
    text.contains(" asks to run ") || text.starts_with("effect for ")
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

/// Read-only commands among the chaos traffic: their specs say `answer: private`, so
/// they answer the person alone and show nothing in the channel.
fn answers_privately(view: &Value) -> bool {
    ["help", "whoami"].contains(&view["request"]["command"].as_str().unwrap_or_default())
}

/// A private answer left nothing in the channel: no root, no thread (its deliveries are
/// checked as delivered like any other).
fn nothing_public(id: &str, public: usize) -> Vec<String> {
    match public {
        0 => Vec::new(),
        n => vec![format!("{id}: a private answer put {n} message(s) in the channel")],
    }
}

/// The Slack thread of request `view`: one root, the replies in order, the root's last
/// edit showing the final state.
pub fn slack_thread(view: &Value, calls: &[slack_fake::Call]) -> Vec<String> {
    let id = view["request"]["id"].as_str().unwrap_or_default();
    if answers_privately(view) {
        let tag = format!("(request {id})");
        let public = calls
            .iter()
            .filter(|c| c.method == "chat.postMessage" && c.body["text"].as_str().is_some_and(|t| t.contains(&tag)))
            .count();
        return nothing_public(id, public);
    }
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
    if answers_privately(view) {
        return nothing_public(id, calls.iter().filter(status).count());
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::compare;

    /// A view with output events `(seq, text, delivery attempts)`.
    fn view(outputs: &[(i64, &str, i64)]) -> serde_json::Value {
        let events: Vec<_> = outputs
            .iter()
            .map(|(seq, text, _)| json!({ "seq": seq, "kind": "output", "message": text }))
            .collect();
        let deliveries: Vec<_> = outputs
            .iter()
            .map(|(seq, _, attempts)| json!({ "seq": seq, "attempts": attempts }))
            .collect();
        json!({ "events": events, "deliveries": deliveries })
    }

    fn posts(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn identical_outputs_of_a_rerun_each_take_one_post() {
        let v = view(&[(2, "you are alice", 1), (5, "you are alice", 1)]);
        let thread = posts(&["you are alice", "you are alice"]);
        assert_eq!(compare("r", &v, &thread, true), Vec::<String>::new());
        let missing = compare("r", &v, &thread[..1], true);
        assert!(missing[0].contains("event 5"), "{missing:?}");
    }

    #[test]
    fn a_repeat_needs_a_second_attempt() {
        let thread = posts(&["you are alice", "you are alice"]);
        let once = compare("r", &view(&[(2, "you are alice", 1)]), &thread, true);
        assert!(once[0].contains("no stored event accounts for"), "{once:?}");
        let retried = compare("r", &view(&[(2, "you are alice", 2)]), &thread, true);
        assert_eq!(retried, Vec::<String>::new());
    }

    #[test]
    fn discord_parts_and_their_repeat_belong_to_one_output() {
        let v = view(&[(2, "usage:\nlong", 2), (4, "usage:\nlong", 1)]);
        let thread = posts(&["usage: 1", "part 2", "usage: 1", "part 2", "usage: 1", "part 2"]);
        assert_eq!(compare("r", &v, &thread, false), Vec::<String>::new());
        let v = view(&[(2, "usage:\nlong", 1), (4, "usage:\nlong", 1)]);
        assert!(!compare("r", &v, &thread, false).is_empty());
    }
}
