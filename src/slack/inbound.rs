//! What to do with a slash command or a button click, whichever transport brought it
//! (HTTP or Socket Mode). Each handler stores what it must before returning, so the
//! transport can acknowledge right after; replies to the person go out on their own task.

use std::sync::Arc;

use slack_morphism::events::{SlackCommandEvent, SlackInteractionBlockActionsEvent, SlackInteractionEvent};

use super::{
    buttons::{self, ButtonError, Decision},
    data::initial_data,
    groups::GroupCache,
    messages,
    web::WebApi,
};
use crate::{
    app::{App, Invocation},
    chat::{
        submit::{self, Submission},
        text,
    },
    command_buttons,
    domain::{State, Surface},
    identity::Principal,
};

/// Why a handler could not accept what arrived; the transport maps it to a status.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// Nothing was stored; Slack should show the person that it failed.
    #[error("could not store the request: {0}")]
    Store(String),
}

/// Shared by both transports.
pub struct Inbound {
    pub web: WebApi,
    /// Only looked up when the configuration maps Slack user groups to deckhand groups.
    use_groups: bool,
    groups: Arc<GroupCache>,
}

impl Inbound {
    pub fn new(app_config: &crate::configuration::Config) -> Self {
        let use_groups = app_config
            .groups
            .values()
            .any(|g| g.identities.iter().any(|i| i.starts_with("slack-group:")));
        Self {
            web: WebApi::new(&app_config.slack),
            use_groups,
            groups: Arc::default(),
        }
    }

    /// The deckhand person behind a Slack user id, with the deckhand groups their Slack
    /// user groups map to.
    pub(super) async fn principal(&self, app: &App, user_id: &str) -> Option<Principal> {
        let chat_groups = if self.use_groups {
            self.groups.of(&self.web, user_id).await
        } else {
            Vec::new()
        };
        app.directory.by_identity(&format!("slack:{user_id}"), &chat_groups)
    }

    /// An ephemeral note for the person, on its own task so the acknowledgement waits
    /// for nothing.
    pub(super) fn tell(&self, response_url: Option<&str>, text: String) {
        let Some(url) = response_url.map(str::to_owned) else {
            tracing::info!(%text, "no response_url to answer on");
            return;
        };
        let web = self.web.clone();
        tokio::spawn(async move {
            if let Err(e) = web.respond(&url, &messages::ephemeral(&text)).await {
                tracing::warn!(error = %e, "could not answer on response_url");
            }
        });
    }
}

pub(super) fn unknown_user(user_id: &str) -> String {
    crate::chat::text::unknown_user(&format!("slack:{user_id}"), "your Slack user group")
}

/// A slash command: identify, route and store (that is the idempotent part, keyed on the
/// command's trigger_id), then let the surface post the root message as events come.
pub async fn command(app: &Arc<App>, inbound: &Inbound, cmd: SlackCommandEvent) -> Result<(), InboundError> {
    let user = cmd.user_id.to_string();
    let response_url = cmd.response_url.0.to_string();
    let Some(principal) = inbound.principal(app, &user).await else {
        tracing::info!(slack_user = %user, "command from an unknown Slack user");
        inbound.tell(Some(&response_url), unknown_user(&user));
        return Ok(());
    };
    let channel = cmd.channel_id.to_string();
    let text = cmd
        .text
        .as_deref()
        .map(|t| messages::unescape(t.trim()))
        .filter(|t| !t.is_empty());
    let text = match text {
        Some(t) => t,
        // A bare `/deckhand` opens the command builder; `help` if Slack will not show it.
        None => match super::modals::open_builder(
            app,
            inbound,
            &principal,
            cmd.trigger_id.as_ref(),
            (&channel, &user, &response_url),
        )
        .await
        {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "could not open the command builder; answering with help");
                "help".to_owned()
            }
        },
    };
    let inv = Invocation {
        principal,
        surface: Surface::Slack,
        text,
        channel: Some(channel.clone()),
        thread: None,
        surface_data: Some(initial_data(&channel, &user, &response_url)),
        idempotency_key: Some(format!("slack:{}", cmd.trigger_id)),
    };
    match submit::submit(app, inv).await {
        Ok(Submission::Stored(s)) => {
            tracing::info!(request = %s.request.id, duplicate = s.duplicate, "Slack command stored");
            Ok(())
        }
        // Refusals and argument errors: only the person sees them; nothing changed.
        Ok(Submission::Refused(why)) => {
            inbound.tell(Some(&response_url), why);
            Ok(())
        }
        Err(e) => Err(InboundError::Store(e.to_string())),
    }
}

/// Parses an interactivity payload (the JSON in the `payload` form field).
pub fn parse_interaction(payload: &str) -> Result<SlackInteractionEvent, InboundError> {
    serde_json::from_str(payload).map_err(|e| InboundError::Malformed(e.to_string()))
}

