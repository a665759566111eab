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
