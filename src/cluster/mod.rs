//! The Kubernetes boundary: a lazily built kube client, errors people can act on, and
//! retries for what is worth retrying. Everything goes through kube-rs; no kubectl.

pub mod attach;
pub mod clusters;
pub mod connect;
pub mod custom;
pub mod describe;
pub mod egress;
pub mod env;
#[cfg(test)]
mod equivalence;
pub mod exec;
pub mod load_job;
mod lookups;
pub mod objects;
mod passthrough;
mod pod_watch;
pub mod rollout;
pub mod schema;
pub mod workload;

use std::{future::Future, time::Duration};

use tokio::sync::OnceCell;

use crate::configuration::KubernetesConfig;
pub use passthrough::Passthrough;

pub const MANAGER: &str = "deckhand";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const APP_NAME: &str = "app.kubernetes.io/name";
pub const OWNER: &str = "deckhand.dev/owner";
pub const TIER: &str = "deckhand.dev/tier";
pub const REQUEST: &str = "deckhand.dev/request";
pub const EXPIRES_AT: &str = "deckhand.dev/expires-at";
pub const WARNED: &str = "deckhand.dev/expiry-warned";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no Kubernetes configuration found ({0}); set kubernetes.url or kubernetes.kubeconfig, or run deckhand in a cluster"
    )]
    NotConfigured(String),
    /// A `kubernetes.*` credential key that cannot be used; the message names the key.
    #[error("config key `{}`: {}", .0.key, .0.message)]
    Credentials(#[from] connect::CredentialError),
    #[error("cannot reach the Kubernetes API: {0}")]
    Unreachable(String),
    #[error(
        "the Kubernetes API server's certificate is not trusted ({0}); kubernetes.ca_file or kubernetes.ca_data (or the kubeconfig's certificate-authority) must hold the CA that signed it"
    )]
    Tls(String),
    /// The server ended the handshake: usually a client certificate it does not accept.
    #[error(
        "the Kubernetes API server refused the TLS connection ({0}); a client certificate (kubernetes.client_cert_file, or the kubeconfig's) must be signed by a CA the server trusts"
    )]
    TlsRefused(String),
    #[error(
        "the Kubernetes API refused deckhand's credentials ({0}); check kubernetes.token_file or the client certificate (or the kubeconfig's user)"
    )]
    Unauthorized(String),
    #[error(
        "deckhand's service account is not allowed to do this: {0}. The platform team grants it in deploy/clusterrole.yaml"
    )]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("there is no environment {0}; create it with `env create {0}`")]
    NoEnvironment(String),
    /// A namespace without deckhand's label: someone else's, so deckhand does not touch it.
    #[error("'{0}' is not an environment deckhand created; deckhand only acts in its own environments (see env list)")]
    NotAnEnvironment(String),
    /// One of several clusters could not be reached (after retries): named, so people know
    /// which one is down.
    #[error("cluster {cluster} did not answer: {why}")]
    NotAnswered { cluster: String, why: String },
    /// A command named a cluster the configuration does not have.
    #[error("there is no cluster '{name}'; the clusters are {known}")]
    UnknownCluster { name: String, known: String },
    /// Not found in the clusters that answered, and some did not: it may be there.
    #[error("there is no environment {env} in the clusters that answered; {silent}")]
    NotFoundWhileSilent { env: String, silent: String },
    #[error("quota {quota} is exhausted: {message}")]
    QuotaExceeded { quota: String, message: String },
    #[error("conflict: {0}; try again")]
    Conflict(String),
    #[error("Kubernetes refused it as invalid: {0}")]
    Invalid(String),
    #[error("Kubernetes API error {code}: {message}")]
    Api { code: u16, message: String },
}

impl ClusterError {
    /// Classifies a kube error; `what` names the object for not-found messages.
    pub fn from_kube(e: kube::Error, what: &str) -> Self {
        match e {
            kube::Error::Api(status) => {
                let message = status.message.clone();
                match status.code {
                    403 if message.contains("exceeded quota") => ClusterError::QuotaExceeded {
                        quota: quota_name(&message).unwrap_or_else(|| "unknown".into()),
                        message,
                    },
                    401 => ClusterError::Unauthorized(format!("401 {}", status.reason)),
                    403 => ClusterError::Forbidden(message),
                    404 => ClusterError::NotFound(what.to_owned()),
                    409 => ClusterError::Conflict(message),
                    422 => ClusterError::Invalid(message),
                    code => ClusterError::Api { code, message },
                }
            }
            kube::Error::InferConfig(e) => ClusterError::NotConfigured(e.to_string()),
            other => match tls_failure(&other) {
                Some(alert @ rustls::Error::AlertReceived(_)) => ClusterError::TlsRefused(alert.to_string()),
                Some(why) => ClusterError::Tls(why.to_string()),
                None => ClusterError::Unreachable(causes(&other)),
            },
        }
    }

    fn is_transient(&self) -> bool {
        matches!(
            self,
            ClusterError::Unreachable(_)
                | ClusterError::Api {
                    code: 429 | 500 | 502 | 503 | 504,
                    ..
                }
        )
    }
}

/// The error and its causes, `a: b: c` (hyper's own message alone says little).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let part = cause.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        next = cause.source();
    }
    text
}

