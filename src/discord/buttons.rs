//! Approve / Deny buttons. Their custom_id carries the request id and deckhand's signature
//! (`crate::chat::buttons`), so a click is only honoured on a button deckhand made for that
//! request and that decision.

use serenity::{
    builder::{CreateActionRow, CreateButton},
    model::application::ButtonStyle,
};

use super::render::LABEL_MAX;
pub use crate::events::Verdict as Decision;
use crate::{
    chat::{buttons as signed, links as chat_links},
    command_buttons::{self, CommandButton, LinkButton},
    domain::RequestId,
    signing::Signer,
};

/// Discord's limit for custom_id.
pub const CUSTOM_ID_MAX: usize = 100;
const PREFIX: &str = "dh";

fn code(decision: Decision) -> &'static str {
    match decision {
        Decision::Approve => "a",
        Decision::Deny => "d",
    }
}

/// `dh:a:r-abc:SIGNATURE`: an encoding of the shared signature (`crate::chat::buttons`).
pub fn custom_id(signer: &Signer, decision: Decision, id: &RequestId) -> String {
    let sig = signed::sign(signer, "discord", decision, id);
    let s = format!("{PREFIX}:{}:{id}:{sig}", code(decision));
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
    (signed::verify(signer, "discord", decision, &id, sig) || legacy(signer, decision, &id, sig))
        .then_some((decision, id))
}

/// Buttons posted before the shared signature (`discord:a:ID` rather than `discord:approve:ID`)
/// still sit in channels awaiting a decision: they stay valid, with the same length check.
fn legacy(signer: &Signer, decision: Decision, id: &RequestId, sig: &str) -> bool {
    sig.len() == signed::SIG_LEN && signer.verify(&format!("discord:{}:{id}", code(decision)), sig)
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

/// The custom_id prefix of command buttons (Close link...).
const RUN_PREFIX: &str = "dh:r:";

/// Link buttons (style 5: they open their URL, Discord sends deckhand nothing) then command
/// buttons, as one row of at most five; a command button whose signed command does not fit
/// Discord's custom_id limit is left off (the command still works typed).
pub fn output_row(signer: &Signer, buttons: &[CommandButton], links: &[&LinkButton]) -> Option<CreateActionRow> {
    let links = links
        .iter()
        .map(|l| CreateButton::new_link(l.url.clone()).label(chat_links::label(&l.label, LABEL_MAX)));
    let commands = buttons.iter().filter_map(|b| {
        let id = format!("{RUN_PREFIX}{}", command_buttons::sign(signer, "discord", &b.command));
        if id.len() > CUSTOM_ID_MAX {
            tracing::warn!(command = %b.command, "command too long for a Discord button; not offered");
            return None;
        }
        let style = if b.danger {
            ButtonStyle::Danger
        } else {
            ButtonStyle::Secondary
        };
        Some(
            CreateButton::new(id)
                .label(chat_links::label(&b.label, LABEL_MAX))
                .style(style),
        )
    });
    let made: Vec<CreateButton> = links.chain(commands).take(ROW_MAX).collect();
    (!made.is_empty()).then_some(CreateActionRow::Buttons(made))
}

/// Buttons in one action row.
const ROW_MAX: usize = 5;

/// The command of a command button deckhand signed; `None` for anything else.
pub fn parse_command(signer: &Signer, custom_id: &str) -> Option<String> {
    command_buttons::verify(signer, "discord", custom_id.strip_prefix(RUN_PREFIX)?)
}

/// Whether a custom_id is a command button's (signed or not).
pub fn is_command(custom_id: &str) -> bool {
    custom_id.starts_with(RUN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_signed_before_the_shared_signature_still_decide() {
        let signer = Signer::new(b"key");
        let id = RequestId::generate();
        let old = |code: &str, sig_len: usize| {
            let sig = signer.sign(&format!("discord:{code}:{id}"), sig_len);
            format!("{PREFIX}:{code}:{id}:{sig}")
        };
        assert_eq!(parse(&signer, &old("a", 22)), Some((Decision::Approve, id.clone())));
        assert_eq!(parse(&signer, &old("d", 22)), Some((Decision::Deny, id.clone())));
        // An old Approve cannot be turned into Deny, nor shortened, nor made with another key.
        let approve = old("a", 22);
        assert_eq!(parse(&signer, &approve.replacen(":a:", ":d:", 1)), None);
        assert_eq!(parse(&signer, &old("a", 8)), None);
        assert_eq!(parse(&Signer::new(b"other"), &approve), None);
        // New buttons parse as before.
        let new = custom_id(&signer, Decision::Approve, &id);
        assert_eq!(parse(&signer, &new), Some((Decision::Approve, id)));
    }
}
