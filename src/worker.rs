//! The worker: claims queued requests with bounded concurrency, sweeps expired approvals
//! and abandoned leases, and drains in-flight work on shutdown.

use std::{sync::Arc, time::Duration};

use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{app::App, cluster::ClusterError};

pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let cfg = &app.config.worker;
    let slots = Arc::new(Semaphore::new(cfg.concurrency));
    let mut tasks = JoinSet::new();
    let poll = cfg.poll_interval.as_duration();
    tracing::info!(worker = %app.worker_id, concurrency = cfg.concurrency, "worker started");
    let reaper = tokio::spawn(reap_environments(app.clone(), shutdown.clone()));
    let hits = tokio::spawn(crate::proxy::flush_hits(app.clone(), shutdown.clone()));
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        // Sweeps are periodic; a wake-up for new work only claims.
        if last_sweep.is_none_or(|t| t.elapsed() >= poll) {
            last_sweep = Some(std::time::Instant::now());
            if let Err(e) = app.expire_overdue().await {
                tracing::warn!(error = %e, "could not sweep expired approvals");
            }
            if let Err(e) = app.recover_abandoned().await {
                tracing::warn!(error = %e, "could not recover abandoned requests");
            }
            if let Err(e) = app.recover_decided().await {
                tracing::warn!(error = %e, "could not move on decided requests");
            }
        }
        // Join every finished run (a JoinSet holds a finished task until joined).
        while tasks.try_join_next().is_some() {}
        claim_available(&app, &slots, &mut tasks).await;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = app.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = reaper.await;
    let _ = hits.await;
    let grace = cfg.shutdown_grace.as_duration();
    tracing::info!(running = tasks.len(), grace = ?grace, "worker draining");
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        // Their leases run out and another start (or replica) picks them up.
        tracing::warn!(
            left = tasks.len(),
            "shutdown grace ran out; leaving requests to lease recovery"
        );
        tasks.abort_all();
    }
}

/// Deletes expired environments and warns their owners, on a fixed period.
async fn reap_environments(app: Arc<App>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(app.config.kubernetes.reaper_interval.as_duration());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match crate::actions::reap(&app).await {
            Ok((0, 0)) => {}
            Ok((deleted, warned)) => tracing::info!(deleted, warned, "reaper pass"),
            // No cluster configured (a laptop, the core tests): nothing to reap.
            Err(ClusterError::NotConfigured(e)) => tracing::debug!(error = %e, "reaper: no cluster"),
            Err(e) => tracing::warn!(error = %e, "reaper pass failed"),
        }
    }
}

async fn claim_available(app: &Arc<App>, slots: &Arc<Semaphore>, tasks: &mut JoinSet<()>) {
    let free = slots.available_permits();
    if free == 0 {
        return;
    }
    let ids = match app.store.queued(free as i64).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "could not list queued requests");
            return;
        }
    };
    for id in ids {
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            return;
        };
        match app.claim(&id).await {
            Ok(Some(request)) => {
                let app = app.clone();
                tasks.spawn(async move {
                    let id = request.id.clone();
                    if let Err(e) = app.execute(request).await {
                        tracing::error!(request = %id, error = %e, "could not record the end of a request");
                    }
                    drop(permit);
                });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(request = %id, error = %e, "could not claim");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
