//! The client side of a command: submit it, follow its events to the end (with a spinner on a
//! terminal), print what it says and turn its outcome into the exit code.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use deckhand::client::Client;
use serde_json::Value;

use super::{ClientArgs, Output, exit};
use crate::printable::safe;

pub(super) fn print_result(args: &ClientArgs, v: &Value, text: &str) {
    if args.output == Output::Json {
        println!("{v}");
    } else {
        println!("{}", safe(text));
    }
}

pub(super) fn request_line(r: &Value) -> String {
    format!(
        "{}  {:<16} {:<10} {}",
        r["id"].as_str().unwrap_or("?"),
        r["state"].as_str().unwrap_or("?"),
        r["requester"].as_str().unwrap_or("?"),
        r["text"].as_str().unwrap_or("")
    )
}

/// Submits, then follows the request's events to its end, with a spinner on a terminal.
pub(super) async fn run(args: &ClientArgs, text: &str, no_wait: bool) -> anyhow::Result<u8> {
    let client = args.client()?;
    let submitted = client.submit(text).await?;
    let json = args.output == Output::Json;
    let request = submitted["request"].clone();
    let events = submitted["events"].as_array().cloned().unwrap_or_default();
    if is_terminal(&request) {
        // Answered at once (help, whoami, ...): show the answer, not the bookkeeping.
        for e in events.iter().filter(|e| json || e["kind"] == "output") {
            print_event(e, json);
        }
        return Ok(finish(args, &request, no_wait));
    }
    follow_to_end(args, &client, request, &events, no_wait).await
}

/// Prints `events` (those seen so far), then, unless `no_wait`, the request's live events
/// until it ends; the exit code says how it ended.
pub(super) async fn follow_to_end(
    args: &ClientArgs,
    client: &Client,
    mut request: Value,
    events: &[Value],
    no_wait: bool,
) -> anyhow::Result<u8> {
    let json = args.output == Output::Json;
    let id = request["id"].as_str().unwrap_or_default().to_owned();
    let mut last_seq = events.last().and_then(|e| e["seq"].as_i64()).unwrap_or(0);
    for e in events {
        print_event(e, json);
    }
    if !no_wait && !is_terminal(&request) {
        let spinner = Spinner::start(&id);
        loop {
            client
                .follow(&id, last_seq, |e| {
                    spinner.clear();
                    last_seq = e["seq"].as_i64().unwrap_or(last_seq);
                    print_event(&e, json);
                })
                .await?;
            request = client.get(&id).await?["request"].clone();
            // The server ends the stream when the request ends; a dropped connection
            // (a restarting server) just resumes from the last event seen.
            if is_terminal(&request) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        spinner.stop();
    }
    Ok(finish(args, &request, no_wait))
}

/// Prints how the request ended (the request itself with `--output json`) and returns the
/// exit code.
fn finish(args: &ClientArgs, request: &Value, no_wait: bool) -> u8 {
    let state = request["state"].as_str().unwrap_or_default();
    if args.output == Output::Json {
        println!("{request}");
    } else if state == "failed" {
        eprintln!(
            "error: {}",
            safe(request["outcome"].as_str().unwrap_or("the request failed"))
        );
    }
    match state {
        "succeeded" => 0,
        "failed" => exit::FAILED,
        _ if no_wait => 0,
        _ => exit::NOT_DONE,
    }
}

fn is_terminal(request: &Value) -> bool {
    !matches!(
        request["state"].as_str(),
        Some("pending_approval" | "queued" | "running")
    )
}

fn print_event(e: &Value, json: bool) {
    if json {
        println!("{e}");
        return;
    }
    let msg = safe(e["message"].as_str().unwrap_or_default());
    match e["kind"].as_str() {
        Some("output") => println!("{msg}"),
        Some("state") => println!("{} {msg}", safe(e["request_id"].as_str().unwrap_or_default())),
        _ => println!("  {msg}"),
    }
}

/// A one-line spinner on stderr, only when stderr is a terminal.
struct Spinner {
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl Spinner {
    fn start(label: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { stop: None };
        }
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let label = label.to_owned();
        tokio::spawn(async move {
            const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];
            let mut i = 0;
            loop {
                if *rx.borrow() {
                    break;
                }
                eprint!("\r{} {label}", FRAMES[i % FRAMES.len()]);
                let _ = std::io::stderr().flush();
                i += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(120)) => {}
                    _ = rx.changed() => {}
                }
            }
            eprint!("\r\x1b[2K");
        });
        Self { stop: Some(tx) }
    }

    fn clear(&self) {
        if self.stop.is_some() {
            eprint!("\r\x1b[2K");
        }
    }

    fn stop(&self) {
        if let Some(tx) = &self.stop {
            let _ = tx.send(true);
        }
    }
}
