//! A builder form that came back with a mistake, and the way back to it with what was typed.
//!
//! Discord cannot answer a modal submission with the modal again, so a form with a bad value
//! is answered with a private message naming each mistake, a "What you entered" embed and a
//! "Fix it" button (signed for the person and the command, like every builder custom_id).
//! The button reopens the form with the entered values in its inputs.
//!
//! The values travel in that private message itself rather than in the store: a click on a
//! component carries the whole message it sits on (for ephemeral messages too), inside the
//! interaction Discord signs, and only deckhand can write a deckhand message, so what comes
//! back is what deckhand wrote. Nothing needs expiring or cleaning up, and any replica can
//! answer the click. The values are only what the inputs show: the resubmitted form is
//! checked again from scratch.
//!
//! Discord's limits (developer docs, "Embed limits"): a field's name at most 256 characters
//! and its value 1 to 1024, at most 25 fields, 6000 characters in all. A longer value is
//! carried in several fields of the same name; one that does not fit at all is left out and
//! the message says which to type again.
//!
//! The values are shown escaped (`markup::escape`: a typed `[label](url)` or `**` shows as
//! typed, not as a link or bold) and unescaped when they come back; the limits count the
//! escaped text.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use serenity::model::channel::Message;

use super::builder_form::{self as form, MORE_INPUT, Token};
use super::markup;
use crate::signing::Signer;

pub const FIELD_VALUE_MAX: usize = 1024;
pub const FIELDS_MAX: usize = 25;
pub const EMBED_TOTAL_MAX: usize = 6000;
const EMBED_TITLE: &str = "What you entered";
/// The embed field name of the `MORE_INPUT` input.
const MORE_FIELD: &str = "Other arguments";

fn field_name(input: &str) -> &str {
    if input == MORE_INPUT { MORE_FIELD } else { input }
}

fn input_name(field: &str) -> &str {
    if field == MORE_FIELD { MORE_INPUT } else { field }
}

