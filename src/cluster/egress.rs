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

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::{
    Api,
    api::{ApiResource, Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{APP_NAME, Cluster, ClusterError, MANAGED_BY, MANAGER, REQUEST, objects::NETWORK_POLICY};

/// The `app.kubernetes.io/name` of every load-test pod.
pub const LOADGEN_APP: &str = "deckhand-loadgen";
/// The standing policy of load-test pods in an environment.
pub const LOADGEN_POLICY: &str = "deckhand-loadgen";

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

/// The environment's policy, narrowed to pods that are not load generators.
fn spare_load_generators() -> Value {
    json!({ "spec": { "podSelector": { "matchExpressions": [{
        "key": APP_NAME,
        "operator": "NotIn",
        "values": [LOADGEN_APP],
    }]}}})
}

impl Cluster {
    /// Steps 1 and 2 of the module docs, before any load-test pod starts.
    pub async fn confine_load_generators(&self, ns: &str) -> Result<(), ClusterError> {
        let ar = ApiResource::erase::<NetworkPolicy>(&());
        self.apply(&ar, &loadgen_policy(ns)).await?;
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
        let ar = ApiResource::erase::<NetworkPolicy>(&());
        self.apply(&ar, &outside_policy(ns, job, job_uid, request)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_generators_reach_their_namespace_and_dns_only() {
        let p = loadgen_policy("dev1");
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
        let p = outside_policy("dev1", "loadtest-abc", "uid-1", "r-abc");
        assert_eq!(p["spec"]["egress"], environment_egress());
        assert_eq!(p["spec"]["podSelector"]["matchLabels"][REQUEST], "r-abc");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        serde_json::from_value::<NetworkPolicy>(p).expect("a NetworkPolicy");
    }
}
