//! service.provision: a class's objects rendered, each checked against the schema the
//! cluster serves for its kind before any is applied (so a class that does not fit creates
//! nothing), applied with deckhand's labels, then waited on until the class's readiness
//! holds; the answer names the endpoint and the connection Secret's keys, never a value.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use kube::api::ApiResource;
use serde_json::{Value, json};

use super::{
    Action, ActionContext, ActionError,
    service::{Classes, SERVICE_FACTS, arg_name, class, cluster_of, context, find, service_facts, template_error},
    with_progress,
};
use crate::{
    app::App,
    cluster::{Cluster, ClusterError, MANAGED_BY, MANAGER, OWNER, REQUEST, custom::WaitError},
    commands::Args,
    domain::Name,
    identity::Principal,
    services::{CLASS, Catalog, Context, PARAMS, Params, SERVICE, ServiceClass, class::conditions_line},
};

pub(super) struct Provision(pub(super) Arc<Classes>);

#[async_trait]
impl Action for Provision {
    fn name(&self) -> &'static str {
        "service.provision"
    }
    /// Server-side apply of the same objects converges; waiting again is harmless.
    fn rerunnable(&self) -> bool {
        true
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    fn fact_names(&self) -> &'static [&'static str] {
        SERVICE_FACTS
    }
    /// Refuses an unknown class or a bad parameter before anything is stored or applied.
    async fn facts(&self, app: &App, args: &Args, who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
        let catalog = self.0.get(app)?;
        let class = class(&catalog, args.get("class").unwrap_or_default())?;
        params(class, args)?;
        service_facts(app, arg_name(args, "env")?.as_str(), who, class).await
    }
    fn approval_detail(&self, app: &App, args: &Args) -> Option<String> {
        let catalog = self.0.get(app).ok()?;
        let class = catalog.get(args.get("class")?)?;
        let params = params(class, args).ok()?;
        let cost = if class.cost { ", cost-bearing" } else { "" };
        Some(format!(
            "class {}{cost} ({}), {} in {}",
            class.name,
            params.sizes(&class.params),
            args.get("name")?,
            args.get("env")?
        ))
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let catalog = self.0.get(&ctx.app)?;
        let args = &ctx.request.args;
        let class = class(&catalog, args.get("class").unwrap_or_default())?;
        let params = params(class, args)?;
        let (name, env) = (arg_name(args, "name")?, arg_name(args, "env")?);
        let located = cluster_of(&ctx.app, Some(env.as_str())).await?;
        let to = Target {
            cluster: located.as_ref(),
            class,
            name: &name,
            env: &env,
        };
        to.check_free(ctx, &catalog).await?;
        let stored = serde_json::to_string(&params.as_strings()).unwrap_or_default();
        let sizes = params.sizes(&class.params);
        let tctx = context(class, name.as_str(), env.as_str(), params, None);
        let objects = class
            .render_objects(&catalog.renderer, &tctx)
            .map_err(|e| template_error(class, "template", e))?;
        let checked = to.check_all(ctx, objects, &stored).await?;
        let primary = to.apply_all(ctx, checked, &sizes).await?;
        let obj = to.wait_ready(ctx, &primary).await?;
        tracing::info!(service = %name, class = %class.name, env = %env, "service ready");
        ready_line(&catalog, &to, &tctx, &obj)
    }
}

/// Where a service goes: its class, name, environment and the environment's cluster.
struct Target<'a> {
    cluster: &'a Cluster,
    class: &'a ServiceClass,
    name: &'a Name,
    env: &'a Name,
}

/// A rendered object, resolved to the resource the cluster serves for its kind.
struct Checked {
    resource: ApiResource,
    object: Value,
    kind: String,
    api_version: String,
}

