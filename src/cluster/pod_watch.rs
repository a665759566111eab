//! What a rollout's watch knows about the app's pods between events: which are stuck (the
//! stall timer), which have a container that will not get better by waiting (an image that
//! cannot be pulled, a crash loop), and when the rollout fails on one of them. Pure state
//! over `Pod` objects, so each rule is tested without a cluster; rollout.rs does the
//! watching and the explaining.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Waiting reasons that do not fix themselves quickly.
pub(super) const STUCK: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

/// Waiting reasons of a container whose image cannot be pulled.
pub(super) const PULL_FAILURES: &[&str] = &["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// Words of a pull error that no retry cures (a missing tag or repository, no access, a
/// malformed name), lower-cased.
pub(super) const HOPELESS_PULL: &[&str] = &[
    "not found",
    "notfound",
    "manifest unknown",
    "pull access denied",
    "unauthorized",
    "invalid reference format",
];

/// How long any other pull failure may last before the rollout fails: one kubelet retry
/// (its first back-off is 10 s) gets a chance to cure a registry hiccup.
pub(super) const PULL_GRACE: Duration = Duration::from_secs(15);

/// A container in CrashLoopBackOff fails the rollout once it has been restarted this often.
pub(super) const CRASH_RESTARTS: i32 = 2;

/// The label that ties pods to their ReplicaSet's template.
pub(super) const TEMPLATE_HASH: &str = "pod-template-hash";

pub(super) fn stuck_reason(p: &Pod) -> Option<(String, String)> {
    let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|cs| {
        let w = cs.state.as_ref()?.waiting.as_ref()?;
        let reason = w.reason.clone()?;
        STUCK
            .contains(&reason.as_str())
            .then(|| (reason, w.message.clone().unwrap_or_default()))
    })
}

/// A container of a pod that will not get better by waiting.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Blocked {
    pub(super) pod: String,
    /// The pod's pod-template-hash: which ReplicaSet it belongs to.
    pub(super) hash: String,
    pub(super) container: String,
    pub(super) image: String,
    pub(super) why: Why,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Why {
    /// The image cannot be pulled: the waiting reason and its message.
    Pull { reason: String, message: String },
    /// CrashLoopBackOff after `restarts` restarts, with the last termination's details.
    Crash {
        restarts: i32,
        exit_code: Option<i32>,
        reason: String,
        message: String,
    },
}

impl Why {
    /// Whether the rollout should fail on it, `seen_for` after it was first seen.
    pub(super) fn fails_after(&self, seen_for: Duration) -> bool {
        match self {
            Why::Pull { reason, message } => hopeless_pull(reason, message) || seen_for >= PULL_GRACE,
            Why::Crash { .. } => true,
        }
    }
}

pub(super) fn hopeless_pull(reason: &str, message: &str) -> bool {
    let message = message.to_lowercase();
    reason == "InvalidImageName" || HOPELESS_PULL.iter().any(|w| message.contains(w))
}

/// What blocks one of the pod's containers (init containers first), if anything does.
pub(super) fn blocked(p: &Pod) -> Option<Blocked> {
    if p.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = p.status.as_ref()?;
    let mut statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    let (cs, why) = statuses.find_map(|cs| blocked_why(cs).map(|why| (cs, why)))?;
    let spec_image = p.spec.as_ref().and_then(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(&s.containers)
            .find(|c| c.name == cs.name)
            .and_then(|c| c.image.clone())
    });
    let labels = p.metadata.labels.as_ref();
    Some(Blocked {
        pod: p.metadata.name.clone().unwrap_or_default(),
        hash: labels.and_then(|l| l.get(TEMPLATE_HASH)).cloned().unwrap_or_default(),
        container: cs.name.clone(),
        image: spec_image.unwrap_or_else(|| cs.image.clone()),
        why,
    })
}

pub(super) fn blocked_why(cs: &ContainerStatus) -> Option<Why> {
    let waiting = cs.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.clone()?;
    let message = waiting.message.clone().unwrap_or_default();
    if PULL_FAILURES.contains(&reason.as_str()) {
        return Some(Why::Pull { reason, message });
    }
    if reason != "CrashLoopBackOff" || cs.restart_count < CRASH_RESTARTS {
        return None;
    }
    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    Some(Why::Crash {
        restarts: cs.restart_count,
        exit_code: last.map(|t| t.exit_code),
        reason: last.and_then(|t| t.reason.clone()).unwrap_or_default(),
        message: last.and_then(|t| t.message.clone()).unwrap_or_default(),
    })
}

/// What the watch knows about the app's pods between events.
#[derive(Default)]
pub(super) struct PodWatch {
    /// Pods in a `STUCK` reason, with when that was first seen: the stall timer.
    pub(super) stuck: HashMap<String, (String, String, Instant)>,
    /// Pods with a blocked container, with when that was first seen.
    pub(super) blocked: HashMap<String, (Blocked, Instant)>,
    /// The Deployment's revision once it has seen the watched generation.
    pub(super) revision: Option<String>,
    /// The revision whose ReplicaSet was looked up, and that ReplicaSet's pod-template-hash.
    pub(super) looked_up: Option<String>,
    pub(super) new_hash: Option<String>,
}

