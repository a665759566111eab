//! What the real API server does between decoding a request and storing it: defaulting,
//! validation (422), namespace lifecycle (404 / 403 Terminating), LimitRange defaults and
//! ResourceQuota enforcement (403 "exceeded quota"). Controllers creating pods go through the
//! same path, so a quota stops them exactly like it stops a client.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::resources::{self, NameRule, ResourceDef};
use super::selectors::LabelSelector;
use super::status::{ApiError, FieldError};
use super::store::State;
use super::util;

static SUBDOMAIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").expect("regex"));
static LABEL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("regex"));
static DNS1035: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z]([-a-z0-9]*[a-z0-9])?$").expect("regex"));
static QUALIFIED_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").expect("regex"));
static LABEL_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").expect("regex"));
static CONFIG_KEY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[-._a-zA-Z0-9]+$").expect("regex"));

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && SUBDOMAIN.is_match(s)
}

pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && LABEL.is_match(s)
}

// ---------------------------------------------------------------------------------------------
// Defaulting
// ---------------------------------------------------------------------------------------------

fn default_container(c: &mut Value) {
    let image = util::str_at(c, "image").to_string();
    let tag = image
        .rsplit('/')
        .next()
        .unwrap_or("")
        .split_once(':')
        .map(|(_, t)| t.to_string());
    let policy = if image.contains('@') || tag.as_deref().is_some_and(|t| t != "latest") {
        "IfNotPresent"
    } else {
        "Always"
    };
    util::default_path(c, "imagePullPolicy", json!(policy));
    util::default_path(c, "terminationMessagePath", json!("/dev/termination-log"));
    util::default_path(c, "terminationMessagePolicy", json!("File"));
    util::default_path(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            util::default_path(p, "protocol", json!("TCP"));
        }
    }
    // A pod's requests default to its limits when only limits are given.
    let limits = util::path(c, "resources.limits").and_then(Value::as_object).cloned();
    if let Some(limits) = limits {
        let req = util::obj_mut(c, "resources.requests");
        for (k, v) in limits {
            req.entry(k).or_insert(v);
        }
    }
}

