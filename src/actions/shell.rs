//! pod.shell: picks a ready pod of the app and posts a time-limited link that opens one
//! interactive terminal session in it (the session itself is served by `crate::shell`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{Action, ActionContext, ActionError, ActionRegistry};
use crate::{
    commands::Args,
    domain::{format_ms, new_token},
    proxy::hash_token,
    shell::{NewSession, Sessions, ShellError, link},
};

/// 26 characters of a 32-letter alphabet: 130 random bits, as for proxy links.
const TOKEN_LEN: usize = 26;

pub fn register(registry: &mut ActionRegistry) {
    registry.register(Arc::new(Shell));
}

impl From<ShellError> for ActionError {
    fn from(e: ShellError) -> Self {
        ActionError::Failed(e.to_string())
    }
}

struct Shell;

#[async_trait]
impl Action for Shell {
    fn name(&self) -> &'static str {
        "pod.shell"
    }
    /// Finding the pod and storing a row takes no time: without an approval rule the link
    /// comes back in the acknowledgement.
    fn inline(&self) -> bool {
        true
    }
    /// Handing out another link does no harm: an unopened one just expires.
    fn rerunnable(&self) -> bool {
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
        let info = cluster.managed_environment(env.as_str()).await?;
        let (pod, container) = cluster.ready_app_pod(env.as_str(), app.as_str()).await?;
        let record = ctx
            .app
            .config
            .tiers
            .get(info.tier.as_str())
            .is_some_and(|t| t.record_shell);
        let k = cluster.config();
        let token = new_token(TOKEN_LEN);
        let session = Sessions::new(ctx.app.store.pool().clone())
            .insert(&NewSession {
                token_hash: hash_token(&token),
                request_id: ctx.request.id.to_string(),
                requester: ctx.principal.user.clone(),
                env: env.to_string(),
                app: app.to_string(),
                pod: pod.clone(),
                container: container.clone(),
                command: k.shell_command.clone(),
                record,
                ttl_ms: k.shell_link_ttl.as_millis_i64(),
            })
            .await?;
        let (url, ws_url) = link(&ctx.app.config.server.public_url, &token);
        let recorded = if record {
            format!("\nThe lines typed are recorded ({} tier).", info.tier)
        } else {
            String::new()
        };
        ctx.output(
            format!(
                "{url}\nA shell in pod {pod} of {app} in {env}, for {}. Open it before {} (it opens one session); from a terminal: `deckhand shell {app} --env {env}`.{recorded}",
                session.requester,
                format_ms(session.expires_at),
            ),
            crate::events::Output::fields(json!({
                "shell": {
                    "id": session.id,
                    "url": url,
                    "ws_url": ws_url,
                    "env": session.env,
                    "app": session.app,
                    "pod": session.pod,
                    "container": session.container,
                    "expires_at": session.expires_at,
                    "recorded": record,
                }
            }))
            .link(crate::command_buttons::LinkButton::new("Open shell", &url))
            .to(crate::visibility::Audience::Requester),
        )
        .await?;
        // The outcome is read by everyone who can list requests: the link stays out of it.
        Ok(format!(
            "shell {} in pod {pod} ready until {} (the link was sent to {} only)",
            session.id,
            format_ms(session.expires_at),
            session.requester
        ))
    }
}
