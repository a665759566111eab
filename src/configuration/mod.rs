//! Configuration: embedded defaults, an optional file laid over them, then environment
//! variables for single keys (layers.rs). Unknown keys and bad values are errors that name the
//! key; `Config::validate` (validate.rs) checks what types cannot (a group named by a user
//! exists, say).

mod layers;
mod validate;

pub(crate) use validate::check_quantities;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::domain::{HumanDuration, Name};

pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("config key `{key}`{origin}: {message}")]
    Key {
        key: String,
        origin: String,
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            origin: String::new(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    pub commands: CommandsConfig,
    pub worker: WorkerConfig,
    pub delivery: DeliveryConfig,
    pub approvals: ApprovalsConfig,
    pub kubernetes: KubernetesConfig,
    pub apps: AppsConfig,
    pub services: crate::services::ServicesConfig,
    #[serde(default)]
    pub slack: crate::slack::SlackConfig,
    #[serde(default)]
    pub discord: crate::discord::DiscordConfig,
    pub loadtest: crate::loadtest::LoadtestConfig,
    pub tiers: BTreeMap<Name, TierConfig>,
    /// Several clusters (src/cluster/clusters.rs); none: `kubernetes.*` is the one cluster.
    #[serde(default)]
    pub clusters: BTreeMap<Name, crate::cluster::clusters::ClusterConfig>,
    pub groups: BTreeMap<Name, GroupConfig>,
    pub users: BTreeMap<Name, UserConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub body_limit: usize,
    /// Signs what deckhand hands to chat platforms and gets back (button values). Empty:
    /// a random key per process, so buttons stop working across restarts and replicas.
    pub signing_key: String,
    /// Where people reach deckhand; proxy links are `{public_url}/p/{token}/` unless
    /// `proxy_domain` is set.
    pub public_url: String,
    /// When set, `/metrics` answers only `Authorization: Bearer <metrics_token>`.
    #[serde(default)]
    pub metrics_token: String,
    /// When set (e.g. `proxy.example.com`), each proxy link is its own origin,
    /// `{scheme}://{token}.{proxy_domain}/`, so links cannot read each other's (or
    /// deckhand's) cookies and storage. Empty: links are `{public_url}/p/{token}/`.
    #[serde(default)]
    pub proxy_domain: String,
    /// How long a personal link to a request's web page (`{public_url}/r/{token}`) works.
    #[serde(default = "default_page_link_ttl")]
    pub page_link_ttl: HumanDuration,
}

fn default_page_link_ttl() -> HumanDuration {
    HumanDuration::from_secs(24 * 3600)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub url: String,
    pub sqlite_path: PathBuf,
    pub max_connections: u32,
}

impl StoreConfig {
    /// The URL the store connects to: `url` when set, else the embedded SQLite file.
    pub fn effective_url(&self) -> String {
        if self.url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.sqlite_path.display())
        } else {
            self.url.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub lease: HumanDuration,
    pub poll_interval: HumanDuration,
    pub shutdown_grace: HumanDuration,
}

/// The chat outbox (`crate::outbox`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// How long a delivery that keeps failing (outage, 5xx, rate limits) is retried before
    /// it is marked failed.
    pub retry_for: HumanDuration,
    /// How long one attempt may hold a delivery; a deliverer that dies is replaced after it.
    pub lease: HumanDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    pub default_expires: HumanDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    pub url: String,
    pub kubeconfig: PathBuf,
    pub context: String,
    /// With `url`: the CA that signed the API server's certificate, as a PEM file or as PEM
    /// text (or its base64, as kubeconfig's certificate-authority-data); at most one of them.
    pub ca_file: PathBuf,
    pub ca_data: String,
    /// With `url`: a file holding the bearer token, re-read when it changes (rotation).
    pub token_file: PathBuf,
    /// With `url`: a client certificate and its key (PEM files), both or neither.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    pub allowed_registries: Vec<String>,
    pub rollout_deadline: HumanDuration,
    pub stall_after: HumanDuration,
    pub team_role: String,
    pub group_prefix: String,
    /// The namespace deckhand itself runs in; never an environment name.
    pub namespace: String,
    /// The label (value "true") a cluster admin puts on namespaces environments trust
    /// (tiers.NAME.allow_from_namespaces); a namespace with the name but not the label is not
    /// trusted.
    pub trusted_namespace_label: String,
    pub expiry_warning: HumanDuration,
    pub reaper_interval: HumanDuration,
    /// With `clusters` tables: how long each cluster may take to answer a question asked
    /// of all of them (env list, finding an environment) before it is named as silent.
    pub cluster_deadline: HumanDuration,
    pub log_lines: i64,
    pub log_bytes: usize,
    /// proxy.open: a link's lifetime unless the command gives one, and the most it may ask.
    pub proxy_ttl: HumanDuration,
    pub proxy_max_ttl: HumanDuration,
    /// pod.exec: how long a one-off command may run before it is abandoned.
    pub exec_timeout: HumanDuration,
    /// pod.shell: how long a shell link may wait to be opened, and what runs in the pod.
    pub shell_link_ttl: HumanDuration,
    pub shell_command: Vec<String>,
    /// A session with no input from its client for this long is ended.
    pub shell_idle_timeout: HumanDuration,
}

