//! Job pods whose process a test supplies: for pods of Jobs whose container image starts
//! with a registered prefix, the fake kubelet hands the container's args to the test's
//! function (which runs for real, e.g. deckhand's load generator against a local server),
//! then writes what it returned as the pod's log and ends the pod: Succeeded on Ok, Failed
//! on Err.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use serde_json::Value;

use super::{store::State, util};

pub type RunFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
pub type RunFn = Arc<dyn Fn(Vec<String>) -> RunFuture + Send + Sync>;

#[derive(Default)]
pub struct PodRunners {
    runners: Vec<(String, RunFn)>,
    started: HashSet<String>,
    finished: Arc<Mutex<HashMap<String, Result<String, String>>>>,
}

impl PodRunners {
    pub fn add(&mut self, image_prefix: &str, run: RunFn) {
        self.runners.push((image_prefix.to_string(), run));
    }
}

/// What the kubelet should do with a running Job pod.
pub enum Drive {
    /// No runner for its image: the usual fake behaviour.
    NotMine,
    /// The runner is still going.
    Running,
    /// The runner ended; the pod's log is set. Ok(()) succeeded, Err(()) failed.
    Finished(Result<(), ()>),
}

pub fn drive(st: &mut State, pod: &Value) -> Drive {
    let container = util::path(pod, "spec.containers")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .cloned()
        .unwrap_or(Value::Null);
    let image = util::str_at(&container, "image").to_string();
    let Some(run) = st
        .pod_runners
        .runners
        .iter()
        .find(|(prefix, _)| image.starts_with(prefix.as_str()))
        .map(|(_, run)| run.clone())
    else {
        return Drive::NotMine;
    };
    let uid = util::str_at(pod, "metadata.uid").to_string();
    if st.pod_runners.started.insert(uid.clone()) {
        let args: Vec<String> = container
            .get("args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let finished = st.pod_runners.finished.clone();
        let id = uid.clone();
        tokio::spawn(async move {
            let result = run(args).await;
            finished.lock().unwrap().insert(id, result);
        });
        return Drive::Running;
    }
    let Some(result) = st.pod_runners.finished.lock().unwrap().remove(&uid) else {
        return Drive::Running;
    };
    let now = util::now();
    let (text, outcome) = match result {
        Ok(text) => (text, Ok(())),
        Err(text) => (text, Err(())),
    };
    st.pod_logs
        .insert(uid, text.lines().map(|l| (now, l.to_string())).collect());
    Drive::Finished(outcome)
}
