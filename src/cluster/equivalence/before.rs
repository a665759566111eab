//! The `json!` builders deckhand used before its objects were built from k8s-openapi types,
//! kept verbatim as the reference the tests in equivalence.rs compare against.
#![allow(dead_code)]

use serde_json::{Value, json};

pub use crate::cluster::egress::{LOADGEN_APP, LOADGEN_POLICY};
use crate::cluster::objects::{AppPlan, EnvPlan};
use crate::cluster::objects::{LIMITS, NETWORK_POLICY, QUOTA, ROLE_BINDING};
use crate::cluster::{APP_NAME, EXPIRES_AT, MANAGED_BY, MANAGER, OWNER, REQUEST, TIER};
use crate::configuration::{AppsConfig, KubernetesConfig, Quantities, TierConfig};

fn labels(plan: &EnvPlan) -> Value {
    json!({
        MANAGED_BY: MANAGER,
        OWNER: plan.owner,
        TIER: plan.tier,
        REQUEST: plan.request.as_str(),
    })
}

pub fn namespace(plan: &EnvPlan) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": plan.name.as_str(),
            "labels": labels(plan),
            "annotations": { EXPIRES_AT: plan.expires_at.to_string() },
        },
    })
}

fn quantities(q: &Quantities) -> Value {
    Value::Object(q.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

pub fn resource_quota(plan: &EnvPlan, tier: &TierConfig) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": { "name": QUOTA, "namespace": plan.name.as_str(), "labels": labels(plan) },
        "spec": { "hard": quantities(&tier.quota) },
    })
}

pub fn limit_range(plan: &EnvPlan, tier: &TierConfig) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": { "name": LIMITS, "namespace": plan.name.as_str(), "labels": labels(plan) },
        "spec": { "limits": [{
            "type": "Container",
            "default": quantities(&tier.default_limit),
            "defaultRequest": quantities(&tier.default_request),
        }]},
    })
}

/// Deny by default; let in traffic from the namespace itself and from the tier's allowed
/// namespaces (ingress controller, monitoring), which must also carry the trusted label only
/// cluster admins can set: a namespace that merely has the name is not trusted. Let out DNS,
/// the namespace itself and the internet, but not the rest of the cluster's private ranges.
pub fn network_policy(plan: &EnvPlan, tier: &TierConfig, cfg: &KubernetesConfig) -> Value {
    let mut from = vec![json!({ "podSelector": {} })];
    if !tier.allow_from_namespaces.is_empty() {
        from.push(json!({ "namespaceSelector": {
            "matchLabels": { cfg.trusted_namespace_label.as_str(): "true" },
            "matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "In",
                "values": tier.allow_from_namespaces,
            }],
        }}));
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": NETWORK_POLICY, "namespace": plan.name.as_str(), "labels": labels(plan) },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{ "from": from }],
            "egress": environment_egress(),
        },
    })
}

/// The requester's groups get the tier's team role (`Config::team_role`) in the namespace;
/// someone in no group gets it alone.
pub fn role_binding(plan: &EnvPlan, cfg: &KubernetesConfig, role: &str) -> Value {
    let subjects: Vec<Value> = if plan.groups.is_empty() {
        vec![json!({ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": plan.owner })]
    } else {
        plan.groups
        .iter()
        .map(|g| {
            json!({ "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": format!("{}{g}", cfg.group_prefix) })
        })
        .collect()
    };
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": { "name": ROLE_BINDING, "namespace": plan.name.as_str(), "labels": labels(plan) },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
        "subjects": subjects,
    })
}

fn app_labels(plan: &AppPlan) -> Value {
    json!({ APP_NAME: plan.app.as_str(), MANAGED_BY: MANAGER })
}

/// The platform's defaults: resources, probes on the port, non-root with a read-only root
/// filesystem (a writable /tmp keeps most programs working), no privilege escalation.
pub fn deployment(plan: &AppPlan, apps: &AppsConfig) -> Value {
    let mut container = json!({
        "name": plan.app.as_str(),
        "image": plan.image,
        "resources": { "requests": quantities(&apps.requests), "limits": quantities(&apps.limits) },
        "securityContext": {
            "runAsNonRoot": true,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] },
        },
        "volumeMounts": [{ "name": "tmp", "mountPath": "/tmp" }],
    });
    if let Some(port) = plan.port {
        let probe =
            |delay: i32| json!({ "tcpSocket": { "port": port }, "initialDelaySeconds": delay, "periodSeconds": 10 });
        container["ports"] = json!([{ "name": "http", "containerPort": port, "protocol": "TCP" }]);
        container["readinessProbe"] = probe(2);
        container["livenessProbe"] = probe(15);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": plan.app.as_str(),
            "namespace": plan.env.as_str(),
            "labels": app_labels(plan),
            "annotations": { REQUEST: plan.request.as_str(), OWNER: plan.owner },
        },
        "spec": {
            "replicas": plan.replicas,
            "selector": { "matchLabels": { APP_NAME: plan.app.as_str() } },
            "template": {
                "metadata": { "labels": app_labels(plan) },
                "spec": {
                    "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [container],
                    "volumes": [{ "name": "tmp", "emptyDir": {} }],
                },
            },
        },
    })
}

