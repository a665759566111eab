//! `deckhand loadgen`: the load generator on its own, as the pods of `loadtest` run it.

use std::{io::Write, time::Duration};

use anyhow::Context;
use clap::Args;
use deckhand::loadgen::{self, Mode, Plan, Target};

use crate::printable::safe;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("model").required(true).args(["rate", "concurrency"])))]
pub struct LoadgenArgs {
    /// The target, e.g. http://shop.checkout.svc:8080/health
    #[arg(long)]
    url: String,
    /// Open model: requests per second, sent on schedule whatever the target does.
    #[arg(long)]
    rate: Option<f64>,
    /// Closed model: connections, each sending back to back.
    #[arg(long)]
    concurrency: Option<u32>,
    /// How long to send, e.g. 30s, 5m.
    #[arg(long, value_parser = duration)]
    duration: Duration,
    #[arg(long, default_value = "GET")]
    method: String,
    /// A request header, `Name: value`; repeat for more.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// The request body, or @FILE to read it from a file.
    #[arg(long)]
    body: Option<String>,
    /// Per request, connecting included.
    #[arg(long, value_parser = duration, default_value = "10s")]
    timeout: Duration,
    /// Print the result as JSON (mergeable with other runs' JSON) instead of a summary.
    #[arg(long)]
    json: bool,
    /// Also draw the latency chart as a PNG into this file.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
}

fn duration(s: &str) -> Result<Duration, String> {
    loadgen::parse_duration(s).map_err(|e| e.to_string())
}

pub async fn loadgen(args: LoadgenArgs) -> anyhow::Result<u8> {
    let mut target = Target::new(&args.url)?.method(&args.method)?;
    for h in &args.headers {
        target = target.header(h)?;
    }
    if let Some(body) = &args.body {
        let bytes = match body.strip_prefix('@') {
            Some(path) => std::fs::read(path).with_context(|| format!("cannot read the body from {path}"))?,
            None => body.clone().into_bytes(),
        };
        target = target.body(bytes);
    }
    let mode = match (args.rate, args.concurrency) {
        (Some(r), _) => Mode::rate(r)?,
        (None, Some(c)) => Mode::concurrency(c)?,
        (None, None) => anyhow::bail!("give --rate R (requests per second) or --concurrency C (connections)"),
    };
    let plan = Plan {
        target,
        mode,
        duration: args.duration,
        timeout: args.timeout,
    };
    let report = loadgen::run(&plan).await?;
    if let Some(path) = &args.chart {
        let png = loadgen::chart::render(&report, &format!("loadgen {}", report.url), 1000, 600)?;
        std::fs::write(path, png).with_context(|| format!("cannot write the chart to {}", path.display()))?;
    }
    let text = match args.json {
        true => serde_json::to_string(&report)?,
        false => report.to_string(),
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    // The report is printed either way (a pod's log carries it to `loadtest`); a run in
    // which nothing succeeded says so and fails, so a script does not read it as a result.
    match all_failed(&report) {
        Some(why) => {
            eprintln!("error: {why}");
            Ok(1)
        }
        None => Ok(0),
    }
}

/// Why the run measured nothing but failures, when every request failed.
fn all_failed(report: &loadgen::Report) -> Option<String> {
    let total = report.total();
    if total == 0 || report.error_count() < total {
        return None;
    }
    let kinds = report.errors.iter().map(|(k, n)| format!("{} {n}", k.as_str()));
    let statuses = report
        .status
        .iter()
        .filter(|(s, _)| **s >= 400)
        .map(|(s, n)| format!("HTTP {s} {n}"));
    let by_kind: Vec<String> = kinds.chain(statuses).collect();
    Some(format!(
        "all {total} requests to {} failed ({}); is the target up and the URL right?",
        report.url,
        by_kind.join(", ")
    ))
}

/// `deckhand loadtest`: the chat command's arguments as flags.
#[derive(Args)]
pub struct LoadtestArgs {
    /// The app (its Service; `app:port/path` to pick a port or a path) or an http:// URL.
    target: String,
    /// The environment the load generators run in.
    #[arg(long)]
    env: String,
    /// Requests per second over all workers.
    #[arg(long)]
    rate: u32,
    /// How long to send, e.g. 30s, 5m.
    #[arg(long)]
    duration: String,
    /// Pods sharing the rate.
    #[arg(long)]
    workers: Option<u32>,
    /// A pass/fail limit: p99<300ms, max<2s, errors<1%, rate>=450; repeat for more.
    #[arg(long = "threshold")]
    thresholds: Vec<String>,
    /// Follow the test to its end, print the table and exit by its outcome (see Exit codes
    /// below). Without it, print the request id and return.
    #[arg(long)]
    wait: bool,
    /// With --wait, also save the chart (PNG) to this file.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
}

impl LoadtestArgs {
    fn command_text(&self) -> anyhow::Result<String> {
        // Checked here too, so a typo in a pipeline fails before a request is made.
        for t in &self.thresholds {
            t.parse::<loadgen::Threshold>()?;
        }
        let mut text = format!(
            "loadtest {} in {} rate={} duration={}",
            self.target, self.env, self.rate, self.duration
        );
        if let Some(w) = self.workers {
            text.push_str(&format!(" workers={w}"));
        }
        for t in &self.thresholds {
            text.push(' ');
            text.push_str(&t.split_whitespace().collect::<String>());
        }
        Ok(text)
    }
}

/// Exit codes of `deckhand loadtest`, which pipelines gate on: only 1 means the test ran
/// and measured a failure, so a retry-or-alert step can tell a slow app from a broken run.
pub mod exit {
    pub const PASSED: u8 = 0;
    pub const THRESHOLD_FAILED: u8 = 1;
    pub const NOT_RUN: u8 = 2;
}

/// The exit codes as `deckhand loadtest --help` shows them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (with --wait):
  0  the test ran and every threshold passed
  1  the test ran and a threshold failed
  2  the test could not run: the command was refused, denied, cancelled or expired, it failed
     before a result (pods, cluster), or deckhand could not be reached (also without --wait)";

/// `deckhand loadtest`'s exit code: an error means the test never ran to a result.
pub async fn loadtest_exit(run: impl Future<Output = anyhow::Result<u8>>) -> u8 {
    match run.await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", safe(&format!("{e:#}")));
            exit::NOT_RUN
        }
    }
}

