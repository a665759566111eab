//! Approval-to-start latency across replicas: replica B's only worker slot is busy, so a
//! request approved on B can only start on A, which learns of it by B's NOTIFY (the poll
//! interval, the shipped 2 s, is the safety net). Measured from the approval's stored time
//! to the request's stored `started_at`, both stamped by the store.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};

use crate::{
    harness::{Api, Db, Replica, write_config},
    replica::{APPROVER, REQUESTER},
};

pub async fn run(api: &Api, dir: &Path, samples: usize) -> anyhow::Result<Vec<i64>> {
    let db = Db::create().await?;
    let result = measure(api, dir, &db, samples).await;
    db.drop_now().await?;
    result
}

async fn measure(api: &Api, dir: &Path, db: &Db, samples: usize) -> anyhow::Result<Vec<i64>> {
    let config = write_config(dir, &db.url, 1)?;
    let first = Replica::start(&config)?;
    let second = Replica::start(&config)?;
    // Fill one replica's only slot, whichever claims it: that one is B.
    let busy = api.submit(&first, REQUESTER, "hold busy").await?;
    let held = api
        .wait_until(
            &first,
            &busy,
            Duration::from_secs(10),
            Duration::from_millis(10),
            "hold start",
            |v| v["request"]["state"] == "running",
        )
        .await?;
    let (a, b) = if held["request"]["worker"] == first.worker.as_str() {
        (second, first)
    } else {
        (first, second)
    };
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        latencies.push(one(api, &a, &b, n).await?);
    }
    Ok(latencies)
}

/// Submits and approves on B, waits until the request has finished on A, and returns the
/// milliseconds from the approval to the start.
async fn one(api: &Api, a: &Replica, b: &Replica, n: usize) -> anyhow::Result<i64> {
    let id = api.submit(b, REQUESTER, &format!("gated s{n}")).await?;
    api.approve(b, APPROVER, &id).await?;
    let done = api
        .wait_until(
            b,
            &id,
            Duration::from_secs(10),
            Duration::from_millis(5),
            "start on A",
            |v| v["request"]["state"] == "succeeded",
        )
        .await?;
    let request = &done["request"];
    if request["worker"] != a.worker.as_str() {
        bail!("expected replica A ({}) to run it: {done}", a.worker);
    }
    let started = request["started_at"].as_i64().context("started_at")?;
    let approved = done["approvals"][0]["at"].as_i64().context("approval time")?;
    Ok(started - approved)
}