pub fn service(plan: &AppPlan) -> Option<Value> {
    let port = plan.port?;
    Some(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": plan.app.as_str(), "namespace": plan.env.as_str(), "labels": app_labels(plan) },
        "spec": {
            "selector": { APP_NAME: plan.app.as_str() },
            "ports": [{ "name": "http", "port": port, "targetPort": port, "protocol": "TCP" }],
        },
    }))
}

/// The environment's egress: its own pods, DNS, and the internet but not the cluster's
/// private ranges nor link-local addresses (169.254.169.254 is the cloud's metadata service,
/// which hands out the node's credentials).
pub fn environment_egress() -> Value {
    json!([
        { "to": [{ "podSelector": {} }] },
        { "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }] },
        { "to": [{ "ipBlock": {
            "cidr": "0.0.0.0/0",
            "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"],
        }}]},
    ])
}

/// The environment's pods and kube-dns, nothing else.
fn namespace_egress() -> Value {
    json!([
        { "to": [{ "podSelector": {} }] },
        {
            "to": [{
                "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
                "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
            }],
            "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
        },
    ])
}

fn policy(ns: &str, name: &str, selector: Value, egress: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": name, "namespace": ns, "labels": { MANAGED_BY: MANAGER } },
        "spec": {
            "podSelector": selector,
            "policyTypes": ["Ingress", "Egress"],
            "egress": egress,
        },
    })
}

/// Every load generator of the namespace: its pods and DNS only.
pub fn loadgen_policy(ns: &str) -> Value {
    policy(
        ns,
        LOADGEN_POLICY,
        json!({ "matchLabels": { APP_NAME: LOADGEN_APP } }),
        namespace_egress(),
    )
}

/// The load generators of one run ops approved as outside: the environment's egress, owned
/// by the run's Job.
pub fn outside_policy(ns: &str, job: &str, job_uid: &str, request: &str) -> Value {
    let mut p = policy(
        ns,
        job,
        json!({ "matchLabels": { APP_NAME: LOADGEN_APP, REQUEST: request } }),
        environment_egress(),
    );
    p["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job,
        "uid": job_uid,
        "controller": false,
        "blockOwnerDeletion": false,
    }]);
    p
}

/// `LoadJob::manifest`'s body before it was typed.
pub fn load_job(job: &crate::cluster::load_job::LoadJob, cfg: &crate::loadtest::LoadtestConfig) -> Value {
    let labels = json!({
        MANAGED_BY: MANAGER,
        APP_NAME: LOADGEN_APP,
        REQUEST: job.request.as_str(),
    });
    let args = [
        "loadgen".to_owned(),
        "--url".to_owned(),
        job.url.clone(),
        "--rate".to_owned(),
        format!("{}", job.worker_rate()),
        "--duration".to_owned(),
        crate::loadgen::format_duration(job.duration),
        "--timeout".to_owned(),
        crate::loadgen::format_duration(job.timeout),
        "--json".to_owned(),
    ];
    let deadline = job.duration.as_secs() + 600;
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": job.name, "namespace": job.namespace, "labels": labels },
        "spec": {
            "parallelism": job.workers,
            "completions": job.workers,
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "securityContext": { "runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "loadgen",
                        "image": cfg.image,
                        "args": args,
                        "resources": { "requests": cfg.requests, "limits": cfg.limits },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                    }],
                },
            },
        },
    })
}
