//! Chaos: deckhand replicas killed (as a crash would) and restarted at random points while
//! Slack, Discord and API traffic flows: instant commands, the chaos effect, real deploys,
//! and approval-gated ones approved by a double click that reaches both replicas at once.
//! The same test runs with two replicas on PostgreSQL and with one on SQLite, 200 requests
//! and three kills each.
//!
//! What it asserts, per request (chaos/effect.rs, chaos/deploy.rs, chaos/check.rs):
//! - exactly once, counted in the Kubernetes test API server the replicas share:
//!   - the chaos effect (`effect IMAGE to ENV`, the test action `chaos.effect`) creates a
//!     ConfigMap named from its request id: its effect is one countable create per run. One
//!     that succeeded left exactly one object and made exactly one create; only when the
//!     store shows a takeover (a `resuming` event: its replica died while it ran) may it have
//!     made one more create per takeover, and the request's `attempts` must equal
//!     1 + takeovers. So two replicas running one request without a kill fails the test,
//!     though the second create cannot make a second object (it is answered 409);
//!   - the real `deploy` (every eighth request, a third of them to prod, so gated) goes to
//!     environments deckhand created through its own API before the traffic (so they carry
//!     its labels and tiers). One that succeeded made exactly one server-side apply of its
//!     Deployment (one more per takeover, as above) and left it rolled out;
//!   - nothing else created an effect or applied a Deployment;
//! - every stored event reached its thread once and in order (a repeat only for the call in
//!   flight at a crash);
//! - no request is left stuck: every request, instant ones too, ends, and every delivery is
//!   delivered, within a deadline, or the test fails naming them.
//!
//! The kill is in-process (`Running::kill`), not SIGKILL of a child process: the chaos
//! effect is a test action registered through `Builder::action`, which a `deckhand serve`
//! child does not have (tests/durability.rs and examples/bench-recovery kill real
//! processes). For what is asserted here it acts as a crash: it aborts the worker, whose
//! dropped JoinSet aborts every action run and its lease heartbeat; the outbox, whose
//! deliveries in flight are cut with their lease held; the HTTP accept loop and the LISTEN
//! task; then closes the store pool, so nothing of that replica writes again once the
//! statements under way end. The store sees what it sees after SIGKILL: leases no longer
//! renewed, taken over after they run out. Two things outlive the abort, and the rig
//! accounts for both: HTTP handlers already accepted go on until their next store call fails
//! (a transaction already under way may commit, as it could just before a real crash; any
//! answer from a killed replica counts as never sent, and the platform sends it again), and
//! inline actions a handler spawned (`help`, `whoami` here: no effect in the cluster) whose
//! store writes then fail. The downtime between kill and restart (0-300 ms) is a drawn
//! scenario parameter, not a wait.
//!
//! The run is drawn from a seed, printed first; `CHAOS_SEED=<n>` repeats a run.

#[path = "chaos/check.rs"]
mod check;
#[path = "chaos/deploy.rs"]
mod deploy;
#[path = "support/discord/mod.rs"]
mod discord_fake;
#[path = "chaos/effect.rs"]
mod effect;
#[path = "support/kube/mod.rs"]
mod kube_fake;
#[path = "chaos/rig.rs"]
mod rig;
#[path = "support/slack/mod.rs"]
mod slack_fake;
mod support;
#[path = "chaos/traffic.rs"]
mod traffic;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use rig::Rig;
use serde_json::Value;
use support::{Backend, backends};
use traffic::{Job, Kind, Rng, Via};

/// Requests under way at once.
const CONCURRENCY: usize = 12;

fn seed() -> u64 {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("chaos seed: CHAOS_SEED={seed}");
    seed
}

