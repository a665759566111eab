//! Recovery after kill -9: two replicas on one fresh database, a long rerunnable request
//! running on one of them, that process SIGKILLed, and the time until the other one has
//! the request running again (its new `started_at`, stamped by the store, minus the moment
//! of the kill).

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};
use deckhand::{configuration::Config, domain::now_ms};

use crate::{
    harness::{Api, Db, Replica, write_config},
    replica::REQUESTER,
};

/// One kill and takeover.
pub struct Sample {
    /// From the SIGKILL to the store's `started_at` of the second attempt.
    pub recovery_ms: i64,
    /// How much of the dead replica's lease was left at the kill (as read just before it).
    pub lease_left_ms: i64,
}

pub async fn run_once(api: &Api, dir: &Path, run: usize) -> anyhow::Result<Sample> {
    let db = Db::create().await?;
    let result = measure(api, dir, &db, run).await;
    db.drop_now().await?;
    result
}

async fn measure(api: &Api, dir: &Path, db: &Db, run: usize) -> anyhow::Result<Sample> {
    let defaults = Config::defaults()?;
    let config = write_config(dir, &db.url, defaults.worker.concurrency)?;
    let first = Replica::start(&config)?;
    let second = Replica::start(&config)?;
    let id = api.submit(&first, REQUESTER, &format!("hold run{run}")).await?;
    let running = api
        .wait_until(
            &first,
            &id,
            Duration::from_secs(10),
            Duration::from_millis(10),
            "first start",
            |v| v["request"]["state"] == "running",
        )
        .await?;
    let holder = running["request"]["worker"].as_str().unwrap_or_default();
    let (mut victim, survivor) = if holder == first.worker {
        (first, second)
    } else {
        (second, first)
    };
    let poll = defaults.worker.poll_interval.as_duration();
    // Left alone, the survivor's poll would tick in step with the victim's heartbeat (both
    // count from the submission's wake-up), which a live system with other traffic is not:
    // queue other work at a random moment to shift the survivor's poll phase, then kill at
    // a random moment of the heartbeat.
    tokio::time::sleep(random_below(poll)?).await;
    let tick = api.submit(&survivor, REQUESTER, &format!("tick run{run}")).await?;
    api.wait_until(
        &survivor,
        &tick,
        Duration::from_secs(10),
        Duration::from_millis(10),
        "tick",
        |v| v["request"]["state"] == "succeeded",
    )
    .await?;
    tokio::time::sleep(random_below(poll)?).await;
    let before = api.get(&survivor, &id).await?;
    let lease_until = before["request"]["lease_until"].as_i64().context("lease_until")?;
    let killed_at = now_ms();
    victim.kill()?;

    let taken = api
        .wait_until(
            &survivor,
            &id,
            Duration::from_secs(30),
            Duration::from_millis(20),
            "takeover",
            |v| {
                v["request"]["state"] == "running"
                    && v["request"]["worker"] == survivor.worker.as_str()
                    && v["request"]["attempts"].as_i64() >= Some(2)
            },
        )
        .await?;
    let said = taken["events"].to_string();
    if !said.contains("resuming: deckhand restarted") {
        bail!("the request's thread does not say it is resuming: {said}");
    }
    let started = taken["request"]["started_at"].as_i64().context("started_at")?;
    Ok(Sample {
        recovery_ms: started - killed_at,
        lease_left_ms: lease_until - killed_at,
    })
}

fn random_below(limit: Duration) -> anyhow::Result<Duration> {
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
    Ok(Duration::from_millis(getrandom::u64().context("random")? % ms))
}
