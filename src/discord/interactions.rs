//! POST /discord/interactions: verify, decode, then PING, slash commands, button clicks and
//! modal submissions (the Deny reason, modals.rs; the command builder, builder.rs).
//!
//! Everything that is refused before the signature checks out gets 401 and touches nothing;
//! a signed body that is not an interaction gets 400. Slash commands are stored through
//! `App::submit` (idempotent on the interaction id) and answered with a deferred response;
//! what happens next reaches Discord through the surface (publish.rs).

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    body::Bytes,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use serenity::model::{
    application::{CommandInteraction, ComponentInteraction, Interaction},
    id::{RoleId, UserId},
};

use super::{
    builder,
    buttons::{self, Decision},
    command_text,
    markup::DiscordMarkup,
    publish::{message_body, truncate},
    state::DiscordState,
    verify::InteractionVerifier,
};
use crate::{
    app::{App, Invocation},
    chat::{
        submit::{self, Submission},
        text,
    },
    domain::{State, Surface, now_ms},
    events,
    identity::Principal,
};

const PONG: u8 = 1;
pub(super) const CHANNEL_MESSAGE: u8 = 4;
const DEFERRED_CHANNEL_MESSAGE: u8 = 5;
pub(super) const UPDATE_MESSAGE: u8 = 7;
pub(super) const EPHEMERAL: u64 = 1 << 6;

/// Where an interaction came from, which is where its request's messages go.
pub(super) struct Origin {
    interaction_id: String,
    application_id: String,
    token: String,
    channel_id: String,
    guild_id: Option<String>,
    /// Who sent the interaction: its ephemeral follow-ups are shown to them alone.
    user_id: String,
}

/// The origin of any serenity interaction (command, component or modal submit): they name
/// these fields alike but share no type, so one macro instead of a copy per kind.
macro_rules! origin_of {
    ($i:expr) => {
        $crate::discord::interactions::Origin::new(
            $i.id,
            $i.application_id,
            &$i.token,
            $i.channel_id,
            $i.guild_id,
            $i.user.id,
        )
    };
}
pub(super) use origin_of;

impl Origin {
    pub(super) fn new(
        interaction: impl ToString,
        application: impl ToString,
        token: &str,
        channel: impl ToString,
        guild: Option<impl ToString>,
        user: impl ToString,
    ) -> Self {
        Self {
            interaction_id: interaction.to_string(),
            application_id: application.to_string(),
            token: token.to_owned(),
            channel_id: channel.to_string(),
            guild_id: guild.map(|g| g.to_string()),
            user_id: user.to_string(),
        }
    }
}

pub struct Endpoint {
    pub verifier: InteractionVerifier,
    pub max_skew: Duration,
    pub token_lifetime: Duration,
    pub command: String,
    /// deckhand users as Discord users, for naming who decided.
    pub mentions: crate::chat::Mentions,
}

pub(super) fn reply(kind: u8, data: Option<Value>) -> Response {
    let mut body = json!({ "type": kind });
    if let Some(d) = data {
        body["data"] = d;
    }
    (StatusCode::OK, Json(body)).into_response()
}

/// A message only the person who clicked or typed sees.
pub(super) fn ephemeral(text: &str) -> Response {
    let mut data = message_body(text, None);
    data["flags"] = json!(EPHEMERAL);
    reply(CHANNEL_MESSAGE, Some(data))
}

pub(super) fn principal(app: &App, user: UserId, roles: &[RoleId]) -> Option<Principal> {
    let roles: Vec<String> = roles.iter().map(|r| format!("discord-role:{r}")).collect();
    app.directory.by_identity(&format!("discord:{user}"), &roles)
}

pub(super) fn stranger(user: UserId) -> Response {
    ephemeral(&text::unknown_user(&format!("discord:{user}"), "your Discord role"))
}

fn unix_now() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

