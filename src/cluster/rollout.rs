//! Watching a rollout to its end, and explaining it when it does not get there.
//!
//! Most trouble gets the stall timer (`stall_after`): a pod stuck that long fails the
//! rollout. Two kinds are known not to fix themselves, so they fail it at once, naming the
//! container: an image that cannot be pulled (a missing tag must not cost a user 90 s), and
//! a container that keeps crashing. Only the rollout's new pods count, told apart by the
//! pod-template-hash of the Deployment's current ReplicaSet: the broken pods of an earlier
//! deploy must not fail the deploy that fixes them.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Event, Pod},
};
use kube::{
    Api,
    api::{ListParams, LogParams},
    runtime::{WatchStreamExt, watcher},
};
use tokio_util::sync::CancellationToken;

use super::{
    APP_NAME, Cluster, ClusterError,
    describe::{self, event_time, quote, redact},
    pod_watch::{Blocked, PodWatch, TEMPLATE_HASH, Why, says_why},
    workload::REVISION,
};

/// Log lines shown for a crashing container.
const CRASH_LOG_LINES: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The rollout did not complete; the message carries the diagnosis.
    #[error("{0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
}

pub struct Watch<'a> {
    pub namespace: &'a str,
    pub app: &'a str,
    /// The generation the apply produced; older statuses describe the previous rollout.
    pub generation: i64,
    pub deadline: Duration,
    pub stall_after: Duration,
}

