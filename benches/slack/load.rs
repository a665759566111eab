//! The slack bench's load: correctly signed slash commands, each with a new trigger_id,
//! sent closed loop (C tasks back to back) or open loop (a fixed rate, latency from each
//! command's scheduled send time, so a stall counts against every command it delays).
//!
//! Not `deckhand::loadgen`: its engine sends one fixed body with fixed headers, and every
//! command here needs its own body (trigger_id) and signature.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

use super::slack_fake::{command_form, now, signed_headers};

/// At most this many commands in flight in the open loop (as `deckhand::loadgen`); beyond it
/// a command waits for a slot, and the wait counts in its latency.
const MAX_IN_FLIGHT: usize = 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    http: reqwest::Client,
    pub url: String,
    pub response_url: String,
    seq: AtomicUsize,
}

impl Client {
    pub fn new(url: String, response_url: String) -> Self {
        Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(MAX_IN_FLIGHT)
                .timeout(TIMEOUT)
                .build()
                .expect("client"),
            url,
            response_url,
            seq: AtomicUsize::new(0),
        }
    }

    /// One signed slash command, a new trigger_id each time; true on 200.
    pub async fn send(&self) -> bool {
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
            .header("content-type", "application/x-www-form-urlencoded");
        for (k, v) in signed_headers(&body, now()) {
            req = req.header(k, v);
        }
        matches!(req.body(body).send().await, Ok(r) if r.status().is_success())
    }

    pub async fn warm_up(&self, n: usize) {
        for _ in 0..n {
            self.send().await;
        }
    }
}

/// What one run measured.
pub struct Outcome {
    pub ok: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted.
    pub latencies: Vec<Duration>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let sorted = &self.latencies;
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// `concurrency` tasks sending back to back for `secs`.
pub async fn closed(client: &Arc<Client>, concurrency: usize, secs: u64) -> Outcome {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    if c.send().await {
                        lat.push(sent.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut out = Outcome {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for w in workers {
        let (lat, errors) = w.await.expect("worker");
        out.latencies.extend(lat);
        out.errors += errors;
    }
    out.elapsed = started.elapsed();
    out.ok = out.latencies.len();
    out.latencies.sort();
    out
}

/// `rate` commands per second for `secs`, open loop. Failed commands count as errors, and
/// their latency (to the failure) is kept too, so a timeout still weighs on the percentiles.
pub async fn open(client: &Arc<Client>, rate: u64, secs: u64) -> Outcome {
    let total = (rate * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let t0 = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = t0 + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (c, slots) = (client.clone(), slots.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore");
            let good = c.send().await;
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
    Outcome {
        ok: total - errors,
        errors,
        elapsed: t0.elapsed(),
        latencies,
    }
}
