//! Deny asks for a reason on Discord: the Deny button answers with a modal (interaction
//! response type 9) holding one required text input; its submission (MODAL_SUBMIT) denies
//! with that reason and updates the approval message like a click did.
//!
//! The modal's custom_id is the Deny button's own signed custom_id, so a submission is only
//! honoured for a request and decision deckhand signed; anything else is refused and changes
//! nothing. Discord's limits: a modal holds at most 5 action rows, a custom_id at most 100
//! characters, a title at most 45, a text input's value at most 4000.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};
use serenity::{
    builder::CreateActionRow,
    model::application::{ActionRowComponent, ModalInteraction},
};

use super::{
    buttons::{self, Decision},
    interactions::{UPDATE_MESSAGE, ephemeral, principal, reply, stranger},
    markup::{self, DiscordMarkup},
    publish::{message_body, truncate},
};
use crate::{
    app::App,
    chat::{Mentions, submit},
    domain::{RequestId, Surface},
    events,
    identity::Principal,
};

/// The interaction response type that opens a modal.
const MODAL: u8 = 9;
const TITLE_MAX: usize = 45;
const REASON_INPUT: &str = "reason";
const REASON_MAX: u64 = 500;

fn deny_form(custom_id: &str, id: &RequestId) -> Value {
    json!({
        "custom_id": custom_id,
        "title": truncate(&format!("Deny {id}"), TITLE_MAX),
        "components": [{
            "type": 1,
            "components": [{
                "type": 4, "custom_id": REASON_INPUT, "style": 2, "label": "Why? The thread shows it.",
                "min_length": 1, "max_length": REASON_MAX, "required": true,
            }],
        }],
    })
}

/// A Deny click by `who` on a signed button: the reason form, or why they cannot deny.
pub async fn ask_reason(app: &Arc<App>, who: &Principal, id: &RequestId, custom_id: &str) -> Response {
    let request = match app.get(id).await {
        Ok(r) => r,
        Err(e) => return ephemeral(&markup::inert(&e.to_string())),
    };
    if let Err(e) = app.may_approve(who, &request) {
        return ephemeral(&markup::inert(&e.to_string()));
    }
    reply(MODAL, Some(deny_form(custom_id, id)))
}

/// The text entered in the input `name` of a submitted modal.
fn input(mi: &ModalInteraction, name: &str) -> Option<String> {
    mi.data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .find_map(|c| match c {
            ActionRowComponent::InputText(t) if t.custom_id == name => t.value.clone(),
            _ => None,
        })
}

/// A submitted Deny form: denies with its reason and updates the approval message.
pub async fn submitted(app: &Arc<App>, mentions: &Mentions, mi: ModalInteraction) -> Response {
    let Some((Decision::Deny, id)) = buttons::parse(&app.signer, &mi.data.custom_id) else {
        tracing::warn!(custom_id = %truncate(&mi.data.custom_id, 100), "a modal deckhand did not sign");
        return ephemeral("This form was not made by this deckhand (or has been changed), so nothing was done.");
    };
    let roles = mi.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
    let Some(who) = principal(app, mi.user.id, &roles) else {
        return stranger(mi.user.id);
    };
    let reason = input(&mi, REASON_INPUT).unwrap_or_default();
    let request = match app
        .deny(&id, &who, &reason, Surface::Discord.as_str())
        .await
        .map_err(submit::explain)
    {
        Ok(r) => r,
        Err(Ok(why)) => return ephemeral(&markup::inert(&why)),
        Err(Err(e)) => {
            tracing::error!(error = %e, "could not store a Discord denial");
            return ephemeral("deckhand could not store your decision just now; please try again.");
        }
    };
    tracing::info!(request = %id, user = %who.user, "Discord denial with a reason");
    let d = events::Decision {
        approver: who.user.clone(),
        decision: Decision::Deny,
        reason: Some(reason.trim().to_owned()),
        approvals: 0,
        needed: Some(1),
    };
    let content = super::prompts::decision_content(&DiscordMarkup(mentions), &request, &d, 1);
    let no_buttons: &[CreateActionRow] = &[];
    reply(UPDATE_MESSAGE, Some(message_body(&content, Some(no_buttons))))
}
