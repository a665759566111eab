//! The untagged shapes events were stored with before [`EventData`] existed, mapped to it.
//! Only rows from older builds come here; nothing writes these shapes any more.

use std::str::FromStr;

use serde_json::{Map, Value};

use super::{ApprovalRequest, Decision, EventData, Output, Progress, StateChange, Verdict};
use crate::{
    attachments::AttachmentRef, command_buttons::CommandButton, domain::State, store::EventKind, visibility::Audience,
};

pub(super) fn map(kind: EventKind, message: &str, value: Option<Value>) -> EventData {
    let mut fields = match value {
        Some(Value::Object(m)) => m,
        Some(Value::Null) | None => Map::new(),
        Some(other) => Map::from_iter([("value".to_owned(), other)]),
    };
    match kind {
        EventKind::State => state(message, &fields),
        EventKind::Approval if fields.contains_key("approvers") => prompt(&fields),
        EventKind::Approval if fields.contains_key("approver") => decision(message, &fields),
        EventKind::Progress => EventData::Progress(Progress {
            private: audience(fields.get("private")),
        }),
        // Output, and anything unrecognised: keep what was stored, readable by the API.
        _ => {
            let private = audience(fields.remove("private").as_ref());
            let buttons = fields.remove("buttons").map(buttons).unwrap_or_default();
            let attachment = fields
                .remove("attachment")
                .and_then(|a| serde_json::from_value::<AttachmentRef>(a).ok());
            EventData::Output(Output {
                buttons,
                // Legacy rows predate link buttons: their links stay in the text.
                links: Vec::new(),
                attachment,
                private,
                fields,
            })
        }
    }
}

/// `{"state": …, "outcome": …}`; rows older still had only the message ("queued", or
/// "approved (1 of 1); queued").
fn state(message: &str, fields: &Map<String, Value>) -> EventData {
    let typed = fields.get("state").and_then(Value::as_str);
    let state = typed
        .map(State::from_str)
        .unwrap_or_else(|| State::from_str(message))
        .or_else(|_| State::from_str(message.rsplit("; ").next().unwrap_or(message)))
        // A state event nobody can read any more: say so rather than invent a state.
        .unwrap_or(State::Failed);
    let outcome = fields.get("outcome").and_then(Value::as_str).map(str::to_owned);
    let why = (message != state.as_str() && Some(message) != outcome.as_deref()).then(|| message.to_owned());
    EventData::State(StateChange { state, outcome, why })
}

/// `{"approvers": [...], "count": n, "detail": …}`
fn prompt(fields: &Map<String, Value>) -> EventData {
    let approvers = fields
        .get("approvers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    EventData::ApprovalRequested(ApprovalRequest {
        approvers,
        count: fields
            .get("count")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(1),
        rule: None,
        expires_at: None,
        detail: fields.get("detail").and_then(Value::as_str).map(str::to_owned),
    })
}

/// `{"approver": …, "decision": "approve"|"deny", "approvals": n}`; the reason was only in
/// the message ("omar denied: not now").
fn decision(message: &str, fields: &Map<String, Value>) -> EventData {
    let approver = fields
        .get("approver")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let approve = fields.get("decision").and_then(Value::as_str) == Some("approve");
    let reason = (!approve)
        .then(|| message.strip_prefix(&format!("{approver} denied: ")))
        .flatten()
        .map(str::to_owned);
    EventData::Decision(Decision {
        approver,
        decision: if approve { Verdict::Approve } else { Verdict::Deny },
        reason,
        approvals: fields.get("approvals").and_then(Value::as_i64).unwrap_or(0),
        needed: None,
    })
}

/// `"private": true` (the requester), `"requester"`, `"approvers"`; any other string is read
/// as the strictest.
fn audience(v: Option<&Value>) -> Audience {
    match v {
        Some(Value::Bool(true)) => Audience::Requester,
        Some(Value::String(s)) if s == "approvers" => Audience::Approvers,
        Some(Value::String(_)) => Audience::Requester,
        _ => Audience::Everyone,
    }
}

/// Buttons as stored; anything malformed is skipped.
fn buttons(v: Value) -> Vec<CommandButton> {
    match v {
        Value::Array(bs) => bs.into_iter().filter_map(|b| serde_json::from_value(b).ok()).collect(),
        _ => Vec::new(),
    }
}