fn replicas_line(d: &Deployment) -> (String, bool, Option<String>) {
    let desired = d.spec.replicas.unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let updated = st.updated_replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    let done = updated >= desired && available >= desired && total <= desired;
    let failure = st.conditions.unwrap_or_default().into_iter().find_map(|c| {
        let kind = c.type_.as_deref();
        let failed = (kind == Some("ReplicaFailure") && c.status.as_deref() == Some("True"))
            || (kind == Some("Progressing") && c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
        failed.then(|| c.message.unwrap_or_else(|| c.reason.unwrap_or_default()))
    });
    (
        format!("{updated}/{desired} updated, {available} available"),
        done,
        failure,
    )
}

fn revision_of(d: &Deployment) -> Option<String> {
    d.metadata.annotations.as_ref()?.get(REVISION).cloned()
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

impl Cluster {
    /// Follows the Deployment and its pods through watches until it is Available, fails,
    /// stalls or runs out of time. `progress` gets a line whenever the counts change.
    pub async fn watch_rollout(
        &self,
        w: Watch<'_>,
        cancel: &CancellationToken,
        mut progress: impl FnMut(String),
    ) -> Result<String, RolloutError> {
        let client = self.client().await?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), w.namespace);
        let pods: Api<Pod> = Api::namespaced(client, w.namespace);
        let by_name = watcher::Config::default().fields(&format!("metadata.name={}", w.app));
        let by_label = watcher::Config::default().labels(&format!("{APP_NAME}={}", w.app));
        let mut deploy_events = watcher(deployments, by_name)
            .default_backoff()
            .applied_objects()
            .boxed();
        let mut pod_events = watcher(pods, by_label).default_backoff().touched_objects().boxed();

        let deadline = tokio::time::Instant::now() + w.deadline;
        let mut pod_watch = PodWatch::default();
        let mut last_line = String::new();
        loop {
            let stall_at = pod_watch.stall_at(w.stall_after);
            let grace_at = pod_watch.grace_at();
            tokio::select! {
                _ = cancel.cancelled() => return Err(RolloutError::Cancelled),
                _ = tokio::time::sleep_until(deadline) => {
                    let why = format!("not available after {}s", w.deadline.as_secs());
                    return Err(RolloutError::Failed(self.diagnose(w.namespace, w.app, &why).await));
                }
                _ = sleep_until(stall_at), if stall_at.is_some() => {
                    let (reason, message) = pod_watch.stall_reason();
                    let why = format!("pods are stuck in {reason}: {message}");
                    return Err(RolloutError::Failed(self.diagnose(w.namespace, w.app, &why).await));
                }
                // Falls through to the check below.
                _ = sleep_until(grace_at), if grace_at.is_some() => {}
                ev = deploy_events.next() => {
                    let d = match ev {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => { tracing::debug!(error = %e, "deployment watch error"); continue }
                        None => return Err(ClusterError::Unreachable("the deployment watch ended".into()).into()),
                    };
                    let observed = d.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
                    // Until the controller has seen our change, the status is the old rollout's.
                    if observed < w.generation {
                        continue;
                    }
                    pod_watch.set_revision(revision_of(&d));
                    let (line, done, failure) = replicas_line(&d);
                    if let Some(message) = failure {
                        let err = match super::quota_name(&message) {
                            Some(quota) => format!("quota {quota} is exhausted: {message}"),
                            None => message,
                        };
                        return Err(RolloutError::Failed(self.diagnose(w.namespace, w.app, &err).await));
                    }
                    if line != last_line {
                        progress(line.clone());
                        last_line = line.clone();
                    }
                    if done {
                        return Ok(line);
                    }
                }
                ev = pod_events.next() => {
                    if let Some(Ok(p)) = ev {
                        pod_watch.update(&p);
                    }
                }
            }
            if let Some(why) = self.blocked_rollout(&w, &mut pod_watch).await {
                return Err(RolloutError::Failed(why));
            }
        }
    }

    /// The failure for a new pod's container that will not get better, if there is one.
    async fn blocked_rollout(&self, w: &Watch<'_>, pods: &mut PodWatch) -> Option<String> {
        if pods.blocked.is_empty() {
            return None;
        }
        if pods.new_hash.is_none() && pods.looked_up != pods.revision {
            let revision = pods.revision.clone()?;
            pods.new_hash = self.new_pod_hash(w.namespace, w.app, &revision).await;
            pods.looked_up = Some(revision);
        }
        let b = pods.due(Instant::now())?.clone();
        let head = format!("rollout of {} in {} failed: ", w.app, w.namespace);
        let body = match &b.why {
            Why::Pull { reason, message } => self.explain_pull(w.namespace, &b, reason, message).await,
            Why::Crash { .. } => self.explain_crash(w.namespace, &b).await,
        };
        Some(head + &body)
    }

    /// The pod-template-hash of the app's ReplicaSet at `revision`: the rollout's new pods
    /// carry it. None when it cannot be told (then only the stall timer applies).
    async fn new_pod_hash(&self, ns: &str, app: &str, revision: &str) -> Option<String> {
        let client = self.client().await.ok()?;
        let lp = ListParams::default().labels(&format!("{APP_NAME}={app}"));
        let sets = Api::<ReplicaSet>::namespaced(client, ns).list(&lp).await.ok()?;
        sets.items.into_iter().find_map(|rs| {
            let owned = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "Deployment" && o.name == app);
            let at = rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION));
            if !owned || at.map(String::as_str) != Some(revision) {
                return None;
            }
            rs.metadata.labels?.remove(TEMPLATE_HASH)
        })
    }

    async fn explain_pull(&self, ns: &str, b: &Blocked, reason: &str, message: &str) -> String {
        let detail = match says_why(message) {
            true => message.to_owned(),
            false => self
                .pull_warning(ns, &b.pod)
                .await
                .unwrap_or_else(|| message.to_owned()),
        };
        let mut out = format!(
            "image \"{}\" could not be pulled for container {} (pod {}, {reason})",
            quote(&b.image),
            quote(&b.container),
            b.pod
        );
        if !detail.is_empty() {
            out.push_str(&format!(": {}", quote(&detail)));
        }
        out
    }

    /// The message of the kubelet's newest pull or inspect warning about `pod` (not the bare
    /// "Error: ErrImagePull" ones).
    async fn pull_warning(&self, ns: &str, pod: &str) -> Option<String> {
        let client = self.client().await.ok()?;
        let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        let events = Api::<Event>::namespaced(client, ns).list(&lp).await.ok()?.items;
        events
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter(|e| matches!(e.reason.as_deref(), Some("Failed" | "InspectFailed")))
            .filter(|e| e.message.as_deref().is_some_and(|m| !m.starts_with("Error: ")))
            .max_by_key(event_time)?
            .message
    }

    async fn explain_crash(&self, ns: &str, b: &Blocked) -> String {
        let Why::Crash {
            restarts,
            exit_code,
            reason,
            message,
        } = &b.why
        else {
            return String::new();
        };
        let exit = match exit_code {
            Some(code) => format!("exit code {code}"),
            None => "an unknown exit code".to_owned(),
        };
        let mut out = format!(
            "container {} (pod {}, image \"{}\") is in CrashLoopBackOff after {restarts} restarts; it last ended with {exit}",
            quote(&b.container),
            b.pod,
            quote(&b.image)
        );
        if !reason.is_empty() {
            out.push_str(&format!(" ({})", quote(reason)));
        }
        if !message.is_empty() {
            out.push_str(&format!(": {}", quote(message)));
        }
        if let Some(logs) = self.tail_logs(ns, &b.pod, Some(&b.container), CRASH_LOG_LINES).await {
            out.push_str(&format!("\nlast log lines ({}):", b.pod));
            for l in logs.lines() {
                out.push_str(&format!("\n  {}", quote(l)));
            }
        }
        out
    }

    /// The last `lines` lines of a pod's log (of a crashed container: its last run), capped
    /// and redacted; None when there are none or they cannot be read.
    async fn tail_logs(&self, ns: &str, pod: &str, container: Option<&str>, lines: i64) -> Option<String> {
        let client = self.client().await.ok()?;
        let lp = LogParams {
            container: container.map(str::to_owned),
            tail_lines: Some(lines),
            limit_bytes: Some(4096),
            ..Default::default()
        };
        let logs = Api::<Pod>::namespaced(client, ns).logs(pod, &lp).await.ok()?;
        (!logs.trim().is_empty()).then(|| redact(logs.trim_end()))
    }

    /// What a person needs to fix a rollout: each pod's state, the last events and the last
    /// log lines of a pod that got far enough to log.
    pub async fn diagnose(&self, ns: &str, app: &str, why: &str) -> String {
        let mut out = format!("rollout of {app} in {ns} failed: {why}");
        let Ok(client) = self.client().await else { return out };
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let lp = ListParams::default().labels(&format!("{APP_NAME}={app}"));
        let pod_list = pods.list(&lp).await.map(|l| l.items).unwrap_or_default();
        describe::push_pods_and_events(&mut out, &client, ns, app, &pod_list).await;
        // Logs only exist once a container started; a crash-looping one has the useful ones.
        let with_logs = pod_list.iter().find(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.restart_count > 0 || c.state.as_ref().is_some_and(|s| s.running.is_some()))
                })
        });
        if let Some(name) = with_logs.and_then(|p| p.metadata.name.clone())
            && let Some(logs) = self.tail_logs(ns, &name, None, 10).await
        {
            out.push_str(&format!("\nlast log lines ({name}):"));
            for l in logs.lines() {
                out.push_str(&format!("\n  {l}"));
            }
        }
        out
    }
}
