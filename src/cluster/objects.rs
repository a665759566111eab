//! The objects deckhand applies, built from configuration and validated arguments. Pure
//! functions returning k8s-openapi types, so a misspelled field or a wrong type does not
//! compile, and tests can read exactly what lands. They serialize with their `apiVersion`
//! and `kind` (k8s-openapi's `Serialize` writes both), as server-side apply needs, and
//! with no more fields than were set: `equivalence.rs` checks that each one is the JSON
//! deckhand applied before these types were used.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Capabilities, Container, ContainerPort, EmptyDirVolumeSource, LimitRange, LimitRangeItem, LimitRangeSpec,
            Namespace, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceQuota, ResourceQuotaSpec,
            ResourceRequirements, SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec, TCPSocketAction,
            Volume, VolumeMount,
        },
        networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec},
        rbac::v1::{RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use super::{APP_NAME, EXPIRES_AT, MANAGED_BY, MANAGER, OWNER, REQUEST, TIER};
use crate::{
    configuration::{AppsConfig, KubernetesConfig, Quantities, TierConfig},
    domain::{Name, RequestId},
};

pub const QUOTA: &str = "deckhand-quota";
pub const LIMITS: &str = "deckhand-limits";
pub const NETWORK_POLICY: &str = "deckhand-default-deny";
pub const ROLE_BINDING: &str = "deckhand-team";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

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

/// A string map from pairs (labels, annotations, selectors).
pub(crate) fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn labels(plan: &EnvPlan) -> BTreeMap<String, String> {
    map([
        (MANAGED_BY, MANAGER),
        (OWNER, plan.owner.as_str()),
        (TIER, plan.tier.as_str()),
        (REQUEST, plan.request.as_str()),
    ])
}

/// The metadata of an object inside the environment.
fn env_meta(name: &str, plan: &EnvPlan) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(plan.name.as_str().to_owned()),
        labels: Some(labels(plan)),
        ..Default::default()
    }
}

pub fn namespace(plan: &EnvPlan) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(plan.name.as_str().to_owned()),
            labels: Some(labels(plan)),
            annotations: Some(map([(EXPIRES_AT, plan.expires_at.to_string().as_str())])),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub(crate) fn quantities(q: &Quantities) -> BTreeMap<String, Quantity> {
    q.iter().map(|(k, v)| (k.clone(), Quantity(v.clone()))).collect()
}

pub fn resource_quota(plan: &EnvPlan, tier: &TierConfig) -> ResourceQuota {
    ResourceQuota {
        metadata: env_meta(QUOTA, plan),
        spec: Some(ResourceQuotaSpec {
            hard: Some(quantities(&tier.quota)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn limit_range(plan: &EnvPlan, tier: &TierConfig) -> LimitRange {
    LimitRange {
        metadata: env_meta(LIMITS, plan),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default: Some(quantities(&tier.default_limit)),
                default_request: Some(quantities(&tier.default_request)),
                ..Default::default()
            }],
        }),
    }
}

/// Deny by default; let in traffic from the namespace itself and from the tier's allowed
/// namespaces (ingress controller, monitoring), which must also carry the trusted label only
/// cluster admins can set: a namespace that merely has the name is not trusted. Let out DNS,
/// the namespace itself and the internet, but not the rest of the cluster's private ranges.
pub fn network_policy(plan: &EnvPlan, tier: &TierConfig, cfg: &KubernetesConfig) -> NetworkPolicy {
    let mut from = vec![NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..Default::default()
    }];
    if !tier.allow_from_namespaces.is_empty() {
        from.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(map([(cfg.trusted_namespace_label.as_str(), "true")])),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "kubernetes.io/metadata.name".into(),
                    operator: "In".into(),
                    values: Some(tier.allow_from_namespaces.clone()),
                }]),
            }),
            ..Default::default()
        });
    }
    NetworkPolicy {
        metadata: env_meta(NETWORK_POLICY, plan),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: None,
            }]),
            egress: Some(super::egress::environment_egress()),
        }),
    }
}

/// The requester's groups get the tier's team role (`Config::team_role`) in the namespace;
/// someone in no group gets it alone.
pub fn role_binding(plan: &EnvPlan, cfg: &KubernetesConfig, role: &str) -> RoleBinding {
    let subject = |kind: &str, name: String| Subject {
        kind: kind.into(),
        api_group: Some(RBAC_GROUP.into()),
        name,
        namespace: None,
    };
    let subjects = if plan.groups.is_empty() {
        vec![subject("User", plan.owner.clone())]
    } else {
        plan.groups
            .iter()
            .map(|g| subject("Group", format!("{}{g}", cfg.group_prefix)))
            .collect()
    };
    RoleBinding {
        metadata: env_meta(ROLE_BINDING, plan),
        role_ref: RoleRef {
            api_group: Some(RBAC_GROUP.into()),
            kind: "ClusterRole".into(),
            name: role.to_owned(),
        },
        subjects: Some(subjects),
    }
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

fn app_labels(plan: &AppPlan) -> BTreeMap<String, String> {
    map([(APP_NAME, plan.app.as_str()), (MANAGED_BY, MANAGER)])
}

fn app_selector(plan: &AppPlan) -> BTreeMap<String, String> {
    map([(APP_NAME, plan.app.as_str())])
}

/// The restricted container security context every deckhand container gets.
pub(crate) fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..Default::default()
    }
}

pub(crate) fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

/// The platform's defaults: resources, probes on the port, non-root with a read-only root
/// filesystem (a writable /tmp keeps most programs working), no privilege escalation.
pub fn deployment(plan: &AppPlan, apps: &AppsConfig) -> Deployment {
    let mut container = Container {
        name: plan.app.as_str().to_owned(),
        image: Some(plan.image.clone()),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&apps.requests)),
            limits: Some(quantities(&apps.limits)),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            ..restricted_container()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    if let Some(port) = plan.port {
        let probe = |delay: i32| Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port),
                host: None,
            }),
            initial_delay_seconds: Some(delay),
            period_seconds: Some(10),
            ..Default::default()
        };
        container.ports = Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
        container.readiness_probe = Some(probe(2));
        container.liveness_probe = Some(probe(15));
    }
    Deployment {
        metadata: ObjectMeta {
            name: Some(plan.app.as_str().to_owned()),
            namespace: Some(plan.env.as_str().to_owned()),
            labels: Some(app_labels(plan)),
            annotations: Some(map([(REQUEST, plan.request.as_str()), (OWNER, plan.owner.as_str())])),
            ..Default::default()
        },
        spec: DeploymentSpec {
            replicas: Some(plan.replicas),
            selector: LabelSelector {
                match_labels: Some(app_selector(plan)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app_labels(plan)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(runtime_default_seccomp()),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "tmp".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn service(plan: &AppPlan) -> Option<Service> {
    let port = plan.port?;
    Some(Service {
        metadata: ObjectMeta {
            name: Some(plan.app.as_str().to_owned()),
            namespace: Some(plan.env.as_str().to_owned()),
            labels: Some(app_labels(plan)),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(app_selector(plan)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
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
