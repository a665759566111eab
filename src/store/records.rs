//! What the store holds, as the rest of deckhand sees it.

use serde::Serialize;

use crate::{
    commands::{ApprovalPolicy, Args},
    domain::{RequestId, State, Surface},
    events::{ApprovalRequest, EventData},
};

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub id: RequestId,
    pub command: String,
    pub action: String,
    pub text: String,
    pub args: Args,
    pub state: State,
    pub requester: String,
    /// The requester's groups when they asked, chat-derived ones included.
    pub requester_groups: Vec<String>,
    pub surface: Surface,
    pub channel: Option<String>,
    pub thread: Option<String>,
    /// Whatever the originating chat surface keeps about the conversation (JSON). It holds
    /// the platform's reply credentials (a Slack response_url, a Discord interaction token),
    /// so it never leaves the process: not in API answers, not in the CLI's JSON.
    #[serde(skip)]
    pub surface_data: Option<serde_json::Value>,
    pub approval: Option<ApprovalPolicy>,
    pub approval_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub worker: Option<String>,
    pub lease_until: Option<i64>,
    pub attempts: i64,
    pub outcome: Option<String>,
}

/// What a surface submits; the store fills in times and the id.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub command: String,
    pub action: String,
    pub text: String,
    pub args: Args,
    pub state: State,
    pub requester: String,
    pub requester_groups: Vec<String>,
    pub surface: Surface,
    pub channel: Option<String>,
    pub thread: Option<String>,
    pub surface_data: Option<serde_json::Value>,
    pub idempotency_key: Option<String>,
    pub approval: Option<ApprovalPolicy>,
    pub approval_expires_at: Option<i64>,
    /// The approval prompt (message, data), stored with the request so a request never
    /// waits for approval without one.
    pub prompt: Option<(String, ApprovalRequest)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The request changed state.
    State,
    /// Something happened along the way ("2/3 updated, 1 available").
    Progress,
    /// Output worth reading in full (help text, a list, logs).
    Output,
    /// Someone approved or denied.
    Approval,
}

impl EventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::State => "state",
            EventKind::Progress => "progress",
            EventKind::Output => "output",
            EventKind::Approval => "approval",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "state" => EventKind::State,
            "progress" => EventKind::Progress,
            "output" => EventKind::Output,
            "approval" => EventKind::Approval,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub request_id: RequestId,
    pub seq: i64,
    pub at: i64,
    pub kind: EventKind,
    pub message: String,
    /// What the event carries, typed (see `crate::events`).
    pub data: EventData,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApprovalRecord {
    pub approver: String,
    pub decision: String,
    pub reason: Option<String>,
    pub surface: String,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub at: i64,
    pub actor: String,
    pub surface: String,
    pub request_id: Option<String>,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub detail: Option<String>,
}

/// Who caused a change, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub who: &'a str,
    pub surface: &'a str,
}

impl Actor<'static> {
    pub const WORKER: Actor<'static> = Actor {
        who: "deckhand",
        surface: "worker",
    };
}

/// Fields a transition sets along with the new state.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub claim: Option<(String, i64)>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub requester: Option<String>,
    pub states: Vec<State>,
    pub limit: i64,
}
