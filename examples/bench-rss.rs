//! Memory of a running deckhand (issue 14): the release `deckhand serve` as a child process,
//! its resident set (VmRSS from /proc) read
//! 1. idle: after start, once it has been quiet for a few seconds;
//! 2. loaded: after COMMANDS (100,000) signed slash commands, each needing an approval (a
//!    durable write of request, events, audit and deliveries, then the root message and the
//!    approval prompt posted to a local Slack Web API sink), sent by 32 tasks back to back,
//!    once the posts have settled; and its peak (VmHWM);
//! 3. idle again, 10 s later.
//!
//! On SQLite, then on PostgreSQL (a database created on DECKHAND_TEST_PG_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres, and dropped after). Linux only (/proc).
//!
//! scripts/bench-rss.sh [COMMANDS]  (builds `deckhand` and this example in release)

#[path = "../tests/support/slack/mod.rs"]
mod slack_fake;

#[allow(dead_code)]
#[path = "../benches/slack/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "../benches/slack/servers.rs"]
mod servers;

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use servers::{Db, Sink};

const TASKS: usize = 32;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let commands: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("COMMANDS must be a number")?
        .unwrap_or(100_000);
    let bin = std::env::var("RSS_BENCH_BIN").unwrap_or_else(|_| "target/release/deckhand".into());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let sink = Sink::start().await;
        let mut rows = Vec::new();
        // An optional second argument runs one store only: `sqlite` or `postgres`.
        let only = std::env::args().nth(2);
        for postgres in [false, true] {
            if only
                .as_deref()
                .is_some_and(|o| o != if postgres { "postgres" } else { "sqlite" })
            {
                continue;
            }
            rows.push(measure(&bin, &sink, postgres, commands).await?);
        }
        println!();
        println!("| store | idle at start | after {commands} commands | peak | idle 10 s later |");
        println!("|---|---|---|---|---|");
        for r in rows {
            println!("{r}");
        }
        Ok(())
    })
}

struct Child9(Child);

impl Drop for Child9 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (VmRSS, VmHWM) in MiB.
fn rss(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("read /proc")?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} not in /proc/{pid}/status"))?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .context("no value")?
            .parse()
            .context("not a number")?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

async fn start(bin: &str, db: &Db, sink: &Sink, dir: &std::path::Path) -> anyhow::Result<(Child9, String)> {
    // The slack bench's configuration and command (stored, waiting for an approval).
    let config = servers::write_config(dir, db, sink);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Child9(
        Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("start {bin} (run scripts/bench-rss.sh, which builds it)"))?,
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(http.get(format!("{url}/readyz")).send().await, Ok(r) if r.status().is_success()) {
        if Instant::now() > deadline {
            bail!("deckhand was not ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((child, url))
}

async fn measure(bin: &str, sink: &Sink, postgres: bool, commands: usize) -> anyhow::Result<String> {
    let name = if postgres { "PostgreSQL" } else { "SQLite" };
    println!("{name}:");
    let db = Db::new(postgres).await;
    let dir = tempfile::tempdir()?;
    let (child, url) = start(bin, &db, sink, dir.path()).await?;
    let calls_before = sink.calls();
    let pid = child.0.id();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle, _) = rss(pid)?;
    println!("  idle after start: {idle:.1} MiB");

    let client = Arc::new(load::Client::new(
        format!("{url}/slack/commands"),
        format!("http://{}/response/bench", sink.addr),
    ));
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, sent) = (client.clone(), sent.clone());
            tokio::spawn(async move {
                let mut errors = 0usize;
                while sent.fetch_add(1, Ordering::Relaxed) < commands {
                    errors += usize::from(!client.send().await);
                }
                errors
            })
        })
        .collect();
    let mut errors = 0;
    for w in workers {
        errors += w.await?;
    }
    println!(
        "  {commands} commands in {:.1} s, {errors} errors",
        started.elapsed().as_secs_f64()
    );
    sink.settle("commands", Duration::from_secs(600)).await;
    println!(
        "  Slack Web API calls: {} (the root message and the approval prompt of each command)",
        sink.calls() - calls_before
    );
    let (loaded, peak) = rss(pid)?;
    println!("  after the commands and their posts: {loaded:.1} MiB (peak {peak:.1} MiB)");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (later, _) = rss(pid)?;
    println!("  idle 10 s later: {later:.1} MiB");
    drop(child);
    db.drop_db().await;
    Ok(format!(
        "| {name} | {idle:.1} MiB | {loaded:.1} MiB | {peak:.1} MiB | {later:.1} MiB |"
    ))
}
