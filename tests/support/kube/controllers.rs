//! The control loops of a tiny cluster, run once per step by a background task: namespace
//! cleanup, garbage collection, Deployment -> ReplicaSet -> Pod, a fake kubelet that moves pods
//! through their phases (with failure modes chosen by image name), Jobs, and quota status.
//!
//! Each pass moves every object at most one step forward, so rollouts take a few steps and a
//! watching client sees the intermediate states a real cluster shows.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::admission;
use super::resources::{self, ResourceDef};
use super::store::{self, State};
use super::util;

/// Images the registry does not have: pulls fail (ErrImagePull, then ImagePullBackOff).
pub fn is_bad_image(image: &str) -> bool {
    image.contains("does-not-exist") || image.contains("badimage")
}

/// Images whose containers exit 1 at once (restarted with back-off: CrashLoopBackOff).
pub fn is_crash_image(image: &str) -> bool {
    image.contains("crashloop")
}

/// How many steps a Job's pod runs before it succeeds.
const JOB_RUN_STEPS: u32 = 2;
/// Steps between a failed pull and the next try (the kubelet's image back-off, scaled down).
const PULL_BACKOFF_STEPS: u32 = 30;
/// Steps of a crashed container's first back-off (10 s on a kubelet); it doubles with each
/// restart.
const CRASH_BACKOFF_STEPS: u32 = 3;

fn rd(group: &str, plural: &str) -> &'static ResourceDef {
    resources::by_plural(group, plural).expect("resource is in the static table")
}

fn pods() -> &'static ResourceDef {
    rd("", "pods")
}

fn replicasets() -> &'static ResourceDef {
    rd(resources::APPS, "replicasets")
}

fn deployments() -> &'static ResourceDef {
    rd(resources::APPS, "deployments")
}

fn uid(o: &Value) -> String {
    util::str_at(o, "metadata.uid").to_string()
}

fn deleting(o: &Value) -> bool {
    util::path(o, "metadata.deletionTimestamp").is_some()
}

fn owned_by(o: &Value, owner_uid: &str) -> bool {
    util::path(o, "metadata.ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| util::str_at(r, "uid") == owner_uid))
}

fn owner_kind(o: &Value) -> String {
    util::path(o, "metadata.ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .find(|r| r.get("controller") == Some(&json!(true)))
                .or(refs.first())
        })
        .map(|r| util::str_at(r, "kind").to_string())
        .unwrap_or_default()
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": util::str_at(owner, "apiVersion"),
        "kind": util::str_at(owner, "kind"),
        "name": util::str_at(owner, "metadata.name"),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn pod_ready(p: &Value) -> bool {
    conditions(p)
        .iter()
        .any(|c| util::str_at(c, "type") == "Ready" && util::str_at(c, "status") == "True")
}

fn pod_terminal(p: &Value) -> bool {
    matches!(util::str_at(p, "status.phase"), "Succeeded" | "Failed")
}

fn conditions(o: &Value) -> Vec<Value> {
    util::path(o, "status.conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn find_condition(o: &Value, ty: &str) -> Option<Value> {
    conditions(o).into_iter().find(|c| util::str_at(c, "type") == ty)
}

/// A condition with transition time kept when the status does not change, and update time kept
/// when nothing about it changes (so an idle pass writes nothing).
fn condition(old: Option<&Value>, ty: &str, status: &str, reason: &str, message: &str, with_update: bool) -> Value {
    let now = util::fmt_time(util::now());
    let same_status = old.is_some_and(|o| util::str_at(o, "status") == status);
    let same_all = same_status
        && old.is_some_and(|o| util::str_at(o, "reason") == reason && util::str_at(o, "message") == message);
    let transition = match old {
        Some(o) if same_status => util::str_at(o, "lastTransitionTime").to_string(),
        _ => now.clone(),
    };
    let mut c = json!({
        "type": ty,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    });
    if with_update {
        let update = match old {
            Some(o) if same_all => util::str_at(o, "lastUpdateTime").to_string(),
            _ => now,
        };
        c["lastUpdateTime"] = json!(update);
    }
    c
}

fn set_or_remove(obj: &mut Value, field: &str, n: i64) {
    if n == 0 {
        util::remove_path(obj, field);
    } else {
        util::set_path(obj, field, json!(n));
    }
}

/// One pass of every controller.
pub fn tick(st: &mut State) {
    namespaces(st);
    garbage_collect(st);
    deployment_rollout(st);
    replicaset_pods(st);
    kubelet(st);
    jobs(st);
    replicaset_status(st);
    deployment_status(st);
    quota_status(st);
    super::custom::tick(st);
}

// ---------------------------------------------------------------------------------------------
// Namespaces and garbage collection
// ---------------------------------------------------------------------------------------------

/// Terminating namespaces lose their contents on one pass and disappear on the next; active
/// namespaces get their `default` ServiceAccount like on a real cluster.
fn namespaces(st: &mut State) {
    let nsd = rd("", "namespaces");
    let sad = rd("", "serviceaccounts");
    for ns in st.list(nsd, None) {
        let name = util::str_at(&ns, "metadata.name").to_string();
        if deleting(&ns) {
            let contents: Vec<(&'static ResourceDef, Value)> = st
                .all_objects()
                .into_iter()
                .filter(|(r, o)| r.namespaced && util::str_at(o, "metadata.namespace") == name)
                .collect();
            if contents.is_empty() {
                st.delete(nsd, "", &name);
            } else {
                for (r, o) in contents {
                    let (ons, oname) = store::ns_name(&o);
                    st.delete(r, &ons, &oname);
                }
            }
        } else if st.get(sad, &name, "default").is_none() {
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}});
            st.create(sad, sa);
        }
    }
}