impl Endpoint {
    pub async fn handle(&self, app: Arc<App>, headers: HeaderMap, body: Bytes) -> Response {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Err(e) = self.verifier.verify(
            header("x-signature-ed25519"),
            header("x-signature-timestamp"),
            &body,
            unix_now(),
            self.max_skew,
        ) {
            tracing::warn!(error = %e, "refused a Discord interaction");
            return (StatusCode::UNAUTHORIZED, "invalid request signature").into_response();
        }
        let raw: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return bad_request(&format!("not JSON: {e}")),
        };
        // PING is answered from the raw type: it needs nothing else from the payload.
        if raw.get("type").and_then(Value::as_u64) == Some(u64::from(PONG)) {
            return (StatusCode::OK, Json(json!({ "type": PONG }))).into_response();
        }
        let interaction = match decode_interaction(raw) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "signed body is not a Discord interaction");
                return bad_request(&format!("not a Discord interaction: {e}"));
            }
        };
        match interaction {
            Interaction::Command(c) => self.command(&app, c).await,
            Interaction::Component(c) => self.component(&app, c).await,
            Interaction::Modal(m) if builder::is_builder(&m.data.custom_id) => builder::submitted(self, &app, m).await,
            Interaction::Modal(m) => super::modals::submitted(&app, &self.mentions, m).await,
            other => {
                tracing::info!(kind = ?other.kind(), "ignoring an interaction type deckhand does not use");
                bad_request("this interaction type is not used by deckhand")
            }
        }
    }

    async fn command(&self, app: &Arc<App>, ci: CommandInteraction) -> Response {
        if ci.data.name != self.command {
            return ephemeral(&format!(
                "deckhand only answers `/{}`; `/{}` may be left over from an older registration.",
                self.command, ci.data.name
            ));
        }
        let roles = ci.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
        let Some(who) = principal(app, ci.user.id, &roles) else {
            return stranger(ci.user.id);
        };
        if builder::is_opened_by(&app.router, &ci.data.options) {
            return builder::open(app, &who, ci.user.id);
        }
        let text = match command_text::command_text(&app.router, &ci.data.options) {
            Ok(t) => t,
            Err(e) => return ephemeral(&super::markup::inert(&e.to_string())),
        };
        let origin = origin_of!(ci);
        self.submit(app, who, text, origin).await
    }

    /// Stores the command (idempotent on the interaction id) and answers with a deferred
    /// message the surface fills in.
    pub(super) async fn submit(&self, app: &Arc<App>, who: Principal, text: String, origin: Origin) -> Response {
        let now = now_ms();
        let lifetime = i64::try_from(self.token_lifetime.as_millis()).unwrap_or(i64::MAX);
        // Stop using the token a little before Discord does, so no call races its expiry.
        let margin = (lifetime / 10).min(60_000);
        let state = DiscordState {
            application_id: origin.application_id,
            token: origin.token,
            received_at: now,
            token_expires_at: now.saturating_add(lifetime - margin),
            channel_id: origin.channel_id.clone(),
            guild_id: origin.guild_id,
            user_id: Some(origin.user_id),
            original_message_id: None,
            approval_message_id: None,
            private_answer: false,
            answered: false,
            output_shown: false,
            status_shown: None,
        };
        let inv = Invocation {
            principal: who,
            surface: Surface::Discord,
            text: text.clone(),
            channel: Some(origin.channel_id),
            thread: None,
            surface_data: serde_json::to_value(&state).ok(),
            idempotency_key: Some(origin.interaction_id),
        };
        match submit::submit(app, inv).await {
            Ok(Submission::Stored(s)) => {
                tracing::info!(request = %s.request.id, duplicate = s.duplicate, %text, "Discord command stored");
                // A private answer is deferred as ephemeral: the answer edits a message only
                // the person sees.
                let data = s.private_answer().then(|| json!({ "flags": EPHEMERAL }));
                reply(DEFERRED_CHANNEL_MESSAGE, data)
            }
            Ok(Submission::Refused(why)) => ephemeral(&super::markup::inert(&why)),
            Err(e) => {
                tracing::error!(error = %e, "could not store a Discord command");
                ephemeral("deckhand could not store your request just now; please try again.")
            }
        }
    }

    /// A command button (Close link...): runs its signed command as the person who clicked.
    async fn run_button(&self, app: &Arc<App>, ci: ComponentInteraction) -> Response {
        let Some(text) = buttons::parse_command(&app.signer, &ci.data.custom_id) else {
            tracing::warn!(custom_id = %truncate(&ci.data.custom_id, 100), "click on a command button deckhand did not sign");
            return ephemeral("This button was not made by this deckhand (or has been changed), so nothing was done.");
        };
        let roles = ci.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
        let Some(who) = principal(app, ci.user.id, &roles) else {
            return stranger(ci.user.id);
        };
        let origin = origin_of!(ci);
        self.submit(app, who, text, origin).await
    }

    async fn component(&self, app: &Arc<App>, ci: ComponentInteraction) -> Response {
        if builder::is_builder(&ci.data.custom_id) {
            return builder::component(self, app, ci).await;
        }
        if buttons::is_command(&ci.data.custom_id) {
            return self.run_button(app, ci).await;
        }
        let Some((decision, id)) = buttons::parse(&app.signer, &ci.data.custom_id) else {
            tracing::warn!(custom_id = %truncate(&ci.data.custom_id, 100), "click on a button deckhand did not sign");
            return ephemeral("This button was not made by this deckhand (or has been changed), so nothing was done.");
        };
        let roles = ci.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
        let Some(who) = principal(app, ci.user.id, &roles) else {
            return stranger(ci.user.id);
        };
        let surface = Surface::Discord.as_str();
        let decided = match decision {
            Decision::Approve => app.approve(&id, &who, surface).await.map(|a| {
                let done = a.request.state != State::PendingApproval;
                (a.request, a.approvals, a.needed, None, done)
            }),
            // Deny asks why first (a modal); its submission denies (modals.rs).
            Decision::Deny => return super::modals::ask_reason(app, &who, &id, &ci.data.custom_id).await,
        };
        let (request, approvals, needed, reason, done) = match decided.map_err(submit::explain) {
            Ok(d) => d,
            Err(Ok(why)) => return ephemeral(&super::markup::inert(&why)),
            Err(Err(e)) => {
                tracing::error!(error = %e, "could not store a Discord decision");
                return ephemeral("deckhand could not store your decision just now; please try again.");
            }
        };
        tracing::info!(request = %id, user = %who.user, ?decision, "Discord button decision");
        let d = events::Decision {
            approver: who.user.clone(),
            decision,
            reason,
            approvals,
            needed: Some(needed),
        };
        let content = super::prompts::decision_content(&DiscordMarkup(&self.mentions), &request, &d, needed);
        let row = [buttons::approval_row(&app.signer, &request.id)];
        let components: &[_] = if done { &[] } else { &row };
        reply(UPDATE_MESSAGE, Some(message_body(&content, Some(components))))
    }
}

