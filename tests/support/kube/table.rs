//! Server-side printing (`meta.k8s.io/v1 Table`) so a plain `kubectl get` shows the usual
//! columns against the fake. Only what a person looks at; `-o json` does not use this.

use serde_json::{Value, json};

use super::resources::ResourceDef;
use super::util;

fn age(obj: &Value) -> String {
    let Some(ts) = util::parse_time(util::str_at(obj, "metadata.creationTimestamp")) else {
        return "<unknown>".into();
    };
    let s = (util::now().as_second() - ts.as_second()).max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn num(obj: &Value, p: &str) -> i64 {
    util::i64_at(obj, p).unwrap_or(0)
}

fn pod_status(pod: &Value) -> String {
    if util::path(pod, "metadata.deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    for cs in util::path(pod, "status.containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let waiting = util::str_at(cs, "state.waiting.reason");
        if !waiting.is_empty() {
            return waiting.to_string();
        }
        let term = util::str_at(cs, "state.terminated.reason");
        if !term.is_empty() {
            return term.to_string();
        }
    }
    util::str_at(pod, "status.phase").to_string()
}

fn columns(rd: &ResourceDef) -> Vec<&'static str> {
    match rd.kind {
        "Pod" => vec!["Name", "Ready", "Status", "Restarts", "Age"],
        "Deployment" => vec!["Name", "Ready", "Up-to-date", "Available", "Age"],
        "ReplicaSet" => vec!["Name", "Desired", "Current", "Ready", "Age"],
        "Namespace" => vec!["Name", "Status", "Age"],
        "Service" => vec!["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
        "Job" => vec!["Name", "Status", "Completions", "Age"],
        "Event" => vec!["Last Seen", "Type", "Reason", "Object", "Message"],
        _ => vec!["Name", "Age"],
    }
}

fn cells(rd: &ResourceDef, o: &Value) -> Vec<Value> {
    let name = json!(util::str_at(o, "metadata.name"));
    match rd.kind {
        "Pod" => {
            let cs: Vec<Value> = util::path(o, "status.containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = util::path(o, "spec.containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = cs.iter().filter(|c| c.get("ready") == Some(&json!(true))).count();
            let restarts: i64 = cs.iter().map(|c| num(c, "restartCount")).sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts),
                json!(age(o)),
            ]
        }
        "Deployment" => vec![
            name,
            json!(format!(
                "{}/{}",
                num(o, "status.readyReplicas"),
                num(o, "spec.replicas")
            )),
            json!(num(o, "status.updatedReplicas")),
            json!(num(o, "status.availableReplicas")),
            json!(age(o)),
        ],
        "ReplicaSet" => vec![
            name,
            json!(num(o, "spec.replicas")),
            json!(num(o, "status.replicas")),
            json!(num(o, "status.readyReplicas")),
            json!(age(o)),
        ],
        "Namespace" => vec![name, json!(util::str_at(o, "status.phase")), json!(age(o))],
        "Service" => {
            let ports: Vec<String> = util::path(o, "spec.ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", num(p, "port"), util::str_at(p, "protocol")))
                .collect();
            vec![
                name,
                json!(util::str_at(o, "spec.type")),
                json!(util::str_at(o, "spec.clusterIP")),
                json!("<none>"),
                json!(ports.join(",")),
                json!(age(o)),
            ]
        }
        "Job" => {
            let status = if num(o, "status.succeeded") > 0 {
                "Complete"
            } else if num(o, "status.failed") > 0 {
                "Failed"
            } else {
                "Running"
            };
            vec![
                name,
                json!(status),
                json!(format!(
                    "{}/{}",
                    num(o, "status.succeeded"),
                    num(o, "spec.completions").max(1)
                )),
                json!(age(o)),
            ]
        }
        "Event" => vec![
            json!(util::str_at(o, "lastTimestamp")),
            json!(util::str_at(o, "type")),
            json!(util::str_at(o, "reason")),
            json!(format!(
                "{}/{}",
                util::str_at(o, "involvedObject.kind").to_lowercase(),
                util::str_at(o, "involvedObject.name")
            )),
            json!(util::str_at(o, "message")),
        ],
        _ => vec![name, json!(age(o))],
    }
}

pub fn table(rd: &ResourceDef, items: &[Value], rv: u64) -> Value {
    let defs: Vec<Value> = columns(rd)
        .iter()
        .map(|c| {
            let format = if *c == "Name" { "name" } else { "" };
            json!({"name": c, "type": "string", "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| json!({"cells": cells(rd, o), "object": o}))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": defs,
        "rows": rows,
    })
}