/// A click. Only Approve / Deny buttons deckhand signed do anything.
pub async fn interaction(app: &Arc<App>, inbound: &Inbound, event: SlackInteractionEvent) -> Result<(), InboundError> {
    let SlackInteractionEvent::BlockActions(ev) = event else {
        return Ok(());
    };
    block_actions(app, inbound, ev).await
}

async fn block_actions(
    app: &Arc<App>,
    inbound: &Inbound,
    ev: SlackInteractionBlockActionsEvent,
) -> Result<(), InboundError> {
    let response_url = ev.response_url.as_ref().map(|u| u.0.to_string());
    let reply = |text: String| inbound.tell(response_url.as_deref(), text);
    let Some(user) = ev.user.as_ref().map(|u| u.id.to_string()) else {
        return Err(InboundError::Malformed("block_actions without a user".into()));
    };
    for action in ev.actions.iter().flatten() {
        let action_id = action.action_id.to_string();
        let value = action.value.as_deref().unwrap_or_default();
        if action_id.starts_with(messages::LINK_ACTION) {
            // A link button: the browser opened the link; Slack only wants the click acked.
            continue;
        }
        if action_id.starts_with(messages::RUN_ACTION) {
            run_button(app, inbound, &ev, &user, value).await?;
            continue;
        }
        let (decision, id) = match buttons::parse(&app.signer, &action_id, value) {
            Ok(v) => v,
            Err(e @ (ButtonError::Forged | ButtonError::Malformed)) => {
                tracing::warn!(slack_user = %user, %action_id, error = %e, "refused a button click");
                reply(text::FORGED_BUTTON.into());
                continue;
            }
        };
        let Some(principal) = inbound.principal(app, &user).await else {
            reply(unknown_user(&user));
            continue;
        };
        if decision == Decision::Deny {
            // Deny asks why first (a modal); the submission denies.
            let trigger = ev.trigger_id.to_string();
            if let Some(text) = super::modals::ask_reason(app, inbound, &principal, &id, value, &trigger).await? {
                reply(text);
            }
            continue;
        }
        let result = app
            .approve(&id, &principal, "slack")
            .await
            .map(|a| (a.request.state == State::PendingApproval).then(|| a.to_string()));
        match result.map_err(submit::explain) {
            Ok(Some(partial)) => reply(format!("Your approval counts. {partial}.")),
            Ok(None) => {}
            // Not an approver, already decided, expired...: explain, change nothing.
            Err(Ok(why)) => reply(why),
            Err(Err(e)) => return Err(InboundError::Store(e.to_string())),
        }
    }
    Ok(())
}

/// A command button (Close link...): the signed command runs as the person who clicked, as
/// if typed in the channel the button is in.
async fn run_button(
    app: &Arc<App>,
    inbound: &Inbound,
    ev: &SlackInteractionBlockActionsEvent,
    user: &str,
    value: &str,
) -> Result<(), InboundError> {
    let response_url = ev.response_url.as_ref().map(|u| u.0.to_string());
    let reply = |text: String| inbound.tell(response_url.as_deref(), text);
    let Some(text) = command_buttons::verify(&app.signer, "slack", value) else {
        tracing::warn!(slack_user = %user, "refused a command button deckhand did not sign");
        reply(text::FORGED_BUTTON.into());
        return Ok(());
    };
    let Some(principal) = inbound.principal(app, user).await else {
        reply(unknown_user(user));
        return Ok(());
    };
    let Some(channel) = ev.channel.as_ref().map(|c| c.id.to_string()) else {
        return Err(InboundError::Malformed("block_actions without a channel".into()));
    };
    let inv = Invocation {
        principal,
        surface: Surface::Slack,
        text,
        channel: Some(channel.clone()),
        thread: None,
        surface_data: Some(initial_data(
            &channel,
            user,
            response_url.as_deref().unwrap_or_default(),
        )),
        idempotency_key: Some(format!("slack:{}", ev.trigger_id)),
    };
    match submit::submit(app, inv).await {
        Ok(Submission::Stored(s)) => {
            tracing::info!(request = %s.request.id, duplicate = s.duplicate, "Slack command button stored");
            Ok(())
        }
        Ok(Submission::Refused(why)) => {
            reply(why);
            Ok(())
        }
        Err(e) => Err(InboundError::Store(e.to_string())),
    }
}

/// Decodes a slash command's form body.
pub fn parse_command(form: &str) -> Result<SlackCommandEvent, InboundError> {
    serde_urlencoded::from_str(form).map_err(|e| InboundError::Malformed(e.to_string()))
}

/// The `payload` field of an interactivity form body (`payload=<json>`), as text.
pub(super) fn payload_field(form: &str) -> Result<String, InboundError> {
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_str(form).map_err(|e| InboundError::Malformed(e.to_string()))?;
    fields
        .into_iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v)
        .ok_or_else(|| InboundError::Malformed("no payload field".into()))
}

/// Decodes an interactivity form body (`payload=<json>`).
pub fn parse_interaction_form(form: &str) -> Result<SlackInteractionEvent, InboundError> {
    parse_interaction(&payload_field(form)?)
}