impl PodWatch {
    pub(super) fn update(&mut self, p: &Pod) {
        let name = p.metadata.name.clone().unwrap_or_default();
        match stuck_reason(p) {
            Some((reason, message)) if p.metadata.deletion_timestamp.is_none() => {
                self.stuck
                    .entry(name.clone())
                    .or_insert_with(|| (reason, message, Instant::now()));
            }
            _ => {
                self.stuck.remove(&name);
            }
        }
        match blocked(p) {
            Some(b) => {
                // The first sighting starts the grace; later ones bring the newest words.
                let since = self.blocked.get(&name).map_or_else(Instant::now, |(_, since)| *since);
                self.blocked.insert(name, (b, since));
            }
            None => {
                self.blocked.remove(&name);
            }
        }
    }

    pub(super) fn set_revision(&mut self, revision: Option<String>) {
        if revision != self.revision {
            self.revision = revision;
            self.new_hash = None;
        }
    }

    pub(super) fn stall_at(&self, after: Duration) -> Option<Instant> {
        self.stuck.values().map(|(_, _, since)| *since + after).min()
    }

    pub(super) fn stall_reason(&self) -> (String, String) {
        self.stuck
            .values()
            .min_by_key(|(_, _, since)| *since)
            .map(|(r, m, _)| (r.clone(), m.clone()))
            .unwrap_or_default()
    }

    pub(super) fn new_pods(&self) -> impl Iterator<Item = &(Blocked, Instant)> {
        self.blocked
            .values()
            .filter(|(b, _)| self.new_hash.as_ref().is_some_and(|h| *h == b.hash))
    }

    /// When the first pull failure of a new pod runs out of grace.
    pub(super) fn grace_at(&self) -> Option<Instant> {
        self.new_pods()
            .filter(|(b, _)| matches!(b.why, Why::Pull { .. }))
            .map(|(_, since)| *since + PULL_GRACE)
            .min()
    }

    /// The new pod's container the rollout fails on now, the longest blocked first.
    pub(super) fn due(&self, now: Instant) -> Option<&Blocked> {
        self.new_pods()
            .filter(|(b, since)| b.why.fails_after(now.saturating_duration_since(*since)))
            .min_by_key(|(b, since)| (*since, b.pod.clone()))
            .map(|(b, _)| b)
    }
}

/// Whether a pull failure's status message says why. A back-off message before Kubernetes
/// 1.31 only repeats the image (`Back-off pulling image "x"`); then the kubelet's warning
/// event has the registry's words.
pub(super) fn says_why(message: &str) -> bool {
    let bare_back_off = message.starts_with("Back-off pulling image") && !message.contains("\": ");
    !message.is_empty() && !bare_back_off
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::{PULL_GRACE, Why, blocked, says_why};

    pub(super) fn pod(status: serde_json::Value) -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-5d8f-x1", "labels": {"pod-template-hash": "5d8f"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:does-not-exist"}]},
            "status": {"containerStatuses": [status]},
        }))
        .expect("a pod")
    }

    pub(super) fn status(state: serde_json::Value, restarts: i32, last: serde_json::Value) -> serde_json::Value {
        json!({"name": "web", "image": "nginx:does-not-exist", "imageID": "", "ready": false,
               "restartCount": restarts, "state": state, "lastState": last})
    }

    #[test]
    pub(super) fn pull_failures_are_blocked_and_missing_images_fail_at_once() {
        let missing = "rpc error: code = NotFound desc = failed to resolve reference: not found";
        let p = pod(status(
            json!({"waiting": {"reason": "ErrImagePull", "message": missing}}),
            0,
            json!({}),
        ));
        let b = blocked(&p).expect("blocked");
        assert_eq!(
            (b.pod.as_str(), b.hash.as_str(), b.container.as_str()),
            ("web-5d8f-x1", "5d8f", "web")
        );
        assert_eq!(b.image, "nginx:does-not-exist");
        assert!(b.why.fails_after(Duration::ZERO), "{b:?}");

        // A back-off with no words of its own waits out the grace for a retry.
        let back_off =
            json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nginx:1\""}});
        let b = blocked(&pod(status(back_off, 0, json!({})))).expect("blocked");
        assert!(!b.why.fails_after(Duration::from_secs(1)));
        assert!(b.why.fails_after(PULL_GRACE));

        let invalid = json!({"waiting": {"reason": "InvalidImageName", "message": "couldn't parse image name"}});
        assert!(
            blocked(&pod(status(invalid, 0, json!({}))))
                .unwrap()
                .why
                .fails_after(Duration::ZERO)
        );
        let creating = json!({"waiting": {"reason": "ContainerCreating"}});
        assert_eq!(blocked(&pod(status(creating, 0, json!({})))), None);
    }

    #[test]
    pub(super) fn a_crash_loop_blocks_from_the_second_restart() {
        let waiting = json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}});
        let last = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
        assert_eq!(blocked(&pod(status(waiting.clone(), 1, last.clone()))), None);
        let b = blocked(&pod(status(waiting, 2, last))).expect("blocked");
        assert_eq!(
            b.why,
            Why::Crash {
                restarts: 2,
                exit_code: Some(137),
                reason: "OOMKilled".into(),
                message: String::new()
            }
        );
    }

    #[test]
    pub(super) fn a_bare_back_off_message_does_not_say_why() {
        assert!(!says_why("Back-off pulling image \"nginx:1\""));
        assert!(!says_why(""));
        assert!(says_why(
            "Back-off pulling image \"nginx:1\": ErrImagePull: failed to resolve reference: not found"
        ));
        assert!(says_why("rpc error: code = NotFound desc = not found"));
    }
}