/// Resource amounts by name (`cpu`, `memory`, `requests.cpu`, `pods`), as Kubernetes writes them.
pub type Quantities = BTreeMap<String, String>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppsConfig {
    pub replicas: i32,
    pub requests: Quantities,
    pub limits: Quantities,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    #[serde(default)]
    pub description: String,
    pub default_ttl: HumanDuration,
    pub max_ttl: HumanDuration,
    #[serde(default)]
    pub quota: Quantities,
    #[serde(default)]
    pub default_request: Quantities,
    #[serde(default)]
    pub default_limit: Quantities,
    #[serde(default)]
    pub allow_from_namespaces: Vec<String>,
    #[serde(default = "yes")]
    pub mutable_tags: bool,
    /// Shorter than kubernetes.proxy_max_ttl for this tier's proxy links, if set.
    #[serde(default)]
    pub proxy_max_ttl: Option<HumanDuration>,
    /// Whether interactive shells in this tier's environments keep the lines typed.
    #[serde(default)]
    pub record_shell: bool,
    /// The ClusterRole the requester's groups get in this tier's environments; see
    /// `Config::team_role`.
    #[serde(default)]
    pub team_role: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    #[serde(default)]
    pub description: String,
    /// Chat-side groups whose members belong to this group, e.g. `slack-group:S0123`.
    #[serde(default)]
    pub identities: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(default)]
    pub groups: Vec<Name>,
    /// Chat identities of this person: `slack:U0123`, `discord:80351110224678912`.
    #[serde(default)]
    pub identities: Vec<String>,
    /// Bearer tokens for the HTTP API and the CLI.
    #[serde(default)]
    pub tokens: Vec<String>,
}

impl Config {
    /// The ClusterRole a tier's environments bind the requester's groups to: the tier's
    /// `team_role`, else `view` for a tier named prod (so replacing the tiers without
    /// thinking of it never hands developers write access to prod), else
    /// `kubernetes.team_role`.
    pub fn team_role(&self, tier: &str) -> &str {
        let set = Name::parse(tier)
            .ok()
            .and_then(|n| self.tiers.get(&n)?.team_role.as_deref());
        match set {
            Some(role) => role,
            None if tier == "prod" => "view",
            None => &self.kubernetes.team_role,
        }
    }

    /// The embedded defaults alone, ignoring the environment (tests start from here).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::build(None, std::iter::empty())
    }

    /// Defaults, then `file`, then DECKHAND_* (and DATABASE_URL) from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::build(file, std::env::vars())
    }

    pub fn build(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let config = layers::layered(file, env)?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
