//! loadtest.run: a Job of load generators in the environment, followed to its end; the
//! pods' summaries merged, stored per target and posted as a table with the change against
//! the previous run, a chart upload and the thresholds' verdict. The Job is deleted (with
//! its pods) whatever happens: success, failure, timeout or cancel.
//!
//! A URL target is inside the environment only when the load generator's own URI parser
//! reads its host as a Service of the environment (loadtest/target.rs); anything else is
//! `outside`, which the shipped spec sends to ops. The pods may reach only their namespace
//! and DNS (cluster/egress.rs) unless ops approved the run as outside.

mod ask;
mod report;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;

use super::{Action, ActionContext, ActionError, ActionRegistry, env::env_facts};
use crate::{
    app::App,
    command_buttons::CommandButton,
    commands::Args,
    identity::Principal,
    loadgen::{Report, format_duration},
    loadtest::{
        LoadtestConfig,
        job::{JobEnd, JobProgress, LoadJob, PodResult},
        target::Reach,
    },
};
use ask::{Ask, resolve};

pub fn register(registry: &mut ActionRegistry) {
    registry.register(Arc::new(Run));
}

fn bad(msg: impl Into<String>) -> ActionError {
    ActionError::Failed(msg.into())
}

fn progress_line(p: JobProgress, workers: u32) -> String {
    let pending = i64::from(workers) - i64::from(p.active) - i64::from(p.succeeded) - i64::from(p.failed);
    let mut parts = vec![format!("{} running", p.active)];
    if pending > 0 {
        parts.push(format!("{pending} starting"));
    }
    parts.push(format!("{} done", p.succeeded));
    if p.failed > 0 {
        parts.push(format!("{} failed", p.failed));
    }
    format!("load generators: {} of {workers}", parts.join(", "))
}

/// Deletes the Job when the action is dropped before it could (a cancel stops the action
/// by dropping it mid-way).
struct JobGuard {
    app: Arc<App>,
    job: Option<(String, String)>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let Some((ns, name)) = self.job.take() else { return };
        let app = self.app.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let deleted = match app.clusters.locate(&ns).await {
                        Ok(cluster) => cluster.delete_load_job(&ns, &name).await,
                        Err(e) => Err(e),
                    };
                    match deleted {
                        Ok(()) => tracing::info!(job = %name, "load test stopped; Job deleted"),
                        Err(e) => tracing::warn!(job = %name, error = %e, "could not delete the load test Job"),
                    }
                });
            }
            Err(_) => tracing::warn!(job = %name, "no runtime left to delete the load test Job"),
        }
    }
}

struct Run;

impl Run {
    /// Creates the Job, follows it and reads the pods' summaries. The caller deletes it.
    async fn drive(
        &self,
        ctx: &ActionContext,
        job: &LoadJob,
        cfg: &LoadtestConfig,
    ) -> Result<Vec<PodResult>, ActionError> {
        let located = ctx.app.clusters.locate(&job.namespace).await?;
        let cluster = &*located;
        cluster.create_load_job(job, cfg).await?;
        let egress = if job.approved_outside {
            "the environment's usual egress (approved as outside)".to_owned()
        } else {
            format!("egress limited to {} and DNS", job.namespace)
        };
        ctx.progress(format!(
            "Job {} started: {} pod(s) at {}/s each for {} against {}; {egress}",
            job.name,
            job.workers,
            job.worker_rate(),
            format_duration(job.duration),
            job.url
        ))
        .await?;
        // A button in the thread stops it (the click runs `cancel <id>` as whoever clicks).
        let stop = CommandButton::danger("Cancel test", format!("cancel {}", ctx.request.id));
        ctx.output(
            format!("`cancel {}` stops the test and deletes its Job", ctx.request.id),
            crate::events::Output::default().button(stop),
        )
        .await?;
        let limit = cfg.start_timeout.as_duration() + job.duration + job.timeout + Duration::from_secs(30);
        let follow = super::with_progress(ctx, |mut report| async move {
            let workers = job.workers;
            cluster
                .follow_load_job(&job.namespace, &job.name, |p| report(progress_line(p, workers)))
                .await
        });
        let end = tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
            end = tokio::time::timeout(limit, follow) => end,
        };
        let end = match end {
            Ok(end) => end?,
            Err(_) => {
                return Err(bad(format!(
                    "the load test did not finish within {} (are the pods stuck pending? check the environment's quota); the Job was deleted",
                    format_duration(limit)
                )));
            }
        };
        let results = cluster.load_job_results(&job.namespace, &job.request).await?;
        every_pod_reported(results, &end, job.workers)
    }
}

