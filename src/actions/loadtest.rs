//! loadtest.run: a Job of load generators in the environment, followed to its end; the
//! pods' summaries merged, stored per target and posted as a table with the change against
//! the previous run, a chart upload and the thresholds' verdict. The Job is deleted (with
//! its pods) whatever happens: success, failure, timeout or cancel.
//!
//! A URL target is inside the environment only when the load generator's own URI parser
//! reads its host as a Service of the environment (loadtest/target.rs); anything else is
//! `outside`, which the shipped spec sends to ops. The pods may reach only their namespace
//! and DNS (cluster/egress.rs) unless ops approved the run as outside.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::json;

use super::{Action, ActionContext, ActionError, ActionRegistry, env::env_facts};
use crate::{
    app::App,
    attachments::Attachments,
    command_buttons::CommandButton,
    commands::Args,
    domain::Name,
    identity::Principal,
    loadgen::{Report, Target, Threshold, Verdict, chart, format_duration},
    loadtest::{
        LoadtestConfig,
        job::{JobEnd, JobProgress, LoadJob, PodResult},
        results::{NewRun, Results},
        summary,
        target::{self, Outside, Reach},
    },
};

const CHART_SIZE: (u32, u32) = (1000, 600);

pub fn register(registry: &mut ActionRegistry) {
    registry.register(Arc::new(Run));
}

/// Where the load goes: a Service of the environment, or a URL as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Aim {
    Service {
        name: Name,
        port: Option<u16>,
        path: String,
    },
    Url(String),
}

fn bad(msg: impl Into<String>) -> ActionError {
    ActionError::Failed(msg.into())
}

impl Aim {
    fn parse(text: &str) -> Result<Self, ActionError> {
        if text.contains("://") {
            Target::new(text).map_err(|e| bad(e.to_string()))?;
            return Ok(Aim::Url(text.to_owned()));
        }
        let (head, path) = match text.find('/') {
            Some(i) => (&text[..i], text[i..].to_owned()),
            None => (text, "/".to_owned()),
        };
        let (name, port) = match head.split_once(':') {
            Some((n, p)) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(format!("'{p}' in `{text}` is not a port (1-65535)")))?;
                (n, Some(port))
            }
            None => (head, None),
        };
        let name = Name::parse(name).map_err(|_| {
            bad(format!(
                "`{text}` is neither an app's Service (app, app:port, app:port/path) nor an http:// URL"
            ))
        })?;
        Ok(Aim::Service { name, port, path })
    }
}

impl Aim {
    /// Where the load goes, read as the load generator reads the URL (loadtest/target.rs).
    fn reach(&self, env: &Name) -> Reach {
        match self {
            Aim::Url(url) => target::classify(url, env.as_str()),
            Aim::Service { name, .. } => Reach::Inside {
                service: name.as_str().to_owned(),
            },
        }
    }

    /// An http:// URL with a user@ part is refused with what it means here, before the load
    /// generator's own check (written for its command line) answers.
    fn parse_in(text: &str, env: &Name) -> Result<Self, ActionError> {
        if text.contains("://") && target::classify(text, env.as_str()) == Reach::Outside(Outside::Userinfo) {
            return Err(bad(format!(
                "`{text}` has a user@ part: the host of such a URL is not a Service of {env}, and the load generator sends no credentials from a URL; give the Service (`app:port/path`) or a URL without user@"
            )));
        }
        Self::parse(text)
    }
}

/// Everything the arguments say, checked against the configured limits.
struct Ask {
    aim: Aim,
    env: Name,
    rate: u32,
    duration: Duration,
    workers: u32,
    thresholds: Vec<Threshold>,
}

