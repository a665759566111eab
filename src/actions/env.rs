//! Environments on demand: create, list, extend, delete, and the reaper that deletes them
//! when they expire.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;

use super::{Action, ActionContext, ActionError, ActionRegistry, with_progress};
use crate::{
    app::App,
    cluster::{ClusterError, EXPIRES_AT, WARNED, env::EnvInfo},
    commands::Args,
    domain::{HumanDuration, Name, RequestId},
    identity::Principal,
};

pub fn register(registry: &mut ActionRegistry) {
    registry.register(Arc::new(super::env_create::Create));
    registry.register(Arc::new(List));
    registry.register(Arc::new(Extend));
    registry.register(Arc::new(Delete));
}

impl From<ClusterError> for ActionError {
    fn from(e: ClusterError) -> Self {
        ActionError::Failed(e.to_string())
    }
}

pub(super) fn name_arg(args: &Args) -> Result<Name, ActionError> {
    Ok(Args::require(args.name("name"), "name")?)
}

/// `1h 20m` style distance from now, for people.
pub fn until(t: jiff::Timestamp) -> String {
    let secs = t.as_second() - jiff::Timestamp::now().as_second();
    if secs <= 0 {
        return "expired".into();
    }
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("in {}m", m.max(1)),
        (0, h) => format!("in {h}h {m}m"),
        (d, h) => format!("in {d}d {h}h"),
    }
}

/// Facts about an existing environment for approval rules: its tier, its owner, and
/// whether it is the requester's (`mine`). A missing environment rejects the command.
/// What `env_facts` returns, for approval rules to read.
pub const ENV_FACTS: &[&str] = &["tier", "owner", "mine"];

pub async fn env_facts(app: &App, env: &str, who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
    let e = app.clusters.locate(env).await?.managed_environment(env).await?;
    let mine = if e.owner == who.user { "yes" } else { "no" };
    Ok(BTreeMap::from([
        ("tier".into(), e.tier),
        ("owner".into(), e.owner),
        ("mine".into(), mine.into()),
    ]))
}

pub(super) fn fmt_quantities(q: &crate::configuration::Quantities) -> String {
    q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

struct List;

#[async_trait]
impl Action for List {
    fn name(&self) -> &'static str {
        "env.list"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let scope = ctx.request.args.get("scope").unwrap_or("mine");
        let me = &ctx.principal;
        let dir = &ctx.app.directory;
        let several = ctx.app.clusters.several();
        let found = super::env_clusters::all_environments(&ctx.app).await?;
        let silent = found.silent_lines();
        let silent_names: Vec<String> = found.silent.iter().map(|(c, _)| c.clone()).collect();
        let mut envs: Vec<(String, EnvInfo)> = found
            .items
            .into_iter()
            .flat_map(|(c, envs)| envs.into_iter().map(move |e| (c.clone(), e)))
            .filter(|(_, e)| match scope {
                "all" => true,
                "team" => dir
                    .user(&e.owner)
                    .is_some_and(|o| o.groups.iter().any(|g| me.groups.contains(g))),
                _ => e.owner == me.user,
            })
            .collect();
        envs.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        // A cluster that did not answer is named; what the others said still counts.
        let partial = if silent.is_empty() {
            String::new()
        } else {
            format!(" (partial: {})", silent.join("; "))
        };
        if envs.is_empty() {
            let mut text = format!("No environments ({scope}). Create one with `env create <name>`.");
            for line in &silent {
                text.push_str(&format!("\n{line}"));
            }
            ctx.output(&text, crate::events::Output::default()).await?;
            return Ok(format!("0 environments{partial}"));
        }
        let mut text = format!(
            "{:<24} {:<6} {:<10} {:<8} {}\n",
            "NAME", "TIER", "OWNER", "AGE", "EXPIRES"
        );
        if several {
            text = format!("{:<12} {text}", "CLUSTER");
        }
        for (cluster, e) in &envs {
            let age = e
                .created
                .map(|c| {
                    HumanDuration::from_secs((jiff::Timestamp::now().as_second() - c.as_second()).max(1) as u64)
                        .to_string()
                })
                .unwrap_or_default();
            let expires = match (e.terminating, e.expires_at) {
                (true, _) => "deleting".to_owned(),
                (false, Some(t)) => until(t),
                (false, None) => "never".to_owned(),
            };
            if several {
                text.push_str(&format!("{cluster:<12} "));
            }
            text.push_str(&format!(
                "{:<24} {:<6} {:<10} {:<8} {}\n",
                e.name, e.tier, e.owner, age, expires
            ));
        }
        for line in &silent {
            text.push_str(&format!("{line}\n"));
        }
        let names: Vec<&str> = envs.iter().map(|(_, e)| e.name.as_str()).collect();
        ctx.output(
            text.trim_end(),
            crate::events::Output::fields(
                serde_json::json!({ "environments": names, "silent_clusters": silent_names }),
            ),
        )
        .await?;
        Ok(format!("{} environment(s){partial}", envs.len()))
    }
}

