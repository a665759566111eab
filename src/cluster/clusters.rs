//! Several clusters: `clusters.NAME` tables, each with its connection and the tiers it serves.
//!
//! With no `clusters` table, `kubernetes.*` is the one cluster (named "default") and nothing
//! here costs a request: every lookup answers with it at once. With tables, each cluster
//! gets `kubernetes.*` with its own connection keys, and:
//!
//! - `env create NAME TIER@CLUSTER` picks a cluster; `TIER` alone goes to the only cluster
//!   serving the tier, or, when several serve it, to the one of them marked `default = true`
//!   (configuration validation insists on exactly one such cluster per shared tier, so a
//!   command never meets an ambiguous tier).
//! - An environment's cluster is found again by asking every cluster for its namespace,
//!   concurrently, and remembered for a short while ([`CACHE_FOR`]). The clusters are where
//!   environments live (the reaper deletes them there, people may too), so asking them
//!   cannot go stale the way a record in the store can; the cache only spares the lookup
//!   for a run of commands on the same environment. Names are unique across clusters:
//!   `env create` refuses a name another cluster has (or that a silent cluster may have).
//! - Listing asks every cluster concurrently, each within `kubernetes.cluster_deadline`;
//!   what answered is shown, and each cluster that did not is named.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Deserialize;

use super::{Cluster, ClusterError, env::EnvInfo};
use crate::{
    configuration::{Config, ConfigError, KubernetesConfig},
    domain::Name,
};

/// The name of the one cluster `kubernetes.*` describes when there is no `clusters` table.
pub const DEFAULT: &str = "default";

/// How long an environment's cluster is remembered after a lookup found it.
pub const CACHE_FOR: Duration = Duration::from_secs(30);

/// `clusters.NAME`: the connection keys of `kubernetes.*` (empty: not set) and the tiers the
/// cluster serves. Everything else comes from `kubernetes.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub url: String,
    pub kubeconfig: PathBuf,
    pub context: String,
    pub ca_file: PathBuf,
    pub ca_data: String,
    pub token_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    pub tiers: Vec<Name>,
    /// Where a tier that several clusters serve goes when the command names no cluster.
    pub default: bool,
}

impl ClusterConfig {
    /// `base` (kubernetes.*) with this cluster's connection.
    pub fn kubernetes(&self, base: &KubernetesConfig) -> KubernetesConfig {
        KubernetesConfig {
            url: self.url.clone(),
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            ca_file: self.ca_file.clone(),
            ca_data: self.ca_data.clone(),
            token_file: self.token_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
            ..base.clone()
        }
    }
}

/// Checks `clusters.*` against the tiers: known tiers only, every tier served, and a tier
/// several clusters serve has exactly one `default = true` among them.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let known = || config.tiers.keys().map(Name::as_str).collect::<Vec<_>>().join(", ");
    for (name, c) in &config.clusters {
        let url = &c.url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::key(
                format!("clusters.{name}.url"),
                "must be an http:// or https:// URL, or empty",
            ));
        }
        super::connect::Credentials::read(&c.kubernetes(&config.kubernetes)).map_err(|e| {
            let key = e.key().trim_start_matches("kubernetes.");
            ConfigError::key(format!("clusters.{name}.{key}"), e.message.clone())
        })?;
        for t in &c.tiers {
            if !config.tiers.contains_key(t) {
                return Err(ConfigError::key(
                    format!("clusters.{name}.tiers"),
                    format!("unknown tier '{t}' (defined tiers: {})", known()),
                ));
            }
        }
    }
    if config.clusters.is_empty() {
        return Ok(());
    }
    for tier in config.tiers.keys() {
        let serving: Vec<(&Name, bool)> = config
            .clusters
            .iter()
            .filter(|(_, c)| c.tiers.contains(tier))
            .map(|(n, c)| (n, c.default))
            .collect();
        let names = || serving.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
        let defaults = serving.iter().filter(|(_, d)| *d).count();
        if serving.is_empty() {
            return Err(ConfigError::key(
                "clusters",
                format!("no cluster serves tier '{tier}'; add it to one cluster's tiers"),
            ));
        }
        if serving.len() > 1 && defaults != 1 {
            return Err(ConfigError::key(
                "clusters",
                format!(
                    "tier '{tier}' is served by clusters {}; mark exactly one of them `default = true` (it gets `env create NAME {tier}`; `{tier}@CLUSTER` picks another)",
                    names()
                ),
            ));
        }
    }
    Ok(())
}