impl Ask {
    fn from_args(args: &Args, cfg: &LoadtestConfig) -> Result<Self, ActionError> {
        let env = Args::require(args.name("env"), "env")?;
        let aim = Aim::parse_in(args.get("target").unwrap_or_default(), &env)?;
        let rate = Args::require(args.int("rate"), "rate")?;
        let duration = Args::require(args.duration("duration"), "duration")?;
        let workers = args.int("workers")?.unwrap_or(1);
        let rate = u32::try_from(rate)
            .ok()
            .filter(|r| *r <= cfg.max_rate)
            .ok_or_else(|| bad(format!("rate={rate} is above loadtest.max_rate ({})", cfg.max_rate)))?;
        let workers = u32::try_from(workers)
            .ok()
            .filter(|w| *w <= cfg.max_workers)
            .ok_or_else(|| {
                bad(format!(
                    "workers={workers} is above loadtest.max_workers ({})",
                    cfg.max_workers
                ))
            })?;
        if duration > cfg.max_duration {
            return Err(bad(format!(
                "duration={duration} is above loadtest.max_duration ({})",
                cfg.max_duration
            )));
        }
        if rate < workers {
            return Err(bad(format!(
                "rate={rate} spread over workers={workers} leaves a worker under 1 request per second; use fewer workers"
            )));
        }
        let thresholds = args
            .get("thresholds")
            .unwrap_or_default()
            .split_whitespace()
            .map(|t| t.parse::<Threshold>().map_err(|e| bad(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ask {
            aim,
            env,
            rate,
            duration: duration.as_duration(),
            workers,
            thresholds,
        })
    }

    /// The name results are kept under: what was typed for a URL, `app` or `app:port/path`.
    fn target_key(&self) -> String {
        match &self.aim {
            Aim::Url(u) => u.clone(),
            Aim::Service { name, port, path } => {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let path = if path == "/" { String::new() } else { path.clone() };
                format!("{name}{port}{path}")
            }
        }
    }
}

/// The URL the pods use: a Service becomes its in-cluster DNS name on the right port.
async fn resolve(ctx: &ActionContext, ask: &Ask) -> Result<String, ActionError> {
    let (name, asked, path) = match &ask.aim {
        Aim::Url(u) => return Ok(u.clone()),
        Aim::Service { name, port, path } => (name, *port, path),
    };
    let ns = ask.env.as_str();
    let what = format!("service {name} in {ns}");
    let svc = match ctx.app.clusters.locate(ns).await?.service(ns, name.as_str()).await {
        Ok(svc) => svc,
        Err(crate::cluster::ClusterError::NotFound(_)) => {
            return Err(bad(format!(
                "there is no Service {name} in {ns}: deploy the app with a port (`deploy IMAGE to {ns} as {name} port=8080`) or give an http:// URL"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let ports: Vec<u16> = svc
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| u16::try_from(p.port).ok())
        .collect();
    let port = match (asked, ports.first()) {
        (Some(p), _) if ports.contains(&p) => p,
        (Some(p), _) => return Err(bad(format!("{what} has no port {p}; it has {ports:?}"))),
        (None, Some(p)) => *p,
        (None, None) => return Err(bad(format!("{what} has no ports"))),
    };
    Ok(format!("http://{name}.{ns}.svc:{port}{path}"))
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
        let failures: Vec<String> = results
            .iter()
            .filter_map(|r| match r {
                PodResult::Failed { pod, why } => Some(format!("{pod}: {why}")),
                PodResult::Report(_) => None,
            })
            .collect();
        if !failures.is_empty() || results.is_empty() {
            let why = match &end {
                JobEnd::Failed(why) => format!(" ({why})"),
                JobEnd::Complete => String::new(),
            };
            return Err(bad(format!(
                "{} of {} load generator pod(s) reported no result{why}: {}",
                failures.len().max(1),
                job.workers,
                if failures.is_empty() {
                    "no pods found".to_owned()
                } else {
                    failures.join("; ")
                }
            )));
        }
        Ok(results)
    }
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
        let report = Report::merge(&reports).map_err(|e| bad(e.to_string()))?;
        let verdict = Verdict::of(&ask.thresholds, &report);
        let target = ask.target_key();
        let results = Results::new(ctx.app.store.pool().clone());
        let previous = results
            .previous(ask.env.as_str(), &target, ctx.request.id.as_str())
            .await?;
        results
            .insert(&NewRun {
                request_id: ctx.request.id.as_str(),
                env: ask.env.as_str(),
                target: &target,
                url: &url,
                requester: &ctx.request.requester,
                workers: ask.workers,
                report: &report,
                verdict: &verdict,
            })
            .await?;
        let title = format!(
            "Load test of {target} in {}: {}/s for {} from {} worker(s)",
            ask.env,
            ask.rate,
            format_duration(ask.duration),
            ask.workers
        );
        let table = summary::table(
            &title,
            &report,
            previous.as_ref().map(|p| (p.request_id.as_str(), &p.report)),
            &verdict,
        );
        let attachment = match chart::render(&report, &title, CHART_SIZE.0, CHART_SIZE.1) {
            Ok(png) => Some(
                Attachments::new(ctx.app.store.pool().clone())
                    .put(
                        ctx.request.id.as_str(),
                        &format!("loadtest-{}.png", ctx.request.id),
                        "image/png",
                        &title,
                        &png,
                    )
                    .await?,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "no chart for the load test");
                None
            }
        };
        let data = json!({
            "target": target,
            "env": ask.env.as_str(),
            "url": url,
            "workers": ask.workers,
            "rate_requested": ask.rate,
            "duration_s": ask.duration.as_secs(),
            "rate_achieved": report.achieved_rate(),
            "requests": report.total(),
            "latency_us": {
                "p50": report.latency.quantile_us(0.5),
                "p90": report.latency.quantile_us(0.9),
                "p99": report.latency.quantile_us(0.99),
                "max": report.latency.max_us(),
            },
            "error_ratio": report.error_ratio(),
            "errors": summary::errors_by_kind(&report),
            "verdict": verdict,
            "previous": previous.as_ref().map(|p| p.request_id.clone()),
            "report": report,
        });
        let chart = attachment.as_ref().map(|a| a.id.clone());
        ctx.output(table, crate::events::Output::fields(data).attach(attachment))
            .await?;
        if let Some(chart) = chart {
            chart_links(ctx, &chart).await?;
        }
        let line = format!(
            "{:.1}/s, p99 {}, errors {:.2}%",
            report.achieved_rate(),
            crate::loadgen::report::ms(report.percentile(0.99)),
            report.error_ratio() * 100.0
        );
        if verdict.passed {
            Ok(line)
        } else {
            let failed: Vec<String> = verdict
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{} (actual {})", c.threshold, c.actual))
                .collect();
            Err(bad(format!("thresholds failed: {}; {line}", failed.join(", "))))
        }
    }
}

/// The requester's own links to the chart and the request's page, privately: the page
/// link is a credential (see `crate::pages`). A link that cannot be made costs the test
/// nothing; the chart is in the thread anyway.
async fn chart_links(ctx: &ActionContext, chart: &str) -> Result<(), ActionError> {
    let page = match crate::pages::mint(&ctx.app, ctx.request.id.as_str(), &ctx.request.requester).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "no page link for the load test");
            return Ok(());
        }
    };
    let chart_url = page.file_url(chart);
    let data =
        crate::events::Output::fields(json!({ "page": page.url, "chart": chart_url, "expires_at": page.expires_at }))
            .link(crate::command_buttons::LinkButton::new("Open chart", &chart_url))
            .link(page.page_button())
            .to(crate::visibility::Audience::Requester);
    ctx.output(
        format!(
            "Your links to the chart and the page of {} (personal, until {})",
            ctx.request.id,
            crate::domain::format_ms(page.expires_at)
        ),
        data,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_services_or_urls() {
        assert_eq!(
            Aim::parse("shop").unwrap(),
            Aim::Service {
                name: Name::parse("shop").unwrap(),
                port: None,
                path: "/".into()
            }
        );
        assert_eq!(
            Aim::parse("shop:8080/api/cart?x=1").unwrap(),
            Aim::Service {
                name: Name::parse("shop").unwrap(),
                port: Some(8080),
                path: "/api/cart?x=1".into()
            }
        );
        assert_eq!(Aim::parse("http://x.y:81/").unwrap(), Aim::Url("http://x.y:81/".into()));
        for bad in ["Shop", "shop:0", "shop:http", "https://x/", "ftp://x/"] {
            assert!(Aim::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_outside_the_environment_are_told_apart() {
        let env = Name::parse("lt").unwrap();
        for (url, outside) in [
            ("http://shop.lt.svc:8080/", false),
            ("http://shop.lt.svc.cluster.local/x", false),
            ("http://shop.lt:8080/", false),
            ("http://shop:8080/", false),
            ("http://shop.other.svc:8080/", true),
            ("http://a.shop.lt.svc/", true),
            ("http://example.com/", true),
            ("http://lt.svc/", true),
            ("http://2852039166#x.lt.svc", true),
            ("http://shop#.lt.svc", true),
            ("http://0xA9FEA9FE/", true),
        ] {
            assert_eq!(Aim::parse(url).unwrap().reach(&env).is_outside(), outside, "{url}");
        }
        assert!(!Aim::parse("shop").unwrap().reach(&env).is_outside());
        let err = Aim::parse_in("http://u@shop.lt.svc/", &env).unwrap_err().to_string();
        assert!(err.contains("user@") && err.contains("not a Service of lt"), "{err}");
    }

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
