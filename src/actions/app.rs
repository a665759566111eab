//! Apps in environments: deploy with a watched rollout, status, logs, scale, restart,
//! rollback.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;

use super::{Action, ActionContext, ActionError, ActionRegistry, env::env_facts, with_progress};
use crate::{
    app::App,
    cluster::{
        objects::{self, AppPlan},
        rollout::{RolloutError, Watch},
    },
    commands::Args,
    domain::{ImageRef, Name},
    identity::Principal,
};

pub fn register(registry: &mut ActionRegistry) {
    registry.register(Arc::new(Deploy));
    registry.register(Arc::new(Status));
    registry.register(Arc::new(Logs));
    registry.register(Arc::new(Change::Scale));
    registry.register(Arc::new(Change::Restart));
    registry.register(Arc::new(Change::Rollback));
}

impl From<RolloutError> for ActionError {
    fn from(e: RolloutError) -> Self {
        match e {
            RolloutError::Cancelled => ActionError::Cancelled,
            other => ActionError::Failed(other.to_string()),
        }
    }
}

fn env_arg(args: &Args) -> Result<Name, ActionError> {
    Ok(Args::require(args.name("env"), "env")?)
}

fn app_arg(args: &Args) -> Result<Name, ActionError> {
    Ok(Args::require(args.name("app"), "app")?)
}

pub(super) async fn watch(ctx: &ActionContext, env: &Name, app: &Name, generation: i64) -> Result<String, ActionError> {
    let cluster = ctx.app.clusters.locate(env.as_str()).await?;
    let k = cluster.config();
    let w = Watch {
        namespace: env.as_str(),
        app: app.as_str(),
        generation,
        deadline: k.rollout_deadline.as_duration(),
        stall_after: k.stall_after.as_duration(),
    };
    let cluster = &cluster;
    Ok(with_progress(ctx, |progress| cluster.watch_rollout(w, &ctx.cancel, progress)).await?)
}

/// The image checks that do not need the cluster beyond the environment's tier.
fn check_image(app: &App, image: &ImageRef, tier: &str) -> Result<(), ActionError> {
    let allowed = &app.cluster.config().allowed_registries;
    if !allowed.iter().any(|r| r == image.registry()) {
        return Err(ActionError::Failed(format!(
            "images from {} are not allowed here; use one of: {}",
            image.registry(),
            allowed.join(", ")
        )));
    }
    let mutable_ok = app.config.tiers.get(tier).is_none_or(|t| t.mutable_tags);
    if !mutable_ok && image.is_mutable() {
        return Err(ActionError::Failed(format!(
            "{tier} needs an image that cannot change under it: give a version tag or an @sha256 digest, not '{}'",
            image.tag().unwrap_or("latest (no tag)")
        )));
    }
    Ok(())
}

struct Deploy;

impl Deploy {
    fn plan(ctx: &ActionContext) -> Result<(AppPlan, ImageRef), ActionError> {
        let args = &ctx.request.args;
        let image = Args::require(args.image("image"), "image")?;
        let app = match args.name("app")? {
            Some(a) => a,
            None => objects::app_name_from_image(image.repository())
                .ok_or_else(|| ActionError::Failed("cannot name the app after this image; add `as <name>`".into()))?,
        };
        let replicas = args.int("replicas")?.map_or(ctx.app.config.apps.replicas, |r| r as i32);
        let port = args.int("port")?.map(|p| p as i32);
        let plan = AppPlan {
            app,
            env: env_arg(args)?,
            image: args.get("image").unwrap_or_default().to_owned(),
            replicas,
            port,
            request: ctx.request.id.clone(),
            owner: ctx.principal.user.clone(),
        };
        Ok((plan, image))
    }
}

