//! Slack slash-command acknowledgements: `cargo bench --bench slack` (`scripts/bench-slack.sh`,
//! `scripts/bench-ack.sh`).
//!
//! Every command is correctly signed and carries a new trigger_id; it needs an approval, so
//! deckhand's ack is a durable write (request row, events, audit, outbox) before the 200,
//! the worker stays out of the measurement, and the surface still posts the root message and
//! the prompt in the background to a Slack Web API sink (a local server answering ok).
//!
//! `SLACK_BENCH_PARTS` (comma-separated, default `sqlite`) chooses the targets, measured one
//! after the other in this order:
//! - `baseline`: an axum handler in this bench that only checks the signature and answers
//!   200 (issue 14's yardstick);
//! - `floor`: the baseline's check, then the two posts a stored command makes, through
//!   deckhand's Web API client to the sink, awaited before the 200; no parse, no store. The
//!   most any design that keeps its posts up with its acks can reach on these cores;
//! - `sqlite`: deckhand on a SQLite file (WAL);
//! - `postgres`: deckhand on a database created for the run on `DECKHAND_TEST_PG_URL`
//!   (default postgres://postgres@127.0.0.1:5432/postgres) and dropped after it.
//!
//! Each target gets
//! 1. capacity: `SLACK_BENCH_CONCURRENCY` (16) tasks back to back for `SLACK_BENCH_SECS`
//!    (5 s): acks per second, p50/p99;
//! 2. fixed rate: `SLACK_BENCH_RATE` (200) commands per second, open loop, for
//!    `SLACK_BENCH_SECS`; latency from each command's scheduled send time (no coordinated
//!    omission).
//!
//! 3. wrk (when installed): `SLACK_BENCH_CONCURRENCY` connections, 2 threads, for
//!    `SLACK_BENCH_SECS`, pre-signed commands (`slack/signed.lua`): requests/s, p50/p99.
//!
//! The bench's own generator runs in the same process on the same cores as the server; wrk
//! runs beside it on the same cores.

#[path = "../tests/support/slack/mod.rs"]
mod slack_fake;

#[path = "slack/cpu.rs"]
mod cpu;
#[path = "slack/load.rs"]
mod load;
#[path = "slack/servers.rs"]
mod servers;
#[path = "slack/wrk.rs"]
mod wrk;

use std::{sync::Arc, time::Duration};

use load::{Client, Outcome};
use servers::{Db, Sink};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Settings {
    secs: u64,
    rate: u64,
    concurrency: usize,
}

struct Measured {
    name: String,
    capacity: Outcome,
    fixed: Outcome,
    /// CPU per command over the fixed-rate phase.
    cpu: cpu::PerCommand,
    wrk: Option<wrk::Wrk>,
}

fn main() {
    // deckhand's own log lines (RUST_LOG=warn, say) on stderr, beside the figures.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = Settings {
        secs: env_or("SLACK_BENCH_SECS", 5),
        rate: env_or("SLACK_BENCH_RATE", 200),
        concurrency: env_or("SLACK_BENCH_CONCURRENCY", 16) as usize,
    };
    let parts = std::env::var("SLACK_BENCH_PARTS").unwrap_or_else(|_| "sqlite".into());
    let sink = Sink::start().await;
    let mut results = Vec::new();
    for part in parts.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let measured = match part {
            "baseline" => baseline(&s, &sink).await,
            "floor" => floor(&s, &sink).await,
            "sqlite" => deckhand(&s, &sink, false).await,
            "postgres" => deckhand(&s, &sink, true).await,
            other => panic!("SLACK_BENCH_PARTS: '{other}' is not baseline, floor, sqlite or postgres"),
        };
        results.push(measured);
    }
    summary(&s, &results);
}

