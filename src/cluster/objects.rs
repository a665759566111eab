//! The objects deckhand applies, built from configuration and validated arguments. Pure
//! functions returning the apply bodies, so tests can read exactly what lands.

use serde_json::{Value, json};

use super::{APP_NAME, EXPIRES_AT, MANAGED_BY, MANAGER, OWNER, REQUEST, TIER};
use crate::{
    configuration::{AppsConfig, KubernetesConfig, Quantities, TierConfig},
    domain::{Name, RequestId},
};

pub const QUOTA: &str = "deckhand-quota";
pub const LIMITS: &str = "deckhand-limits";
pub const NETWORK_POLICY: &str = "deckhand-default-deny";
pub const ROLE_BINDING: &str = "deckhand-team";

/// An environment to create: a namespace and the tier's defaults.
#[derive(Debug, Clone)]
pub struct EnvPlan {
    pub name: Name,
    pub tier: String,
    pub owner: String,
    pub groups: Vec<String>,
    pub request: RequestId,
    pub expires_at: jiff::Timestamp,
}

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
            "egress": super::egress::environment_egress(),
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

/// An image to run as an app in an environment.
#[derive(Debug, Clone)]
pub struct AppPlan {
    pub app: Name,
    pub env: Name,
    pub image: String,
    pub replicas: i32,
    pub port: Option<i32>,
    pub request: RequestId,
    pub owner: String,
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

/// An app name from an image: `ghcr.io/acme/shop-api:1.2` -> `shop-api`.
pub fn app_name_from_image(repository: &str) -> Option<Name> {
    let last = repository.rsplit('/').next()?;
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    Name::parse(cleaned.trim_matches('-')).ok()
}