/// The TLS verification error under a connection failure, if that is what it was.
fn tls_failure<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // io::Error's source() skips the error it wraps (and the TLS connector wraps an
        // io::Error in another), so look inside.
        if let Some(inner) = cause.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            next = Some(inner as &(dyn std::error::Error + 'static));
            continue;
        }
        next = cause.source();
    }
    None
}

/// `... exceeded quota: compute, requested: ...` -> `compute`.
pub fn quota_name(message: &str) -> Option<String> {
    let rest = message.split("exceeded quota: ").nth(1)?;
    Some(rest.split([',', ' ']).next()?.to_owned())
}

/// The cluster connection, made on first use so deckhand starts (and serves its
/// non-Kubernetes commands) even where no cluster is configured.
pub struct Cluster {
    /// Set with several clusters (`clusters.NAME`): errors reaching it then name it.
    name: String,
    cfg: KubernetesConfig,
    client: OnceCell<kube::Client>,
    passthrough: OnceCell<Passthrough>,
}

impl Cluster {
    pub fn new(cfg: KubernetesConfig) -> Self {
        Self::named("", cfg)
    }

    /// One of several clusters: failures to reach it say its name.
    pub fn named(name: &str, cfg: KubernetesConfig) -> Self {
        Self {
            name: name.to_owned(),
            cfg,
            client: OnceCell::new(),
            passthrough: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &KubernetesConfig {
        &self.cfg
    }

    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        self.client
            .get_or_try_init(|| connect(&self.cfg))
            .await
            .cloned()
            .map_err(|e| self.name_it(e))
    }

    /// With a name: an error that says the cluster could not be reached names the cluster.
    fn name_it(&self, err: ClusterError) -> ClusterError {
        match err {
            ClusterError::Unreachable(_)
            | ClusterError::NotConfigured(_)
            | ClusterError::Tls(_)
            | ClusterError::TlsRefused(_)
            | ClusterError::Api {
                code: 429 | 500 | 502 | 503 | 504,
                ..
            } if !self.name.is_empty() => ClusterError::NotAnswered {
                cluster: self.name.clone(),
                why: err.to_string(),
            },
            other => other,
        }
    }

    /// The streaming client for requests deckhand only passes through (proxy links).
    pub async fn passthrough(&self) -> Result<Passthrough, ClusterError> {
        self.passthrough
            .get_or_try_init(|| async {
                let (config, token) = kube_config(&self.cfg).await?;
                Passthrough::new(&config, token)
            })
            .await
            .cloned()
    }

    /// Runs `call`, retrying transient failures (unreachable, 429, 5xx) with exponential
    /// backoff; anything else is returned at once, classified.
    pub async fn call<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, ClusterError>
    where
        F: FnMut(kube::Client) -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let client = self.client().await?;
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match call(client.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let err = ClusterError::from_kube(e, what);
                    // A 401 right after the token file was rotated: the retry re-reads it.
                    let rotated = matches!(err, ClusterError::Unauthorized(_))
                        && attempt == 1
                        && !self.cfg.token_file.as_os_str().is_empty();
                    if !(err.is_transient() || rotated) || attempt >= 4 {
                        return Err(self.name_it(err));
                    }
                    tracing::debug!(%err, attempt, "transient Kubernetes error; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }
}

async fn connect(cfg: &KubernetesConfig) -> Result<kube::Client, ClusterError> {
    let (config, token) = kube_config(cfg).await?;
    let builder = kube::client::ClientBuilder::try_from(config).map_err(|e| ClusterError::NotConfigured(causes(&e)))?;
    Ok(match token {
        Some(token) => builder.with_layer(&token).build(),
        None => builder.build(),
    })
}

/// Where the cluster is and how to authenticate: `kubernetes.url` with the credential keys
/// (`connect`), else a kubeconfig (file and/or context), else in-cluster / the default
/// kubeconfig. A token file given with `kubernetes.url` comes back as a layer for the
/// client's stack, since kube would re-read it only once a minute.
async fn kube_config(cfg: &KubernetesConfig) -> Result<(kube::Config, Option<connect::BearerFromFile>), ClusterError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = if !cfg.url.is_empty() {
        let url = cfg
            .url
            .parse()
            .map_err(|e| ClusterError::NotConfigured(format!("kubernetes.url: {e}")))?;
        let mut config = kube::Config::new(url);
        let token = connect::Credentials::read(cfg)?.apply(&mut config);
        return Ok((config, token));
    } else if !cfg.kubeconfig.as_os_str().is_empty() || !cfg.context.is_empty() {
        let options = kube::config::KubeConfigOptions {
            context: (!cfg.context.is_empty()).then(|| cfg.context.clone()),
            ..Default::default()
        };
        let result = if cfg.kubeconfig.as_os_str().is_empty() {
            kube::Config::from_kubeconfig(&options).await
        } else {
            let file = kube::config::Kubeconfig::read_from(&cfg.kubeconfig)
                .map_err(|e| ClusterError::NotConfigured(format!("{}: {e}", cfg.kubeconfig.display())))?;
            kube::Config::from_custom_kubeconfig(file, &options).await
        };
        result.map_err(|e| ClusterError::NotConfigured(e.to_string()))?
    } else {
        kube::Config::infer()
            .await
            .map_err(|e| ClusterError::NotConfigured(e.to_string()))?
    };
    Ok((config, None))
}