impl Target<'_> {
    /// Refuses a live environment that is being deleted, or a name taken by another class.
    async fn check_free(&self, ctx: &ActionContext, catalog: &Catalog) -> Result<(), ActionError> {
        let (name, env) = (self.name, self.env);
        let info = self.cluster.managed_environment(env.as_str()).await?;
        if info.terminating {
            return Err(ActionError::Failed(format!("environment {env} is being deleted")));
        }
        if let Some(other) = find(&ctx.app, catalog, env.as_str(), Some(name.as_str()))
            .await?
            .into_iter()
            .find(|f| f.class != self.class.name.as_str())
        {
            return Err(ActionError::Failed(format!(
                "{env} already has a service {name} of class {}; pick another name",
                other.class
            )));
        }
        Ok(())
    }

    /// Every object labelled, resolved and checked against the schema the cluster serves
    /// for its kind, before any is applied: a class that does not fit creates nothing.
    async fn check_all(
        &self,
        ctx: &ActionContext,
        objects: Vec<Value>,
        stored: &str,
    ) -> Result<Vec<Checked>, ActionError> {
        let mut checked = Vec::new();
        for obj in objects {
            checked.push(self.check(ctx, obj, stored).await?);
        }
        Ok(checked)
    }

    async fn check(&self, ctx: &ActionContext, mut obj: Value, stored: &str) -> Result<Checked, ActionError> {
        let (class, env) = (self.class, self.env.as_str());
        let (api_version, kind) = (
            obj["apiVersion"].as_str().unwrap_or_default().to_owned(),
            obj["kind"].as_str().unwrap_or_default().to_owned(),
        );
        match obj["metadata"]["namespace"].as_str() {
            Some(ns) if ns != env => {
                return Err(template_error(
                    class,
                    "template",
                    format!("puts {kind} into namespace {ns}; objects of a service live in its environment"),
                ));
            }
            _ => {}
        }
        let meta = &mut obj["metadata"];
        meta["namespace"] = json!(env);
        for (k, v) in [
            (MANAGED_BY, MANAGER),
            (SERVICE, self.name.as_str()),
            (CLASS, class.name.as_str()),
            (OWNER, ctx.principal.user.as_str()),
            (REQUEST, ctx.request.id.as_str()),
        ] {
            meta["labels"][k] = json!(v);
        }
        meta["annotations"][PARAMS] = json!(stored);
        let resource = match self
            .cluster
            .api_resource(&api_version, &kind, class.plural(&api_version, &kind))
            .await
        {
            Err(ClusterError::NotFound(_)) => return Err(not_installed(class, &kind, &api_version)),
            other => other?,
        };
        let schema = match self.cluster.served_schema(&resource).await {
            Err(ClusterError::NotFound(_)) => return Err(not_installed(class, &kind, &api_version)),
            other => other?,
        };
        if let Some(schema) = schema {
            check_schema(class, &kind, &api_version, &schema, &obj)?;
        }
        Ok(Checked {
            resource,
            object: obj,
            kind,
            api_version,
        })
    }

    /// Applies the checked objects in order; the first one's resource, which readiness is read from.
    async fn apply_all(
        &self,
        ctx: &ActionContext,
        checked: Vec<Checked>,
        sizes: &str,
    ) -> Result<ApiResource, ActionError> {
        let mut primary = None;
        for c in checked {
            match self.cluster.apply_as(&c.resource, &c.object, MANAGER, true).await {
                Err(ClusterError::NotFound(_)) => return Err(not_installed(self.class, &c.kind, &c.api_version)),
                other => other?,
            };
            ctx.progress(format!(
                "{} {} applied ({})",
                c.kind,
                self.name,
                if sizes.is_empty() { "defaults" } else { sizes }
            ))
            .await?;
            primary.get_or_insert(c.resource);
        }
        primary.ok_or_else(|| template_error(self.class, "template", "renders no objects"))
    }

    /// Waits (with progress lines) until the class's readiness holds for the primary object.
    async fn wait_ready(&self, ctx: &ActionContext, ar: &ApiResource) -> Result<Value, ActionError> {
        let (name, env, ready) = (self.name.as_str(), self.env.as_str(), &self.class.ready);
        ctx.progress(format!(
            "waiting for {} {name} to be ready ({})",
            ar.kind,
            ready.describe()
        ))
        .await?;
        let deadline = ctx.app.config.services.ready_deadline.as_duration();
        let waited = with_progress(ctx, |progress| {
            self.cluster.wait_for_object(
                ar,
                env,
                name,
                deadline,
                &ctx.cancel,
                |o| ready.holds(o),
                conditions_line,
                progress,
            )
        })
        .await;
        match waited {
            Ok(o) => Ok(o),
            Err(WaitError::Cancelled) => Err(ActionError::Cancelled),
            Err(e) => Err(ActionError::Failed(e.to_string())),
        }
    }
}

/// The answer: where the service is, and the Secret (name and keys) an app is wired with.
fn ready_line(catalog: &Catalog, to: &Target<'_>, tctx: &Context, obj: &Value) -> Result<String, ActionError> {
    let (class, name, env) = (to.class, to.name, to.env);
    let endpoint = class
        .endpoint(&catalog.renderer, obj)
        .map(|e| format!(" at {e}"))
        .unwrap_or_default();
    let secret = class
        .secret_name(&catalog.renderer, tctx)
        .map_err(|e| template_error(class, "connection.secret", e))?
        .map(|s| {
            format!(
                "; connection details in Secret {s} ({})",
                class.secret_keys().join(", ")
            )
        })
        .unwrap_or_default();
    Ok(format!(
        "{name} ({}) is ready in {env}{endpoint}{secret}; `service bind {name} to <app> in {env}` wires it into an app",
        class.name
    ))
}

/// The class's parameters from what was typed, or a refusal that names the parameter and
/// what it may be.
fn params(class: &ServiceClass, args: &Args) -> Result<Params, ActionError> {
    Params::parse(&class.params, args.get("params").unwrap_or_default())
        .map_err(|e| ActionError::Failed(format!("{e} (class {})", class.name)))
}

fn not_installed(class: &ServiceClass, kind: &str, api_version: &str) -> ActionError {
    ActionError::Failed(format!(
        "this cluster does not serve {kind} ({api_version}), which class {} needs: its provider (CRD) is not installed; ask the platform team",
        class.name
    ))
}

/// How many schema violations one message lists.
const VIOLATIONS_SHOWN: usize = 5;

/// The rendered object against the schema of its kind (cluster::schema), naming the class
/// and the fields that do not fit.
fn check_schema(
    class: &ServiceClass,
    kind: &str,
    api_version: &str,
    schema: &JSONSchemaProps,
    obj: &Value,
) -> Result<(), ActionError> {
    let violations = crate::cluster::schema::validate(schema, obj);
    if violations.is_empty() {
        return Ok(());
    }
    let mut list: Vec<String> = violations
        .iter()
        .take(VIOLATIONS_SHOWN)
        .map(ToString::to_string)
        .collect();
    if violations.len() > VIOLATIONS_SHOWN {
        list.push(format!("and {} more", violations.len() - VIOLATIONS_SHOWN));
    }
    Err(template_error(
        class,
        "template",
        format!(
            "renders a {kind} that does not fit the schema this cluster serves for {kind} ({api_version}): {}; nothing was created",
            list.join("; ")
        ),
    ))
}
