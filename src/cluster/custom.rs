//! Objects of kinds deckhand learns at run time (the custom resources of service classes):
//! resolving their API resource, applying, listing, deleting, and waiting for a condition.

use std::time::Duration;

use futures_util::StreamExt;
use kube::{
    Api,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterError};

/// How often a wait says it is still waiting, so a slow provider does not look like a hang.
const STILL_WAITING_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{0}")]
    TimedOut(String),
    #[error("{0}")]
    Gone(String),
    #[error("cancelled")]
    Cancelled,
}

fn api(c: kube::Client, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(c, ns, ar),
        None => Api::all_with(c, ar),
    }
}

fn to_value(o: DynamicObject) -> Result<Value, ClusterError> {
    serde_json::to_value(o).map_err(|e| ClusterError::Invalid(format!("cannot read the object: {e}")))
}

impl Cluster {
    /// The API resource of `apiVersion`/`kind`: from the plural a class gives, else from the
    /// API server's discovery (which also says whether the kind is installed at all).
    pub async fn api_resource(
        &self,
        api_version: &str,
        kind: &str,
        plural: Option<&str>,
    ) -> Result<ApiResource, ClusterError> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if let Some(p) = plural {
            return Ok(ApiResource::from_gvk_with_plural(&gvk, p));
        }
        let client = self.client().await?;
        match kube::discovery::pinned_kind(&client, &gvk).await {
            Ok((ar, _)) => Ok(ar),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(ClusterError::NotFound(format!(
                "{kind} ({api_version}) in this cluster: its provisioning layer (CRD) is not installed"
            ))),
            Err(e) => Err(ClusterError::from_kube(e, &format!("{kind} ({api_version})"))),
        }
    }

    /// Server-side apply under a field manager of the caller's choosing, so a binding owns
    /// only its own fields of an object other managers write too.
    pub async fn apply_as(
        &self,
        ar: &ApiResource,
        body: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, ClusterError> {
        let name = body["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let ns = body["metadata"]["namespace"].as_str().map(str::to_owned);
        let what = format!("{} {name}", ar.kind);
        let mut params = PatchParams::apply(manager);
        params.force = force;
        let applied = self
            .call(&what, |c| {
                let api = api(c, ar, ns.as_deref());
                let (name, params) = (name.clone(), params.clone());
                async move { api.patch(&name, &params, &Patch::Apply(body)).await }
            })
            .await?;
        to_value(applied)
    }

    pub async fn list_custom(
        &self,
        ar: &ApiResource,
        ns: Option<&str>,
        labels: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let lp = ListParams::default().labels(labels);
        let list = self
            .call(&format!("{} objects", ar.kind), |c| {
                let (api, lp) = (api(c, ar, ns), lp.clone());
                async move { api.list(&lp).await }
            })
            .await?;
        list.items.into_iter().map(to_value).collect()
    }

    /// Deletes one object; false when it was already gone.
    pub async fn delete_custom(&self, ar: &ApiResource, ns: &str, name: &str) -> Result<bool, ClusterError> {
        let what = format!("{} {name}", ar.kind);
        match self
            .call(&what, |c| {
                let api = api(c, ar, Some(ns));
                async move { api.delete(name, &DeleteParams::background()).await }
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(ClusterError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Watches one object until `ready` holds for it, calling `progress` whenever `describe`
    /// says something new (its conditions, say) and every 30 seconds while it waits.
    #[allow(clippy::too_many_arguments)]
    pub async fn wait_for_object(
        &self,
        ar: &ApiResource,
        ns: &str,
        name: &str,
        deadline: Duration,
        cancel: &CancellationToken,
        ready: impl Fn(&Value) -> bool,
        describe: impl Fn(&Value) -> String,
        mut progress: impl FnMut(String),
    ) -> Result<Value, WaitError> {
        let client = self.client().await?;
        let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher(api(client, ar, Some(ns)), cfg)
            .default_backoff()
            .applied_objects()
            .boxed();
        let started = tokio::time::Instant::now();
        let until = started + deadline;
        let mut ticker = tokio::time::interval_at(started + STILL_WAITING_EVERY, STILL_WAITING_EVERY);
        let mut last = String::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Err(WaitError::Cancelled),
                _ = tokio::time::sleep_until(until) => {
                    let state = if last.is_empty() { "no status yet".to_owned() } else { last };
                    return Err(WaitError::TimedOut(format!(
                        "{} {name} in {ns} is not ready after {}s ({state}); the platform team can look at it with `kubectl describe {} {name} -n {ns}`",
                        ar.kind, deadline.as_secs(), ar.plural
                    )));
                }
                _ = ticker.tick() => {
                    let state = if last.is_empty() { "no status yet".to_owned() } else { last.clone() };
                    progress(format!("still waiting for {} {name} after {}s: {state}", ar.kind, started.elapsed().as_secs()));
                }
                ev = events.next() => {
                    let obj = match ev {
                        Some(Ok(o)) => to_value(o)?,
                        Some(Err(e)) => { tracing::debug!(error = %e, "custom object watch error"); continue }
                        None => return Err(WaitError::Gone(format!("the watch of {} {name} ended", ar.kind))),
                    };
                    let line = describe(&obj);
                    if !line.is_empty() && line != last {
                        progress(format!("{} {name}: {line}", ar.kind));
                        last = line;
                    }
                    if ready(&obj) {
                        return Ok(obj);
                    }
                }
            }
        }
    }
}