/// The pods' results when every pod reported one; else an error naming the pods that did
/// not, and why the Job ended.
fn every_pod_reported(results: Vec<PodResult>, end: &JobEnd, workers: u32) -> Result<Vec<PodResult>, ActionError> {
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            PodResult::Failed { pod, why } => Some(format!("{pod}: {why}")),
            PodResult::Report(_) => None,
        })
        .collect();
    if failures.is_empty() && !results.is_empty() {
        return Ok(results);
    }
    let why = match end {
        JobEnd::Failed(why) => format!(" ({why})"),
        JobEnd::Complete => String::new(),
    };
    let which = if failures.is_empty() {
        "no pods found".to_owned()
    } else {
        failures.join("; ")
    };
    Err(bad(format!(
        "{} of {workers} load generator pod(s) reported no result{why}: {which}",
        failures.len().max(1),
    )))
}

#[async_trait]
impl Action for Run {
    fn name(&self) -> &'static str {
        "loadtest.run"
    }
    /// Never: the first run may have sent its load already.
    fn rerunnable(&self) -> bool {
        false
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    /// The environment's facts, and `outside`: "yes" when the load goes to a URL whose host is
    /// not a Service of the environment, so a spec can ask ops before deckhand's pods send
    /// load elsewhere.
    fn fact_names(&self) -> &'static [&'static str] {
        &["tier", "owner", "mine", "outside"]
    }
    async fn facts(&self, app: &App, args: &Args, who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
        let ask = Ask::from_args(args, &app.config.loadtest)?;
        let mut facts = env_facts(app, ask.env.as_str(), who).await?;
        let outside = if ask.aim.reach(&ask.env).is_outside() {
            "yes"
        } else {
            "no"
        };
        facts.insert("outside".into(), outside.into());
        Ok(facts)
    }
    /// Tells approvers where the load goes when it leaves the environment, e.g. that
    /// `2852039166` is 169.254.169.254.
    fn approval_detail(&self, app: &App, args: &Args) -> Option<String> {
        let ask = Ask::from_args(args, &app.config.loadtest).ok()?;
        match ask.aim.reach(&ask.env) {
            Reach::Outside(why) => Some(format!("the load goes outside {}: {why}", ask.env)),
            Reach::Inside { .. } => None,
        }
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let cfg = &ctx.app.config.loadtest;
        let ask = Ask::from_args(&ctx.request.args, cfg)?;
        let url = resolve(ctx, &ask).await?;
        // Wider egress only for a run that is outside and that ops approved; anything else
        // (an inside run, or a spec that does not ask ops about outside) stays confined.
        let approved_outside = ask.aim.reach(&ask.env).is_outside() && ctx.request.approval.is_some();
        let job = LoadJob {
            namespace: ask.env.as_str().to_owned(),
            name: LoadJob::name_for(&ctx.request.id),
            request: ctx.request.id.clone(),
            url: url.clone(),
            workers: ask.workers,
            rate: ask.rate,
            duration: ask.duration,
            timeout: cfg.request_timeout.as_duration(),
            approved_outside,
        };
        let mut guard = JobGuard {
            app: ctx.app.clone(),
            job: Some((job.namespace.clone(), job.name.clone())),
        };
        let driven = self.drive(ctx, &job, cfg).await;
        // The pods have said what they had to say (or never will): remove them either way.
        // The guard stays armed until the delete is done: a cancel drops this future even
        // while it deletes.
        let deleted = match ctx.app.clusters.locate(&job.namespace).await {
            Ok(cluster) => cluster.delete_load_job(&job.namespace, &job.name).await,
            Err(e) => Err(e),
        };
        guard.job = None;
        if let Err(e) = deleted {
            tracing::warn!(job = %job.name, error = %e, "could not delete the load test Job");
            ctx.progress(format!("could not delete Job {}: {e}", job.name)).await?;
        }
        let reports: Vec<Report> = driven?
            .into_iter()
            .filter_map(|r| match r {
                PodResult::Report(r) => Some(*r),
                PodResult::Failed { .. } => None,
            })
            .collect();
        report::publish(ctx, &ask, &url, &reports).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_every_pod() {
        let p = JobProgress {
            active: 2,
            ready: 2,
            succeeded: 1,
            failed: 0,
        };
        assert_eq!(
            progress_line(p, 4),
            "load generators: 2 running, 1 starting, 1 done of 4"
        );
    }
}
