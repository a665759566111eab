//! Who may read what deckhand hands out. One rule, used by every reader: the `request`
//! command, the API (detail, list, event stream, output, attachments), the CLI and the chat
//! surfaces.
//!
//! An action marks its output private with an [`Audience`] (`events::Output::to`), stored
//! in the event's data as `"private": "requester"` or `"private": "approvers"` (the older
//! `true` means the requester). Private events carry what belongs to one person: a proxy or shell link with
//! its token, exec output that may hold credentials. Everyone else sees that the event
//! exists, never what it says; chat surfaces send it to the requester privately (a Slack
//! ephemeral message, a Discord ephemeral follow-up) and never into the channel thread.
//!
//! Outcomes (the one line a request ends with) are shown to everyone, so they never carry a
//! private value: actions return "link p-… opened", not the link.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{
    identity::Principal,
    store::{Event, RequestRecord},
};

/// Who may read a private event besides deckhand's operators (who read the database).
/// Stored as the output's `"private"` field: `"requester"` or `"approvers"` (rows from
/// older builds may hold `true`, read as the requester).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Audience {
    #[default]
    Everyone,
    /// Only the person who asked.
    Requester,
    /// The person who asked and the approvers named by the request's approval rule (exec
    /// output in prod: the approvers vouched for the command and may read what it printed).
    Approvers,
}

impl Audience {
    pub fn of_event(event: &Event) -> Self {
        event.data.audience()
    }

    pub fn is_private(self) -> bool {
        self != Audience::Everyone
    }

    pub fn is_everyone(&self) -> bool {
        *self == Audience::Everyone
    }

    /// Whether `reader` may read what is meant for this audience on `request`.
    pub fn admits(self, reader: &Principal, request: &RequestRecord) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Requester => reader.user == request.requester,
            Audience::Approvers => {
                reader.user == request.requester
                    || request.approval.as_ref().is_some_and(|p| reader.is_any(&p.approvers))
            }
        }
    }
}

/// `event` as `reader` may see it: private events they are not in the audience of keep
/// their kind, time and sequence, and lose their text and data.
pub fn event_for(mut event: Event, reader: &Principal, request: &RequestRecord) -> Event {
    let audience = Audience::of_event(&event);
    if !audience.admits(reader, request) {
        event.message = format!(
            "(private: only {} can read this; it was sent to them directly)",
            request.requester
        );
        event.data = event.data.redacted();
    }
    event
}

/// Every event of a request as `reader` may see it.
pub fn events_for(events: Vec<Event>, reader: &Principal, request: &RequestRecord) -> Vec<Event> {
    events.into_iter().map(|e| event_for(e, reader, request)).collect()
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Audience::Everyone => s.serialize_bool(false),
            Audience::Requester => s.serialize_str("requester"),
            Audience::Approvers => s.serialize_str("approvers"),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    /// Anything that claims privacy but is not understood is read as the strictest.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Bool(true) => Audience::Requester,
            Value::String(s) if s == "approvers" => Audience::Approvers,
            Value::String(_) => Audience::Requester,
            _ => Audience::Everyone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audiences_read_from_json() {
        let of = |v: Value| serde_json::from_value::<Audience>(v).unwrap();
        assert_eq!(of(json!(null)), Audience::Everyone);
        assert_eq!(of(json!(true)), Audience::Requester);
        assert_eq!(of(json!("approvers")), Audience::Approvers);
        assert_eq!(of(json!("???")), Audience::Requester);
        assert_eq!(of(json!(false)), Audience::Everyone);
        assert_eq!(serde_json::to_value(Audience::Approvers).unwrap(), json!("approvers"));
    }
}