/// What `tier` arguments accept: every tier, and with `clusters` tables `TIER@CLUSTER` for
/// each cluster serving the tier.
pub fn tier_choices(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = config.tiers.keys().map(ToString::to_string).collect();
    for tier in config.tiers.keys() {
        for (name, c) in &config.clusters {
            if c.tiers.contains(tier) {
                out.push(format!("{tier}@{name}"));
            }
        }
    }
    out
}

/// Environments from every cluster that answered, and the clusters that did not.
#[derive(Debug, Default)]
pub struct Partial<T> {
    pub items: Vec<(String, T)>,
    /// (cluster, why) for each cluster that did not answer in time.
    pub silent: Vec<(String, String)>,
}

impl<T> Partial<T> {
    /// "cluster eu did not answer: ..." lines.
    pub fn silent_lines(&self) -> Vec<String> {
        self.silent.iter().map(|(c, why)| silent_line(c, why)).collect()
    }
}

/// "cluster eu did not answer: ...".
pub fn silent_line(cluster: &str, why: &str) -> String {
    format!("cluster {cluster} did not answer: {why}")
}

/// Every configured cluster by name, with the rules for picking one.
pub struct Clusters {
    clusters: BTreeMap<String, Arc<Cluster>>,
    /// tier -> the cluster `env create NAME TIER` goes to.
    tier_default: BTreeMap<String, String>,
    default: String,
    default_cluster: Arc<Cluster>,
    deadline: Duration,
    located: Mutex<HashMap<String, (String, Instant)>>,
}

impl Clusters {
    pub fn from_config(config: &Config) -> Self {
        let deadline = config.kubernetes.cluster_deadline.as_duration();
        if config.clusters.is_empty() {
            let one = Arc::new(Cluster::new(config.kubernetes.clone()));
            return Self {
                clusters: BTreeMap::from([(DEFAULT.to_owned(), one.clone())]),
                tier_default: BTreeMap::new(),
                default: DEFAULT.to_owned(),
                default_cluster: one,
                deadline,
                located: Mutex::default(),
            };
        }
        let clusters: BTreeMap<String, Arc<Cluster>> = config
            .clusters
            .iter()
            .map(|(n, c)| {
                (
                    n.to_string(),
                    Arc::new(Cluster::named(n.as_str(), c.kubernetes(&config.kubernetes))),
                )
            })
            .collect();
        let mut tier_default = BTreeMap::new();
        for tier in config.tiers.keys() {
            let serving: Vec<_> = config.clusters.iter().filter(|(_, c)| c.tiers.contains(tier)).collect();
            let pick = serving
                .iter()
                .find(|(_, c)| c.default)
                .or(serving.first())
                .map(|(n, _)| n.to_string());
            if let Some(pick) = pick {
                tier_default.insert(tier.to_string(), pick);
            }
        }
        let (default, default_cluster) = clusters
            .iter()
            .find(|(n, _)| {
                config
                    .clusters
                    .iter()
                    .any(|(m, c)| c.default && m.as_str() == n.as_str())
            })
            .or(clusters.iter().next())
            .map(|(n, c)| (n.clone(), c.clone()))
            .unwrap_or_else(|| (DEFAULT.to_owned(), Arc::new(Cluster::new(config.kubernetes.clone()))));
        Self {
            clusters,
            tier_default,
            default,
            default_cluster,
            deadline,
            located: Mutex::default(),
        }
    }

    /// True with `clusters` tables (more than the one `kubernetes.*` cluster to think about).
    pub fn several(&self) -> bool {
        self.clusters.len() > 1 || self.default != DEFAULT
    }

    /// The cluster for anything not tied to an environment (and the only one without tables).
    pub fn default_cluster(&self) -> Arc<Cluster> {
        self.default_cluster.clone()
    }

    pub fn names(&self) -> Vec<&str> {
        self.clusters.keys().map(String::as_str).collect()
    }

