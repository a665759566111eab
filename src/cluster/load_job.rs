//! The Job that generates a load test's load: one pod per worker running `deckhand loadgen`
//! at its share of the rate, followed through a watch, its pods' JSON summaries read from
//! their logs, and deleted with its pods at the end whatever happened.

use std::time::Duration;

use crate::loadtest::LoadtestConfig;
use crate::{
    cluster::{
        APP_NAME, Cluster, ClusterError, MANAGED_BY, MANAGER, REQUEST,
        objects::{map, quantities, restricted_container, runtime_default_seccomp},
    },
    domain::RequestId,
    loadgen::{Report, format_duration},
};
use futures_util::StreamExt;
use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{Container, Pod, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, LogParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};

/// The label value every load test pod carries, so they are easy to find and to exclude.
pub use crate::cluster::egress::LOADGEN_APP;
/// What the test deckhand reads of each pod's log: the summary is one (long) line.
const LOG_BYTES: i64 = 8 * 1024 * 1024;

/// What one load test asks the cluster for.
#[derive(Debug, Clone)]
pub struct LoadJob {
    pub namespace: String,
    pub name: String,
    pub request: RequestId,
    pub url: String,
    pub workers: u32,
    /// Requests per second over all workers.
    pub rate: u32,
    pub duration: Duration,
    pub timeout: Duration,
    /// Ops approved the run as going outside the environment: its pods get the
    /// environment's egress instead of only their namespace and DNS.
    pub approved_outside: bool,
}

impl LoadJob {
    pub fn name_for(request: &RequestId) -> String {
        format!("loadtest-{}", request.as_str().trim_start_matches("r-"))
    }

    /// Each worker's share of the rate; the shares add up to the whole.
    pub fn worker_rate(&self) -> f64 {
        f64::from(self.rate) / f64::from(self.workers.max(1))
    }

    pub fn manifest(&self, cfg: &LoadtestConfig) -> Result<Job, ClusterError> {
        let labels = map([
            (MANAGED_BY, MANAGER),
            (APP_NAME, LOADGEN_APP),
            (REQUEST, self.request.as_str()),
        ]);
        let args = vec![
            "loadgen".to_owned(),
            "--url".to_owned(),
            self.url.clone(),
            "--rate".to_owned(),
            format!("{}", self.worker_rate()),
            "--duration".to_owned(),
            format_duration(self.duration),
            "--timeout".to_owned(),
            format_duration(self.timeout),
            "--json".to_owned(),
        ];
        let too_big = |what: &str| ClusterError::Invalid(format!("load test Job: {what} is too large"));
        let workers = i32::try_from(self.workers).map_err(|_| too_big("the number of workers"))?;
        // The pods may not outlive the test by much even if deckhand dies mid-way.
        let deadline =
            i64::try_from(self.duration.as_secs().saturating_add(600)).map_err(|_| too_big("the duration"))?;
        Ok(Job {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                parallelism: Some(workers),
                completions: Some(workers),
                backoff_limit: Some(0),
                active_deadline_seconds: Some(deadline),
                ttl_seconds_after_finished: Some(3600),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        automount_service_account_token: Some(false),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            run_as_user: Some(65532),
                            seccomp_profile: Some(runtime_default_seccomp()),
                            ..Default::default()
                        }),
                        containers: vec![Container {
                            name: "loadgen".into(),
                            image: Some(cfg.image.clone()),
                            args: Some(args),
                            resources: Some(ResourceRequirements {
                                requests: Some(quantities(&cfg.requests)),
                                limits: Some(quantities(&cfg.limits)),
                                ..Default::default()
                            }),
                            security_context: Some(restricted_container()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        })
    }
}

/// The Job's pods as its status counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobProgress {
    pub active: i32,
    pub ready: i32,
    pub succeeded: i32,
    pub failed: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    Complete,
    /// The Job failed; Kubernetes' reason.
    Failed(String),
}

