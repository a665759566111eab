//! proxy.open / proxy.close / proxy.list: time-limited links to a Service in an environment
//! (the forwarding itself is in `crate::proxy`).

use std::sync::Arc;

use async_trait::async_trait;

use super::{Action, ActionContext, ActionError, ActionRegistry};
use crate::{
    command_buttons::CommandButton,
    commands::Args,
    domain::{format_ms, now_ms},
    proxy::{Link, LinkState, Links, NewLink, ProxyError, hash_token, link_url, new_link_id, new_token},
};

pub fn register(registry: &mut ActionRegistry) {
    registry.register(Arc::new(Open));
    registry.register(Arc::new(Close));
    registry.register(Arc::new(List));
}

impl From<ProxyError> for ActionError {
    fn from(e: ProxyError) -> Self {
        ActionError::Failed(e.to_string())
    }
}

/// The links for reading counts: this process's counted hits are written first.
async fn counted_links(ctx: &ActionContext) -> Links {
    let links = Links::new(ctx.app.store.pool().clone());
    if let Err(e) = ctx.app.proxies.flush(&links).await {
        tracing::warn!(error = %e, "could not write proxy link hits before reading them");
    }
    links
}

struct Open;

impl Open {
    /// The Service's port to use: the one asked for if the Service has it, else its first.
    async fn port(ctx: &ActionContext, env: &str, app: &str, asked: Option<i64>) -> Result<i64, ActionError> {
        let what = format!("service {app} in {env}");
        let svc = ctx.app.clusters.locate(env).await?.service(env, app).await?;
        let ports: Vec<i64> = svc
            .spec
            .and_then(|s| s.ports)
            .unwrap_or_default()
            .iter()
            .map(|p| i64::from(p.port))
            .collect();
        match asked {
            Some(p) if ports.contains(&p) => Ok(p),
            Some(p) => Err(ActionError::Failed(format!(
                "{what} has no port {p}; it has {}",
                list_ports(&ports)
            ))),
            None => ports
                .first()
                .copied()
                .ok_or_else(|| ActionError::Failed(format!("{what} has no ports to proxy to"))),
        }
    }
}

fn list_ports(ports: &[i64]) -> String {
    if ports.is_empty() {
        return "none".into();
    }
    ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl Action for Open {
    fn name(&self) -> &'static str {
        "proxy.open"
    }
    /// Storing a row and answering with the link takes no time: the requester gets the link
    /// in the acknowledgement (unless the rule wants an approval first).
    fn inline(&self) -> bool {
        true
    }
    fn target_env(&self) -> Option<&'static str> {
        Some("env")
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let args = &ctx.request.args;
        let env = Args::require(args.name("env"), "env")?;
        let app = Args::require(args.name("app"), "app")?;
        let cluster = ctx.app.clusters.locate(env.as_str()).await?;
        let k = cluster.config();
        // The environment must be deckhand's: the same rule as every other app command.
        let info = cluster.managed_environment(env.as_str()).await?;
        // A tier may keep its links shorter than the global maximum (prod, typically).
        let max = ctx
            .app
            .config
            .tiers
            .get(info.tier.as_str())
            .and_then(|t| t.proxy_max_ttl)
            .map_or(k.proxy_max_ttl, |t| t.min(k.proxy_max_ttl));
        let asked = args.duration("ttl")?;
        if let Some(asked) = asked.filter(|a| *a > max) {
            return Err(ActionError::Failed(format!(
                "proxy links in {env} ({} tier) live at most {max}; {asked} is too long",
                info.tier
            )));
        }
        // The default never outlives the tier's maximum either.
        let ttl = asked.unwrap_or(k.proxy_ttl).min(max);
        let port = Self::port(ctx, env.as_str(), app.as_str(), args.int("port")?).await?;
        let token = new_token();
        // Opening reads no counts, so it does not wait for pending hits to be written.
        let link = Links::new(ctx.app.store.pool().clone())
            .insert(&NewLink {
                id: new_link_id(),
                token_hash: hash_token(&token),
                env: env.to_string(),
                service: app.to_string(),
                port,
                requester: ctx.principal.user.clone(),
                request_id: ctx.request.id.to_string(),
                expires_at: now_ms() + ttl.as_millis_i64(),
            })
            .await?;
        let url = link_url(&ctx.app.config.server, &token);
        let close = CommandButton::danger("Close link", format!("proxy close {}", link.id));
        let data = serde_json::json!({
            "id": link.id, "url": url, "env": link.env, "service": link.service,
            "port": link.port, "expires_at": link.expires_at,
        });
        // The URL is the credential: through the API only the requester reads it.
        let data = crate::events::Output::fields(data)
            .link(crate::command_buttons::LinkButton::new("Open link", &url))
            .button(close)
            .to(crate::visibility::Audience::Requester);
        ctx.output(
            format!(
                "{url}\nforwards to {app}:{port} in {env} until {}; close it with `proxy close {}`",
                format_ms(link.expires_at),
                link.id
            ),
            data,
        )
        .await?;
        // The outcome is in every listing, so it names the link but does not carry it.
        Ok(format!(
            "proxy {} to {app}:{port} in {env} open until {}",
            link.id,
            format_ms(link.expires_at)
        ))
    }
}