fn default_pod_spec(spec: &mut Value) {
    util::default_path(spec, "restartPolicy", json!("Always"));
    util::default_path(spec, "dnsPolicy", json!("ClusterFirst"));
    util::default_path(spec, "schedulerName", json!("default-scheduler"));
    util::default_path(spec, "terminationGracePeriodSeconds", json!(30));
    util::default_path(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

fn default_template(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").and_then(|s| s.get_mut("template")) {
        if let Some(ps) = spec.get_mut("spec") {
            default_pod_spec(ps);
        }
        util::default_path(spec, "metadata.creationTimestamp", Value::Null);
    }
}

/// Fills the defaults the real API server fills for the kinds the actions use, so reads and
/// re-applies look like they do on a cluster. Idempotent: only missing fields are set.
pub fn default_object(rd: &ResourceDef, mut obj: Value) -> Value {
    match rd.kind {
        "Namespace" => {
            let name = util::str_at(&obj, "metadata.name").to_string();
            util::obj_mut(&mut obj, "metadata.labels").insert("kubernetes.io/metadata.name".into(), json!(name));
            util::default_path(&mut obj, "spec.finalizers", json!(["kubernetes"]));
            util::default_path(&mut obj, "status.phase", json!("Active"));
        }
        "Pod" => {
            if let Some(ps) = obj.get_mut("spec") {
                default_pod_spec(ps);
                util::default_path(ps, "serviceAccountName", json!("default"));
                util::default_path(ps, "enableServiceLinks", json!(true));
                util::default_path(ps, "priority", json!(0));
            }
        }
        "Deployment" => {
            util::default_path(&mut obj, "spec.replicas", json!(1));
            util::default_path(&mut obj, "spec.revisionHistoryLimit", json!(10));
            util::default_path(&mut obj, "spec.progressDeadlineSeconds", json!(600));
            util::default_path(&mut obj, "spec.strategy.type", json!("RollingUpdate"));
            if util::str_at(&obj, "spec.strategy.type") == "RollingUpdate" {
                util::default_path(&mut obj, "spec.strategy.rollingUpdate.maxUnavailable", json!("25%"));
                util::default_path(&mut obj, "spec.strategy.rollingUpdate.maxSurge", json!("25%"));
            }
            default_template(&mut obj);
        }
        "ReplicaSet" => {
            util::default_path(&mut obj, "spec.replicas", json!(1));
            default_template(&mut obj);
        }
        "Job" => {
            util::default_path(&mut obj, "spec.parallelism", json!(1));
            util::default_path(&mut obj, "spec.completions", json!(1));
            util::default_path(&mut obj, "spec.backoffLimit", json!(6));
            util::default_path(&mut obj, "spec.completionMode", json!("NonIndexed"));
            util::default_path(&mut obj, "spec.suspend", json!(false));
            default_template(&mut obj);
        }
        "Service" => {
            if obj.get("spec").is_some() {
                util::default_path(&mut obj, "spec.type", json!("ClusterIP"));
                util::default_path(&mut obj, "spec.sessionAffinity", json!("None"));
                util::default_path(&mut obj, "spec.internalTrafficPolicy", json!("Cluster"));
                if let Some(ports) = util::path(&obj, "spec.ports").and_then(Value::as_array).cloned() {
                    let ports: Vec<Value> = ports
                        .into_iter()
                        .map(|mut p| {
                            util::default_path(&mut p, "protocol", json!("TCP"));
                            if let Some(port) = p.get("port").cloned() {
                                util::default_path(&mut p, "targetPort", port);
                            }
                            p
                        })
                        .collect();
                    util::set_path(&mut obj, "spec.ports", json!(ports));
                }
            }
            util::default_path(&mut obj, "status.loadBalancer", json!({}));
        }
        "Secret" => {
            util::default_path(&mut obj, "type", json!("Opaque"));
            // stringData is write-only: the server folds it into data.
            if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
                let data = util::obj_mut(&mut obj, "data");
                for (k, v) in sd {
                    let s = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                    data.insert(k, json!(util::base64_encode(s.as_bytes())));
                }
            }
        }
        "NetworkPolicy" if util::path(&obj, "spec.policyTypes").is_none() && obj.get("spec").is_some() => {
            let mut types = vec![json!("Ingress")];
            if util::path(&obj, "spec.egress").is_some() {
                types.push(json!("Egress"));
            }
            util::set_path(&mut obj, "spec.policyTypes", json!(types));
        }
        "ResourceQuota" => {
            if let Some(hard) = util::path(&obj, "spec.hard").cloned() {
                util::set_path(&mut obj, "status.hard", hard);
            }
        }
        _ => {}
    }
    obj
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn validate_name(rd: &ResourceDef, name: &str, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
        return;
    }
    let bad = match rd.name_rule {
        NameRule::Subdomain => (!is_dns1123_subdomain(name)).then_some(SUBDOMAIN_MSG),
        NameRule::Label => (!is_dns1123_label(name)).then_some(LABEL_MSG),
        NameRule::Dns1035 => (!(name.len() <= 63 && DNS1035.is_match(name))).then_some(DNS1035_MSG),
        NameRule::PathSegment => (name == "." || name == ".." || name.contains('/') || name.contains('%'))
            .then_some("may not contain '/' or '%'"),
    };
    if let Some(msg) = bad {
        errs.push(FieldError::invalid("metadata.name", name, msg));
    }
}

fn validate_qualified_key(field: &str, key: &str, errs: &mut Vec<FieldError>) {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns1123_subdomain(p)
    {
        errs.push(FieldError::invalid(field, key, format!("prefix part {SUBDOMAIN_MSG}")));
    }
    if name.is_empty() || name.len() > 63 || !QUALIFIED_NAME.is_match(name) {
        errs.push(FieldError::invalid(field, key, QUALIFIED_NAME_MSG));
    }
}