/// One pod's contribution.
#[derive(Debug)]
pub enum PodResult {
    Report(Box<Report>),
    /// The pod failed or printed no summary; the last lines of its log say why.
    Failed {
        pod: String,
        why: String,
    },
}

fn progress_of(job: &Job) -> JobProgress {
    let st = job.status.clone().unwrap_or_default();
    JobProgress {
        active: st.active.unwrap_or(0),
        ready: st.ready.unwrap_or(0),
        succeeded: st.succeeded.unwrap_or(0),
        failed: st.failed.unwrap_or(0),
    }
}

fn end_of(job: &Job) -> Option<JobEnd> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(JobEnd::Complete),
            "Failed" => Some(JobEnd::Failed(
                c.message
                    .clone()
                    .or(c.reason.clone())
                    .unwrap_or_else(|| "the Job failed".into()),
            )),
            _ => None,
        })
}

impl Cluster {
    /// Confines the namespace's load generators, then creates the Job; a run approved as
    /// outside then gets its own, wider, egress (so its pods never start wider than allowed).
    pub async fn create_load_job(&self, job: &LoadJob, cfg: &LoadtestConfig) -> Result<(), ClusterError> {
        let manifest = job.manifest(cfg)?;
        self.confine_load_generators(&job.namespace).await?;
        let what = format!("Job {} in {}", job.name, job.namespace);
        let created = self
            .call(&what, |c| {
                let manifest = manifest.clone();
                async move {
                    Api::<Job>::namespaced(c, &job.namespace)
                        .create(&PostParams::default(), &manifest)
                        .await
                }
            })
            .await?;
        if job.approved_outside {
            let uid = created.metadata.uid.unwrap_or_default();
            self.open_load_generators(&job.namespace, &job.name, &uid, job.request.as_str())
                .await?;
        }
        Ok(())
    }

