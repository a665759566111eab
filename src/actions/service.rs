//! Cloud services from the classes in services/: provision (render, apply, wait until
//! ready, report the endpoint), bind to an app (connection Secret as environment variables,
//! a ServiceAccount with the cloud identity, a watched rollout; service_bind.rs), list
//! (service_list.rs) and delete.
//!
//! Deckhand never reads a connection Secret: it knows the Secret's name and keys from the
//! class and lets Kubernetes put the values into the app's pods, so no value can end up in
//! a message, a log line or an API response.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use async_trait::async_trait;
use serde_json::Value;

use super::{Action, ActionContext, ActionError, ActionRegistry, env::env_facts};
use crate::{
    app::App,
    cluster::{Cluster, ClusterError},
    commands::Args,
    domain::Name,
    identity::Principal,
    services::{BOUND_PREFIX, CLASS, Catalog, Context, PARAMS, Params, SERVICE, ServiceClass},
};

/// What the service actions tell approval rules: the environment's facts, whether the
/// class costs money, and its name.
pub const SERVICE_FACTS: &[&str] = &["tier", "owner", "mine", "cost", "class"];

pub fn register(registry: &mut ActionRegistry) {
    let classes = Arc::new(Classes::default());
    registry.register(Arc::new(super::service_provision::Provision(classes.clone())));
    registry.register(Arc::new(super::service_bind::Bind(classes.clone())));
    registry.register(Arc::new(super::service_list::List(classes.clone())));
    registry.register(Arc::new(ClassList(classes.clone())));
    registry.register(Arc::new(Delete(classes)));
}

/// The configured classes, loaded on first use. `serve` has already refused to start on
/// invalid ones, so an error here means the files changed since.
#[derive(Default)]
pub(super) struct Classes(OnceLock<Result<Arc<Catalog>, String>>);

impl Classes {
    pub(super) fn get(&self, app: &App) -> Result<Arc<Catalog>, ActionError> {
        self.0
            .get_or_init(|| {
                Catalog::load(&app.config.services)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(ActionError::Failed)
    }
}

pub(super) fn class<'a>(catalog: &'a Catalog, name: &str) -> Result<&'a ServiceClass, ActionError> {
    catalog.get(name).ok_or_else(|| {
        ActionError::Failed(format!(
            "there is no service class '{name}'; the classes are {}",
            catalog.names().join(", ")
        ))
    })
}

/// The environment's facts with the class's (`cost`, `class`): what [`SERVICE_FACTS`]
/// policies see for provision and bind alike.
pub(super) async fn service_facts(
    app: &App,
    env: &str,
    who: &Principal,
    class: &ServiceClass,
) -> Result<BTreeMap<String, String>, ActionError> {
    let mut facts = env_facts(app, env, who).await?;
    facts.insert("cost".into(), class.cost.to_string());
    facts.insert("class".into(), class.name.to_string());
    Ok(facts)
}

pub(super) fn arg_name(args: &Args, arg: &str) -> Result<Name, ActionError> {
    Ok(Args::require(args.name(arg), arg)?)
}

pub(super) fn template_error(class: &ServiceClass, what: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(format!(
        "class {} ({}): {what} {e}; the platform team has to fix the class",
        class.name, class.file
    ))
}

/// A provisioned service as the cluster records it: the primary object's labels.
pub(super) struct Found {
    pub(super) class: String,
    pub(super) params: BTreeMap<String, String>,
    pub(super) object: Value,
}

impl Found {
    pub(super) fn ready(&self, class: &ServiceClass) -> bool {
        class.ready.holds(&self.object)
    }
}

/// The cluster `env` lives in (with several clusters, see `cluster::clusters`); the default
/// cluster for questions about every environment.
pub(super) async fn cluster_of(app: &App, env: Option<&str>) -> Result<Arc<Cluster>, ActionError> {
    match env {
        Some(env) => Ok(app.clusters.locate(env).await?),
        None => Ok(app.clusters.default_cluster()),
    }
}

/// The services in `env`'s cluster and namespace, optionally only the one named.
pub(super) async fn find(
    app: &App,
    catalog: &Catalog,
    env: &str,
    name: Option<&str>,
) -> Result<Vec<Found>, ActionError> {
    let cluster = cluster_of(app, Some(env)).await?;
    Ok(find_in(&cluster, catalog, Some(env), name).await?)
}