/// An interaction payload as serenity's model. serenity 0.12.5 insists on fields Discord
/// leaves out of some interactions or documents as optional: `attachment_size_limit` (only
/// sent since 2025), `entitlements`, `locale`, a member's `deaf`/`mute`/`flags` (absent
/// from interaction members), the clicked message's `timestamp` and flags (ephemeral and
/// partial messages). deckhand reads none of them, so missing ones get neutral values
/// instead of failing the whole interaction with a 400.
pub fn decode_interaction(mut raw: Value) -> Result<Interaction, serde_json::Error> {
    let channel_id = raw.get("channel_id").or_else(|| raw.pointer("/channel/id")).cloned();
    fill(
        Some(&mut raw),
        json!({ "attachment_size_limit": 0, "entitlements": [], "locale": "", "version": 1 }),
    );
    if let (Some(obj), Some(id)) = (raw.as_object_mut(), &channel_id) {
        obj.entry("channel_id").or_insert(id.clone());
    }
    fill(
        raw.get_mut("member"),
        json!({ "deaf": false, "mute": false, "flags": 0, "roles": [] }),
    );
    let mut message_defaults = json!({
        "content": "", "timestamp": "1970-01-01T00:00:00Z", "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0,
    });
    if let Some(id) = channel_id {
        message_defaults["channel_id"] = id;
    }
    fill(raw.get_mut("message"), message_defaults);
    serde_json::from_value(raw)
}

/// Adds each field of `defaults` that `object` lacks; anything but two objects is left alone.
fn fill(object: Option<&mut Value>, defaults: Value) {
    if let (Some(Value::Object(object)), Value::Object(defaults)) = (object, defaults) {
        for (key, value) in defaults {
            object.entry(key).or_insert(value);
        }
    }
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}
