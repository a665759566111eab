//! What an event carries besides its one-line message: typed, one variant per kind of news,
//! so every reader (the Slack and Discord surfaces, the API, visibility, attachments)
//! matches on it instead of re-reading loose JSON or parsing prose.
//!
//! It is stored as JSON in the events table's `data` column, tagged with `"type"`
//! (`{"type": "state", "state": "queued"}`). Rows written before the tag existed hold the
//! older untagged shapes; [`EventData::load`] maps those, so old requests still show.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    attachments::AttachmentRef,
    command_buttons::{CommandButton, LinkButton},
    domain::State,
    store::EventKind,
    visibility::Audience,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventData {
    /// The request changed state.
    State(StateChange),
    /// The request waits for approval; the surfaces post the prompt from this.
    ApprovalRequested(ApprovalRequest),
    /// Someone approved or denied.
    Decision(Decision),
    /// Output worth reading in full.
    Output(Output),
    /// A progress line ("rollout 7/12 updated").
    Progress(Progress),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub state: State,
    /// The line the request ended with, when this state ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why it changed, when that says more than the state ("approved (2 of 2); queued").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Who may approve: users and `group:` names as the spec wrote them.
    pub approvers: Vec<String>,
    /// How many distinct people must approve.
    pub count: u32,
    /// The spec's `when` that asked for approval, in words ("tier is prod").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Unix milliseconds after which the request expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// A line for approvers beyond the command text (parameters left at their defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub approver: String,
    pub decision: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Distinct approvals so far, this one included.
    pub approvals: i64,
    /// Approvals the request needs; unknown for events stored before it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<u32>,
}

impl Decision {
    /// Whether this decision settles the request: a denial, or the last approval needed.
    pub fn settles(&self) -> bool {
        self.decision == Verdict::Deny || self.approvals >= i64::from(self.needed.unwrap_or(1))
    }
}

/// An action's output: what chat shows (buttons under it, a file), who may read it, and
/// the action's own fields for programs reading the API (`stdout`, a link's `url`...),
/// kept at the top level of the JSON as before the tag existed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Output {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<CommandButton>,
    /// Links to open, shown as link buttons (`link_buttons`: the action's own fields may
    /// use `links`, as `proxy list` does).
    #[serde(default, rename = "link_buttons", skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkButton>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentRef>,
    #[serde(default, skip_serializing_if = "Audience::is_everyone")]
    pub private: Audience,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Output {
    /// Output with the action's own fields (`value` must be an object; anything else is
    /// kept under `value`).
    pub fn fields(value: Value) -> Self {
        let fields = match value {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => Map::from_iter([("value".to_owned(), other)]),
        };
        Self {
            fields,
            ..Self::default()
        }
    }

    pub fn to(mut self, audience: Audience) -> Self {
        self.private = audience;
        self
    }

    pub fn button(mut self, button: CommandButton) -> Self {
        self.buttons.push(button);
        self
    }

    pub fn link(mut self, link: LinkButton) -> Self {
        self.links.push(link);
        self
    }

    pub fn attach(mut self, file: Option<AttachmentRef>) -> Self {
        self.attachment = file;
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    #[serde(default, skip_serializing_if = "Audience::is_everyone")]
    pub private: Audience,
}

impl EventData {
    /// The event kind this data belongs to.
    pub fn kind(&self) -> EventKind {
        match self {
            EventData::State(_) => EventKind::State,
            EventData::ApprovalRequested(_) | EventData::Decision(_) => EventKind::Approval,
            EventData::Output(_) => EventKind::Output,
            EventData::Progress(_) => EventKind::Progress,
        }
    }

    pub fn state(state: State, outcome: Option<String>, why: Option<String>) -> Self {
        EventData::State(StateChange { state, outcome, why })
    }

    /// Who may read the event (see `crate::visibility`).
    pub fn audience(&self) -> Audience {
        match self {
            EventData::Output(o) => o.private,
            EventData::Progress(p) => p.private,
            _ => Audience::Everyone,
        }
    }

    /// The data as someone outside its audience sees it: who it was for, nothing else.
    pub fn redacted(&self) -> Self {
        match self {
            EventData::Output(o) => EventData::Output(Output::default().to(o.private)),
            EventData::Progress(p) => EventData::Progress(p.clone()),
            other => other.clone(),
        }
    }

    /// The state a state event announces.
    pub fn announced(&self) -> Option<State> {
        self.state_change().map(|s| s.state)
    }

    /// The change a state event records: the state, and the outcome when it ends the request.
    pub fn state_change(&self) -> Option<&StateChange> {
        match self {
            EventData::State(s) => Some(s),
            _ => None,
        }
    }

    /// The buttons an output carries.
    pub fn buttons(&self) -> &[CommandButton] {
        match self {
            EventData::Output(o) => &o.buttons,
            _ => &[],
        }
    }

    /// The links an output hands out.
    pub fn links(&self) -> &[LinkButton] {
        match self {
            EventData::Output(o) => &o.links,
            _ => &[],
        }
    }

    /// The file an output announces.
    pub fn attachment(&self) -> Option<&AttachmentRef> {
        match self {
            EventData::Output(o) => o.attachment.as_ref(),
            _ => None,
        }
    }

    /// The data of a stored event: the tagged form, or the shape rows had before it.
    pub fn load(kind: EventKind, message: &str, stored: Option<&str>) -> Self {
        let value = stored.and_then(|s| serde_json::from_str::<Value>(s).ok());
        if let Some(v) = value.as_ref().filter(|v| v.get("type").is_some())
            && let Ok(data) = serde_json::from_value::<EventData>(v.clone())
            && data.kind() == kind
        {
            return data;
        }
        legacy::map(kind, message, value)
    }
}

mod legacy;

#[cfg(test)]
mod tests;
