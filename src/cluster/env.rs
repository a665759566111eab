//! Environments as the cluster holds them: namespaces labelled by deckhand.

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api,
    api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::Value;

use super::{Cluster, ClusterError, EXPIRES_AT, MANAGED_BY, MANAGER, OWNER, REQUEST, TIER, WARNED};

#[derive(Debug, Clone)]
pub struct EnvInfo {
    pub name: String,
    pub managed: bool,
    pub owner: String,
    pub tier: String,
    pub request: Option<String>,
    pub created: Option<jiff::Timestamp>,
    pub expires_at: Option<jiff::Timestamp>,
    pub warned: bool,
    pub terminating: bool,
}

impl EnvInfo {
    fn from_namespace(ns: &Namespace) -> Self {
        let meta = &ns.metadata;
        let label = |k: &str| meta.labels.as_ref().and_then(|l| l.get(k)).cloned();
        let annotation = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k)).cloned();
        Self {
            name: meta.name.clone().unwrap_or_default(),
            managed: label(MANAGED_BY).as_deref() == Some(MANAGER),
            owner: label(OWNER).unwrap_or_default(),
            tier: label(TIER).unwrap_or_default(),
            request: label(REQUEST),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
            expires_at: annotation(EXPIRES_AT).and_then(|t| t.parse().ok()),
            warned: annotation(WARNED).is_some(),
            terminating: meta.deletion_timestamp.is_some()
                || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating"),
        }
    }
}

/// The apply body of a typed object. Serializing k8s-openapi types cannot fail (their maps
/// have string keys), but should it, it is an error rather than a panic.
pub fn manifest<K: serde::Serialize>(obj: &K) -> Result<Value, ClusterError> {
    serde_json::to_value(obj).map_err(|e| ClusterError::Invalid(format!("cannot serialize the object: {e}")))
}

impl Cluster {
    pub async fn environment(&self, name: &str) -> Result<Option<EnvInfo>, ClusterError> {
        let what = format!("namespace {name}");
        let ns = self
            .call(&what, |c| async move { Api::<Namespace>::all(c).get_opt(name).await })
            .await?;
        Ok(ns.as_ref().map(EnvInfo::from_namespace))
    }

    /// The environment `name`, refusing namespaces deckhand did not create (no
    /// `managed-by: deckhand` label). Every action naming an environment comes through here
    /// before it writes anything.
    pub async fn managed_environment(&self, name: &str) -> Result<EnvInfo, ClusterError> {
        match self.environment(name).await? {
            Some(e) if e.managed => Ok(e),
            Some(_) => Err(ClusterError::NotAnEnvironment(name.to_owned())),
            None => Err(ClusterError::NoEnvironment(name.to_owned())),
        }
    }

    pub async fn environments(&self) -> Result<Vec<EnvInfo>, ClusterError> {
        let lp = ListParams::default().labels(&format!("{MANAGED_BY}={MANAGER}"));
        let list = self
            .call("namespaces", |c| {
                let lp = lp.clone();
                async move { Api::<Namespace>::all(c).list(&lp).await }
            })
            .await?;
        Ok(list.items.iter().map(EnvInfo::from_namespace).collect())
    }

    /// Server-side apply of one object as field manager `deckhand`: creating it or making it
    /// match, and a no-op when it already does.
    pub async fn apply(&self, ar: &ApiResource, body: &Value) -> Result<DynamicObject, ClusterError> {
        let name = body["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let ns = body["metadata"]["namespace"].as_str().map(str::to_owned);
        let what = format!("{} {name}", ar.kind);
        self.call(&what, |c| {
            let api: Api<DynamicObject> = match &ns {
                Some(ns) => Api::namespaced_with(c, ns, ar),
                None => Api::all_with(c, ar),
            };
            let name = name.clone();
            async move {
                api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(body))
                    .await
            }
        })
        .await
    }

    /// Server-side apply of one typed object (see `objects`): its API resource comes from
    /// its type, and the body is its serialization, `apiVersion` and `kind` included.
    pub async fn apply_object<K>(&self, obj: &K) -> Result<DynamicObject, ClusterError>
    where
        K: kube::Resource<DynamicType = ()> + serde::Serialize,
    {
        self.apply(&ApiResource::erase::<K>(&()), &manifest(obj)?).await
    }

    /// A merge patch of annotations only: JSON on purpose, since a merge patch names only
    /// what it changes (a typed Namespace always writes apiVersion, kind and metadata), and
    /// a partial server-side apply as `deckhand` would delete the labels it applied at
    /// creation.
    pub async fn annotate_namespace(&self, name: &str, annotations: Value) -> Result<(), ClusterError> {
        let patch = serde_json::json!({ "metadata": { "annotations": annotations } });
        self.call(&format!("namespace {name}"), |c| {
            let patch = patch.clone();
            async move {
                Api::<Namespace>::all(c)
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
            }
        })
        .await?;
        Ok(())
    }

    /// Deletes the namespace and watches it until it is gone, calling `progress` with
    /// what happens. Returns once Kubernetes has removed it and everything in it.
    pub async fn delete_namespace(
        &self,
        name: &str,
        deadline: std::time::Duration,
        mut progress: impl FnMut(String) + Send,
    ) -> Result<(), ClusterError> {
        let what = format!("namespace {name}");
        let deleted = self
            .call(&what, |c| async move {
                Api::<Namespace>::all(c).delete(name, &DeleteParams::background()).await
            })
            .await;
        match deleted {
            Ok(_) => progress(format!("namespace {name} is terminating")),
            Err(ClusterError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let client = self.client().await?;
        let api = Api::<Namespace>::all(client);
        let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut gone = false;
        let mut stream = watcher(api.clone(), cfg).default_backoff().boxed();
        let wait = async {
            while let Some(ev) = stream
                .try_next()
                .await
                .map_err(|e| ClusterError::Unreachable(e.to_string()))?
            {
                match ev {
                    watcher::Event::Delete(_) => {
                        gone = true;
                        break;
                    }
                    // A relist that no longer contains it means it went while we were away.
                    watcher::Event::InitDone
                        if api
                            .get_opt(name)
                            .await
                            .map_err(|e| ClusterError::from_kube(e, &what))?
                            .is_none() =>
                    {
                        gone = true;
                        break;
                    }
                    _ => {}
                }
            }
            Ok::<(), ClusterError>(())
        };
        match tokio::time::timeout(deadline, wait).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(ClusterError::Api {
                    code: 504,
                    message: format!("namespace {name} is still terminating after {}s", deadline.as_secs()),
                });
            }
        }
        if gone {
            progress(format!("namespace {name} is gone"));
        }
        Ok(())
    }
}