    /// Deletes the Job and, through background propagation, its pods. Gone already is fine.
    pub async fn delete_load_job(&self, ns: &str, name: &str) -> Result<(), ClusterError> {
        let what = format!("Job {name} in {ns}");
        match self
            .call(&what, |c| async move {
                Api::<Job>::namespaced(c, ns)
                    .delete(name, &DeleteParams::background())
                    .await
            })
            .await
        {
            Ok(_) | Err(ClusterError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Follows the Job until it completes or fails, calling `on_change` when its pod
    /// counts change. The caller bounds the wait.
    pub async fn follow_load_job(
        &self,
        ns: &str,
        name: &str,
        mut on_change: impl FnMut(JobProgress),
    ) -> Result<JobEnd, ClusterError> {
        let api = Api::<Job>::namespaced(self.client().await?, ns);
        let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut jobs = watcher(api, cfg).default_backoff().touched_objects().boxed();
        let mut last = None;
        while let Some(event) = jobs.next().await {
            let job = match event {
                Ok(job) => job,
                Err(e) => {
                    tracing::debug!(error = %e, "load test job watch error");
                    continue;
                }
            };
            let now = progress_of(&job);
            if last != Some(now) {
                on_change(now);
                last = Some(now);
            }
            if let Some(end) = end_of(&job) {
                return Ok(end);
            }
        }
        Err(ClusterError::Unreachable("the watch on the load test Job ended".into()))
    }

    /// Each pod of the load test with its summary, or why it has none.
    pub async fn load_job_results(&self, ns: &str, request: &RequestId) -> Result<Vec<PodResult>, ClusterError> {
        let lp = ListParams::default().labels(&format!("{REQUEST}={},{APP_NAME}={LOADGEN_APP}", request.as_str()));
        let pods = self
            .call("load test pods", |c| {
                let lp = lp.clone();
                async move { Api::<Pod>::namespaced(c, ns).list(&lp).await }
            })
            .await?;
        let mut out = Vec::new();
        for pod in pods.items {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
            let lp = LogParams {
                limit_bytes: Some(LOG_BYTES),
                ..Default::default()
            };
            let what = format!("logs of pod {name}");
            let log = match self
                .call(&what, |c| {
                    let (lp, name) = (lp.clone(), name.clone());
                    async move { Api::<Pod>::namespaced(c, ns).logs(&name, &lp).await }
                })
                .await
            {
                Ok(log) => log,
                Err(ClusterError::Api { code: 400, message }) => format!("(no logs: {message})"),
                Err(e) => return Err(e),
            };
            out.push(pod_result(&name, &phase, &log));
        }
        Ok(out)
    }
}

/// The summary is the last line of a finished pod's log that reads as a report. `deckhand
/// loadgen` prints it and then exits 1 when every request failed, so a Failed pod may have one.
fn pod_result(pod: &str, phase: &str, log: &str) -> PodResult {
    if matches!(phase, "Succeeded" | "Failed")
        && let Some(report) = log
            .lines()
            .rev()
            .filter(|l| l.trim_start().starts_with('{'))
            .find_map(|l| serde_json::from_str::<Report>(l).ok())
    {
        return PodResult::Report(Box::new(report));
    }
    let tail: Vec<&str> = log.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let why = match (phase, tail.is_empty()) {
        ("Succeeded", _) => format!("printed no load summary: {}", tail.join(" / ")),
        (phase, true) => format!("{phase}, no log"),
        (phase, false) => format!("{phase}: {}", tail.join(" / ")),
    };
    PodResult::Failed {
        pod: pod.to_owned(),
        why: crate::cluster::describe::redact(&why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> LoadJob {
        LoadJob {
            namespace: "checkout".into(),
            name: LoadJob::name_for(&RequestId::parse("r-abc123").unwrap()),
            request: RequestId::parse("r-abc123").unwrap(),
            url: "http://shop.checkout.svc:8080/".into(),
            workers: 4,
            rate: 100,
            duration: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            approved_outside: false,
        }
    }

    #[test]
    fn the_job_splits_the_rate_and_runs_deckhand_loadgen() {
        let cfg = crate::configuration::Config::defaults().unwrap().loadtest;
        let j = job().manifest(&cfg).unwrap();
        assert_eq!(j.metadata.name.as_deref(), Some("loadtest-abc123"));
        let spec = j.spec.unwrap();
        assert_eq!(
            (spec.parallelism, spec.completions, spec.backoff_limit),
            (Some(4), Some(4), Some(0))
        );
        let c = &spec.template.spec.unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some(cfg.image.as_str()));
        assert_eq!(
            c.args.clone().unwrap().join(" "),
            "loadgen --url http://shop.checkout.svc:8080/ --rate 25 --duration 30s --timeout 10s --json"
        );
    }

    #[test]
    fn a_pod_without_a_summary_says_why() {
        match pod_result("p", "Failed", "starting\ncannot resolve shop:8080: token=abc") {
            PodResult::Failed { why, .. } => assert!(why.starts_with("Failed: starting / cannot resolve"), "{why}"),
            PodResult::Report(_) => panic!("a failed pod has no report"),
        }
        assert!(matches!(pod_result("p", "Succeeded", "done"), PodResult::Failed { .. }));
    }

    #[test]
    fn a_failed_pod_that_printed_its_report_counts_it() {
        use crate::loadgen::{ErrorKind, Mode, report::Recorder};
        let mut r = Recorder::new();
        r.error(Duration::ZERO, ErrorKind::Connect);
        let report = r.into_report("http://shop/", "GET", Mode::rate(1.0).unwrap(), Duration::from_secs(1));
        let log = format!(
            "{}\nerror: all 1 requests to http://shop/ failed (connect 1)",
            serde_json::to_string(&report).unwrap()
        );
        match pod_result("p", "Failed", &log) {
            PodResult::Report(r) => assert_eq!(r.failed_requests(), 1),
            PodResult::Failed { why, .. } => panic!("the report was lost: {why}"),
        }
    }
}