#[async_trait]
impl Action for Deploy {
    fn name(&self) -> &'static str {
        "app.deploy"
    }
    fn rerunnable(&self) -> bool {
        true
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    /// Refuses a disallowed registry or a mutable tag on a strict tier before anything is
    /// stored or approved.
    async fn facts(&self, app: &App, args: &Args, who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
        let facts = env_facts(app, env_arg(args)?.as_str(), who).await?;
        let image = Args::require(args.image("image"), "image")?;
        check_image(app, &image, facts.get("tier").map_or("", String::as_str))?;
        Ok(facts)
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let (plan, image) = Self::plan(ctx)?;
        let cluster = ctx.app.clusters.locate(plan.env.as_str()).await?;
        let env = cluster.managed_environment(plan.env.as_str()).await?;
        if env.terminating {
            return Err(ActionError::Failed(format!(
                "environment {} is being deleted",
                plan.env
            )));
        }
        check_image(&ctx.app, &image, &env.tier)?;
        let applied = cluster
            .apply_object(&objects::deployment(&plan, &ctx.app.config.apps))
            .await?;
        let generation = applied.metadata.generation.unwrap_or(0);
        ctx.progress(format!(
            "Deployment {} applied: {} × {}",
            plan.app, plan.replicas, plan.image
        ))
        .await?;
        if let Some(svc) = objects::service(&plan) {
            cluster.apply_object(&svc).await?;
            ctx.progress(format!(
                "Service {} applied on port {}",
                plan.app,
                plan.port.unwrap_or_default()
            ))
            .await?;
        }
        let line = watch(ctx, &plan.env, &plan.app, generation).await?;
        let address = plan
            .port
            .map(|p| format!("; reachable in the cluster at {}.{}.svc:{p}", plan.app, plan.env));
        Ok(format!(
            "{} is available in {} ({line}){}",
            plan.app,
            plan.env,
            address.unwrap_or_default()
        ))
    }
}

struct Status;

#[async_trait]
impl Action for Status {
    fn name(&self) -> &'static str {
        "app.status"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    /// Reading is refused too in a namespace deckhand did not create.
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let (env, app) = (env_arg(&ctx.request.args)?, app_arg(&ctx.request.args)?);
        let cluster = ctx.app.clusters.locate(env.as_str()).await?;
        let text = cluster.app_status(env.as_str(), app.as_str()).await?;
        let first = text.lines().next().unwrap_or_default().to_owned();
        ctx.output(text, crate::events::Output::default()).await?;
        Ok(first)
    }
}

struct Logs;

#[async_trait]
impl Action for Logs {
    fn name(&self) -> &'static str {
        "app.logs"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    /// Reading is refused too in a namespace deckhand did not create.
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let args = &ctx.request.args;
        let (env, app) = (env_arg(args)?, app_arg(args)?);
        let cluster = ctx.app.clusters.locate(env.as_str()).await?;
        let k = cluster.config();
        let since = args.duration("since")?.map(|d| d.as_duration().as_secs() as i64);
        let lines = args.int("lines")?.unwrap_or(k.log_lines);
        let text = cluster
            .app_logs(env.as_str(), app.as_str(), since, lines, k.log_bytes)
            .await?;
        ctx.output(text, crate::events::Output::default()).await?;
        Ok(format!("logs of {app} in {env}"))
    }
}

enum Change {
    Scale,
    Restart,
    Rollback,
}

#[async_trait]
impl Action for Change {
    fn name(&self) -> &'static str {
        match self {
            Change::Scale => "app.scale",
            Change::Restart => "app.restart",
            Change::Rollback => "app.rollback",
        }
    }
    /// Scaling to a number converges; a second restart or rollback would do it again.
    fn rerunnable(&self) -> bool {
        matches!(self, Change::Scale)
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let args = &ctx.request.args;
        let (env, app) = (env_arg(args)?, app_arg(args)?);
        let cluster = ctx.app.clusters.locate(env.as_str()).await?;
        let (generation, what) = match self {
            Change::Scale => {
                let n = Args::require(args.int("replicas"), "replicas")? as i32;
                (
                    cluster.scale(env.as_str(), app.as_str(), n).await?,
                    format!("scaled to {n}"),
                )
            }
            Change::Restart => (
                cluster.restart(env.as_str(), app.as_str()).await?,
                "restarted".to_owned(),
            ),
            Change::Rollback => {
                let (g, revision) = cluster.rollback(env.as_str(), app.as_str()).await?;
                (g, format!("rolled back to revision {revision}"))
            }
        };
        ctx.progress(format!("{app} in {env}: {what}; watching the rollout"))
            .await?;
        let line = watch(ctx, &env, &app, generation).await?;
        Ok(format!("{app} in {env} {what} ({line})"))
    }
}
