//! Cloud services from templates: classes ops define (services/*.yaml), rendered with
//! checked parameters into the objects a provisioning layer (Crossplane, AWS Controllers for
//! Kubernetes) turns into a database, a bucket or a table; the actions in
//! `actions/service*.rs` provision, watch, bind, list and delete them.

pub mod catalog;
pub mod class;
mod class_file;
pub mod params;
pub mod render;
mod sample_render;

use std::path::PathBuf;

use serde::Deserialize;

pub use catalog::{Catalog, ClassError, ClassErrors};
pub use class::{Context, Ready, ServiceClass};
pub use params::{ParamError, Params};

use crate::domain::HumanDuration;

/// Labels on every object of a service, so deckhand finds them again without a table of
/// its own: the cluster is the record.
pub const SERVICE: &str = "deckhand.dev/service";
pub const CLASS: &str = "deckhand.dev/class";
/// The checked parameters, as JSON, so bind and delete render exactly what provision did.
pub const PARAMS: &str = "deckhand.dev/params";
/// On a Deployment bound to a service: `service.deckhand.dev/<service>`.
pub const BOUND_PREFIX: &str = "service.deckhand.dev/";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesConfig {
    /// Directory of class files; empty means the classes built into the binary.
    pub dir: PathBuf,
    /// How long `service provision` waits for the ready condition.
    pub ready_deadline: HumanDuration,
}

/// The field manager of one service's binding, so each binding owns only its own
/// environment variables and annotation, and deploys (manager `deckhand`) keep them.
pub fn bind_manager(service: &str) -> String {
    format!("deckhand-bind-{service}")
}