/// The services `cluster` holds in `ns` (all environments with None), optionally only the
/// one named.
pub(super) async fn find_in(
    cluster: &Cluster,
    catalog: &Catalog,
    ns: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<Found>, ClusterError> {
    let mut out = Vec::new();
    for class in catalog.classes() {
        let Some((api_version, kind)) = class.kinds.first() else {
            continue;
        };
        let ar = match cluster
            .api_resource(api_version, kind, class.plural(api_version, kind))
            .await
        {
            Ok(ar) => ar,
            Err(ClusterError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let mut labels = format!("{CLASS}={}", class.name);
        match name {
            Some(n) => labels.push_str(&format!(",{SERVICE}={n}")),
            None => labels.push_str(&format!(",{SERVICE}")),
        }
        // A class whose provider is not installed has no services; the others still list.
        let objects = match cluster.list_custom(&ar, ns, &labels).await {
            Ok(o) => o,
            Err(ClusterError::NotFound(_)) => {
                tracing::debug!(class = %class.name, kind, "the cluster does not serve this class's kind");
                continue;
            }
            Err(e) => return Err(e),
        };
        for object in objects {
            let params = object["metadata"]["annotations"][PARAMS]
                .as_str()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default();
            out.push(Found {
                class: class.name.to_string(),
                params,
                object,
            });
        }
    }
    Ok(out)
}

pub(super) async fn find_one(app: &App, catalog: &Catalog, env: &str, name: &str) -> Result<Found, ActionError> {
    find(app, catalog, env, Some(name))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ActionError::Failed(format!(
                "there is no service {name} in {env}; `service list {env}` shows what there is"
            ))
        })
}

/// Deployments in `env` bound to `service`.
async fn dependents(app: &App, env: &str, service: &str) -> Result<Vec<String>, ActionError> {
    let list = cluster_of(app, Some(env))
        .await?
        .deployments(Some(env), &format!("{BOUND_PREFIX}{service}"))
        .await?;
    Ok(list.into_iter().filter_map(|d| d.metadata.name).collect())
}

pub(super) fn context(class: &ServiceClass, name: &str, env: &str, params: Params, app: Option<&str>) -> Context {
    Context {
        name: name.to_owned(),
        env: env.to_owned(),
        class: class.name.to_string(),
        params,
        app: app.map(str::to_owned),
    }
}

struct Delete(Arc<Classes>);

#[async_trait]
impl Action for Delete {
    fn name(&self) -> &'static str {
        "service.delete"
    }
    /// Deleting what is already gone is a no-op.
    fn rerunnable(&self) -> bool {
        true
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    fn fact_names(&self) -> &'static [&'static str] {
        SERVICE_FACTS
    }
    /// Names the apps bound to the service and refuses, before anything is stored, unless
    /// the command says `force`.
    async fn facts(&self, app: &App, args: &Args, who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
        let (name, env) = (arg_name(args, "name")?, arg_name(args, "env")?);
        let mut facts = env_facts(app, env.as_str(), who).await?;
        let catalog = self.0.get(app)?;
        let found = find_one(app, &catalog, env.as_str(), name.as_str()).await?;
        let bound = dependents(app, env.as_str(), name.as_str()).await?;
        if !bound.is_empty() && args.get("force").is_none() {
            return Err(ActionError::Failed(format!(
                "{name} is bound to {} in {env}; deleting it would break them. Unbind or delete those apps first, or add `force` (ops approve it)",
                bound.join(", ")
            )));
        }
        let class = class(&catalog, &found.class)?;
        facts.insert("cost".into(), class.cost.to_string());
        facts.insert("class".into(), class.name.to_string());
        Ok(facts)
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let catalog = self.0.get(&ctx.app)?;
        let args = &ctx.request.args;
        let (name, env) = (arg_name(args, "name")?, arg_name(args, "env")?);
        let located = cluster_of(&ctx.app, Some(env.as_str())).await?;
        let cluster = located.as_ref();
        let found = match find_one(&ctx.app, &catalog, env.as_str(), name.as_str()).await {
            Ok(f) => f,
            // Already gone, e.g. a re-run after a crash.
            Err(_) => return Ok(format!("{name} is not in {env} (already deleted)")),
        };
        let class = class(&catalog, &found.class)?;
        let bound = dependents(&ctx.app, env.as_str(), name.as_str()).await?;
        if !bound.is_empty() {
            if args.get("force").is_none() {
                return Err(ActionError::Failed(format!(
                    "{name} is bound to {} in {env}; unbind them first or add `force`",
                    bound.join(", ")
                )));
            }
            ctx.progress(format!(
                "{name} is bound to {}: they keep its variables, which stop working once it is gone",
                bound.join(", ")
            ))
            .await?;
        }
        // Found by their labels rather than by rendering again, so a class edited since still
        // deletes what was made. The primary object (whose deletion deprovisions) goes last.
        let labels = format!("{SERVICE}={name},{CLASS}={}", class.name);
        for (api_version, kind) in class.kinds.iter().rev() {
            let ar = cluster
                .api_resource(api_version, kind, class.plural(api_version, kind))
                .await?;
            for obj in cluster.list_custom(&ar, Some(env.as_str()), &labels).await? {
                let object_name = obj["metadata"]["name"].as_str().unwrap_or_default();
                if cluster.delete_custom(&ar, env.as_str(), object_name).await? {
                    ctx.progress(format!("{kind} {object_name} deleted")).await?;
                }
            }
        }
        Ok(format!(
            "{name} ({}) deleted from {env}; the provider removes the cloud resource",
            class.name
        ))
    }
}

struct ClassList(Arc<Classes>);

#[async_trait]
impl Action for ClassList {
    fn name(&self) -> &'static str {
        "service.classes"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let catalog = self.0.get(&ctx.app)?;
        let mut text = String::new();
        for c in catalog.classes() {
            let cost = if c.cost { ", cost-bearing" } else { "" };
            text.push_str(&format!("{}: {}{cost}\n", c.name, c.description));
            for line in c.describe_params() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        ctx.output(text.trim_end().to_owned(), crate::events::Output::default())
            .await?;
        Ok(format!("{} service class(es)", catalog.len()))
    }
}
