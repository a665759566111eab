//! Load tests in the cluster: the `[loadtest]` configuration, the Job that runs the load
//! generator in an environment, the stored results and the table posted to the thread.
//! The action itself (`loadtest.run`) is in `actions/loadtest/`.

/// The load-test Job in the cluster (in src/cluster/, like every Kubernetes call).
pub use crate::cluster::load_job as job;
pub mod results;
pub mod summary;
pub mod target;

use serde::Deserialize;

use crate::{
    configuration::{ConfigError, Quantities, check_quantities},
    domain::HumanDuration,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadtestConfig {
    pub image: String,
    pub requests: Quantities,
    pub limits: Quantities,
    pub max_workers: u32,
    pub max_rate: u32,
    pub max_duration: HumanDuration,
    pub request_timeout: HumanDuration,
    pub start_timeout: HumanDuration,
}

impl LoadtestConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.image.trim().is_empty() || self.image.contains(char::is_whitespace) {
            return Err(ConfigError::key(
                "loadtest.image",
                "must be an image reference, e.g. ghcr.io/acme/deckhand:0.1.0",
            ));
        }
        check_quantities("loadtest.requests", &self.requests)?;
        check_quantities("loadtest.limits", &self.limits)?;
        if !(1..=100).contains(&self.max_workers) {
            return Err(ConfigError::key("loadtest.max_workers", "must be between 1 and 100"));
        }
        if !(1..=1_000_000).contains(&self.max_rate) {
            return Err(ConfigError::key("loadtest.max_rate", "must be between 1 and 1000000"));
        }
        if self.max_duration.as_duration().as_secs() > 24 * 3600 {
            return Err(ConfigError::key("loadtest.max_duration", "must be at most 1d"));
        }
        Ok(())
    }
}
