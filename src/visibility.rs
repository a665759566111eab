//! Who may read what deckhand hands out. One rule, used by every reader: the `request`
//! command, the API (detail, list, event stream, output, attachments), the CLI and the chat
//! surfaces.
//!
//! An action marks an event private by putting its [`Audience`] in the event's data
//! (`"private": "requester"` or `"private": "approvers"`; the older `true` means the
//! requester). Private events carry what belongs to one person: a proxy or shell link with
//! its token, exec output that may hold credentials. Everyone else sees that the event
//! exists, never what it says; chat surfaces send it to the requester privately (a Slack
//! ephemeral message, a Discord ephemeral follow-up) and never into the channel thread.
//!
//! Outcomes (the one line a request ends with) are shown to everyone, so they never carry a
//! private value: actions return "link p-… opened", not the link.

use serde_json::Value;

use crate::{
    identity::Principal,
    store::{Event, RequestRecord},
};

/// Who may read a private event besides deckhand's operators (who read the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    /// Only the person who asked.
    Requester,
    /// The person who asked and the approvers named by the request's approval rule (exec
    /// output in prod: the approvers vouched for the command and may read what it printed).
    Approvers,
}

const KEY: &str = "private";

impl Audience {
    /// The audience an event's data declares.
    pub fn of(data: Option<&Value>) -> Self {
        match data.and_then(|d| d.get(KEY)) {
            Some(Value::Bool(true)) => Audience::Requester,
            Some(Value::String(s)) if s == "requester" => Audience::Requester,
            Some(Value::String(s)) if s == "approvers" => Audience::Approvers,
            // Anything else that claims privacy is read as the strictest.
            Some(Value::String(_)) => Audience::Requester,
            _ => Audience::Everyone,
        }
    }

    pub fn of_event(event: &Event) -> Self {
        Self::of(event.data.as_ref())
    }

    pub fn is_private(self) -> bool {
        self != Audience::Everyone
    }

    /// Marks `data` (an object, or nothing) as meant for this audience.
    pub fn mark(self, data: Option<Value>) -> Option<Value> {
        let tag = match self {
            Audience::Everyone => return data,
            Audience::Requester => "requester",
            Audience::Approvers => "approvers",
        };
        let mut data = match data {
            Some(Value::Object(m)) => m,
            Some(other) => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other);
                m
            }
            None => serde_json::Map::new(),
        };
        data.insert(KEY.into(), Value::String(tag.into()));
        Some(Value::Object(data))
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
        event.data = None;
    }
    event
}

/// Every event of a request as `reader` may see it.
pub fn events_for(events: Vec<Event>, reader: &Principal, request: &RequestRecord) -> Vec<Event> {
    events.into_iter().map(|e| event_for(e, reader, request)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audiences_read_from_data() {
        assert_eq!(Audience::of(None), Audience::Everyone);
        assert_eq!(Audience::of(Some(&json!({"x": 1}))), Audience::Everyone);
        assert_eq!(Audience::of(Some(&json!({"private": true}))), Audience::Requester);
        assert_eq!(
            Audience::of(Some(&json!({"private": "approvers"}))),
            Audience::Approvers
        );
        assert_eq!(Audience::of(Some(&json!({"private": "???"}))), Audience::Requester);
        assert_eq!(Audience::of(Some(&json!({"private": false}))), Audience::Everyone);
    }

    #[test]
    fn marking_keeps_the_data() {
        let d = Audience::Approvers.mark(Some(json!({"stdout": "x"}))).unwrap();
        assert_eq!(d, json!({"stdout": "x", "private": "approvers"}));
        assert_eq!(Audience::Everyone.mark(None), None);
        assert_eq!(
            Audience::of(Audience::Requester.mark(None).as_ref()),
            Audience::Requester
        );
    }
}
