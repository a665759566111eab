//! Reads and deletes the actions need that are not about one app or one environment's
//! lifecycle: a Service by name, Deployments by label, an expired namespace. They live here so
//! that only src/cluster/ talks to Kubernetes: every call goes through `Cluster::call`, with
//! its retries and its error classification (NotFound, Forbidden, Unreachable...).

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Namespace, Service},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams},
};

use super::{Cluster, ClusterError};

impl Cluster {
    /// The Service `name` in `ns`.
    pub async fn service(&self, ns: &str, name: &str) -> Result<Service, ClusterError> {
        let what = format!("service {name} in {ns}");
        self.call(
            &what,
            |c| async move { Api::<Service>::namespaced(c, ns).get(name).await },
        )
        .await
    }

    /// Deployments in `ns` (every namespace when `None`) matching `labels` (a label
    /// selector; empty for all).
    pub async fn deployments(&self, ns: Option<&str>, labels: &str) -> Result<Vec<Deployment>, ClusterError> {
        let lp = ListParams::default().labels(labels);
        let list = self
            .call("deployments", |c| {
                let lp = lp.clone();
                async move {
                    let api: Api<Deployment> = match ns {
                        Some(ns) => Api::namespaced(c, ns),
                        None => Api::all(c),
                    };
                    api.list(&lp).await
                }
            })
            .await?;
        Ok(list.items)
    }

    /// Starts deleting namespace `name` without waiting for it to go (the reaper's delete;
    /// `env delete` follows it with `delete_namespace`). Gone already is fine.
    pub async fn start_namespace_delete(&self, name: &str) -> Result<(), ClusterError> {
        let what = format!("namespace {name}");
        match self
            .call(&what, |c| async move {
                Api::<Namespace>::all(c).delete(name, &DeleteParams::background()).await
            })
            .await
        {
            Ok(_) | Err(ClusterError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The boundary the README states: outside src/cluster/ no file builds a `kube::Api`,
    /// takes a kube client, or runs a watcher (kube's types, such as `ApiResource`, are fine).
    #[test]
    fn only_src_cluster_talks_to_kubernetes() {
        fn walk(dir: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
                let path = entry.path();
                if path.ends_with("cluster") {
                    continue;
                }
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    for (n, line) in text.lines().enumerate() {
                        let calls = ["Api::<", "Api<", "kube::Api", "kube::Client", "use kube::{", "watcher("];
                        if calls.iter().any(|c| line.contains(c)) || line.trim() == "Api," {
                            found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
        assert!(
            found.is_empty(),
            "Kubernetes calls outside src/cluster/:\n{}",
            found.join("\n")
        );
    }
}
