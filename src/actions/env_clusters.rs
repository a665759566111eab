//! What environment actions ask of several clusters (src/cluster/clusters.rs): whether a
//! new environment's name is taken in another cluster, and what the lists that span
//! clusters (`env list`, `service list`) ask of every one. Without `clusters` tables both
//! are what they were: the one cluster, errors and all.

use std::{future::Future, sync::Arc};

use super::ActionError;
use crate::{
    app::App,
    cluster::{Cluster, ClusterError, clusters::Partial, env::EnvInfo},
};

/// Refuses `name` when another cluster has it, or when a cluster that did not answer might:
/// names are unique across clusters, which is how an environment's cluster is found again.
pub(super) async fn name_is_free_elsewhere(app: &App, name: &str, target: &str) -> Result<(), ActionError> {
    let (found, silent) = app.clusters.find(name).await?;
    if let Some((cluster, _)) = found.filter(|(c, _)| c != target) {
        return Err(ActionError::Failed(format!(
            "environment {name} already exists in cluster {cluster}; pick another name"
        )));
    }
    if let Some((cluster, why)) = silent.iter().find(|(c, _)| c != target) {
        return Err(ActionError::Failed(format!(
            "cannot tell whether {name} is free: cluster {cluster} did not answer: {why}; try again later"
        )));
    }
    Ok(())
}

/// Every cluster's environments (see `every_cluster`).
pub(super) async fn all_environments(app: &App) -> Result<Partial<Vec<EnvInfo>>, ActionError> {
    every_cluster(app, |c| async move { c.environments().await }).await
}

/// `ask` of every cluster, as the lists that span clusters (`env list`, `service list`) need
/// it. With one cluster its error is the action's error, as before; with several, a cluster
/// that did not answer is named in `silent` instead (and when none answered, that is the
/// error: partial is worth showing, nothing at all is a failure).
pub(super) async fn every_cluster<T, F, Fut>(app: &App, ask: F) -> Result<Partial<T>, ActionError>
where
    F: Fn(Arc<Cluster>) -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    if !app.clusters.several() {
        return Ok(Partial {
            items: vec![(
                crate::cluster::clusters::DEFAULT.to_owned(),
                ask(app.cluster.clone()).await?,
            )],
            silent: Vec::new(),
        });
    }
    let found = app.clusters.ask_all(ask).await;
    if found.items.is_empty() {
        return Err(ActionError::Failed(format!(
            "no cluster answered: {}",
            found.silent_lines().join("; ")
        )));
    }
    Ok(found)
}