/// `s` escaped for Discord's markdown, in pieces of at most `max` characters; an escaped
/// character and its backslash stay in the same piece, so each piece shows as typed.
fn pieces(s: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut len = 0;
    for c in s.chars() {
        let shown = markup::escape(c.encode_utf8(&mut [0; 4]));
        let n = shown.chars().count();
        if len + n > max && !piece.is_empty() {
            pieces.push(std::mem::take(&mut piece));
            len = 0;
        }
        len += n;
        piece.push_str(&shown);
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

/// The embed carrying `entered` (input custom_id -> value), and the inputs whose values did
/// not fit (to be typed again).
pub fn carried(entered: &BTreeMap<String, String>) -> (Value, Vec<String>) {
    let mut fields = Vec::new();
    let mut total = EMBED_TITLE.chars().count();
    let mut dropped = Vec::new();
    for (input, value) in entered {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let name = field_name(input);
        let parts = pieces(value, FIELD_VALUE_MAX);
        let shown: usize = parts.iter().map(|p| p.chars().count()).sum();
        let size = parts.len() * name.chars().count() + shown;
        if fields.len() + parts.len() > FIELDS_MAX || total + size > EMBED_TOTAL_MAX {
            dropped.push(name.to_owned());
            continue;
        }
        total += size;
        fields.extend(parts.into_iter().map(|p| json!({ "name": name, "value": p })));
    }
    (json!({ "title": EMBED_TITLE, "fields": fields }), dropped)
}

/// The values carried by the message a "Fix it" button sat on: input custom_id -> value.
pub fn entered(message: &Message) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let embed = message.embeds.iter().find(|e| e.title.as_deref() == Some(EMBED_TITLE));
    for f in embed.into_iter().flat_map(|e| e.fields.iter()) {
        values
            .entry(input_name(&f.name).to_owned())
            .or_default()
            .push_str(&f.value);
    }
    values.into_iter().map(|(k, v)| (k, markup::unescape(&v))).collect()
}

/// The row holding the "Fix it" button for `command`, signed for `user`.
pub fn fix_row(signer: &Signer, user: &str, command: &str) -> Option<Value> {
    let id = form::custom_id(signer, user, &Token::Fix(command.to_owned()))?;
    Some(json!({
        "type": 1,
        "components": [{ "type": 2, "style": 1, "label": "Fix it", "custom_id": id }],
    }))
}

/// `modal` (from `form::form`) with its inputs holding `values` where one was entered; the
/// other inputs keep what the form put there (an argument's default).
pub fn prefill(mut modal: Value, values: &BTreeMap<String, String>) -> Value {
    for row in modal["components"].as_array_mut().into_iter().flatten() {
        let input = &mut row["components"][0];
        let Some(v) = input["custom_id"].as_str().and_then(|id| values.get(id)) else {
            continue;
        };
        if v.chars().count() <= form::VALUE_MAX {
            input["value"] = json!(v);
        }
    }
    modal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(embed: Value) -> Message {
        let raw = json!({
            "id": "1", "channel_id": "2", "content": "x", "timestamp": "2026-11-24T10:00:00.000000+00:00",
            "author": { "id": "3", "username": "deckhand", "discriminator": "0", "bot": true },
            "type": 0, "flags": 64, "embeds": [embed], "attachments": [], "mentions": [],
            "mention_roles": [], "pinned": false, "mention_everyone": false, "tts": false,
            "edited_timestamp": null, "components": [],
        });
        serde_json::from_value(raw).expect("a message")
    }

    #[test]
    fn values_come_back_as_entered_long_ones_in_pieces() {
        let long = "y".repeat(2500);
        let entered_now: BTreeMap<String, String> = [
            ("name".to_owned(), "Bad_Name".to_owned()),
            ("ttl".into(), "  ".into()),
            (MORE_INPUT.into(), format!("e=a=b\nf={long}")),
        ]
        .into_iter()
        .collect();
        let (embed, dropped) = carried(&entered_now);
        assert!(dropped.is_empty());
        let fields = embed["fields"].as_array().expect("fields");
        assert_eq!(fields.len(), 4, "the long one in three pieces: {embed:#}");
        assert!(
            fields
                .iter()
                .all(|f| f["value"].as_str().is_some_and(|v| v.chars().count() <= 1024))
        );
        let back = entered(&message(embed));
        assert_eq!(back.get("name").map(String::as_str), Some("Bad_Name"));
        assert_eq!(back.get(MORE_INPUT), entered_now.get(MORE_INPUT));
        assert!(!back.contains_key("ttl"), "empty inputs are not carried");

        let markdown: BTreeMap<String, String> = [(
            "name".to_owned(),
            format!("[click](https://evil) **x** \\{}", "_".repeat(1500)),
        )]
        .into_iter()
        .collect();
        let (embed, _) = carried(&markdown);
        let shown = embed["fields"][0]["value"].as_str().expect("a value");
        assert!(
            shown.starts_with("\\[click\\](https://evil) \\*\\*x\\*\\* \\\\"),
            "{shown}"
        );
        assert!(
            embed["fields"].as_array().expect("fields").iter().all(|f| {
                let v = f["value"].as_str().unwrap_or_default();
                v.chars().count() <= 1024 && (!v.ends_with('\\') || v.ends_with("\\\\"))
            }),
            "no piece ends between a backslash and the character it escapes: {embed:#}"
        );
        assert_eq!(entered(&message(embed)), markdown, "what comes back is what was typed");

        let huge: BTreeMap<String, String> = [("a".to_owned(), "z".repeat(4000)), ("b".into(), "w".repeat(4000))]
            .into_iter()
            .collect();
        let (embed, dropped) = carried(&huge);
        assert_eq!(dropped, ["b"], "over 6000 characters in all");
        assert_eq!(entered(&message(embed)).get("a").map(String::len), Some(4000));
    }
}
