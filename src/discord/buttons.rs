//! Approve / Deny buttons. Their custom_id carries the request id and a deckhand signature,
//! so a click is only honoured on a button deckhand made for that request and that decision.

use serenity::{
    builder::{CreateActionRow, CreateButton},
    model::application::ButtonStyle,
};

use crate::{domain::RequestId, signing::Signer};

/// Discord's limit for custom_id.
pub const CUSTOM_ID_MAX: usize = 100;
const SIGNATURE_LEN: usize = 22;
const PREFIX: &str = "dh";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    fn code(self) -> &'static str {
        match self {
            Decision::Approve => "a",
            Decision::Deny => "d",
        }
    }
}

/// What was signed: the decision is part of it, so an Approve id cannot be turned into Deny.
fn message(decision: Decision, id: &RequestId) -> String {
    format!("discord:{}:{id}", decision.code())
}

pub fn custom_id(signer: &Signer, decision: Decision, id: &RequestId) -> String {
    let sig = signer.sign(&message(decision, id), SIGNATURE_LEN);
    let s = format!("{PREFIX}:{}:{id}:{sig}", decision.code());
    debug_assert!(s.len() <= CUSTOM_ID_MAX);
    s
}

/// The decision and request of a custom_id deckhand signed; `None` for anything else.
pub fn parse(signer: &Signer, custom_id: &str) -> Option<(Decision, RequestId)> {
    let mut parts = custom_id.splitn(4, ':');
    if parts.next()? != PREFIX {
        return None;
    }
    let decision = match parts.next()? {
        "a" => Decision::Approve,
        "d" => Decision::Deny,
        _ => return None,
    };
    let id = RequestId::parse(parts.next()?)?;
    let sig = parts.next()?;
    signer.verify(&message(decision, &id), sig).then_some((decision, id))
}

pub fn approval_row(signer: &Signer, id: &RequestId) -> CreateActionRow {
    CreateActionRow::Buttons(vec![
        CreateButton::new(custom_id(signer, Decision::Approve, id))
            .label("Approve")
            .style(ButtonStyle::Success),
        CreateButton::new(custom_id(signer, Decision::Deny, id))
            .label("Deny")
            .style(ButtonStyle::Danger),
    ])
}
