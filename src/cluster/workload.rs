//! Apps in environments: status, logs, scale, restart, rollback.

use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::Pod,
};
use kube::{
    Api,
    api::{ListParams, LogParams, Patch, PatchParams},
};
use serde_json::json;

use super::{APP_NAME, Cluster, ClusterError, describe};

pub(super) const REVISION: &str = "deployment.kubernetes.io/revision";

impl Cluster {
    pub async fn deployment(&self, ns: &str, app: &str) -> Result<Deployment, ClusterError> {
        let what = format!("app {app} in {ns}");
        self.call(
            &what,
            |c| async move { Api::<Deployment>::namespaced(c, ns).get(app).await },
        )
        .await
    }

    pub async fn app_pods(&self, ns: &str, app: &str) -> Result<Vec<Pod>, ClusterError> {
        let lp = ListParams::default().labels(&format!("{APP_NAME}={app}"));
        let list = self
            .call("pods", |c| {
                let lp = lp.clone();
                async move { Api::<Pod>::namespaced(c, ns).list(&lp).await }
            })
            .await?;
        Ok(list.items)
    }

    /// Replicas, image, each pod and the last events, as a few lines.
    pub async fn app_status(&self, ns: &str, app: &str) -> Result<String, ClusterError> {
        let d = self.deployment(ns, app).await?;
        let image = d
            .spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let desired = d.spec.replicas.unwrap_or(1);
        let st = d.status.clone().unwrap_or_default();
        let mut out = format!(
            "{app} in {ns}: {} of {desired} ready, {} available, image {image}",
            st.ready_replicas.unwrap_or(0),
            st.available_replicas.unwrap_or(0)
        );
        let pods = self.app_pods(ns, app).await?;
        if pods.is_empty() {
            out.push_str("\nno pods");
        }
        let client = self.client().await?;
        describe::push_pods_and_events(&mut out, &client, ns, app, &pods).await;
        Ok(out)
    }

    /// The tail of every pod's log, capped in bytes, with credentials redacted.
    pub async fn app_logs(
        &self,
        ns: &str,
        app: &str,
        since_seconds: Option<i64>,
        lines: i64,
        max_bytes: usize,
    ) -> Result<String, ClusterError> {
        self.deployment(ns, app).await?;
        let pods = self.app_pods(ns, app).await?;
        if pods.is_empty() {
            return Ok(format!("{app} in {ns} has no pods"));
        }
        let per_pod = (max_bytes / pods.len()).max(256);
        let mut out = String::new();
        for p in &pods {
            let name = p.metadata.name.clone().unwrap_or_default();
            let lp = LogParams {
                tail_lines: Some(lines),
                since_seconds,
                limit_bytes: Some(per_pod as i64),
                ..Default::default()
            };
            let what = format!("logs of pod {name}");
            let logs = match self
                .call(&what, |c| {
                    let lp = lp.clone();
                    let name = name.clone();
                    async move { Api::<Pod>::namespaced(c, ns).logs(&name, &lp).await }
                })
                .await
            {
                Ok(l) => l,
                Err(ClusterError::Api { code: 400, message }) => format!("(no logs yet: {message})"),
                Err(e) => return Err(e),
            };
            out.push_str(&format!("==> {name} <==\n{}\n", describe::redact(logs.trim_end())));
        }
        if out.len() > max_bytes {
            let mut cut = max_bytes;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("\n[truncated]");
        }
        Ok(out.trim_end().to_owned())
    }

    /// A merge patch of the Deployment; returns the generation to watch for. (A partial
    /// server-side apply would give up the fields deckhand applied at deploy time.) The
    /// patches stay JSON on purpose: a merge patch names only the fields it changes, while a
    /// typed Deployment always writes its required fields too (as empty selector and
    /// template). Where a patch carries a whole structure (rollback's pod template), that
    /// structure is the typed one.
    async fn patch_deployment(&self, ns: &str, app: &str, patch: serde_json::Value) -> Result<i64, ClusterError> {
        let what = format!("app {app} in {ns}");
        let d = self
            .call(&what, |c| {
                let patch = patch.clone();
                async move {
                    Api::<Deployment>::namespaced(c, ns)
                        .patch(app, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                }
            })
            .await?;
        Ok(d.metadata.generation.unwrap_or(0))
    }

    pub async fn scale(&self, ns: &str, app: &str, replicas: i32) -> Result<i64, ClusterError> {
        self.deployment(ns, app).await?;
        self.patch_deployment(ns, app, json!({ "spec": { "replicas": replicas } }))
            .await
    }

    /// Same as `kubectl rollout restart`: a new pod-template annotation, so every pod is replaced.
    pub async fn restart(&self, ns: &str, app: &str) -> Result<i64, ClusterError> {
        self.deployment(ns, app).await?;
        let now = jiff::Timestamp::now().to_string();
        let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
            "kubectl.kubernetes.io/restartedAt": now
        }}}}});
        self.patch_deployment(ns, app, patch).await
    }

    /// Puts back the pod template of the ReplicaSet before the current one. Returns the
    /// generation to watch and the revision rolled back to.
    pub async fn rollback(&self, ns: &str, app: &str) -> Result<(i64, String), ClusterError> {
        let d = self.deployment(ns, app).await?;
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let lp = ListParams::default().labels(&format!("{APP_NAME}={app}"));
        let sets = self
            .call("replicasets", |c| {
                let lp = lp.clone();
                async move { Api::<ReplicaSet>::namespaced(c, ns).list(&lp).await }
            })
            .await?;
        let revision = |rs: &ReplicaSet| {
            rs.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .and_then(|r| r.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let mut owned: Vec<&ReplicaSet> = sets
            .items
            .iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|o| o.uid == uid))
            })
            .collect();
        owned.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
        let previous = owned.get(1).ok_or_else(|| {
            ClusterError::NotFound(format!(
                "an earlier version of {app} in {ns} (it has been deployed only once)"
            ))
        })?;
        let mut template = previous.spec.template.clone().unwrap_or_default();
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove("pod-template-hash");
        }
        let generation = self
            .patch_deployment(ns, app, json!({ "spec": { "template": template } }))
            .await?;
        Ok((generation, revision(previous).to_string()))
    }
}
