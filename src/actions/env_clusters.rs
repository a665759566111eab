//! What environment actions ask of several clusters (src/cluster/clusters.rs): whether a
//! new environment's name is taken in another cluster, and every cluster's environments.
//! Without `clusters` tables both are what they were: the one cluster, errors and all.

use super::ActionError;
use crate::{
    app::App,
    cluster::{clusters::Partial, env::EnvInfo},
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

/// Every cluster's environments. With one cluster its error is the action's error, as before;
/// with several, a cluster that did not answer is named in `silent` instead (and when none
/// answered, that is the error).
pub(super) async fn all_environments(app: &App) -> Result<Partial<Vec<EnvInfo>>, ActionError> {
    if !app.clusters.several() {
        let envs = app.cluster.environments().await?;
        return Ok(Partial {
            items: vec![(crate::cluster::clusters::DEFAULT.to_owned(), envs)],
            silent: Vec::new(),
        });
    }
    let found = app.clusters.environments().await;
    // Partial is worth showing; nothing at all is a failure.
    if found.items.is_empty() {
        return Err(ActionError::Failed(format!(
            "no cluster answered: {}",
            found.silent_lines().join("; ")
        )));
    }
    Ok(found)
}
