//! Buttons an action puts under its output (Close link, Cancel test...). A click runs the
//! button's command as the person who clicked, exactly as if they had typed it: the router,
//! permissions and approvals apply, so a button grants nothing the command would not.
//!
//! The command travels in the chat platform's button value, signed with deckhand's key, so a
//! click is honoured only on a button deckhand made and only for the command it was made for.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::signing::Signer;

/// 22 characters of HMAC (128 bits), like every other deckhand button signature.
const SIG_LEN: usize = 22;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandButton {
    pub label: String,
    /// The command text, as typed in chat.
    pub command: String,
    /// Shown as destructive (red) where the platform can.
    #[serde(default)]
    pub danger: bool,
}

impl CommandButton {
    pub fn danger(label: &str, command: String) -> Self {
        Self {
            label: label.to_owned(),
            command,
            danger: true,
        }
    }
}

/// A link an action hands out (a proxy or shell link): chat shows it as a link button (a
/// Slack button with `url`, a Discord link button), never as text in a code block, where
/// it could not be clicked. Opening it runs nothing in deckhand, so it carries no signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkButton {
    pub label: String,
    pub url: String,
}

impl LinkButton {
    pub fn new(label: &str, url: &str) -> Self {
        Self {
            label: label.to_owned(),
            url: url.to_owned(),
        }
    }
}

/// What is signed: the surface is part of it, so a Slack value does not work on Discord.
fn message(surface: &str, command: &str) -> String {
    format!("{surface}:run:{command}")
}

/// `<command in URL-safe base64>.<signature>`
pub fn sign(signer: &Signer, surface: &str, command: &str) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(command),
        signer.sign(&message(surface, command), SIG_LEN)
    )
}

/// The command of a value deckhand signed for `surface`; `None` for anything else.
pub fn verify(signer: &Signer, surface: &str, value: &str) -> Option<String> {
    let (encoded, sig) = value.split_once('.')?;
    let command = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    (sig.len() == SIG_LEN && signer.verify(&message(surface, &command), sig)).then_some(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_refuse_changes() {
        let s = Signer::new(b"key");
        let v = sign(&s, "slack", "proxy close px-abc");
        assert_eq!(verify(&s, "slack", &v).as_deref(), Some("proxy close px-abc"));
        assert_eq!(verify(&s, "discord", &v), None, "bound to its surface");
        assert_eq!(verify(&Signer::new(b"other"), "slack", &v), None);
        let (_, sig) = v.split_once('.').unwrap();
        let other = format!("{}.{sig}", URL_SAFE_NO_PAD.encode("env delete prod"));
        assert_eq!(verify(&s, "slack", &other), None, "the command cannot be swapped");
        assert_eq!(verify(&s, "slack", "nonsense"), None);
        assert_eq!(verify(&s, "slack", "!!.x"), None);
    }
}
