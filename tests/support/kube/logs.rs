//! `GET .../pods/{name}/log`: what the kubelet would return, with tailLines, sinceSeconds,
//! sinceTime, timestamps, limitBytes and container, and its 400s for containers that never
//! started.

use serde_json::Value;

use super::api::{Params, is_true};
use super::status::ApiError;
use super::store::State;
use super::util;

pub(super) fn pod_logs(st: &State, pod: &Value, params: &Params) -> Result<String, ApiError> {
    let name = util::str_at(pod, "metadata.name");
    let ns = util::str_at(pod, "metadata.namespace");
    let containers: Vec<&str> = util::path(pod, "spec.containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| util::str_at(c, "name"))
        .collect();
    let container = match params.get("container") {
        Some(c) if containers.contains(&c.as_str()) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() == 1 => containers[0].to_string(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    // A container that never started has no logs: the kubelet answers 400 with the reason.
    let cs = util::path(pod, "status.containerStatuses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|c| util::str_at(c, "name") == container))
        .cloned();
    let started = cs.as_ref().is_some_and(|c| {
        util::path(c, "state.running").is_some()
            || util::path(c, "state.terminated").is_some()
            || util::path(c, "lastState.terminated").is_some()
    });
    if !started {
        let reason = cs
            .as_ref()
            .map(|c| util::str_at(c, "state.waiting.reason").to_string())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "ContainerCreating".into());
        let shown = match reason.as_str() {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            r => r.to_string(),
        };
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {shown}"
        )));
    }
    let start = util::parse_time(util::str_at(pod, "status.startTime")).unwrap_or_else(util::now);
    let override_text = st
        .log_overrides
        .iter()
        .rev()
        .find(|(ons, prefix, _)| ons == ns && name.starts_with(prefix.as_str()))
        .map(|(_, _, t)| t.clone());
    let mut lines: Vec<(jiff::Timestamp, String)> = match override_text {
        Some(t) => t.lines().map(|l| (start, l.to_string())).collect(),
        None => st
            .pod_logs
            .get(util::str_at(pod, "metadata.uid"))
            .cloned()
            .unwrap_or_default(),
    };
    if let Some(s) = params.get("sinceSeconds").and_then(|s| s.parse::<i64>().ok()) {
        let cutoff = util::now().as_second() - s;
        lines.retain(|(ts, _)| ts.as_second() >= cutoff);
    }
    if let Some(since) = params.get("sinceTime").and_then(|s| util::parse_time(s)) {
        lines.retain(|(ts, _)| *ts >= since);
    }
    if let Some(n) = params.get("tailLines").and_then(|s| s.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let timestamps = is_true(params, "timestamps");
    let mut out = String::new();
    for (ts, l) in lines {
        if timestamps {
            out.push_str(&ts.strftime("%Y-%m-%dT%H:%M:%S%.9fZ ").to_string());
        }
        out.push_str(&l);
        out.push('\n');
    }
    if let Some(limit) = params.get("limitBytes").and_then(|s| s.parse::<usize>().ok())
        && out.len() > limit
    {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Ok(out)
}