/// Deletes objects all of whose owners are gone (background cascading deletion).
fn garbage_collect(st: &mut State) {
    let all = st.all_objects();
    let uids: HashSet<String> = all.iter().map(|(_, o)| uid(o)).collect();
    for (r, o) in all {
        let Some(refs) = util::path(&o, "metadata.ownerReferences").and_then(Value::as_array) else {
            continue;
        };
        if !refs.is_empty() && refs.iter().all(|rf| !uids.contains(util::str_at(rf, "uid"))) {
            let (ns, name) = store::ns_name(&o);
            st.delete(r, &ns, &name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deployments
// ---------------------------------------------------------------------------------------------

/// The pod template without the `pod-template-hash` label (what "same template" means).
fn template_sans_hash(t: &Value) -> Value {
    let mut t = t.clone();
    util::remove_path(&mut t, "metadata.labels.pod-template-hash");
    if util::path(&t, "metadata.labels")
        .and_then(Value::as_object)
        .is_some_and(|m| m.is_empty())
    {
        util::remove_path(&mut t, "metadata.labels");
    }
    t
}

fn template_hash(t: &Value, collisions: u32) -> String {
    let mut s = util::canonical_json(&template_sans_hash(t));
    if collisions > 0 {
        s.push_str(&collisions.to_string());
    }
    util::safe_encode_hash(util::fnv32(&s))
}

fn revision(o: &Value) -> i64 {
    util::path(o, "metadata.annotations")
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn set_revision(o: &mut Value, rev: i64) {
    util::obj_mut(o, "metadata.annotations").insert("deployment.kubernetes.io/revision".into(), json!(rev.to_string()));
}

fn owned(st: &State, r: &ResourceDef, owner: &Value) -> Vec<Value> {
    let ns = util::str_at(owner, "metadata.namespace");
    let u = uid(owner);
    st.list(r, Some(ns)).into_iter().filter(|o| owned_by(o, &u)).collect()
}

/// The ReplicaSet whose template equals the Deployment's (ignoring the hash label).
fn find_new_rs(d: &Value, rss: &[Value]) -> Option<Value> {
    let want = template_sans_hash(util::path(d, "spec.template").unwrap_or(&Value::Null));
    rss.iter()
        .find(|rs| template_sans_hash(util::path(rs, "spec.template").unwrap_or(&Value::Null)) == want)
        .cloned()
}

fn int_or_percent(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// Pods of a ReplicaSet that count (not terminal, not being deleted): (total, ready).
fn pod_counts(st: &State, rs: &Value) -> (i64, i64) {
    let ps: Vec<Value> = owned(st, pods(), rs)
        .into_iter()
        .filter(|p| !deleting(p) && !pod_terminal(p))
        .collect();
    let ready = ps.iter().filter(|p| pod_ready(p)).count() as i64;
    (ps.len() as i64, ready)
}

fn scale_rs(st: &mut State, d: &Value, rs: &Value, to: i64) {
    let from = util::i64_at(rs, "spec.replicas").unwrap_or(0);
    if from == to {
        return;
    }
    let mut n = rs.clone();
    util::set_path(&mut n, "spec.replicas", json!(to));
    let desired = util::i64_at(d, "spec.replicas").unwrap_or(1);
    let ann = util::obj_mut(&mut n, "metadata.annotations");
    ann.insert(
        "deployment.kubernetes.io/desired-replicas".into(),
        json!(desired.to_string()),
    );
    let saved = st.update(replicasets(), n);
    let dir = if to > from { "up" } else { "down" };
    let msg = format!(
        "Scaled {dir} replica set {} from {from} to {to}",
        util::str_at(&saved, "metadata.name")
    );
    st.event(d, "Normal", "ScalingReplicaSet", &msg, "deployment-controller");
}

fn create_rs(st: &mut State, d: &Value, rss: &[Value]) -> Option<Value> {
    let (ns, name) = store::ns_name(d);
    let template = util::path(d, "spec.template").cloned().unwrap_or(json!({}));
    let max_rev = rss.iter().map(revision).max().unwrap_or(0);
    let desired = util::i64_at(d, "spec.replicas").unwrap_or(1);
    for collisions in 0..5 {
        let hash = template_hash(&template, collisions);
        let rs_name = format!("{name}-{hash}");
        if st.get(replicasets(), &ns, &rs_name).is_some() {
            continue;
        }
        let mut t = template.clone();
        util::obj_mut(&mut t, "metadata.labels").insert("pod-template-hash".into(), json!(hash));
        let mut selector = util::path(d, "spec.selector").cloned().unwrap_or(json!({}));
        util::obj_mut(&mut selector, "matchLabels").insert("pod-template-hash".into(), json!(hash));
        let labels = util::path(&t, "metadata.labels").cloned().unwrap_or(json!({}));
        let surge = int_or_percent(util::path(d, "spec.strategy.rollingUpdate.maxSurge"), desired, true);
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": labels,
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": desired.to_string(),
                    "deployment.kubernetes.io/max-replicas": (desired + surge).to_string(),
                    "deployment.kubernetes.io/revision": (max_rev + 1).to_string(),
                },
                "ownerReferences": [owner_ref(d)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": t},
        });
        return match admission::prepare_create(st, replicasets(), rs) {
            Ok(rs) => Some(st.create(replicasets(), rs)),
            Err(e) => {
                st.event(d, "Warning", "FailedCreate", &e.message, "deployment-controller");
                None
            }
        };
    }
    None
}

/// Creates the ReplicaSet for the current template and moves pods over one per step
/// (maxSurge 1, maxUnavailable 0 in effect), or all at once for `Recreate`.
fn deployment_rollout(st: &mut State) {
    for d in st.list(deployments(), None) {
        let ns = util::str_at(&d, "metadata.namespace").to_string();
        if deleting(&d) || !st.namespace_active(&ns) || util::path(&d, "spec.paused") == Some(&json!(true)) {
            continue;
        }
        let desired = util::i64_at(&d, "spec.replicas").unwrap_or(1);
        let rss = owned(st, replicasets(), &d);
        let max_rev = rss.iter().map(revision).max().unwrap_or(0);
        let new_rs = match find_new_rs(&d, &rss) {
            Some(rs) if revision(&rs) < max_rev => {
                // Back to an older template (a rollback): that ReplicaSet becomes the newest.
                let mut n = rs.clone();
                set_revision(&mut n, max_rev + 1);
                Some(st.update(replicasets(), n))
            }
            Some(rs) => Some(rs),
            None => create_rs(st, &d, &rss),
        };
        let Some(new_rs) = new_rs else { continue };
        let new_uid = uid(&new_rs);
        let rev = revision(&new_rs);
        if revision(&d) != rev {
            let mut dd = d.clone();
            set_revision(&mut dd, rev);
            st.update(deployments(), dd);
        }
        let mut olds: Vec<Value> = owned(st, replicasets(), &d)
            .into_iter()
            .filter(|rs| uid(rs) != new_uid)
            .collect();
        // Newest old ReplicaSets keep their pods longest.
        olds.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
        let (_, new_ready) = pod_counts(st, &new_rs);
        let new_spec = util::i64_at(&new_rs, "spec.replicas").unwrap_or(0);
        let recreate = util::str_at(&d, "spec.strategy.type") == "Recreate";

        let old_pods: i64 = olds.iter().map(|rs| pod_counts(st, rs).0).sum();
        let target_new = if new_spec > desired {
            desired
        } else if recreate {
            if old_pods == 0 { desired } else { new_spec }
        } else if new_spec < desired && new_ready >= new_spec {
            new_spec + 1
        } else {
            new_spec
        };
        if target_new != new_spec {
            scale_rs(st, &d, &new_rs, target_new);
        }
        let mut budget = if recreate { 0 } else { (desired - new_ready).max(0) };
        for rs in &olds {
            let cur = util::i64_at(rs, "spec.replicas").unwrap_or(0);
            let keep = cur.min(budget);
            budget -= keep;
            if keep != cur {
                scale_rs(st, &d, rs, keep);
            }
        }
        // revisionHistoryLimit: old, empty ReplicaSets beyond the limit go.
        let limit = util::i64_at(&d, "spec.revisionHistoryLimit").unwrap_or(10).max(0) as usize;
        let mut empty: Vec<Value> = owned(st, replicasets(), &d)
            .into_iter()
            .filter(|rs| uid(rs) != new_uid && util::i64_at(rs, "spec.replicas").unwrap_or(0) == 0)
            .filter(|rs| pod_counts(st, rs).0 == 0)
            .collect();
        empty.sort_by_key(revision);
        while empty.len() > limit {
            let rs = empty.remove(0);
            let (ns, name) = store::ns_name(&rs);
            st.delete(replicasets(), &ns, &name);
        }
    }
}

fn deployment_status(st: &mut State) {
    let now = util::now();
    for d in st.list(deployments(), None) {
        if deleting(&d) {
            continue;
        }
        let desired = util::i64_at(&d, "spec.replicas").unwrap_or(1);
        let rss = owned(st, replicasets(), &d);
        let new_rs = find_new_rs(&d, &rss);
        let sum = |f: &str| rss.iter().map(|rs| util::i64_at(rs, f).unwrap_or(0)).sum::<i64>();
        let replicas = sum("status.replicas");
        let ready = sum("status.readyReplicas");
        let available = sum("status.availableReplicas");
        let spec_total = sum("spec.replicas");
        let updated = new_rs
            .as_ref()
            .and_then(|rs| util::i64_at(rs, "status.replicas"))
            .unwrap_or(0);
        let new_ready = new_rs
            .as_ref()
            .and_then(|rs| util::i64_at(rs, "status.readyReplicas"))
            .unwrap_or(0);
        let unavailable = (spec_total.max(desired) - available).max(0);
        let old_status = d.get("status").cloned().unwrap_or(json!({}));
        let rs_name = new_rs
            .as_ref()
            .map(|rs| util::str_at(rs, "metadata.name").to_string())
            .unwrap_or_default();

        let max_unavailable = if util::str_at(&d, "spec.strategy.type") == "Recreate" {
            desired
        } else {
            int_or_percent(
                util::path(&d, "spec.strategy.rollingUpdate.maxUnavailable"),
                desired,
                false,
            )
        };
        let old_avail = find_condition(&d, "Available");
        let available_cond = if available >= desired - max_unavailable {
            condition(
                old_avail.as_ref(),
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                true,
            )
        } else {
            condition(
                old_avail.as_ref(),
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                true,
            )
        };

        let old_prog = find_condition(&d, "Progressing");
        let complete = new_rs.is_some() && updated == desired && replicas == desired && new_ready >= desired;
        let counts = [
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("replicas", replicas),
        ];
        let moved = counts
            .iter()
            .any(|(f, v)| util::i64_at(&old_status, f).unwrap_or(0) != *v)
            || util::i64_at(&old_status, "observedGeneration") != util::i64_at(&d, "metadata.generation");
        let deadline = util::i64_at(&d, "spec.progressDeadlineSeconds").unwrap_or(600);
        let last_progress = old_prog
            .as_ref()
            .and_then(|c| util::parse_time(util::str_at(c, "lastUpdateTime")))
            .map_or(0, |t| t.as_second());
        let timed_out = old_prog
            .as_ref()
            .is_some_and(|c| util::str_at(c, "reason") == "ProgressDeadlineExceeded");
        let progressing = if complete {
            condition(
                old_prog.as_ref(),
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                true,
            )
        } else if moved || old_prog.is_none() {
            let mut c = condition(
                old_prog.as_ref(),
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{rs_name}\" is progressing."),
                true,
            );
            // Progress restarts the deadline clock.
            c["lastUpdateTime"] = json!(util::fmt_time(now));
            c
        } else if timed_out || now.as_second() - last_progress > deadline {
            condition(
                old_prog.as_ref(),
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                true,
            )
        } else {
            old_prog.clone().unwrap_or(Value::Null)
        };

        let mut conds = vec![available_cond, progressing];
        if let Some(f) = rss.iter().find_map(|rs| find_condition(rs, "ReplicaFailure")) {
            let old_f = find_condition(&d, "ReplicaFailure");
            conds.push(condition(
                old_f.as_ref(),
                "ReplicaFailure",
                "True",
                "FailedCreate",
                util::str_at(&f, "message"),
                true,
            ));
        }

        let mut status = json!({"conditions": conds});
        if let Some(g) = util::i64_at(&d, "metadata.generation") {
            status["observedGeneration"] = json!(g);
        }
        set_or_remove(&mut status, "replicas", replicas);
        set_or_remove(&mut status, "updatedReplicas", updated);
        set_or_remove(&mut status, "readyReplicas", ready);
        set_or_remove(&mut status, "availableReplicas", available);
        set_or_remove(&mut status, "unavailableReplicas", unavailable);
        if status != old_status {
            let mut nd = d.clone();
            util::set_path(&mut nd, "status", status);
            st.update(deployments(), nd);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ReplicaSets
// ---------------------------------------------------------------------------------------------

/// Builds a pod from a template for `owner` (a ReplicaSet or a Job).
fn pod_from_template(st: &mut State, owner: &Value) -> Value {
    let (ns, name) = store::ns_name(owner);
    let t = util::path(owner, "spec.template").cloned().unwrap_or(json!({}));
    let mut meta = t.get("metadata").cloned().unwrap_or(json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.remove("creationTimestamp");
        m.remove("name");
    }
    let pod_name = format!("{name}-{}", st.rng.suffix());
    util::set_path(&mut meta, "name", json!(pod_name));
    util::set_path(&mut meta, "generateName", json!(format!("{name}-")));
    util::set_path(&mut meta, "namespace", json!(ns));
    util::set_path(&mut meta, "ownerReferences", json!([owner_ref(owner)]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": t.get("spec").cloned().unwrap_or(json!({})),
    })
}

fn set_rs_failure(st: &mut State, rs: &Value, message: Option<&str>) {
    let mut conds: Vec<Value> = conditions(rs)
        .into_iter()
        .filter(|c| util::str_at(c, "type") != "ReplicaFailure")
        .collect();
    if let Some(m) = message {
        let old = find_condition(rs, "ReplicaFailure");
        conds.push(condition(
            old.as_ref(),
            "ReplicaFailure",
            "True",
            "FailedCreate",
            m,
            false,
        ));
    }
    let mut n = rs.clone();
    if conds.is_empty() {
        util::remove_path(&mut n, "status.conditions");
    } else {
        util::set_path(&mut n, "status.conditions", json!(conds));
    }
    st.update(replicasets(), n);
}

/// Creates or deletes pods so each ReplicaSet has spec.replicas of them. Pod creation goes
/// through admission, so a full quota ends in a FailedCreate event, as on a cluster.
fn replicaset_pods(st: &mut State) {
    for rs in st.list(replicasets(), None) {
        let ns = util::str_at(&rs, "metadata.namespace").to_string();
        if deleting(&rs) || !st.namespace_active(&ns) {
            continue;
        }
        let desired = util::i64_at(&rs, "spec.replicas").unwrap_or(1);
        let mut live: Vec<Value> = owned(st, pods(), &rs)
            .into_iter()
            .filter(|p| !deleting(p) && !pod_terminal(p))
            .collect();
        let mut have = live.len() as i64;
        let mut failure = None;
        while have < desired {
            let pod = pod_from_template(st, &rs);
            match admission::prepare_create(st, pods(), pod) {
                Ok(p) => {
                    let p = st.create(pods(), p);
                    let msg = format!("Created pod: {}", util::str_at(&p, "metadata.name"));
                    st.event(&rs, "Normal", "SuccessfulCreate", &msg, "replicaset-controller");
                    have += 1;
                }
                Err(e) => {
                    let msg = format!("Error creating: {}", e.message);
                    st.event(&rs, "Warning", "FailedCreate", &msg, "replicaset-controller");
                    failure = Some(e.message);
                    break;
                }
            }
        }
        let current = st.get(replicasets(), &ns, util::str_at(&rs, "metadata.name")).cloned();
        if let Some(current) = current {
            let had_failure = find_condition(&current, "ReplicaFailure").is_some();
            match &failure {
                Some(m) => set_rs_failure(st, &current, Some(m)),
                None if had_failure && have >= desired => set_rs_failure(st, &current, None),
                None => {}
            }
        }
        if have > desired {
            // Not-ready pods go first, then the newest.
            live.sort_by(|a, b| {
                pod_ready(a)
                    .cmp(&pod_ready(b))
                    .then(
                        util::str_at(b, "metadata.creationTimestamp")
                            .cmp(util::str_at(a, "metadata.creationTimestamp")),
                    )
                    .then(util::str_at(b, "metadata.name").cmp(util::str_at(a, "metadata.name")))
            });
            for p in live.iter().take((have - desired) as usize) {
                let (pns, pname) = store::ns_name(p);
                for c in util::path(p, "spec.containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let msg = format!("Stopping container {}", util::str_at(c, "name"));
                    st.event(p, "Normal", "Killing", &msg, "kubelet");
                }
                st.delete(pods(), &pns, &pname);
                let msg = format!("Deleted pod: {pname}");
                st.event(&rs, "Normal", "SuccessfulDelete", &msg, "replicaset-controller");
            }
        }
    }
}

fn replicaset_status(st: &mut State) {
    for rs in st.list(replicasets(), None) {
        if deleting(&rs) {
            continue;
        }
        let (total, ready) = pod_counts(st, &rs);
        let old = rs.get("status").cloned().unwrap_or(json!({}));
        let mut status = json!({"replicas": total});
        set_or_remove(&mut status, "fullyLabeledReplicas", total);
        set_or_remove(&mut status, "readyReplicas", ready);
        set_or_remove(&mut status, "availableReplicas", ready);
        if let Some(g) = util::i64_at(&rs, "metadata.generation") {
            status["observedGeneration"] = json!(g);
        }
        if let Some(c) = old.get("conditions") {
            status["conditions"] = c.clone();
        }
        if status != old {
            let mut n = rs.clone();
            util::set_path(&mut n, "status", status);
            st.update(replicasets(), n);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The kubelet
// ---------------------------------------------------------------------------------------------

fn container_status(c: &Value, state: Value, ready: bool, restarts: i64, last: Option<Value>) -> Value {
    let image = util::str_at(c, "image");
    let started = state.get("running").is_some();
    let mut s = json!({
        "name": util::str_at(c, "name"),
        "image": image,
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "started": started,
        "state": state,
        "lastState": last.unwrap_or(json!({})),
    });
    if started || util::path(&s, "state.terminated").is_some() {
        s["imageID"] = json!(format!("docker.io/library/{image}@sha256:{:064x}", util::fnv32(image)));
        s["containerID"] = json!(format!("containerd://{:064x}", util::fnv32(util::str_at(c, "name"))));
    }
    s
}

fn pod_conditions(old: &Value, scheduled: bool, initialized: bool, ready: bool, reason: &str, msg: &str) -> Value {
    let b = |x: bool| if x { "True" } else { "False" };
    let mut out = Vec::new();
    for (ty, ok) in [
        ("PodReadyToStartContainers", initialized),
        ("Initialized", initialized),
        ("Ready", ready),
        ("ContainersReady", ready),
        ("PodScheduled", scheduled),
    ] {
        if !scheduled && ty != "PodScheduled" {
            continue;
        }
        let prev = find_condition(old, ty);
        let mut c = condition(prev.as_ref(), ty, b(ok), "", "", false);
        if let Some(m) = c.as_object_mut() {
            if ok || !matches!(ty, "Ready" | "ContainersReady") || reason.is_empty() {
                m.remove("reason");
                m.remove("message");
            } else {
                m.insert("reason".into(), json!(reason));
                m.insert("message".into(), json!(msg));
            }
            m.insert("lastProbeTime".into(), Value::Null);
        }
        out.push(c);
    }
    json!(out)
}

fn log(st: &mut State, pod: &Value, line: String) {
    st.pod_logs.entry(uid(pod)).or_default().push((util::now(), line));
}

/// An image reference as containerd resolves it: `nginx:1` is `docker.io/library/nginx:1`.
fn full_reference(image: &str) -> String {
    let first = image.split('/').next().unwrap_or_default();
    let named = if !image.contains('/') {
        format!("docker.io/library/{image}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        image.to_string()
    } else {
        format!("docker.io/{image}")
    };
    let last = named.rsplit('/').next().unwrap_or_default();
    if last.contains(':') || last.contains('@') {
        named
    } else {
        format!("{named}:latest")
    }
}

/// What containerd answers for a tag the registry does not have.
fn pull_error(image: &str) -> String {
    let full = full_reference(image);
    format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": {full}: not found"
    )
}

/// The pod with its missing-image containers waiting for `reason` (the others not started).
fn with_pull_status(pod: &Value, mut p: Value, containers: &[Value], reason: &str) -> Value {
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let img = util::str_at(c, "image");
            let waiting = match (is_bad_image(img), reason) {
                (true, "ErrImagePull") => json!({"waiting": {"reason": reason, "message": pull_error(img)}}),
                (true, _) => {
                    json!({"waiting": {"reason": reason, "message": format!("Back-off pulling image \"{img}\"")}})
                }
                (false, _) => json!({"waiting": {"reason": "PodInitializing"}}),
            };
            container_status(c, waiting, false, 0, None)
        })
        .collect();
    let names: Vec<&str> = containers.iter().map(|c| util::str_at(c, "name")).collect();
    let msg = format!("containers with unready status: [{}]", names.join(" "));
    util::set_path(&mut p, "status.containerStatuses", json!(statuses));
    util::set_path(
        &mut p,
        "status.conditions",
        pod_conditions(pod, true, true, false, "ContainersNotReady", &msg),
    );
    p
}

/// A kubelet pulling an image the registry does not have: a try fails (ErrImagePull, with
/// the registry's answer in the status and a Failed warning), the next pass backs off
/// (ImagePullBackOff), and after `PULL_BACKOFF_STEPS` it tries again.
fn pull_missing(st: &mut State, pod: &Value, p: Value, containers: &[Value], bad: &Value, ticks: u32) {
    let image = util::str_at(bad, "image").to_string();
    let cname = util::str_at(bad, "name").to_string();
    let now_reason = util::str_at(&status_of(pod, &cname), "state.waiting.reason").to_string();
    let id = uid(pod);
    let back_off = format!("Back-off pulling image \"{image}\"");
    match Some(now_reason.as_str()) {
        Some("ErrImagePull") => {
            let saved = st.update(pods(), with_pull_status(pod, p, containers, "ImagePullBackOff"));
            st.event(&saved, "Normal", "BackOff", &back_off, "kubelet");
            st.event(&saved, "Warning", "Failed", "Error: ImagePullBackOff", "kubelet");
            st.ticks.insert(id, 0);
        }
        Some("ImagePullBackOff") if ticks < PULL_BACKOFF_STEPS => {
            // Keep the back-off events fresh (their count grows) like a real kubelet.
            st.event(pod, "Normal", "BackOff", &back_off, "kubelet");
        }
        _ => {
            let saved = st.update(pods(), with_pull_status(pod, p, containers, "ErrImagePull"));
            st.event(
                &saved,
                "Normal",
                "Pulling",
                &format!("Pulling image \"{image}\""),
                "kubelet",
            );
            let failed = format!("Failed to pull image \"{image}\": {}", pull_error(&image));
            st.event(&saved, "Warning", "Failed", &failed, "kubelet");
            st.event(&saved, "Warning", "Failed", "Error: ErrImagePull", "kubelet");
            st.ticks.insert(id, 0);
        }
    }
}

/// A container whose process exits 1 at once, as a kubelet shows it: Running, then
/// Terminated (Error); restarted at once the first time, then CrashLoopBackOff with a
/// back-off that doubles with each restart (restartCount counts the restarts). A Job pod
/// that may not restart fails instead.
#[allow(clippy::too_many_arguments)]
fn crash_loop(
    st: &mut State,
    pod: &Value,
    mut p: Value,
    containers: &[Value],
    crash: &Value,
    ticks: u32,
    first_start: bool,
    job_fails: bool,
) {
    let cname = util::str_at(crash, "name").to_string();
    let image = util::str_at(crash, "image").to_string();
    let old = status_of(pod, &cname);
    let restarts = util::i64_at(&old, "restartCount").unwrap_or(0);
    let now = util::fmt_time(util::now());
    let id = uid(pod);
    let running = json!({"running": {"startedAt": now}});
    let (state, restarts, last) = if first_start {
        log(st, pod, format!("starting {image}"));
        st.ticks.insert(id, 0);
        (running, 0, None)
    } else if util::path(&old, "state.running").is_some() {
        log(st, pod, "panic: config missing DATABASE_URL".to_string());
        let started = util::path(&old, "state.running.startedAt")
            .cloned()
            .unwrap_or(json!(now));
        let t = crash_exit(&cname, started);
        if job_fails {
            fail_job_pod(st, pod, p, containers, t);
            return;
        }
        (t, restarts, util::path(&old, "lastState").cloned())
    } else {
        let backoff = if util::path(&old, "state.terminated").is_some() {
            0
        } else {
            CRASH_BACKOFF_STEPS << (restarts.clamp(1, 5) - 1)
        };
        if ticks < backoff {
            st.event(pod, "Warning", "BackOff", &crash_back_off(pod, &cname), "kubelet");
            return;
        }
        // Restarted, and out again before the next pass.
        for (reason, msg) in [
            (
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            ),
            ("Created", format!("Created container: {cname}")),
            ("Started", format!("Started container {cname}")),
        ] {
            st.event(pod, "Normal", reason, &msg, "kubelet");
        }
        log(st, pod, format!("starting {image}"));
        log(st, pod, "panic: config missing DATABASE_URL".to_string());
        let restarts = restarts + 1;
        let secs = 10 << (restarts.clamp(1, 6) - 1);
        let waiting = json!({"waiting": {
            "reason": "CrashLoopBackOff",
            "message": format!("back-off {secs}s restarting failed container={cname} pod={}_{}({id})", name_of(pod), ns_of(pod)),
        }});
        st.ticks.insert(id.clone(), 0);
        (waiting, restarts, Some(crash_exit(&cname, json!(now))))
    };
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            if util::str_at(c, "name") == cname {
                container_status(c, state.clone(), false, restarts, last.clone())
            } else {
                container_status(c, json!({"running": {"startedAt": now}}), true, 0, None)
            }
        })
        .collect();
    util::set_path(&mut p, "status.phase", json!("Running"));
    util::set_path(&mut p, "status.containerStatuses", json!(statuses));
    let msg = format!("containers with unready status: [{cname}]");
    let conds = pod_conditions(pod, true, true, false, "ContainersNotReady", &msg);
    util::set_path(&mut p, "status.conditions", conds);
    let saved = st.update(pods(), p);
    if state.get("waiting").is_some() {
        st.event(&saved, "Warning", "BackOff", &crash_back_off(pod, &cname), "kubelet");
    }
}

fn crash_back_off(pod: &Value, cname: &str) -> String {
    let (name, ns, id) = (name_of(pod), ns_of(pod), uid(pod));
    format!("Back-off restarting failed container {cname} in pod {name}_{ns}({id})")
}

/// The container's status as the pod has it now (Null if none).
fn status_of(pod: &Value, cname: &str) -> Value {
    util::path(pod, "status.containerStatuses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|s| util::str_at(s, "name") == cname))
        .cloned()
        .unwrap_or(Value::Null)
}

fn name_of(o: &Value) -> &str {
    util::str_at(o, "metadata.name")
}

fn ns_of(o: &Value) -> &str {
    util::str_at(o, "metadata.namespace")
}

fn crash_exit(cname: &str, started: Value) -> Value {
    json!({"terminated": {
        "exitCode": 1,
        "reason": "Error",
        "startedAt": started,
        "finishedAt": util::fmt_time(util::now()),
        "containerID": format!("containerd://{:064x}", util::fnv32(cname)),
    }})
}

fn fail_job_pod(st: &mut State, pod: &Value, mut p: Value, containers: &[Value], terminated: Value) {
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| container_status(c, terminated.clone(), false, 0, None))
        .collect();
    util::set_path(&mut p, "status.phase", json!("Failed"));
    util::set_path(&mut p, "status.containerStatuses", json!(statuses));
    let conds = pod_conditions(pod, true, true, false, "PodFailed", "");
    util::set_path(&mut p, "status.conditions", conds);
    st.update(pods(), p);
}

/// Moves each pod one step: schedule -> pull -> run (or fail to pull, or crash), and for Job
/// pods, run -> succeed.
fn kubelet(st: &mut State) {
    for pod in st.list(pods(), None) {
        let ns = util::str_at(&pod, "metadata.namespace").to_string();
        if deleting(&pod) || pod_terminal(&pod) || !st.namespace_active(&ns) {
            continue;
        }
        let id = uid(&pod);
        let ticks = {
            let t = st.ticks.entry(id.clone()).or_insert(0);
            *t += 1;
            *t
        };
        let (_, name) = store::ns_name(&pod);
        let containers: Vec<Value> = util::path(&pod, "spec.containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let names: Vec<String> = containers.iter().map(|c| util::str_at(c, "name").to_string()).collect();
        let not_ready_msg = format!("containers with unready status: [{}]", names.join(" "));
        if containers.is_empty() {
            continue;
        }
        let mut p = pod.clone();

        if util::str_at(&pod, "spec.nodeName").is_empty() {
            util::set_path(&mut p, "spec.nodeName", json!("fake-node"));
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| container_status(c, json!({"waiting": {"reason": "ContainerCreating"}}), false, 0, None))
                .collect();
            util::set_path(&mut p, "status.phase", json!("Pending"));
            util::set_path(&mut p, "status.hostIP", json!("10.0.0.10"));
            util::set_path(&mut p, "status.hostIPs", json!([{"ip": "10.0.0.10"}]));
            util::set_path(&mut p, "status.startTime", json!(util::fmt_time(util::now())));
            util::set_path(&mut p, "status.containerStatuses", json!(statuses));
            let conds = pod_conditions(&pod, true, false, false, "ContainersNotReady", &not_ready_msg);
            util::set_path(&mut p, "status.conditions", conds);
            let saved = st.update(pods(), p);
            let msg = format!("Successfully assigned {ns}/{name} to fake-node");
            st.event(&saved, "Normal", "Scheduled", &msg, "default-scheduler");
            continue;
        }

        let is_job = owner_kind(&pod) == "Job";
        let restart_never = util::str_at(&pod, "spec.restartPolicy") == "Never";
        let bad = containers.iter().find(|c| is_bad_image(util::str_at(c, "image")));
        let crash = containers.iter().find(|c| is_crash_image(util::str_at(c, "image")));
        let old_statuses: Vec<Value> = util::path(&pod, "status.containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let was = |c: &Value, path: &str| {
            old_statuses
                .iter()
                .find(|s| util::str_at(s, "name") == util::str_at(c, "name"))
                .and_then(|s| util::path(s, path).cloned())
        };
        let now = util::fmt_time(util::now());

        if let Some(bad) = bad {
            pull_missing(st, &pod, p, &containers, bad, ticks);
            continue;
        }

        let started_before = old_statuses.iter().any(|s| {
            s.get("state")
                .is_some_and(|x| x.get("running").is_some() || x.get("terminated").is_some())
                || s.get("restartCount") != Some(&json!(0))
        });
        let first_start = !started_before
            && containers
                .first()
                .and_then(|c| was(c, "lastState.terminated"))
                .is_none();
        if first_start {
            for c in &containers {
                let image = util::str_at(c, "image");
                let cname = util::str_at(c, "name");
                st.event(
                    &pod,
                    "Normal",
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                    "kubelet",
                );
                st.event(
                    &pod,
                    "Normal",
                    "Created",
                    &format!("Created container: {cname}"),
                    "kubelet",
                );
                st.event(
                    &pod,
                    "Normal",
                    "Started",
                    &format!("Started container {cname}"),
                    "kubelet",
                );
            }
            if util::str_at(&pod, "status.podIP").is_empty() {
                let ip = st.next_pod_ip();
                util::set_path(&mut p, "status.podIP", json!(ip));
                util::set_path(&mut p, "status.podIPs", json!([{"ip": ip}]));
            }
        }

        if let Some(crash) = crash {
            let job_fails = is_job && restart_never;
            crash_loop(st, &pod, p, &containers, crash, ticks, first_start, job_fails);
            continue;
        }

        if first_start {
            for c in &containers {
                log(st, &pod, format!("starting {}", util::str_at(c, "image")));
                log(st, &pod, "listening on :8080".to_string());
            }
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| container_status(c, json!({"running": {"startedAt": now}}), true, 0, None))
                .collect();
            util::set_path(&mut p, "status.phase", json!("Running"));
            util::set_path(&mut p, "status.containerStatuses", json!(statuses));
            let conds = pod_conditions(&pod, true, true, true, "", "");
            util::set_path(&mut p, "status.conditions", conds);
            st.ticks.insert(id.clone(), 0);
            st.update(pods(), p);
            continue;
        }

        if is_job {
            let exit = match super::pod_runner::drive(st, &pod) {
                super::pod_runner::Drive::NotMine => None,
                super::pod_runner::Drive::Running => continue,
                super::pod_runner::Drive::Finished(Ok(())) => Some((0, "Completed", "Succeeded", "PodCompleted")),
                super::pod_runner::Drive::Finished(Err(())) => Some((1, "Error", "Failed", "PodFailed")),
            };
            if let Some((code, reason, phase, why)) = exit {
                let statuses: Vec<Value> = containers
                    .iter()
                    .map(|c| {
                        let started = was(c, "state.running.startedAt").unwrap_or(json!(now));
                        let t = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now}});
                        container_status(c, t, false, 0, None)
                    })
                    .collect();
                util::set_path(&mut p, "status.phase", json!(phase));
                util::set_path(&mut p, "status.containerStatuses", json!(statuses));
                let conds = pod_conditions(&pod, true, true, false, why, "");
                util::set_path(&mut p, "status.conditions", conds);
                st.update(pods(), p);
                continue;
            }
        }

        if is_job && ticks >= JOB_RUN_STEPS {
            log(st, &pod, "done".to_string());
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| {
                    let started = was(c, "state.running.startedAt").unwrap_or(json!(now));
                    let t = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now}});
                    container_status(c, t, false, 0, None)
                })
                .collect();
            util::set_path(&mut p, "status.phase", json!("Succeeded"));
            util::set_path(&mut p, "status.containerStatuses", json!(statuses));
            let conds = pod_conditions(&pod, true, true, false, "PodCompleted", "");
            util::set_path(&mut p, "status.conditions", conds);
            st.update(pods(), p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

fn jobs(st: &mut State) {
    let jd = rd(resources::BATCH, "jobs");
    for job in st.list(jd, None) {
        let ns = util::str_at(&job, "metadata.namespace").to_string();
        if deleting(&job) || !st.namespace_active(&ns) {
            continue;
        }
        let finished = conditions(&job)
            .iter()
            .any(|c| matches!(util::str_at(c, "type"), "Complete" | "Failed") && util::str_at(c, "status") == "True");
        if finished || util::path(&job, "spec.suspend") == Some(&json!(true)) {
            continue;
        }
        let completions = util::i64_at(&job, "spec.completions").unwrap_or(1);
        let parallelism = util::i64_at(&job, "spec.parallelism").unwrap_or(1);
        let backoff_limit = util::i64_at(&job, "spec.backoffLimit").unwrap_or(6);
        let ps = owned(st, pods(), &job);
        let succeeded = ps
            .iter()
            .filter(|p| util::str_at(p, "status.phase") == "Succeeded")
            .count() as i64;
        let failed = ps
            .iter()
            .filter(|p| util::str_at(p, "status.phase") == "Failed")
            .count() as i64;
        let mut active = ps.iter().filter(|p| !pod_terminal(p) && !deleting(p)).count() as i64;
        let ready = ps.iter().filter(|p| pod_ready(p)).count() as i64;
        let now = util::fmt_time(util::now());

        let mut j = job.clone();
        let mut conds = conditions(&job);
        if succeeded >= completions {
            let msg = "Reached expected number of succeeded pods";
            conds.push(condition(
                None,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                msg,
                false,
            ));
            conds.push(condition(None, "Complete", "True", "CompletionsReached", msg, false));
            util::set_path(&mut j, "status.completionTime", json!(now));
            st.event(&job, "Normal", "Completed", "Job completed", "job-controller");
        } else if failed > backoff_limit {
            let msg = "Job has reached the specified backoff limit";
            conds.push(condition(
                None,
                "FailureTarget",
                "True",
                "BackoffLimitExceeded",
                msg,
                false,
            ));
            conds.push(condition(None, "Failed", "True", "BackoffLimitExceeded", msg, false));
            st.event(&job, "Warning", "BackoffLimitExceeded", msg, "job-controller");
        } else {
            let want = parallelism.min(completions - succeeded);
            while active < want {
                let pod = pod_from_template(st, &job);
                match admission::prepare_create(st, pods(), pod) {
                    Ok(p) => {
                        let p = st.create(pods(), p);
                        let msg = format!("Created pod: {}", util::str_at(&p, "metadata.name"));
                        st.event(&job, "Normal", "SuccessfulCreate", &msg, "job-controller");
                        active += 1;
                    }
                    Err(e) => {
                        let msg = format!("Error creating: {}", e.message);
                        st.event(&job, "Warning", "FailedCreate", &msg, "job-controller");
                        break;
                    }
                }
            }
        }
        if util::path(&job, "status.startTime").is_none() {
            util::set_path(&mut j, "status.startTime", json!(now));
        }
        let active = if conds.len() > conditions(&job).len() {
            0
        } else {
            active
        };
        set_or_remove(&mut j, "status.active", active);
        set_or_remove(&mut j, "status.succeeded", succeeded);
        set_or_remove(&mut j, "status.failed", failed);
        util::set_path(&mut j, "status.ready", json!(if active > 0 { ready } else { 0 }));
        util::set_path(&mut j, "status.terminating", json!(0));
        util::set_path(&mut j, "status.uncountedTerminatedPods", json!({}));
        if !conds.is_empty() {
            util::set_path(&mut j, "status.conditions", json!(conds));
        }
        st.update(jd, j);
    }
}

// ---------------------------------------------------------------------------------------------
// ResourceQuota status
// ---------------------------------------------------------------------------------------------

fn quota_status(st: &mut State) {
    let qd = rd("", "resourcequotas");
    for q in st.list(qd, None) {
        let ns = util::str_at(&q, "metadata.namespace").to_string();
        let hard = util::path(&q, "spec.hard").cloned().unwrap_or(json!({}));
        let mut used = serde_json::Map::new();
        for k in hard.as_object().into_iter().flatten().map(|(k, _)| k.clone()) {
            let u = admission::usage(st, &ns, &k);
            used.insert(k.clone(), json!(util::fmt_quantity(&k, u)));
        }
        let status = json!({"hard": hard, "used": used});
        if q.get("status") != Some(&status) {
            let mut n = q.clone();
            util::set_path(&mut n, "status", status);
            st.update(qd, n);
        }
    }
}
