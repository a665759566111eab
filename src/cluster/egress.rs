//! Where load-test pods may send traffic. NetworkPolicies add up: a pod may reach whatever
//! any policy selecting it allows. The environment's own policy lets every pod reach the
//! internet, so a narrower policy for the load generators only narrows anything once the
//! environment's policy no longer selects them. Hence, before each load test:
//!
//! 1. `deckhand-loadgen` selects every pod labelled as a load generator (whoever labelled
//!    it) and lets it reach only pods of its namespace and the cluster DNS; no ingress.
//! 2. The environment's policy is narrowed to pods not labelled as load generators. Step 1
//!    comes first, so a pod with the label is never without a policy.
//!
//! A run ops approved as outside also gets its own policy (the environment's usual egress),
//! owned by its Job so it goes when the Job goes.

use k8s_openapi::{
    api::networking::v1::{
        IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference},
        util::intstr::IntOrString,
    },
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{APP_NAME, Cluster, ClusterError, MANAGED_BY, MANAGER, REQUEST, objects::NETWORK_POLICY, objects::map};

/// The `app.kubernetes.io/name` of every load-test pod.
pub const LOADGEN_APP: &str = "deckhand-loadgen";
/// The standing policy of load-test pods in an environment.
pub const LOADGEN_POLICY: &str = "deckhand-loadgen";

fn dns_ports() -> Vec<NetworkPolicyPort> {
    ["UDP", "TCP"]
        .into_iter()
        .map(|protocol| NetworkPolicyPort {
            protocol: Some(protocol.into()),
            port: Some(IntOrString::Int(53)),
            end_port: None,
        })
        .collect()
}

/// Every pod of the policy's own namespace.
fn own_pods() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            pod_selector: Some(LabelSelector::default()),
            ..Default::default()
        }]),
        ports: None,
    }
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(map(pairs.iter().copied())),
        match_expressions: None,
    }
}

/// The environment's egress: its own pods, DNS, and the internet but not the cluster's
/// private ranges nor link-local addresses (169.254.169.254 is the cloud's metadata service,
/// which hands out the node's credentials).
pub fn environment_egress() -> Vec<NetworkPolicyEgressRule> {
    vec![
        own_pods(),
        NetworkPolicyEgressRule {
            to: None,
            ports: Some(dns_ports()),
        },
        NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: "0.0.0.0/0".into(),
                    except: Some(
                        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]
                            .map(String::from)
                            .to_vec(),
                    ),
                }),
                ..Default::default()
            }]),
            ports: None,
        },
    ]
}

/// The environment's pods and kube-dns, nothing else.
fn namespace_egress() -> Vec<NetworkPolicyEgressRule> {
    vec![
        own_pods(),
        NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(selector(&[("kubernetes.io/metadata.name", "kube-system")])),
                pod_selector: Some(selector(&[("k8s-app", "kube-dns")])),
                ip_block: None,
            }]),
            ports: Some(dns_ports()),
        },
    ]
}

fn policy(ns: &str, name: &str, selector: LabelSelector, egress: Vec<NetworkPolicyEgressRule>) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            labels: Some(map([(MANAGED_BY, MANAGER)])),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            egress: Some(egress),
            ingress: None,
        }),
    }
}

/// Every load generator of the namespace: its pods and DNS only.
pub fn loadgen_policy(ns: &str) -> NetworkPolicy {
    policy(
        ns,
        LOADGEN_POLICY,
        selector(&[(APP_NAME, LOADGEN_APP)]),
        namespace_egress(),
    )
}

/// The load generators of one run ops approved as outside: the environment's egress, owned
/// by the run's Job.
pub fn outside_policy(ns: &str, job: &str, job_uid: &str, request: &str) -> NetworkPolicy {
    let mut p = policy(
        ns,
        job,
        selector(&[(APP_NAME, LOADGEN_APP), (REQUEST, request)]),
        environment_egress(),
    );
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.to_owned(),
        uid: job_uid.to_owned(),
        controller: Some(false),
        block_owner_deletion: Some(false),
    }]);
    p
}

/// The environment's policy, narrowed to pods that are not load generators. This stays a
/// JSON merge patch on purpose: a merge patch names only the field it changes, while a
/// typed `NetworkPolicy` always writes its apiVersion, kind and metadata as well. (A partial
/// server-side apply as `deckhand` instead would delete the fields it leaves out.)
fn spare_load_generators() -> Value {
    // The requirement itself is typed, so its fields cannot be misspelled either.
    let not_a_load_generator = LabelSelectorRequirement {
        key: APP_NAME.into(),
        operator: "NotIn".into(),
        values: Some(vec![LOADGEN_APP.into()]),
    };
    json!({ "spec": { "podSelector": { "matchExpressions": [not_a_load_generator] } } })
}

impl Cluster {
    /// Steps 1 and 2 of the module docs, before any load-test pod starts.
    pub async fn confine_load_generators(&self, ns: &str) -> Result<(), ClusterError> {
        self.apply_object(&loadgen_policy(ns)).await?;
        let patch = spare_load_generators();
        let what = format!("NetworkPolicy {NETWORK_POLICY} in {ns}");
        let narrowed = self
            .call(&what, |c| {
                let patch = patch.clone();
                async move {
                    Api::<NetworkPolicy>::namespaced(c, ns)
                        .patch(NETWORK_POLICY, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                }
            })
            .await;
        match narrowed {
            // No environment policy: nothing lets them out that step 1 does not.
            Ok(_) | Err(ClusterError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lets the pods of a run ops approved as outside use the environment's egress.
    pub async fn open_load_generators(
        &self,
        ns: &str,
        job: &str,
        job_uid: &str,
        request: &str,
    ) -> Result<(), ClusterError> {
        self.apply_object(&outside_policy(ns, job, job_uid, request)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_generators_reach_their_namespace_and_dns_only() {
        let p = serde_json::to_value(loadgen_policy("dev1")).unwrap();
        assert_eq!(p["metadata"]["name"], LOADGEN_POLICY);
        assert_eq!(p["spec"]["podSelector"]["matchLabels"][APP_NAME], LOADGEN_APP);
        assert_eq!(p["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert!(p["spec"].get("ingress").is_none(), "no ingress at all");
        let egress = p["spec"]["egress"].to_string();
        assert!(!egress.contains("ipBlock") && egress.contains("kube-dns"), "{egress}");
        serde_json::from_value::<NetworkPolicy>(p).expect("a NetworkPolicy");
    }

    #[test]
    fn an_approved_run_gets_the_environment_egress_owned_by_its_job() {
        let p = serde_json::to_value(outside_policy("dev1", "loadtest-abc", "uid-1", "r-abc")).unwrap();
        assert_eq!(p["spec"]["egress"], serde_json::to_value(environment_egress()).unwrap());
        assert_eq!(p["spec"]["podSelector"]["matchLabels"][REQUEST], "r-abc");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        serde_json::from_value::<NetworkPolicy>(p).expect("a NetworkPolicy");
    }
}
