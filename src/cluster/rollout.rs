//! Watching a rollout to its end, and explaining it when it does not get there.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Event, Pod},
};
use kube::{
    Api,
    api::{ListParams, LogParams},
    runtime::{WatchStreamExt, watcher},
};
use tokio_util::sync::CancellationToken;

use super::{APP_NAME, Cluster, ClusterError};

/// Waiting reasons that do not fix themselves quickly.
const STUCK: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

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

fn stuck_reason(p: &Pod) -> Option<(String, String)> {
    let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|cs| {
        let w = cs.state.as_ref()?.waiting.as_ref()?;
        let reason = w.reason.clone()?;
        STUCK
            .contains(&reason.as_str())
            .then(|| (reason, w.message.clone().unwrap_or_default()))
    })
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
        let mut stuck_since: HashMap<String, (String, String, Instant)> = HashMap::new();
        let mut last_line = String::new();
        loop {
            let stall_at = stuck_since
                .values()
                .map(|(_, _, since)| tokio::time::Instant::from_std(*since + w.stall_after))
                .min();
            tokio::select! {
                _ = cancel.cancelled() => return Err(RolloutError::Cancelled),
                _ = tokio::time::sleep_until(deadline) => {
                    let why = format!("not available after {}s", w.deadline.as_secs());
                    return Err(RolloutError::Failed(self.diagnose(w.namespace, w.app, &why).await));
                }
                _ = async { tokio::time::sleep_until(stall_at.unwrap_or(deadline)).await }, if stall_at.is_some() => {
                    let (reason, message) = stuck_since
                        .values()
                        .min_by_key(|(_, _, since)| *since)
                        .map(|(r, m, _)| (r.clone(), m.clone()))
                        .unwrap_or_default();
                    let why = format!("pods are stuck in {reason}: {message}");
                    return Err(RolloutError::Failed(self.diagnose(w.namespace, w.app, &why).await));
                }
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
                        let name = p.metadata.name.clone().unwrap_or_default();
                        match stuck_reason(&p) {
                            Some((reason, message)) if p.metadata.deletion_timestamp.is_none() => {
                                stuck_since.entry(name).or_insert_with(|| (reason, message, Instant::now()));
                            }
                            _ => { stuck_since.remove(&name); }
                        }
                    }
                }
            }
        }
    }

    /// What a person needs to fix a rollout: each pod's state, the last events and the last
    /// log lines of a pod that got far enough to log.
    pub async fn diagnose(&self, ns: &str, app: &str, why: &str) -> String {
        let mut out = format!("rollout of {app} in {ns} failed: {why}");
        let Ok(client) = self.client().await else { return out };
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let lp = ListParams::default().labels(&format!("{APP_NAME}={app}"));
        let pod_list = pods.list(&lp).await.map(|l| l.items).unwrap_or_default();
        for p in &pod_list {
            out.push_str(&format!("\n  pod {}", pod_line(p)));
        }
        let events = recent_events(&client, ns, |obj| obj == app || obj.starts_with(&format!("{app}-")), 5).await;
        if !events.is_empty() {
            out.push_str("\nlast events:");
            for e in events {
                out.push_str(&format!("\n  {e}"));
            }
        }
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
        if let Some(name) = with_logs.and_then(|p| p.metadata.name.clone()) {
            let lp = LogParams {
                tail_lines: Some(10),
                limit_bytes: Some(4096),
                ..Default::default()
            };
            if let Ok(logs) = pods.logs(&name, &lp).await
                && !logs.trim().is_empty()
            {
                out.push_str(&format!("\nlast log lines ({name}):"));
                for l in redact(&logs).lines() {
                    out.push_str(&format!("\n  {l}"));
                }
            }
        }
        out
    }
}

pub fn pod_line(p: &Pod) -> String {
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_else(|| "Unknown".into());
    let restarts: i32 = status
        .container_statuses
        .as_ref()
        .map(|c| c.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0);
    let waiting = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find_map(|c| c.state?.waiting);
    let age =
        p.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| {
                crate::domain::HumanDuration::from_secs(
                    (jiff::Timestamp::now().as_second() - t.0.as_second()).max(1) as u64
                )
            })
            .map(|d| format!(", age {d}"))
            .unwrap_or_default();
    match waiting {
        Some(w) => format!(
            "{name}: {phase}, {} ({}), restarts {restarts}{age}",
            w.reason.unwrap_or_default(),
            w.message.unwrap_or_default()
        ),
        None => format!("{name}: {phase}, restarts {restarts}{age}"),
    }
}

/// The newest `limit` events in `ns` about objects whose name passes `about`, oldest first.
pub async fn recent_events(client: &kube::Client, ns: &str, about: impl Fn(&str) -> bool, limit: usize) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut events: Vec<Event> = api
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref().is_some_and(&about))
        .collect();
    let when = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    events.sort_by_key(when);
    let skip = events.len().saturating_sub(limit);
    events
        .iter()
        .skip(skip)
        .map(|e| {
            format!(
                "{} {} {}/{}: {}",
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.involved_object.kind.clone().unwrap_or_default().to_lowercase(),
                e.involved_object.name.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            )
        })
        .collect()
}

/// Hides values that look like credentials (`password=...`, `token: ...`, bearer tokens)
/// before log lines leave the cluster.
pub fn redact(text: &str) -> String {
    use std::sync::LazyLock;
    static SECRET: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r#"(?i)((?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|authorization)["']?\s*[=:]\s*["']?)(?:(?:bearer|basic|digest|token|negotiate)\s+)?[^\s"',;]+"#,
        )
        .expect("static regex")
    });
    // A credential after its scheme with no key before it ("curl -H 'Bearer abc…'").
    static SCHEME_CREDENTIALS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}").expect("static regex")
    });
    static URL_CREDENTIALS: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"(://[^/\s:@]+:)[^@\s/]+@").expect("static regex"));
    let t = SECRET.replace_all(text, "${1}[redacted]");
    let t = SCHEME_CREDENTIALS.replace_all(&t, "${1}[redacted]");
    URL_CREDENTIALS.replace_all(&t, "${1}[redacted]@").into_owned()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_credentials() {
        let logs = "connecting with password=hunter2 and API_KEY: abc123\nAuthorization: Bearer eyJhbGci.x.y\nurl postgres://app:s3cret@db:5432/x\nplain line\nAuthorization: Basic dXNlcjpodW50ZXIy\nPGPASSWORD=pgs3cret psql\ncurl -H 'Bearer zzTOPSECRETzz'";
        let r = redact(logs);
        for secret in [
            "hunter2",
            "abc123",
            "eyJhbGci",
            "s3cret",
            "dXNlcjpodW50ZXIy",
            "pgs3cret",
            "zzTOPSECRETzz",
        ] {
            assert!(!r.contains(secret), "{secret} leaked: {r}");
        }
        assert!(
            r.contains("password=[redacted]") && r.contains("plain line") && r.contains("postgres://app:[redacted]@db"),
            "{r}"
        );
    }
}
