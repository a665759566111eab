//! Router-level actions that need no cluster.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Action, ActionContext, ActionError, ActionRegistry};
use crate::{
    commands::Args,
    domain::{State, format_ms},
    events::Output,
    store::ListFilter,
    surface,
    visibility::Audience,
};

pub fn register_builtin(registry: &mut ActionRegistry) {
    registry.register(Arc::new(Help));
    registry.register(Arc::new(WhoAmI));
    registry.register(Arc::new(Requests));
    registry.register(Arc::new(ShowRequest));
    registry.register(Arc::new(Cancel));
    registry.register(Arc::new(Decide { approve: true }));
    registry.register(Arc::new(Decide { approve: false }));
}

struct Help;

#[async_trait]
impl Action for Help {
    fn name(&self) -> &'static str {
        "help"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let router = &ctx.app.router;
        let text = match ctx.request.args.get("command") {
            Some(cmd) => router
                .help_for(&ctx.principal, cmd)
                .map_err(|e| ActionError::Failed(e.to_string()))?,
            None => router.help_index(&ctx.principal),
        };
        ctx.output(text, crate::events::Output::default()).await?;
        Ok("help shown".into())
    }
}

struct WhoAmI;

#[async_trait]
impl Action for WhoAmI {
    fn name(&self) -> &'static str {
        "whoami"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let p = &ctx.principal;
        let groups: Vec<&str> = p.groups.iter().map(String::as_str).collect();
        let groups = if groups.is_empty() {
            "no groups".to_owned()
        } else {
            groups.join(", ")
        };
        let text = format!("You are {} ({groups}), via {}.", p.user, ctx.request.surface);
        ctx.output(
            &text,
            crate::events::Output::fields(serde_json::to_value(p).unwrap_or_default()),
        )
        .await?;
        Ok(text)
    }
}

struct Requests;

pub fn request_line(r: &crate::store::RequestRecord) -> String {
    format!(
        "{}  {:<16} {:<10} {}  {}",
        r.id,
        r.state.as_str(),
        r.requester,
        format_ms(r.created_at),
        r.text
    )
}

#[async_trait]
impl Action for Requests {
    fn name(&self) -> &'static str {
        "requests"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let scope = ctx.request.args.get("scope").unwrap_or("mine");
        let (records, title) = match scope {
            "pending" => {
                let filter = ListFilter {
                    states: vec![State::PendingApproval],
                    limit: 200,
                    ..Default::default()
                };
                let all = ctx.app.store.list(&filter).await?;
                let mine: Vec<_> = all
                    .into_iter()
                    .filter(|r| ctx.app.may_approve(&ctx.principal, r).is_ok())
                    .collect();
                (mine, "Waiting for your approval")
            }
            "all" => (
                ctx.app
                    .store
                    .list(&ListFilter {
                        limit: 50,
                        ..Default::default()
                    })
                    .await?,
                "Recent requests",
            ),
            _ => {
                let filter = ListFilter {
                    requester: Some(ctx.principal.user.clone()),
                    limit: 20,
                    ..Default::default()
                };
                (ctx.app.store.list(&filter).await?, "Your recent requests")
            }
        };
        // The listing itself is a request; leave it out of its own answer.
        let records: Vec<_> = records.into_iter().filter(|r| r.id != ctx.request.id).collect();
        let text = if records.is_empty() {
            format!("{title}: none.")
        } else {
            let lines: Vec<String> = records.iter().map(request_line).collect();
            format!("{title}:\n{}", lines.join("\n"))
        };
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        ctx.output(text, crate::events::Output::fields(serde_json::json!({ "ids": ids })))
            .await?;
        Ok(format!("{} request(s)", records.len()))
    }
}

fn target(args: &Args) -> Result<crate::domain::RequestId, ActionError> {
    Ok(Args::require(args.request_id("id"), "id")?)
}

struct ShowRequest;

#[async_trait]
impl Action for ShowRequest {
    fn name(&self) -> &'static str {
        "request"
    }
    fn inline(&self) -> bool {
        true
    }
    fn rerunnable(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let id = target(&ctx.request.args)?;
        let record = ctx.app.get(&id).await?;
        let events = crate::visibility::events_for(ctx.app.store.events(&id, 0).await?, &ctx.principal, &record);
        let mut text = format!("{}\n", request_line(&record));
        for e in &events {
            text.push_str(&format!("  {} {:<8} {}\n", format_ms(e.at), e.kind.as_str(), e.message));
        }
        // What the asker may read of private events is theirs alone too: anyone may run
        // `request` on this request and would read its output.
        let shows_private = events.iter().any(|e| Audience::of_event(e).is_private());
        let audience = if shows_private {
            Audience::Requester
        } else {
            Audience::Everyone
        };
        let text = text.trim_end();
        let outcome = format!("{} is {}", id, record.state);
        // Without a page link the answer is still the answer.
        let page = match crate::pages::mint(&ctx.app, id.as_str(), &ctx.principal.user).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "no page link for `request`");
                ctx.output(text, Output::default().to(audience)).await?;
                return Ok(outcome);
            }
        };
        let note = format!(
            "Your page of {id} (a personal link, until {})",
            format_ms(page.expires_at)
        );
        if surface::is_private_answer(&ctx.request) {
            // One private answer: the text and the page button together (chat shows a
            // private answer as one message).
            let data = Output::fields(serde_json::json!({ "page": page.url, "expires_at": page.expires_at }))
                .link(page.page_button())
                .to(Audience::Requester);
            ctx.output(format!("{text}\n{note}"), data).await?;
        } else {
            // Shared (or from the API): the text where it was asked for, the link privately.
            ctx.output(text, Output::default().to(audience)).await?;
            let data = Output::fields(serde_json::json!({ "page": page.url, "expires_at": page.expires_at }))
                .link(page.page_button())
                .to(Audience::Requester);
            ctx.output(format!("{}\n{note}", page.url), data).await?;
        }
        Ok(outcome)
    }
}

struct Cancel;

#[async_trait]
impl Action for Cancel {
    fn name(&self) -> &'static str {
        "cancel"
    }
    fn inline(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let id = target(&ctx.request.args)?;
        let (r, was) = ctx
            .app
            .cancel(&id, &ctx.principal, ctx.request.surface.as_str())
            .await?;
        Ok(format!("{} cancelled (it was {was})", r.id))
    }
}

struct Decide {
    approve: bool,
}

#[async_trait]
impl Action for Decide {
    fn name(&self) -> &'static str {
        if self.approve { "approve" } else { "deny" }
    }
    fn inline(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        let id = target(&ctx.request.args)?;
        let surface = ctx.request.surface.as_str();
        if self.approve {
            Ok(ctx.app.approve(&id, &ctx.principal, surface).await?.to_string())
        } else {
            let reason = ctx.request.args.get("reason").unwrap_or_default();
            let r = ctx.app.deny(&id, &ctx.principal, reason, surface).await?;
            Ok(format!("{} denied", r.id))
        }
    }
}