/// The Web API calls made for this target, once they reach two per stored request or 120 s
/// pass: the sink can go quiet for a few seconds while the outbox is still behind the acks
/// (seen on PostgreSQL), so a quiet sink alone does not mean the posts are done.
async fn catch_up(sink: &Sink, before: usize, stored: i64) -> usize {
    let started = std::time::Instant::now();
    let behind = |calls: usize| (calls as i64) < 2 * stored;
    if !behind(sink.calls() - before) || std::env::var_os("SLACK_BENCH_NO_POSTS").is_some() {
        return sink.calls() - before;
    }
    while behind(sink.calls() - before) && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let calls = sink.calls() - before;
    if !behind(calls) {
        println!(
            "  the posts caught up {:.1} s after the last measurement",
            started.elapsed().as_secs_f64()
        );
    }
    calls
}

async fn baseline(s: &Settings, sink: &Sink) -> Measured {
    let addr = servers::start_baseline().await;
    let client = Arc::new(Client::new(
        format!("http://{addr}/slack/commands"),
        format!("http://{}/response/bench", sink.addr),
    ));
    measure("verify-only baseline", s, &client, sink, false).await
}

async fn floor(s: &Settings, sink: &Sink) -> Measured {
    let addr = servers::start_floor(sink).await;
    let client = Arc::new(Client::new(
        format!("http://{addr}/slack/commands"),
        format!("http://{}/response/bench", sink.addr),
    ));
    measure("floor: verify and post twice, no store", s, &client, sink, false).await
}

async fn deckhand(s: &Settings, sink: &Sink, postgres: bool) -> Measured {
    let name = if postgres {
        "deckhand, PostgreSQL"
    } else {
        "deckhand, SQLite"
    };
    let db = Db::new(postgres).await;
    let (running, _config_dir) = servers::start_deckhand(&db, sink).await;
    let client = Arc::new(Client::new(
        format!("http://{}/slack/commands", running.addr),
        format!("http://{}/response/bench", sink.addr),
    ));
    let calls_before = sink.calls();
    let m = measure(name, s, &client, sink, true).await;
    let acked = m.capacity.ok + m.fixed.ok;
    let stored = servers::stored(&running).await;
    let calls = catch_up(sink, calls_before, stored).await;
    println!(
        "  {name}: stored requests {stored} (acked {acked} by the bench's generator, plus wrk's and the warm-up); Slack Web API calls {calls}; handed to the deliverer in memory {} (the rest found by its poll)",
        running.app.surfaces.handed_over()
    );
    if std::env::var_os("SLACK_BENCH_NO_POSTS").is_none() && (calls as i64) < 2 * stored {
        println!(
            "  WARNING: fewer posts than two per stored request: the outbox fell behind or stalled; these figures are not valid"
        );
    }
    running.shutdown().await;
    db.drop_db().await;
    m
}

async fn measure(name: &str, s: &Settings, client: &Arc<Client>, sink: &Sink, posts: bool) -> Measured {
    let sink = posts.then_some(sink);
    println!("{name}:");
    client.warm_up(50).await;
    let capacity = load::closed(client, s.concurrency, s.secs).await;
    println!(
        "  capacity, {} tasks back to back, {} s: {:.0} acks/s, p50 {}, p99 {}, {} errors",
        s.concurrency,
        s.secs,
        capacity.rate(),
        ms(capacity.percentile(0.50)),
        ms(capacity.percentile(0.99)),
        capacity.errors
    );
    // Let the surface post the backlog of root messages before measuring latency.
    if let Some(sink) = sink {
        sink.settle("capacity phase", Duration::from_secs(60)).await;
    }
    let before = cpu::sample();
    let fixed = load::open(client, s.rate, s.secs).await;
    let cpu = before.per_command(&cpu::sample(), fixed.ok + fixed.errors);
    println!(
        "  fixed rate {}/s for {} s, open loop: p50 {}, p99 {}, max {}, {} errors; CPU per command {} µs on the machine, {} µs in this process",
        s.rate,
        s.secs,
        ms(fixed.percentile(0.50)),
        ms(fixed.percentile(0.99)),
        ms(fixed.max()),
        fixed.errors,
        cpu.machine.as_micros(),
        cpu.process.as_micros()
    );
    if let Some(sink) = sink {
        sink.settle("fixed-rate phase", Duration::from_secs(60)).await;
    }
    let wrk = with_wrk(name, s, client).await;
    if let Some(sink) = sink {
        sink.settle("wrk phase", Duration::from_secs(60)).await;
    }
    Measured {
        name: name.to_owned(),
        capacity,
        fixed,
        cpu,
        wrk,
    }
}

