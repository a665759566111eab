//! The child side: one deckhand replica (the real `startup::Builder`, HTTP server, worker,
//! outbox, LISTEN/NOTIFY) in a process of its own, so the parent can SIGKILL it.
//!
//! It serves two commands: `hold ENV` runs until cancelled and is safe to re-run (what a
//! dead replica's successor resumes), `tick ENV` finishes at once, and `gated ENV` needs
//! one ops approval and then finishes at once (what the approval latency is measured on). It prints
//! `ready <addr> <worker id>` once it listens and exits when its stdin closes, so a parent
//! that dies takes its replicas with it.

use std::{io::Read, sync::Arc, time::Duration};

use anyhow::Context;
use async_trait::async_trait;
use deckhand::{
    actions::{Action, ActionContext, ActionError},
    configuration::Config,
    startup::Builder,
};

/// The environment variable that turns the bench binary into a replica: the path of the
/// configuration file to serve with.
pub const REPLICA_CONFIG: &str = "DECKHAND_BENCH_REPLICA_CONFIG";

pub const REQUESTER: &str = "alice";
pub const APPROVER: &str = "olga";

pub fn token(user: &str) -> String {
    format!("bench-token-for-{user}-0123456789")
}

const SPECS: &str = r#"
- name: hold
  help: Runs until cancelled; safe to re-run after a crash
  pattern: '^hold (?P<env>\S+)$'
  args:
    env: { type: name }
  action: bench.hold
  allow: [group:developers]

- name: tick
  help: Finishes at once (queued work that wakes every replica)
  pattern: '^tick (?P<env>\S+)$'
  args:
    env: { type: name }
  action: bench.noop
  allow: [group:developers]

- name: gated
  help: Needs one ops approval, then finishes at once
  pattern: '^gated (?P<env>\S+)$'
  args:
    env: { type: name }
  action: bench.noop
  allow: [group:developers]
  approval: { approvers: [group:ops], count: 1 }
"#;

/// The configuration both replicas serve: the store, the worker's concurrency, and two
/// people. Lease and poll interval are left out, so the shipped defaults apply.
pub fn config_toml(store_url: &str, concurrency: usize) -> String {
    format!(
        r#"
[server]
signing_key = "bench-signing-key-shared-by-both-replicas"

[store]
url = "{store_url}"
max_connections = 8

[worker]
concurrency = {concurrency}

[groups.developers]
[groups.ops]

[users.{REQUESTER}]
groups = ["developers"]
tokens = ["{requester}"]

[users.{APPROVER}]
groups = ["ops"]
tokens = ["{approver}"]
"#,
        requester = token(REQUESTER),
        approver = token(APPROVER),
    )
}

struct Hold;

#[async_trait]
impl Action for Hold {
    fn name(&self) -> &'static str {
        "bench.hold"
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => Ok("held for an hour".into()),
            _ = ctx.cancel.cancelled() => Err(ActionError::Cancelled),
        }
    }
}

struct Noop;

#[async_trait]
impl Action for Noop {
    fn name(&self) -> &'static str {
        "bench.noop"
    }
    async fn run(&self, _ctx: &ActionContext) -> Result<String, ActionError> {
        Ok("done".into())
    }
}

/// Runs a replica until stdin closes (or the process is killed).
pub fn run(config_path: &str) -> anyhow::Result<()> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let config = Config::build(Some(config_path.as_ref()), std::iter::empty()).context("bench configuration")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let running = Builder::new(config)
            .action(Arc::new(Hold))
            .action(Arc::new(Noop))
            .specs(vec![("bench.yaml".into(), SPECS.into())])
            .start("127.0.0.1:0".parse()?)
            .await?;
        println!("ready {} {}", running.addr, running.app.worker_id);
        // The parent holds our stdin open for as long as it wants us.
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await?;
        running.kill().await;
        Ok(())
    })
}
