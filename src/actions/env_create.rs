//! env.create: a namespace with the tier's defaults baked in (quota, limits, a network
//! policy that admits only the namespace itself, the team's RoleBinding), each applied
//! server-side so that creating it again converges; an existing environment is taken
//! only when it is deckhand's, its owner's and of the same tier.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::{
    core::v1::{LimitRange, Namespace, ResourceQuota},
    networking::v1::NetworkPolicy,
    rbac::v1::RoleBinding,
};
use kube::api::ApiResource;

use super::{
    Action, ActionContext, ActionError,
    env::{fmt_quantities, name_arg, until},
};
use crate::{
    app::App,
    cluster::{
        Cluster,
        env::{EnvInfo, manifest},
        objects::{self, EnvPlan},
    },
    commands::Args,
    configuration::TierConfig,
    domain::RequestId,
    identity::Principal,
};

pub(super) struct Create;

#[async_trait]
impl Action for Create {
    fn name(&self) -> &'static str {
        "env.create"
    }
    /// Server-side apply of the same objects converges to the same state.
    fn rerunnable(&self) -> bool {
        true
    }
    /// Reserved and foreign namespace names are refused before anything is stored.
    async fn facts(&self, app: &App, args: &Args, _who: &Principal) -> Result<BTreeMap<String, String>, ActionError> {
        super::env_names::check_new(app, name_arg(args)?.as_str()).await?;
        Ok(BTreeMap::new())
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let app = &ctx.app;
        let args = &ctx.request.args;
        let name = name_arg(args)?;
        if let Some(why) = super::env_names::reserved(name.as_str(), &app.config) {
            return Err(ActionError::Failed(why));
        }
        let tier_name = args.get("tier").unwrap_or("dev").to_owned();
        let choice = args.get(crate::commands::router::TIER_CLUSTER);
        let tier = app
            .config
            .tiers
            .get(tier_name.as_str())
            .cloned()
            .ok_or_else(|| ActionError::Failed(format!("there is no tier '{tier_name}' in the configuration")))?;
        let ttl = args.duration("ttl")?.unwrap_or(tier.default_ttl);
        if ttl > tier.max_ttl {
            return Err(ActionError::Failed(format!(
                "{ttl} is longer than the {tier_name} tier allows ({}); ask for less",
                tier.max_ttl
            )));
        }
        let mut plan = EnvPlan {
            name: name.clone(),
            tier: tier_name.clone(),
            owner: ctx.principal.user.clone(),
            groups: ctx.principal.groups.iter().cloned().collect(),
            request: ctx.request.id.clone(),
            expires_at: jiff::Timestamp::now() + jiff::SignedDuration::from_secs(ttl.as_duration().as_secs() as i64),
        };
        let (cluster_name, cluster) = app.clusters.for_tier(&tier_name, choice)?;
        if app.clusters.several() {
            super::env_clusters::name_is_free_elsewhere(app, name.as_str(), &cluster_name).await?;
        }
        let rerun = match cluster.environment(name.as_str()).await? {
            None => false,
            Some(e) => {
                take_existing(&e, &mut plan)?;
                true
            }
        };
        for (ar, body, line) in &steps(app, &cluster, &plan, &tier)? {
            if ctx.cancel.is_cancelled() {
                return Err(ActionError::Cancelled);
            }
            cluster.apply(ar, body).await?;
            ctx.progress(format!("✓ {line}")).await?;
        }
        app.clusters.remember(name.as_str(), &cluster_name);
        let tier_name = if app.clusters.several() {
            format!("{tier_name}, cluster {cluster_name}")
        } else {
            tier_name
        };
        let verb = if rerun {
            "already existed; its defaults are in place"
        } else {
            "is ready"
        };
        Ok(format!(
            "environment {name} ({tier_name}) {verb}; it expires at {} ({})",
            plan.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
            until(plan.expires_at)
        ))
    }
}

/// An environment of that name exists: creating it again is allowed only for deckhand's own,
/// of the same owner and tier, and not while it is being deleted. It re-applies the defaults
/// and changes nothing else: the expiry and the request that made it stay (`env extend`
/// moves the expiry).
fn take_existing(e: &EnvInfo, plan: &mut EnvPlan) -> Result<(), ActionError> {
    let name = &plan.name;
    let refused = if !e.managed {
        format!("namespace {name} already exists and was not created by deckhand; pick another name")
    } else if e.terminating {
        format!("environment {name} is being deleted; try again once it is gone")
    } else if e.owner != plan.owner {
        format!("environment {name} belongs to {}; pick another name", e.owner)
    } else if e.tier != plan.tier {
        format!(
            "environment {name} exists as a {} environment; delete it first to change its tier",
            e.tier
        )
    } else {
        if let Some(t) = e.expires_at {
            plan.expires_at = t;
        }
        if let Some(r) = e.request.as_deref().and_then(RequestId::parse) {
            plan.request = r;
        }
        return Ok(());
    };
    Err(ActionError::Failed(refused))
}

/// The objects of an environment in the order they are applied, each with its progress
/// line. Typed objects (cluster::objects), serialized once here because the steps are of
/// different kinds.
fn steps(
    app: &App,
    cluster: &Cluster,
    plan: &EnvPlan,
    tier: &TierConfig,
) -> Result<[(ApiResource, serde_json::Value, String); 5], ActionError> {
    let name = &plan.name;
    Ok([
        (
            ApiResource::erase::<Namespace>(&()),
            manifest(&objects::namespace(plan))?,
            format!("namespace {name}"),
        ),
        (
            ApiResource::erase::<ResourceQuota>(&()),
            manifest(&objects::resource_quota(plan, tier))?,
            format!("ResourceQuota {}: {}", objects::QUOTA, fmt_quantities(&tier.quota)),
        ),
        (
            ApiResource::erase::<LimitRange>(&()),
            manifest(&objects::limit_range(plan, tier))?,
            format!(
                "LimitRange {}: containers request {} and are limited to {} by default",
                objects::LIMITS,
                fmt_quantities(&tier.default_request),
                fmt_quantities(&tier.default_limit)
            ),
        ),
        (
            ApiResource::erase::<NetworkPolicy>(&()),
            manifest(&objects::network_policy(plan, tier, cluster.config()))?,
            format!(
                "NetworkPolicy {}: traffic only from this namespace{}",
                objects::NETWORK_POLICY,
                if tier.allow_from_namespaces.is_empty() {
                    String::new()
                } else {
                    format!(" and {}", tier.allow_from_namespaces.join(", "))
                }
            ),
        ),
        (
            ApiResource::erase::<RoleBinding>(&()),
            manifest(&objects::role_binding(
                plan,
                cluster.config(),
                app.config.team_role(&plan.tier),
            ))?,
            format!(
                "RoleBinding {}: {} for {}",
                objects::ROLE_BINDING,
                app.config.team_role(&plan.tier),
                if plan.groups.is_empty() {
                    plan.owner.clone()
                } else {
                    plan.groups.join(", ")
                }
            ),
        ),
    ])
}