/// Submits the test; with `--wait` follows it and returns its [`exit`] code.
pub async fn loadtest(client: &deckhand::client::Client, args: &LoadtestArgs, json: bool) -> anyhow::Result<u8> {
    let text = args.command_text()?;
    let submitted = client.submit(&text).await?;
    let id = safe(submitted["request"]["id"].as_str().unwrap_or_default());
    if !args.wait {
        println!("{id}");
        return Ok(0);
    }
    eprintln!("{id}: {text}");
    let mut last_seq = 0;
    let mut request;
    loop {
        // Progress goes to stderr: stdout is the table (or the JSON) a pipeline keeps.
        client
            .follow(&id, last_seq, |e| {
                last_seq = e["seq"].as_i64().unwrap_or(last_seq);
                if e["kind"] != "output" {
                    eprintln!("  {}", safe(e["message"].as_str().unwrap_or_default()));
                }
            })
            .await?;
        request = client.get(&id).await?;
        let state = request["request"]["state"].as_str().unwrap_or_default();
        if !matches!(state, "pending_approval" | "queued" | "running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let state = request["request"]["state"].as_str().unwrap_or_default().to_owned();
    let result = request["events"]
        .as_array()
        .and_then(|events| {
            events
                .iter()
                .find(|e| e["kind"] == "output" && e["data"]["verdict"].is_object())
        })
        .cloned();
    if let (Some(path), Some(file)) = (
        &args.chart,
        result.as_ref().and_then(|e| e["data"]["attachment"]["id"].as_str()),
    ) {
        let png = client.attachment(&id, file).await?;
        std::fs::write(path, png).with_context(|| format!("cannot write the chart to {}", path.display()))?;
        eprintln!("chart saved to {}", path.display());
    }
    let mut out = std::io::stdout().lock();
    match (&result, json) {
        (Some(e), true) => {
            let mut data = e["data"].clone();
            data["request"] = request["request"].clone();
            writeln!(out, "{data}")?;
        }
        (Some(e), false) => writeln!(out, "{}", safe(e["message"].as_str().unwrap_or_default()))?,
        (None, true) => writeln!(out, "{}", request["request"])?,
        (None, false) => {}
    }
    let threshold_failed = result.is_some_and(|e| e["data"]["verdict"]["passed"] == false);
    let code = match state.as_str() {
        "succeeded" => exit::PASSED,
        "failed" if threshold_failed => exit::THRESHOLD_FAILED,
        _ => exit::NOT_RUN,
    };
    if code != exit::PASSED {
        let outcome = request["request"]["outcome"].as_str().unwrap_or("no outcome given");
        let what = match code {
            exit::THRESHOLD_FAILED => "",
            _ => "the load test could not run: ",
        };
        eprintln!("error: {what}{} ({state})", safe(outcome));
    }
    Ok(code)
}
