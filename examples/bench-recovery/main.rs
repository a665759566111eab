//! Recovery and cross-replica wake-up figures, with real processes on PostgreSQL:
//!
//! 1. recovery after kill -9: a replica running a rerunnable request is SIGKILLed; the time
//!    until the other replica runs it again (RUNS runs, each on a fresh database);
//! 2. approval-to-start latency: a request approved on replica B starts on replica A, whose
//!    worker B's NOTIFY wakes (SAMPLES requests).
//!
//! Both use the shipped `worker.lease` and `worker.poll_interval`. Every wait has a deadline;
//! anything that does not happen in time ends the bench with an error (exit status 1).
//!
//! scripts/bench-recovery.sh [RUNS] [SAMPLES]
//! (cargo run --release --example bench-recovery -- [RUNS] [SAMPLES])
//!
//! The same binary is also the replica: with DECKHAND_BENCH_REPLICA_CONFIG set it serves
//! that configuration (see replica.rs). PostgreSQL: DECKHAND_BENCH_PG_ADMIN_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres (databases are created and dropped there).

mod approval;
mod harness;
mod recovery;
mod replica;

use anyhow::Context;
use deckhand::configuration::Config;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Ok(config) = std::env::var(replica::REPLICA_CONFIG) {
        return replica::run(&config);
    }
    let mut args = std::env::args().skip(1);
    let runs: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("RUNS")?
        .unwrap_or(10);
    let samples: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("SAMPLES")?
        .unwrap_or(50);
    anyhow::ensure!(runs > 0 && samples > 0, "RUNS and SAMPLES must be at least 1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(bench(runs, samples))
}

async fn bench(runs: usize, samples: usize) -> anyhow::Result<()> {
    let defaults = Config::defaults()?;
    let (lease, poll) = (defaults.worker.lease, defaults.worker.poll_interval);
    println!(
        "worker.lease {}, worker.poll_interval {} (shipped defaults), PostgreSQL, {} cores",
        lease.as_duration().as_secs_f64(),
        poll.as_duration().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let dir = tempfile::tempdir()?;
    let api = harness::Api::default();

    println!("\nrecovery after kill -9 ({runs} runs, each two fresh replicas on a fresh database)");
    println!(
        "{:>4} {:>11} {:>19} {:>21}",
        "run", "recovery", "lease left at kill", "then until restart"
    );
    let mut recoveries = Vec::with_capacity(runs);
    for run in 1..=runs {
        let s = recovery::run_once(&api, dir.path(), run).await?;
        println!(
            "{run:>4} {:>8} ms {:>16} ms {:>18} ms",
            s.recovery_ms,
            s.lease_left_ms,
            s.recovery_ms - s.lease_left_ms
        );
        recoveries.push(s.recovery_ms);
    }

    println!("\napproval-to-start across replicas ({samples} requests approved on B, started on A)");
    let latencies = approval::run(&api, dir.path(), samples).await?;

    let r = Stats::of(&recoveries);
    let l = Stats::of(&latencies);
    println!(
        "\nrecovery after kill -9:      median {:.0} ms, min {} ms, max {} ms ({runs} runs)",
        r.median, r.min, r.max
    );
    println!(
        "approval on B -> start on A: median {:.0} ms, p90 {} ms, min {} ms, max {} ms ({samples} requests)",
        l.median, l.p90, l.min, l.max
    );
    Ok(())
}

struct Stats {
    median: f64,
    p90: i64,
    min: i64,
    max: i64,
}

impl Stats {
    fn of(values: &[i64]) -> Self {
        let mut v = values.to_vec();
        v.sort_unstable();
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2] as f64
        } else {
            (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
        };
        // Nearest rank.
        let p90 = v[(n * 9).div_ceil(10).max(1) - 1];
        Self {
            median,
            p90,
            min: v[0],
            max: v[n - 1],
        }
    }
}