struct Extend;

#[async_trait]
impl Action for Extend {
    fn name(&self) -> &'static str {
        "env.extend"
    }
    fn rerunnable(&self) -> bool {
        true
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("name")
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let name = name_arg(&ctx.request.args)?;
        let ttl = Args::require(ctx.request.args.duration("ttl"), "ttl")?;
        let cluster = ctx.app.clusters.locate(name.as_str()).await?;
        let env = cluster.managed_environment(name.as_str()).await?;
        let max = ctx
            .app
            .config
            .tiers
            .get(env.tier.as_str())
            .map(|t| t.max_ttl)
            .ok_or_else(|| ActionError::Failed(format!("environment {name} has unknown tier '{}'", env.tier)))?;
        if ttl > max {
            return Err(ActionError::Failed(format!(
                "{ttl} is longer than the {} tier allows ({max})",
                env.tier
            )));
        }
        let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(ttl.as_duration().as_secs() as i64);
        // Clearing the warning mark lets the reaper warn again before the new expiry.
        let annotations = serde_json::json!({ EXPIRES_AT: expires.to_string(), WARNED: null });
        cluster.annotate_namespace(name.as_str(), annotations).await?;
        Ok(format!(
            "environment {name} now expires at {} ({})",
            expires.strftime("%Y-%m-%d %H:%M UTC"),
            until(expires)
        ))
    }
}

struct Delete;

#[async_trait]
impl Action for Delete {
    fn name(&self) -> &'static str {
        "env.delete"
    }
    fn rerunnable(&self) -> bool {
        true
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("name")
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let name = name_arg(&ctx.request.args)?;
        let cluster = ctx.app.clusters.locate(name.as_str()).await?;
        match cluster.managed_environment(name.as_str()).await {
            Ok(_) => {}
            // Already gone (a re-run after a restart, say): the goal is reached.
            Err(ClusterError::NoEnvironment(_)) => return Ok(format!("environment {name} is gone")),
            Err(e) => return Err(e.into()),
        }
        let deadline = cluster.config().rollout_deadline.as_duration();
        let cluster = &cluster;
        let result = with_progress(ctx, |progress| {
            cluster.delete_namespace(name.as_str(), deadline, progress)
        })
        .await;
        result?;
        ctx.app.clusters.forget(name.as_str());
        Ok(format!("environment {name} is deleted"))
    }
}

/// Deletes environments whose time is up and warns owners shortly before. Runs in the
/// worker; reports in the thread of the request that created each environment.
pub async fn reap(app: &Arc<App>) -> Result<(usize, usize), ClusterError> {
    if !app.clusters.several() {
        return reap_in(app, &app.cluster).await;
    }
    // Each cluster on its own: one that does not answer keeps none of the others waiting.
    let (mut deleted, mut warned) = (0, 0);
    for name in app.clusters.names() {
        let cluster = app.clusters.get(name)?;
        match reap_in(app, &cluster).await {
            Ok((d, w)) => (deleted, warned) = (deleted + d, warned + w),
            Err(e) => tracing::warn!(cluster = name, error = %e, "reaper pass failed in a cluster"),
        }
    }
    Ok((deleted, warned))
}

async fn reap_in(app: &Arc<App>, cluster: &crate::cluster::Cluster) -> Result<(usize, usize), ClusterError> {
    let now = jiff::Timestamp::now();
    let warning = jiff::SignedDuration::from_secs(cluster.config().expiry_warning.as_duration().as_secs() as i64);
    let (mut deleted, mut warned) = (0, 0);
    for env in cluster.environments().await? {
        let Some(expires) = env.expires_at.filter(|_| !env.terminating) else {
            continue;
        };
        let message = if expires <= now {
            match cluster.start_namespace_delete(&env.name).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(env = %env.name, error = %e, "reaper could not delete an expired environment");
                    continue;
                }
            }
            deleted += 1;
            format!(
                "environment {} expired at {} and is being deleted",
                env.name,
                expires.strftime("%Y-%m-%d %H:%M UTC")
            )
        } else if expires - warning <= now && !env.warned {
            cluster
                .annotate_namespace(&env.name, serde_json::json!({ WARNED: now.to_string() }))
                .await?;
            warned += 1;
            format!(
                "environment {} expires at {} ({}); `env extend {} 8h` keeps it longer",
                env.name,
                expires.strftime("%Y-%m-%d %H:%M UTC"),
                until(expires),
                env.name
            )
        } else {
            continue;
        };
        tracing::info!(env = %env.name, "{message}");
        let Some(id) = env.request.as_deref().and_then(RequestId::parse) else {
            continue;
        };
        if let Ok(Some(request)) = app.store.get(&id).await
            && let Err(e) = app
                .emit(
                    &request,
                    &message,
                    crate::events::EventData::Progress(Default::default()),
                )
                .await
        {
            tracing::warn!(error = %e, "could not record a reaper message");
        }
    }
    Ok((deleted, warned))
}