    pub fn get(&self, name: &str) -> Result<Arc<Cluster>, ClusterError> {
        self.clusters
            .get(name)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownCluster {
                name: name.to_owned(),
                known: self.names().join(", "),
            })
    }

    /// The cluster a new environment of `tier` goes to: `choice` when given, else the tier's.
    pub fn for_tier(&self, tier: &str, choice: Option<&str>) -> Result<(String, Arc<Cluster>), ClusterError> {
        let name = match choice {
            Some(c) => c.to_owned(),
            None => self
                .tier_default
                .get(tier)
                .cloned()
                .unwrap_or_else(|| self.default.clone()),
        };
        Ok((name.clone(), self.get(&name)?))
    }

    /// Remembers where an environment is (after creating it).
    pub fn remember(&self, env: &str, cluster: &str) {
        if let Ok(mut m) = self.located.lock() {
            m.insert(env.to_owned(), (cluster.to_owned(), Instant::now()));
        }
    }

    /// Forgets where an environment was (after deleting it).
    pub fn forget(&self, env: &str) {
        if let Ok(mut m) = self.located.lock() {
            m.remove(env);
        }
    }

    fn cached(&self, env: &str) -> Option<String> {
        let m = self.located.lock().ok()?;
        m.get(env)
            .filter(|(_, at)| at.elapsed() < CACHE_FOR)
            .map(|(c, _)| c.clone())
    }

    /// Where `env` is: the cluster holding its namespace (a managed one before a foreign one
    /// of the same name), with the clusters that did not answer. Stops asking at the first
    /// managed one: names are unique across clusters, so it is the answer even while another
    /// cluster is still silent.
    pub async fn find(&self, env: &str) -> Result<(Option<(String, EnvInfo)>, Vec<(String, String)>), ClusterError> {
        use futures_util::StreamExt;
        let mut pending: futures_util::stream::FuturesUnordered<_> = self
            .clusters
            .iter()
            .map(|(name, c)| {
                let (name, c, env) = (name.clone(), c.clone(), env.to_owned());
                let deadline = self.deadline;
                async move { (name, within(deadline, c.environment(&env)).await) }
            })
            .collect();
        let (mut found, mut silent) = (None, Vec::new());
        while let Some((name, result)) = pending.next().await {
            match result {
                Ok(Some(info)) if info.managed => {
                    self.remember(env, &name);
                    return Ok((Some((name, info)), silent));
                }
                Ok(Some(info)) => found = found.or(Some((name, info))),
                Ok(None) => {}
                Err(why) => silent.push((name, why)),
            }
        }
        Ok((found, silent))
    }

    /// The cluster `env` lives in, for actions on it. Without tables: the one cluster, at
    /// once. Not found anywhere: the default cluster (whose lookup then says there is no
    /// such environment), unless a cluster did not answer, which is then the error.
    pub async fn locate(&self, env: &str) -> Result<Arc<Cluster>, ClusterError> {
        if !self.several() {
            return Ok(self.default_cluster());
        }
        if let Some(c) = self.cached(env) {
            return self.get(&c);
        }
        let (found, silent) = self.find(env).await?;
        match (found, silent.first()) {
            (Some((c, _)), _) => self.get(&c),
            (None, None) => Ok(self.default_cluster()),
            (None, Some(_)) => Err(ClusterError::NotFoundWhileSilent {
                env: env.to_owned(),
                silent: silent
                    .iter()
                    .map(|(c, why)| format!("cluster {c} did not answer: {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }

    /// Every cluster's environments, asked concurrently, each within the deadline.
    pub async fn environments(&self) -> Partial<Vec<EnvInfo>> {
        self.ask_all(|c| async move { c.environments().await }).await
    }

    /// Runs `ask` on every cluster at once; a cluster that fails or misses the deadline is
    /// named in `silent` rather than failing the whole.
    pub async fn ask_all<T, F, Fut>(&self, ask: F) -> Partial<T>
    where
        F: Fn(Arc<Cluster>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let deadline = self.deadline;
        let calls = self.clusters.iter().map(|(name, c)| {
            let call = ask(c.clone());
            async move { (name.clone(), within(deadline, call).await) }
        });
        let mut out = Partial {
            items: Vec::new(),
            silent: Vec::new(),
        };
        for (name, result) in futures_util::future::join_all(calls).await {
            match result {
                Ok(v) => out.items.push((name, v)),
                Err(why) => out.silent.push((name, why)),
            }
        }
        out
    }
}

/// `call`'s answer, or why there was none (its error, or the deadline passing).
async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, ClusterError>>,
) -> Result<T, String> {
    match tokio::time::timeout(deadline, call).await {
        // The caller names the cluster itself.
        Ok(Err(ClusterError::NotAnswered { why, .. })) => Err(why),
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {}s", deadline.as_secs_f32())),
    }
}

#[cfg(test)]
mod tests;