/// `jobs` requests over the rig's replicas, one of them killed and restarted `kills` times
/// (after a random number of requests had started); then waits until everything settled.
async fn storm(rig: &Arc<Rig>, rng: &mut Rng, jobs: &[Job], kills: usize) {
    let n = jobs.len() as u64;
    let mut plan: Vec<(usize, usize, u64)> = (0..kills)
        .map(|_| {
            let at = (n / 10 + rng.below(n * 7 / 10)) as usize;
            (at, rng.below(rig.replicas() as u64) as usize, rng.below(300))
        })
        .collect();
    plan.sort();
    println!("kills (after n requests started, replica, ms down): {plan:?}");
    let started = Arc::new(AtomicUsize::new(0));
    let chaos = {
        let (rig, started) = (rig.clone(), started.clone());
        tokio::spawn(async move {
            for (at, slot, down) in plan {
                while started.load(Ordering::SeqCst) < at {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                rig.kill_and_restart(slot, Duration::from_millis(down)).await;
            }
        })
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for job in jobs.iter().cloned() {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        started.fetch_add(1, Ordering::SeqCst);
        let rig = rig.clone();
        set.spawn(async move {
            traffic::run(rig, job).await;
            drop(permit);
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("a request's traffic");
    }
    chaos.await.expect("the kills");
}

fn terminal(state: &str) -> bool {
    ["succeeded", "failed", "denied", "expired", "cancelled"].contains(&state)
}

/// Every request's view once all are terminal and no delivery is pending. Past `deadline`
/// the test fails, naming each request still not ended and each delivery still pending:
/// a request left stuck is what this test is for.
async fn settled(rig: &Rig, deadline: Duration) -> Vec<Value> {
    let until = Instant::now() + deadline;
    loop {
        let requests = rig.requests().await;
        let open: Vec<String> = requests
            .iter()
            .filter(|r| !terminal(r["state"].as_str().unwrap_or("")))
            .map(|r| format!("{} {} ({})", r["id"], r["state"], r["text"]))
            .collect();
        let mut pending = Vec::new();
        let mut views = Vec::new();
        if open.is_empty() {
            for r in &requests {
                let v = rig
                    .get(&format!("/api/v1/requests/{}", r["id"].as_str().unwrap_or("")))
                    .await;
                for d in v["deliveries"].as_array().into_iter().flatten() {
                    if d["state"] == "pending" {
                        pending.push(format!("{} delivery of event {}", r["id"], d["seq"]));
                    }
                }
                views.push(v);
            }
            if pending.is_empty() {
                return views;
            }
        }
        assert!(
            Instant::now() < until,
            "stuck after {deadline:?}: {} requests not ended: {open:?}; {} deliveries pending: {pending:?}",
            open.len(),
            pending.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each job is one request; its effect happened exactly once in the test API server
/// (`effect::check`); a double click approved once.
fn check_requests(rig: &Rig, jobs: &[Job], setup: &[String], views: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_text: HashMap<(String, String), usize> = HashMap::new();
    for v in views {
        let r = &v["request"];
        let key = (
            r["surface"].as_str().unwrap_or("").to_owned(),
            r["text"].as_str().unwrap_or("").to_owned(),
        );
        *by_text.entry(key).or_default() += 1;
    }
    let mut wanted: HashMap<(String, String), usize> = HashMap::new();
    for job in jobs {
        let surface = match job.via {
            Via::Slack => "slack",
            Via::Discord => "discord",
            Via::Api => "api",
        };
        *wanted.entry((surface.to_owned(), job.text())).or_default() += 1;
    }
    for text in setup {
        *wanted.entry(("api".to_owned(), text.clone())).or_default() += 1;
    }
    if by_text != wanted {
        let mut diff: Vec<String> = wanted
            .iter()
            .filter(|(k, n)| by_text.get(*k) != Some(n))
            .map(|(k, n)| format!("{k:?}: sent {n}, stored {:?}", by_text.get(k)))
            .collect();
        diff.extend(
            by_text
                .keys()
                .filter(|k| !wanted.contains_key(*k))
                .map(|k| format!("{k:?}: never sent")),
        );
        problems.push(format!("requests stored are not the requests sent: {diff:?}"));
    }
    let effects = effect::Effects::of(&rig.kube);
    let ids: Vec<&str> = views.iter().filter_map(|v| v["request"]["id"].as_str()).collect();
    problems.extend(
        effects
            .strays(&ids)
            .into_iter()
            .map(|s| format!("the test API server has {s}, of no stored request")),
    );
    let applies = deploy::Applies::of(&rig.kube);
    problems.extend(
        applies
            .strays(views)
            .into_iter()
            .map(|s| format!("the test API server saw {s}")),
    );
    for v in views {
        let r = &v["request"];
        let id = r["id"].as_str().unwrap_or("");
        if deploy::is_deploy(v) {
            problems.extend(deploy::check(v, &applies, &rig.kube));
        } else {
            let runs = r["args"]["env"].as_str().map(|e| rig.probe.count(e));
            problems.extend(effect::check(v, &effects, runs));
        }
        let approvals = v["approvals"].as_array().map_or(0, Vec::len);
        if r["approval"].is_object() && approvals != 1 {
            problems.push(format!("{id}: {approvals} approvals recorded for a double click"));
        }
    }
    problems
}

/// Every delivery delivered; each Slack and Discord thread as its stored events say.
fn check_threads(rig: &Rig, views: &[Value]) -> Vec<String> {
    let (slack, discord) = (rig.slack.calls(), rig.discord.fake.calls());
    let mut problems = Vec::new();
    for v in views {
        let id = v["request"]["id"].as_str().unwrap_or("");
        let stuck: Vec<&Value> = v["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["state"] != "delivered")
            .collect();
        if !stuck.is_empty() {
            problems.push(format!("{id}: deliveries not delivered: {stuck:?}"));
        }
        match v["request"]["surface"].as_str() {
            Some("slack") => problems.extend(check::slack_thread(v, &slack)),
            Some("discord") => problems.extend(check::discord_thread(v, &discord)),
            _ => {}
        }
    }
    problems
}

async fn run_chaos(backend: Backend, replicas: usize, requests: usize) {
    let seed = seed();
    let began = Instant::now();
    let mut rng = Rng::new(seed);
    let rig = Rig::start(backend, replicas).await;
    let setup = deploy::environments(&rig).await;
    let jobs: Vec<Job> = (1..=requests).map(|n| Job::random(n, &mut rng, replicas)).collect();
    storm(&rig, &mut rng, &jobs, 3).await;
    let views = settled(&rig, Duration::from_secs(60)).await;
    let retried = views
        .iter()
        .flat_map(|v| v["deliveries"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["attempts"].as_i64() > Some(1))
        .count();
    let gated = jobs.iter().filter(|j| j.kind.gated()).count();
    let deploys = jobs
        .iter()
        .filter(|j| matches!(j.kind, Kind::Deploy | Kind::GatedDeploy))
        .count();
    println!(
        "{backend:?}: {} requests ({gated} approval-gated, {deploys} real deploys, {} setup), {retried} deliveries retried, {}, {}, {:?}",
        views.len(),
        setup.len(),
        effect::Effects::of(&rig.kube).summary(),
        deploy::Applies::of(&rig.kube).summary(),
        began.elapsed()
    );
    let mut problems = check_requests(&rig, &jobs, &setup, &views);
    problems.extend(check_threads(&rig, &views));
    rig.shutdown().await;
    assert!(
        problems.is_empty(),
        "CHAOS_SEED={seed}: {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_under_kills_do_everything_once_and_lose_no_event() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("note: PostgreSQL is off; two replicas need it (SQLite serves one)");
        return;
    }
    run_chaos(Backend::Postgres, 2, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_sqlite_replica_killed_and_restarted_loses_nothing() {
    run_chaos(Backend::Sqlite, 1, 200).await;
}
