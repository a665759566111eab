//! What the types of the configuration cannot say: ranges, URL schemes, Kubernetes
//! quantities, the cluster connection's credentials, groups that exist, identities and
//! tokens given to one user only. The first problem found is the error, naming its key.

use std::collections::HashSet;

use super::{Config, ConfigError, Quantities};
use crate::domain::Name;

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.loadtest.validate()?;
        self.validate_service()?;
        self.validate_kubernetes()?;
        crate::cluster::clusters::validate(self)?;
        self.validate_tiers()?;
        self.validate_people()
    }

    /// The worker, the store, the proxy domain and the apps' defaults.
    fn validate_service(&self) -> Result<(), ConfigError> {
        if self.worker.concurrency == 0 || self.worker.concurrency > 256 {
            return Err(ConfigError::key("worker.concurrency", "must be between 1 and 256"));
        }
        if self.store.max_connections == 0 {
            return Err(ConfigError::key("store.max_connections", "must be at least 1"));
        }
        let url = &self.store.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::key(
                "store.url",
                "must be empty (embedded SQLite), sqlite://PATH or postgres://...",
            ));
        }
        if !crate::proxy::valid_proxy_domain(&self.server.proxy_domain) {
            return Err(ConfigError::key(
                "server.proxy_domain",
                "must be empty or a DNS name such as proxy.example.com (optionally :port), without scheme or path",
            ));
        }
        if !(1..=1000).contains(&self.apps.replicas) {
            return Err(ConfigError::key("apps.replicas", "must be between 1 and 1000"));
        }
        check_quantities("apps.requests", &self.apps.requests)?;
        check_quantities("apps.limits", &self.apps.limits)
    }

    fn validate_kubernetes(&self) -> Result<(), ConfigError> {
        let url = &self.kubernetes.url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::key(
                "kubernetes.url",
                "must be an http:// or https:// URL, or empty",
            ));
        }
        crate::cluster::connect::Credentials::read(&self.kubernetes)
            .map_err(|e| ConfigError::key(e.key(), e.to_string()))?;
        if self.kubernetes.log_lines < 1 || self.kubernetes.log_bytes < 256 {
            return Err(ConfigError::key(
                "kubernetes.log_lines",
                "log_lines must be at least 1 and log_bytes at least 256",
            ));
        }
        if self
            .kubernetes
            .shell_command
            .first()
            .is_none_or(|c| c.trim().is_empty())
        {
            return Err(ConfigError::key(
                "kubernetes.shell_command",
                "must name the program to run, e.g. [\"sh\"] or [\"bash\", \"-l\"]",
            ));
        }
        if self.kubernetes.shell_idle_timeout.as_duration().is_zero() {
            return Err(ConfigError::key(
                "kubernetes.shell_idle_timeout",
                "must be longer than 0s, e.g. \"30m\"",
            ));
        }
        Ok(())
    }

    fn validate_tiers(&self) -> Result<(), ConfigError> {
        for (name, tier) in &self.tiers {
            check_quantities(&format!("tiers.{name}.quota"), &tier.quota)?;
            check_quantities(&format!("tiers.{name}.default_request"), &tier.default_request)?;
            check_quantities(&format!("tiers.{name}.default_limit"), &tier.default_limit)?;
            if tier.default_ttl > tier.max_ttl {
                return Err(ConfigError::key(
                    format!("tiers.{name}.default_ttl"),
                    format!("{} is longer than max_ttl {}", tier.default_ttl, tier.max_ttl),
                ));
            }
        }
        Ok(())
    }

    /// Groups' and users' identities, users' groups and tokens: each identity and token
    /// belongs to one user only, so it always names one person.
    fn validate_people(&self) -> Result<(), ConfigError> {
        let mut identities = HashSet::new();
        let mut tokens = HashSet::new();
        for (name, group) in &self.groups {
            for id in &group.identities {
                check_identity(id, &format!("groups.{name}.identities"))?;
            }
        }
        for (name, user) in &self.users {
            for g in &user.groups {
                if !self.groups.contains_key(g) {
                    let known: Vec<_> = self.groups.keys().map(Name::as_str).collect();
                    return Err(ConfigError::key(
                        format!("users.{name}.groups"),
                        format!("unknown group '{g}' (defined groups: {})", known.join(", ")),
                    ));
                }
            }
            for id in &user.identities {
                let key = format!("users.{name}.identities");
                check_identity(id, &key)?;
                if !identities.insert(id.as_str()) {
                    return Err(ConfigError::key(
                        key,
                        format!("'{id}' is already given to another user"),
                    ));
                }
            }
            for t in &user.tokens {
                let key = format!("users.{name}.tokens");
                if t.len() < 16 {
                    return Err(ConfigError::key(key, "tokens must be at least 16 characters long"));
                }
                if !tokens.insert(t.as_str()) {
                    return Err(ConfigError::key(key, "this token is already given to another user"));
                }
            }
        }
        Ok(())
    }
}

fn check_identity(id: &str, key: &str) -> Result<(), ConfigError> {
    match id.split_once(':') {
        Some((kind, rest)) if !rest.is_empty() && !kind.is_empty() => Ok(()),
        _ => Err(ConfigError::key(
            key,
            format!("'{id}' is not an identity; write it as platform:id, e.g. slack:U0123ABC"),
        )),
    }
}

/// A Kubernetes quantity: `4`, `500m`, `1.5`, `8Gi`, `100M`.
pub(super) fn is_quantity(s: &str) -> bool {
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits_end);
    !num.is_empty()
        && num.parse::<f64>().is_ok()
        && ["", "m", "k", "M", "G", "T", "P", "Ki", "Mi", "Gi", "Ti", "Pi"].contains(&suffix)
}

pub(crate) fn check_quantities(key: &str, q: &Quantities) -> Result<(), ConfigError> {
    for (name, v) in q {
        if !is_quantity(v) {
            return Err(ConfigError::key(
                format!("{key}.{name}"),
                format!("'{v}' is not a Kubernetes quantity (e.g. 500m, 2, 8Gi)"),
            ));
        }
    }
    Ok(())
}