struct Close;

#[async_trait]
impl Action for Close {
    fn name(&self) -> &'static str {
        "proxy.close"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    /// Anyone allowed to run the command may close any link: closing only takes access
    /// away, and the link records who closed it.
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let id = Args::require(ctx.request.args.name("id"), "id")?;
        let links = counted_links(ctx).await;
        let Some(link) = links.get(id.as_str()).await? else {
            return Err(ActionError::Failed(format!(
                "there is no proxy link {id}; `proxy list` shows them"
            )));
        };
        let revoked = links.revoke(&link.id, &ctx.principal.user).await?;
        // Refused here at once, and its open connections here cut; other replicas cut
        // theirs within a second (`proxy::cut_closed_links`).
        ctx.app.proxies.close(&link.id);
        if revoked {
            Ok(format!(
                "proxy {id} to {}:{} in {} closed after {} requests",
                link.service, link.port, link.env, link.hits
            ))
        } else {
            Ok(format!("proxy {id} was already closed"))
        }
    }
}

struct List;

/// How many of each link's latest requests `proxy list` shows.
const RECENT_SHOWN: i64 = 5;

fn describe(link: &Link, now: i64) -> String {
    let state = match link.state_at(now) {
        LinkState::Open => format!("open until {}", format_ms(link.expires_at)),
        LinkState::Expired => format!("expired {}", format_ms(link.expires_at)),
        LinkState::Revoked => format!("closed by {}", link.revoked_by.as_deref().unwrap_or("someone")),
    };
    let last = link
        .last_used_at
        .map(|t| format!(", last {}", format_ms(t)))
        .unwrap_or_default();
    format!(
        "{}  {}:{} in {}  by {}  {state}  hits {}{last}",
        link.id, link.service, link.port, link.env, link.requester, link.hits
    )
}

#[async_trait]
impl Action for List {
    fn name(&self) -> &'static str {
        "proxy.list"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let env = ctx.request.args.name("env")?;
        let links = counted_links(ctx).await;
        let found = links.list(env.as_ref().map(|e| e.as_str()), 50).await?;
        let now = now_ms();
        let open = found.iter().filter(|l| l.state_at(now) == LinkState::Open).count();
        let mut lines = Vec::new();
        let mut data = Vec::new();
        for l in &found {
            let recent = links.recent(&l.id, RECENT_SHOWN).await?;
            lines.push(describe(l, now));
            lines.extend(recent.iter().map(|r| {
                format!(
                    "    {} {} {} {}ms  {}",
                    r.method,
                    r.path,
                    r.status,
                    r.millis,
                    format_ms(r.at)
                )
            }));
            let recent: Vec<serde_json::Value> = recent
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "at": r.at, "method": r.method, "path": r.path,
                        "status": r.status, "millis": r.millis,
                    })
                })
                .collect();
            data.push(serde_json::json!({
                "id": l.id, "env": l.env, "service": l.service, "port": l.port,
                "requester": l.requester, "request_id": l.request_id,
                "created_at": l.created_at, "expires_at": l.expires_at,
                "revoked_at": l.revoked_at, "revoked_by": l.revoked_by,
                "hits": l.hits, "last_used_at": l.last_used_at, "recent": recent,
            }));
        }
        let text = if found.is_empty() {
            "no proxy links".to_owned()
        } else {
            lines.join("\n")
        };
        ctx.output(
            text,
            crate::events::Output::fields(serde_json::json!({ "links": data })),
        )
        .await?;
        Ok(format!("{} proxy links, {open} open", found.len()))
    }
}
