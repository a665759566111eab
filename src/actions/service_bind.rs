//! `service bind NAME to APP in ENV`: wires a ready service into an app. The connection
//! Secret's keys become the container's environment variables (by reference: deckhand never
//! reads the Secret), the class's cloud identity a ServiceAccount, and the rollout that
//! follows is watched like a deploy's. The patch is applied under a field manager of the
//! binding's own, so it owns only what it set and conflicts with what others set.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{EnvFromSource, EnvVar, EnvVarSource, SecretEnvSource, SecretKeySelector, ServiceAccount},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::api::ApiResource;
use serde_json::json;

use super::{
    Action, ActionContext, ActionError,
    app::watch,
    service::{Classes, SERVICE_FACTS, arg_name, class, cluster_of, context, find_one, service_facts, template_error},
};
use crate::{
    app::App,
    cluster::{MANAGED_BY, MANAGER, env::manifest},
    commands::Args,
    identity::Principal,
    services::{BOUND_PREFIX, Catalog, Context, Params, ServiceClass, bind_manager},
};

pub(super) struct Bind(pub(super) Arc<Classes>);

/// The environment variables a binding gives the app's container.
fn env_vars(
    class: &ServiceClass,
    catalog: &Catalog,
    ctx: &Context,
    secret: Option<&str>,
) -> Result<Vec<EnvVar>, ActionError> {
    let mut vars = Vec::new();
    if let Some(secret) = secret {
        for (var, key) in &class.binding.env {
            vars.push(EnvVar {
                name: var.clone(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret.to_owned(),
                        key: key.clone(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                value: None,
            });
        }
    }
    for (var, t) in &class.binding.values {
        let value = catalog
            .renderer
            .value(t, ctx)
            .map_err(|e| template_error(class, &format!("bind.values.{var}"), e))?;
        vars.push(EnvVar {
            name: var.clone(),
            value: Some(value),
            value_from: None,
        });
    }
    Ok(vars)
}

#[async_trait]
impl Action for Bind {
    fn name(&self) -> &'static str {
        "service.bind"
    }
    /// Applying the same binding converges, and the rollout watch starts afresh.
    fn rerunnable(&self) -> bool {
        true
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    fn fact_names(&self) -> &'static [&'static str] {
        SERVICE_FACTS
    }
    async fn facts(&self, app: &App, args: &Args, who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
        let env = arg_name(args, "env")?;
        let catalog = self.0.get(app)?;
        let found = find_one(app, &catalog, env.as_str(), arg_name(args, "name")?.as_str()).await?;
        service_facts(app, env.as_str(), who, class(&catalog, &found.class)?).await
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let catalog = self.0.get(&ctx.app)?;
        let args = &ctx.request.args;
        let (name, env, app) = (arg_name(args, "name")?, arg_name(args, "env")?, arg_name(args, "app")?);
        let located = cluster_of(&ctx.app, Some(env.as_str())).await?;
        let cluster = located.as_ref();
        let found = find_one(&ctx.app, &catalog, env.as_str(), name.as_str()).await?;
        let class = class(&catalog, &found.class)?;
        if !found.ready(class) {
            return Err(ActionError::Failed(format!(
                "{name} is not ready yet ({}); bind it once `service list {env}` shows it ready",
                class.ready.describe()
            )));
        }
        let params = Params::from_map(&class.params, &found.params).map_err(|e| {
            ActionError::Failed(format!(
                "{name} was provisioned with parameters class {} no longer accepts ({e}); provision it again",
                class.name
            ))
        })?;
        let deployment = match cluster.deployment(env.as_str(), app.as_str()).await {
            Ok(d) => d,
            Err(crate::cluster::ClusterError::NotFound(_)) => {
                return Err(ActionError::Failed(format!(
                    "there is no app {app} in {env}; deploy it first (`deploy <image> to {env} as {app}`)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let container = deployment
            .spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone())
            .ok_or_else(|| ActionError::Failed(format!("the Deployment {app} in {env} has no container")))?;
        let tctx = context(class, name.as_str(), env.as_str(), params, Some(app.as_str()));
        let secret = class
            .secret_name(&catalog.renderer, &tctx)
            .map_err(|e| template_error(class, "connection.secret", e))?;
        let vars = env_vars(class, &catalog, &tctx, secret.as_deref())?;
        let manager = bind_manager(name.as_str());

        let mut annotations = BTreeMap::new();
        for (key, t) in &class.identity {
            let v = catalog
                .renderer
                .value(t, &tctx)
                .map_err(|e| template_error(class, &format!("identity.annotations.{key}"), e))?;
            annotations.insert(key.clone(), v);
        }
        let identity = !annotations.is_empty();
        if identity {
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(app.as_str().to_owned()),
                    namespace: Some(env.as_str().to_owned()),
                    labels: Some(BTreeMap::from([(MANAGED_BY.to_owned(), MANAGER.to_owned())])),
                    annotations: Some(annotations.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            cluster
                .apply_as(
                    &ApiResource::erase::<ServiceAccount>(&()),
                    &manifest(&sa)?,
                    &manager,
                    true,
                )
                .await?;
            let keys: Vec<&String> = annotations.keys().collect();
            ctx.progress(format!(
                "ServiceAccount {app} applied with {}",
                keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .await?;
        }
        let mut c = json!({ "name": container, "env": vars });
        if class.binding.env_from
            && let Some(s) = &secret
        {
            let from = EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: s.clone(),
                    optional: None,
                }),
                ..Default::default()
            };
            c["envFrom"] = json!([from]);
        }
        let mut pod_spec = json!({ "containers": [c] });
        if identity {
            pod_spec["serviceAccountName"] = json!(app.as_str());
        }
        // Deliberately partial, so it stays JSON around typed parts (the variables): this
        // binding's field manager applies only its variables, label and service account.
        // A typed Deployment would also carry the required selector and template fields and
        // the binding would co-own (and on unbind remove) what `deploy` applied.
        let patch = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": app.as_str(),
                "namespace": env.as_str(),
                "labels": { format!("{BOUND_PREFIX}{name}"): class.name.as_str() },
            },
            "spec": { "template": { "spec": pod_spec } },
        });
        // Not forced: a variable another binding (or a person) already sets is a conflict
        // to report, not to take over.
        let applied = cluster
            .apply_as(&ApiResource::erase::<Deployment>(&()), &patch, &manager, false)
            .await
            .map_err(|e| match e {
                crate::cluster::ClusterError::Conflict(m) => ActionError::Failed(format!(
                    "{app} already sets some of these variables another way ({m}); remove them or bind under other names"
                )),
                other => other.into(),
            })?;
        let generation = applied["metadata"]["generation"].as_i64().unwrap_or(0);
        tracing::info!(service = %name, app = %app, env = %env, "service bound; watching the rollout");
        let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        let from_secret = match (&secret, class.binding.env_from) {
            (Some(s), true) => format!(" and every key of Secret {s}"),
            _ => String::new(),
        };
        ctx.progress(format!(
            "Deployment {app}: {}{from_secret}{}; watching the rollout",
            names.join(", "),
            if identity {
                format!(", serviceAccountName {app}")
            } else {
                String::new()
            }
        ))
        .await?;
        let line = watch(ctx, &env, &app, generation).await?;
        Ok(format!("{name} ({}) is bound to {app} in {env} ({line})", class.name))
    }
}