fn validate_metadata(obj: &Value, errs: &mut Vec<FieldError>) {
    if let Some(labels) = util::path(obj, "metadata.labels").and_then(Value::as_object) {
        for (k, v) in labels {
            validate_qualified_key("metadata.labels", k, errs);
            let v = v.as_str().unwrap_or("");
            if v.len() > 63 || !LABEL_VALUE.is_match(v) {
                errs.push(FieldError::invalid("metadata.labels", v, LABEL_VALUE_MSG));
            }
        }
    }
    if let Some(ann) = util::path(obj, "metadata.annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (k, v) in ann {
            validate_qualified_key("metadata.annotations", k, errs);
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > 256 * 1024 {
            errs.push(FieldError::invalid(
                "metadata.annotations",
                "",
                "Too long: must have at most 262144 bytes",
            ));
        }
    }
}

fn validate_pod_spec(spec: Option<&Value>, at: &str, errs: &mut Vec<FieldError>) {
    let containers = spec.and_then(|s| s.get("containers")).and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        errs.push(FieldError::required(format!("{at}.containers"), ""));
        return;
    };
    let mut seen = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let name = util::str_at(c, "name");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{at}.containers[{i}].name"), ""));
        } else if !is_dns1123_label(name) {
            errs.push(FieldError::invalid(
                format!("{at}.containers[{i}].name"),
                name,
                LABEL_MSG,
            ));
        } else if seen.contains(&name) {
            errs.push(FieldError {
                field: format!("{at}.containers[{i}].name"),
                kind: "FieldValueDuplicate",
                detail: String::new(),
                value: Some(name.to_string()),
            });
        }
        seen.push(name);
        if util::str_at(c, "image").trim().is_empty() {
            errs.push(FieldError::required(format!("{at}.containers[{i}].image"), ""));
        }
        for (j, p) in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=65535).contains(&port) {
                errs.push(FieldError::invalid(
                    format!("{at}.containers[{i}].ports[{j}].containerPort"),
                    port.to_string(),
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
    }
}

fn validate_selector_matches_template(obj: &Value, errs: &mut Vec<FieldError>) {
    let Some(sel) = util::path(obj, "spec.selector").filter(|s| s.is_object()) else {
        errs.push(FieldError::required("spec.selector", ""));
        return;
    };
    let selector = LabelSelector::from_object(sel);
    if selector.0.is_empty() {
        errs.push(FieldError::invalid(
            "spec.selector",
            "{}",
            "empty selector is invalid for deployment",
        ));
        return;
    }
    let labels = util::path(obj, "spec.template.metadata.labels").and_then(Value::as_object);
    if !selector.matches(labels) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            format!("{}", labels.map(|l| Value::Object(l.clone())).unwrap_or(json!({}))),
            "`selector` does not match template `labels`",
        ));
    }
}