/// wrk's closed-loop figures, run on a blocking thread so the in-process server keeps its
/// runtime threads.
async fn with_wrk(name: &str, s: &Settings, client: &Arc<Client>) -> Option<wrk::Wrk> {
    if !wrk::available() {
        println!("  wrk: not installed (apt-get install wrk), skipped");
        return None;
    }
    let (url, response_url) = (client.url.clone(), client.response_url.clone());
    let (conns, secs) = (s.concurrency, s.secs);
    // wrk refuses fewer connections than threads.
    let threads = conns.clamp(1, 2);
    let tag = format!("{}.{}", name.len(), slack_fake::now());
    let w = tokio::task::spawn_blocking(move || wrk::run(&url, &response_url, &tag, threads, conns, secs))
        .await
        .expect("wrk thread");
    println!(
        "  wrk, {conns} connections, {threads} threads, {secs} s: {:.0} acks/s, p50 {}, p99 {}, {} errors{}",
        w.rate,
        w.p50,
        w.p99,
        w.errors,
        if w.wraps > 0 {
            format!(
                " ({} times a thread ran out of new commands and repeated them)",
                w.wraps
            )
        } else {
            String::new()
        }
    );
    Some(w)
}

fn summary(s: &Settings, results: &[Measured]) {
    println!();
    println!(
        "| path | acks/s, {} tasks | p50 | p99 | {}/s open loop: p50 | p99 | max | errors |",
        s.concurrency, s.rate
    );
    println!("|---|---|---|---|---|---|---|---|");
    for m in results {
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            m.name,
            m.capacity.rate(),
            ms(m.capacity.percentile(0.50)),
            ms(m.capacity.percentile(0.99)),
            ms(m.fixed.percentile(0.50)),
            ms(m.fixed.percentile(0.99)),
            ms(m.fixed.max()),
            m.capacity.errors + m.fixed.errors
        );
    }
    if results.iter().any(|m| m.wrk.is_some()) {
        println!();
        println!(
            "| path | wrk acks/s, {} connections | p50 | p99 | errors |",
            s.concurrency
        );
        println!("|---|---|---|---|---|");
        for m in results {
            if let Some(w) = &m.wrk {
                println!("| {} | {:.0} | {} | {} | {} |", m.name, w.rate, w.p50, w.p99, w.errors);
            }
        }
    }
    let Some(base) = results.iter().find(|m| m.name.contains("baseline")) else {
        return;
    };
    for m in results.iter().filter(|m| !m.name.contains("baseline")) {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!(
            "ratio {} / baseline: acks/s {:.3} (1/{:.1}); capacity p99 {:.1}x; fixed-rate p99 {:.1}x",
            m.name,
            m.capacity.rate() / base.capacity.rate(),
            base.capacity.rate() / m.capacity.rate().max(1e-9),
            ratio(m.capacity.percentile(0.99), base.capacity.percentile(0.99)),
            ratio(m.fixed.percentile(0.99), base.fixed.percentile(0.99)),
        );
        println!(
            "ratio {} / baseline: machine CPU per command at {}/s {:.1}x ({} against {} µs)",
            m.name,
            s.rate,
            m.cpu.machine.as_secs_f64() / base.cpu.machine.as_secs_f64().max(1e-9),
            m.cpu.machine.as_micros(),
            base.cpu.machine.as_micros()
        );
        if let (Some(w), Some(b)) = (&m.wrk, &base.wrk) {
            println!(
                "ratio {} / baseline under wrk: acks/s {:.3} (1/{:.1})",
                m.name,
                w.rate / b.rate.max(1e-9),
                b.rate / w.rate.max(1e-9)
            );
        }
    }
}
