//! Slack slash-command acknowledgements: `cargo bench --bench slack`.
//!
//! Starts deckhand (SQLite file, WAL) with Slack on and the Web API pointed at the local
//! fake, then drives POST /slack/commands with correctly signed, distinct commands (each a
//! new trigger_id, so each is a durable write: request row, event, audit row, before the
//! 200). Every command needs an approval, so the worker stays out of the measurement; the
//! surface still posts the root message and the prompt to the fake in the background.
//!
//! 1. capacity: `SLACK_BENCH_CONCURRENCY` (16) clients back to back for
//!    `SLACK_BENCH_SECS` (5 s): acknowledgements per second;
//! 2. fixed rate: `SLACK_BENCH_RATE` (200) commands per second, open loop, for
//!    `SLACK_BENCH_SECS`; latency measured from each command's scheduled send time, so a
//!    stall counts against every command it delays (no coordinated omission).
//!
//! The load generator runs in the same process on the same cores as the server.

#[path = "../tests/support/slack/mod.rs"]
mod slack_fake;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use deckhand::{
    actions::{Action, ActionContext, ActionError},
    configuration::Config,
    startup::Builder,
};
use slack_fake::{FakeSlack, SIGNING_SECRET, command_form, now, signed_headers};

struct Noop;

#[async_trait]
impl Action for Noop {
    fn name(&self) -> &'static str {
        "bench.noop"
    }
    async fn run(&self, _ctx: &ActionContext) -> Result<String, ActionError> {
        Ok("ok".into())
    }
}

const SPEC: &str = r#"
- name: bench
  help: Stored, waits for an approval
  pattern: '^bench (?P<env>\S+)$'
  args:
    env: { type: name }
  action: bench.noop
  allow: [group:developers]
  approval: { approvers: [group:ops], count: 1, expires: 1h }
"#;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Target {
    http: reqwest::Client,
    url: String,
    response_url: String,
    seq: AtomicUsize,
}

impl Target {
    /// One signed slash command, new trigger_id each time; true on 200.
    async fn send(&self) -> bool {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let body = command_form(
            "UBENCH",
            "CBENCH",
            &format!("bench env-{}", n % 1000),
            &format!("bench.{n}.{}", now()),
            &self.response_url,
        );
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        for (k, v) in signed_headers(&body, now()) {
            req = req.header(k, v);
        }
        matches!(req.send().await, Ok(r) if r.status().is_success())
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let secs = env_or("SLACK_BENCH_SECS", 5);
    let rate = env_or("SLACK_BENCH_RATE", 200);
    let concurrency = env_or("SLACK_BENCH_CONCURRENCY", 16) as usize;

    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deckhand.toml");
    let toml = format!(
        r#"
[store]
url = "sqlite://{}?mode=rwc"

[slack]
bot_token = "{}"
signing_secret = "{SIGNING_SECRET}"
api_url = "{}"

[users.bench]
groups = ["developers"]
identities = ["slack:UBENCH"]
tokens = ["bench-token-0123456789"]
"#,
        dir.path().join("bench.db").display(),
        slack_fake::BOT_TOKEN,
        fake.api_url()
    );
    std::fs::write(&path, toml).expect("config");
    let config = Config::build(Some(&path), std::iter::empty()).expect("config");
    let running = Builder::new(config)
        .action(Arc::new(Noop))
        .specs(vec![("bench.yaml".into(), SPEC.into())])
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("deckhand starts");
    let target = Arc::new(Target {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client"),
        url: format!("http://{}/slack/commands", running.addr),
        response_url: fake.response_url("bench"),
        seq: AtomicUsize::new(0),
    });
    // Warm up: connections, statement cache.
    for _ in 0..50 {
        target.send().await;
    }

    // 1. Capacity, closed loop.
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let t = target.clone();
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0usize, 0usize);
            while Instant::now() < deadline {
                if t.send().await {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (o, f) = w.await.expect("worker");
        ok += o;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "capacity: {concurrency} concurrent clients, {secs} s: {ok} acks, {:.0} acks/s, {failed} errors",
        ok as f64 / elapsed
    );
    // Let the surface catch up with the backlog of root messages before measuring latency.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. Fixed rate, open loop.
    let total = (rate * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let t0 = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = t0 + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let t = target.clone();
        tasks.push(tokio::spawn(async move {
            let good = t.send().await;
            (scheduled.elapsed(), good)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for t in tasks {
        let (d, good) = t.await.expect("task");
        latencies.push(d);
        errors += usize::from(!good);
    }
    latencies.sort();
    println!(
        "fixed rate: {rate}/s for {secs} s ({total} commands): p50 {}, p90 {}, p99 {}, max {}, {errors} errors",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    let stored: i64 = running
        .app
        .store
        .counts()
        .await
        .expect("counts")
        .iter()
        .map(|(_, _, n)| n)
        .sum();
    println!(
        "stored requests: {stored} (every acknowledged command is in the store); Slack Web API calls made: {}",
        fake.calls().len()
    );
    running.shutdown().await;
}