/// Validation of a whole object (create and update alike).
pub fn validate(rd: &ResourceDef, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_name(rd, util::str_at(obj, "metadata.name"), &mut errs);
    validate_metadata(obj, &mut errs);
    match rd.kind {
        "Pod" => validate_pod_spec(obj.get("spec"), "spec", &mut errs),
        "Deployment" | "ReplicaSet" => {
            validate_selector_matches_template(obj, &mut errs);
            validate_pod_spec(util::path(obj, "spec.template.spec"), "spec.template.spec", &mut errs);
            if let Some(r) = util::i64_at(obj, "spec.replicas")
                && r < 0
            {
                errs.push(FieldError::invalid(
                    "spec.replicas",
                    r.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
            let rp = util::str_at(obj, "spec.template.spec.restartPolicy");
            if !rp.is_empty() && rp != "Always" {
                errs.push(FieldError::not_supported(
                    "spec.template.spec.restartPolicy",
                    rp,
                    &["Always"],
                ));
            }
        }
        "Job" => {
            validate_pod_spec(util::path(obj, "spec.template.spec"), "spec.template.spec", &mut errs);
            let rp = util::str_at(obj, "spec.template.spec.restartPolicy");
            if rp != "OnFailure" && rp != "Never" {
                errs.push(FieldError::required(
                    "spec.template.spec.restartPolicy",
                    "valid values: \"OnFailure\", \"Never\"",
                ));
            }
        }
        "Service" => {
            let ty = util::str_at(obj, "spec.type");
            let ports = util::path(obj, "spec.ports").and_then(Value::as_array);
            if ty != "ExternalName" && ports.is_none_or(|p| p.is_empty()) {
                errs.push(FieldError::required("spec.ports", ""));
            }
            for (i, p) in ports.into_iter().flatten().enumerate() {
                let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    errs.push(FieldError::invalid(
                        format!("spec.ports[{i}].port"),
                        port.to_string(),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if ports.is_some_and(|ps| ps.len() > 1) && util::str_at(p, "name").is_empty() {
                    errs.push(FieldError::required(format!("spec.ports[{i}].name"), ""));
                }
            }
        }
        "ConfigMap" | "Secret" => {
            for field in ["data", "binaryData"] {
                for (k, v) in obj.get(field).and_then(Value::as_object).into_iter().flatten() {
                    if !CONFIG_KEY.is_match(k) {
                        errs.push(FieldError::invalid(
                            format!("{field}[{k}]"),
                            k,
                            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                        ));
                    }
                    if rd.kind == "Secret" && !v.as_str().is_some_and(util::is_base64) {
                        errs.push(FieldError::invalid(
                            format!("data[{k}]"),
                            "<secret contents redacted>",
                            "illegal base64 data",
                        ));
                    }
                }
            }
        }
        "NetworkPolicy" => super::netpol::validate(obj, &mut errs),
        "ResourceQuota" => {
            for (k, v) in util::path(obj, "spec.hard")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if util::parse_quantity(v).is_none() {
                    errs.push(FieldError::invalid(
                        format!("spec.hard[{k}]"),
                        v.to_string(),
                        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    ));
                }
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            if util::str_at(obj, "roleRef.kind").is_empty() {
                errs.push(FieldError::not_supported("roleRef.kind", "", &["Role", "ClusterRole"]));
            }
            if util::str_at(obj, "roleRef.name").is_empty() {
                errs.push(FieldError::required("roleRef.name", ""));
            }
            for (i, s) in obj
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let kind = util::str_at(s, "kind");
                if !matches!(kind, "ServiceAccount" | "User" | "Group") {
                    errs.push(FieldError::not_supported(
                        format!("subjects[{i}].kind"),
                        kind,
                        &["ServiceAccount", "User", "Group"],
                    ));
                }
                if util::str_at(s, "name").is_empty() {
                    errs.push(FieldError::required(format!("subjects[{i}].name"), ""));
                }
            }
        }
        "Role" | "ClusterRole" => {
            for (i, r) in obj
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if r.get("verbs").and_then(Value::as_array).is_none_or(|v| v.is_empty()) {
                    errs.push(FieldError::required(
                        format!("rules[{i}].verbs"),
                        "verbs must contain at least one value",
                    ));
                }
            }
        }
        _ => {}
    }
    errs
}

/// Fields that may not change on update.
pub fn validate_update(rd: &ResourceDef, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let immutable: &[&str] = match rd.kind {
        "Deployment" | "ReplicaSet" => &["spec.selector"],
        "Job" => &["spec.selector", "spec.template", "spec.completions"],
        "RoleBinding" | "ClusterRoleBinding" => &["roleRef"],
        _ => &[],
    };
    for f in immutable {
        if util::path(old, f) != util::path(new, f) {
            let shown = util::path(new, f).cloned().unwrap_or(Value::Null).to_string();
            errs.push(FieldError::invalid(*f, shown, "field is immutable"));
        }
    }
    if rd.kind == "Pod" {
        // Only images may change in a pod spec (plus scheduling, which only the fake does).
        let strip = |v: &Value| {
            let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(cs) = s.get_mut("containers").and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(m) = c.as_object_mut() {
                        m.remove("image");
                    }
                }
            }
            if let Some(m) = s.as_object_mut() {
                m.remove("nodeName");
                m.remove("activeDeadlineSeconds");
                m.remove("tolerations");
            }
            s
        };
        if strip(old) != strip(new) {
            errs.push(FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
    }
    if matches!(rd.kind, "Secret" | "ConfigMap") && old.get("immutable") == Some(&json!(true)) {
        for f in ["data", "binaryData", "immutable"] {
            if old.get(f) != new.get(f) {
                errs.push(FieldError::forbidden(f, "field is immutable when `immutable` is set"));
            }
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Admission: namespaces, LimitRange, ResourceQuota
// ---------------------------------------------------------------------------------------------

/// The NamespaceLifecycle check for a create in `ns`.
pub fn check_namespace(state: &State, rd: &ResourceDef, ns: &str, name: &str) -> Result<(), ApiError> {
    if !rd.namespaced {
        return Ok(());
    }
    let Some(nsd) = resources::by_plural("", "namespaces") else {
        return Ok(());
    };
    match state.get(nsd, "", ns) {
        None => Err(ApiError::namespace_not_found(ns)),
        Some(n) if util::path(n, "metadata.deletionTimestamp").is_some() => {
            let why = format!("unable to create new content in namespace {ns} because it is being terminated");
            let mut e = ApiError::forbidden(rd, name, &why);
            if let Some(Value::Object(d)) = e.details.as_mut() {
                d.insert(
                    "causes".into(),
                    json!([{"reason": "NamespaceTerminating", "message": why, "field": "metadata.namespace"}]),
                );
            }
            Err(e)
        }
        Some(_) => Ok(()),
    }
}

const COMPUTE: [&str; 4] = ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

/// `cpu` and `memory` in a quota mean the requests.
fn canonical_quota_key(k: &str) -> &str {
    match k {
        "cpu" => "requests.cpu",
        "memory" => "requests.memory",
        other => other,
    }
}

fn pod_compute(pod: &Value, key: &str) -> f64 {
    let (section, res) = key.split_once('.').unwrap_or(("requests", key));
    util::path(pod, "spec.containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("resources").and_then(|r| r.get(section)).and_then(|s| s.get(res)))
        .filter_map(util::parse_quantity)
        .sum()
}

fn pod_counts(pod: &Value) -> bool {
    !matches!(util::str_at(pod, "status.phase"), "Succeeded" | "Failed")
        && util::path(pod, "metadata.deletionTimestamp").is_none()
}

/// Which quota key counts objects of `rd` (`pods`, `services`, `count/deployments.apps`).
fn count_keys(rd: &ResourceDef) -> Vec<String> {
    let mut keys = vec![format!("count/{}", rd.key())];
    if rd.group.is_empty()
        && matches!(
            rd.plural,
            "pods" | "services" | "secrets" | "configmaps" | "resourcequotas" | "replicationcontrollers"
        )
    {
        keys.push(rd.plural.to_string());
    }
    keys
}

/// Current usage of one quota key in a namespace.
pub fn usage(state: &State, ns: &str, key: &str) -> f64 {
    let key = canonical_quota_key(key);
    let pods = || {
        resources::by_plural("", "pods")
            .map(|rd| state.list(rd, Some(ns)))
            .unwrap_or_default()
            .into_iter()
            .filter(pod_counts)
    };
    if COMPUTE.contains(&key) {
        return pods().map(|p| pod_compute(&p, key)).sum();
    }
    let plural = key.strip_prefix("count/").unwrap_or(key);
    let (plural, group) = plural.split_once('.').unwrap_or((plural, ""));
    match resources::by_plural(group, plural) {
        Some(rd) if rd.plural == "pods" => pods().count() as f64,
        Some(rd) => state.list(rd, Some(ns)).len() as f64,
        None => 0.0,
    }
}

/// The ResourceQuota admission check for creating `obj` (a pod, or any counted object).
pub fn check_quota(state: &State, rd: &ResourceDef, ns: &str, obj: &Value) -> Result<(), ApiError> {
    let Some(qd) = resources::by_plural("", "resourcequotas") else {
        return Ok(());
    };
    let name = util::str_at(obj, "metadata.name");
    let counted = count_keys(rd);
    for q in state.list(qd, Some(ns)) {
        let qname = util::str_at(&q, "metadata.name");
        let Some(hard) = util::path(&q, "spec.hard").and_then(Value::as_object) else {
            continue;
        };
        let mut requested: Vec<(String, f64)> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        for k in hard.keys() {
            let key = canonical_quota_key(k);
            let req = if counted.iter().any(|c| c == key) {
                1.0
            } else if rd.plural == "pods" && COMPUTE.contains(&key) {
                if !pod_counts(obj) {
                    continue;
                }
                // Every container must declare what a compute quota limits.
                let (section, res) = key.split_once('.').unwrap_or(("requests", key));
                let unset: Vec<&str> = util::path(obj, "spec.containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|c| util::path(c, &format!("resources.{section}.{res}")).is_none())
                    .map(|c| util::str_at(c, "name"))
                    .collect();
                if !unset.is_empty() {
                    missing.push(format!("{key} for: {}", unset.join(",")));
                    continue;
                }
                pod_compute(obj, key)
            } else {
                continue;
            };
            requested.push((k.clone(), req));
        }
        if !missing.is_empty() {
            missing.sort();
            return Err(ApiError::forbidden(
                rd,
                name,
                &format!("failed quota: {qname}: must specify {}", missing.join("; ")),
            ));
        }
        // (resource, requested, used, limit)
        let mut exceeded: Vec<(String, [f64; 3])> = Vec::new();
        for (k, req) in requested {
            let limit = hard.get(&k).and_then(util::parse_quantity).unwrap_or(0.0);
            let used = usage(state, ns, &k);
            if used + req > limit + 1e-9 {
                exceeded.push((k, [req, used, limit]));
            }
        }
        if !exceeded.is_empty() {
            exceeded.sort_by(|a, b| a.0.cmp(&b.0));
            let show = |i: usize| {
                exceeded
                    .iter()
                    .map(|(k, v)| format!("{k}={}", util::fmt_quantity(k, v[i])))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let why = format!(
                "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                show(0),
                show(1),
                show(2)
            );
            return Err(ApiError::forbidden(rd, name, &why));
        }
    }
    Ok(())
}

/// LimitRanger: fill container requests/limits from `type: Container` defaults and enforce
/// `max`/`min`.
pub fn apply_limit_ranges(state: &State, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
    let (Some(ld), Some(pd)) = (
        resources::by_plural("", "limitranges"),
        resources::by_plural("", "pods"),
    ) else {
        return Ok(());
    };
    let name = util::str_at(pod, "metadata.name").to_string();
    for lr in state.list(ld, Some(ns)) {
        for limit in lr
            .get("spec")
            .and_then(|s| s.get("limits"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if util::str_at(limit, "type") != "Container" {
                continue;
            }
            let default = limit
                .get("default")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut default_request = limit
                .get("defaultRequest")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in &default {
                default_request.entry(k.clone()).or_insert(v.clone());
            }
            let Some(cs) = pod
                .get_mut("spec")
                .and_then(|s| s.get_mut("containers"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for c in cs.iter_mut() {
                let has_limits = util::path(c, "resources.limits").is_some();
                let limits = util::obj_mut(c, "resources.limits");
                for (k, v) in &default {
                    limits.entry(k.clone()).or_insert(v.clone());
                }
                if !has_limits && limits.is_empty() {
                    util::remove_path(c, "resources.limits");
                }
                let has_requests = util::path(c, "resources.requests").is_some();
                let requests = util::obj_mut(c, "resources.requests");
                for (k, v) in &default_request {
                    requests.entry(k.clone()).or_insert(v.clone());
                }
                if !has_requests && requests.is_empty() {
                    util::remove_path(c, "resources.requests");
                }
                for (bound, section, cmp_max) in [("max", "limits", true), ("min", "requests", false)] {
                    let Some(b) = limit.get(bound).and_then(Value::as_object) else {
                        continue;
                    };
                    for (res, bv) in b {
                        let (Some(bq), Some(cq)) = (
                            util::parse_quantity(bv),
                            util::path(c, &format!("resources.{section}.{res}")).and_then(util::parse_quantity),
                        ) else {
                            continue;
                        };
                        if (cmp_max && cq > bq) || (!cmp_max && cq < bq) {
                            let word = if cmp_max { "maximum" } else { "minimum" };
                            let what = if cmp_max { "limit" } else { "request" };
                            let why = format!(
                                "{word} {res} usage per Container is {}, but {what} is {}",
                                util::fmt_quantity(res, bq),
                                util::fmt_quantity(res, cq)
                            );
                            return Err(ApiError::forbidden(pd, &name, &why));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Names from `generateName`, like the registry's name generator.
pub fn generate_name(state: &mut State, obj: &mut Value) {
    if util::str_at(obj, "metadata.name").is_empty() {
        let base = util::str_at(obj, "metadata.generateName").to_string();
        if !base.is_empty() {
            let suffix = state.rng.suffix();
            util::obj_mut(obj, "metadata").insert("name".into(), json!(format!("{base}{suffix}")));
        }
    }
}

/// The full create path (after the handler has checked kind and namespace of the body):
/// generateName, namespace lifecycle, defaulting, validation, kind-specific server-side
/// fields, LimitRange, quota. Returns the object ready to store.
pub fn prepare_create(state: &mut State, rd: &ResourceDef, mut obj: Value) -> Result<Value, ApiError> {
    generate_name(state, &mut obj);
    let ns = util::str_at(&obj, "metadata.namespace").to_string();
    let name = util::str_at(&obj, "metadata.name").to_string();
    check_namespace(state, rd, &ns, &name)?;
    let mut obj = obj;
    // Status is not settable at create for kinds with a status subresource.
    if rd.has_status_subresource()
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    let mut obj = default_object(rd, obj);
    let errs = validate(rd, &obj);
    if !errs.is_empty() {
        return Err(ApiError::invalid(rd, &name, &errs));
    }
    match rd.kind {
        "Pod" => {
            apply_limit_ranges(state, &ns, &mut obj)?;
            let qos = qos_class(&obj);
            util::set_path(&mut obj, "status", json!({"phase": "Pending", "qosClass": qos}));
        }
        "Job" => {
            // The job controller's selector: controller-uid labels, set by the API server.
            let uid = state.new_uid();
            util::obj_mut(&mut obj, "metadata").insert("uid".into(), json!(uid));
            if util::path(&obj, "spec.selector").is_none() {
                util::set_path(
                    &mut obj,
                    "spec.selector",
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
                );
                let labels = util::obj_mut(&mut obj, "spec.template.metadata.labels");
                labels.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
                labels.insert("batch.kubernetes.io/job-name".into(), json!(name));
                labels.insert("controller-uid".into(), json!(uid));
                labels.insert("job-name".into(), json!(name));
            }
        }
        "Service" => {
            let ty = util::str_at(&obj, "spec.type").to_string();
            if ty != "ExternalName" && util::str_at(&obj, "spec.clusterIP").is_empty() {
                let n = state.rng.next_u64();
                let ip = format!("10.96.{}.{}", (n >> 8) % 250, n % 250 + 2);
                util::set_path(&mut obj, "spec.clusterIP", json!(ip));
                util::set_path(&mut obj, "spec.clusterIPs", json!([ip]));
                util::set_path(&mut obj, "spec.ipFamilies", json!(["IPv4"]));
                util::set_path(&mut obj, "spec.ipFamilyPolicy", json!("SingleStack"));
            }
            if (ty == "NodePort" || ty == "LoadBalancer")
                && let Some(ports) = obj
                    .get_mut("spec")
                    .and_then(|s| s.get_mut("ports"))
                    .and_then(Value::as_array_mut)
            {
                for p in ports {
                    let n = 30000 + state.rng.next_u64() % 2767;
                    util::default_path(p, "nodePort", json!(n));
                }
            }
        }
        _ => {}
    }
    check_quota(state, rd, &ns, &obj)?;
    Ok(obj)
}

/// The update path: defaults, validation, immutable fields, and server-owned fields carried
/// over from the stored object (status for kinds with a status subresource, a Service's
/// clusterIP, a Job's selector).
pub fn prepare_update(rd: &ResourceDef, old: &Value, new: Value, status_only: bool) -> Result<Value, ApiError> {
    let name = util::str_at(old, "metadata.name").to_string();
    let mut obj = if status_only {
        // /status writes change only status.
        let mut o = old.clone();
        match new.get("status") {
            Some(s) => util::set_path(&mut o, "status", s.clone()),
            None => {
                if let Some(m) = o.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        o
    } else {
        let mut o = new;
        if rd.has_status_subresource() {
            match old.get("status") {
                Some(s) => util::set_path(&mut o, "status", s.clone()),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        o
    };
    // Only the server sets deletionTimestamp.
    match util::path(old, "metadata.deletionTimestamp") {
        Some(v) => util::set_path(&mut obj, "metadata.deletionTimestamp", v.clone()),
        None => {
            util::remove_path(&mut obj, "metadata.deletionTimestamp");
        }
    }
    if rd.kind == "Service" {
        for f in [
            "spec.clusterIP",
            "spec.clusterIPs",
            "spec.ipFamilies",
            "spec.ipFamilyPolicy",
        ] {
            if util::path(&obj, f).is_none_or(|v| v.is_null() || v == "")
                && let Some(v) = util::path(old, f)
            {
                util::set_path(&mut obj, f, v.clone());
            }
        }
    }
    if rd.kind == "Job" {
        for f in ["spec.selector", "spec.template.metadata.labels"] {
            if util::path(&obj, f).is_none()
                && let Some(v) = util::path(old, f)
            {
                util::set_path(&mut obj, f, v.clone());
            }
        }
    }
    let obj = default_object(rd, obj);
    let mut errs = validate(rd, &obj);
    errs.extend(validate_update(rd, old, &obj));
    if !errs.is_empty() {
        return Err(ApiError::invalid(rd, &name, &errs));
    }
    Ok(obj)
}

/// Guaranteed, Burstable or BestEffort, from the containers' requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let cs: Vec<&Value> = util::path(pod, "spec.containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let get = |c: &Value, s: &str| {
        util::path(c, &format!("resources.{s}"))
            .and_then(Value::as_object)
            .cloned()
    };
    let any = cs
        .iter()
        .any(|c| get(c, "requests").is_some_and(|m| !m.is_empty()) || get(c, "limits").is_some_and(|m| !m.is_empty()));
    if !any {
        return "BestEffort";
    }
    let guaranteed = cs.iter().all(|c| {
        let l = get(c, "limits").unwrap_or_default();
        let r = get(c, "requests").unwrap_or_default();
        ["cpu", "memory"].iter().all(|k| {
            l.get(*k).is_some() && r.get(*k).and_then(util::parse_quantity) == l.get(*k).and_then(util::parse_quantity)
        })
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}

/// Strips what a client may not set on create (the server fills these).
pub fn strip_system_fields(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            m.remove(f);
        }
    }
}

/// Makes sure a metadata object exists (clients may send `{}` bodies).
pub fn ensure_metadata(obj: &mut Value) -> &mut Map<String, Value> {
    util::obj_mut(obj, "metadata")
}
