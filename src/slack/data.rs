//! The per-request Slack state kept with the request in the store (`surface_data`): the
//! channel and who asked, the root message and the prompts' ts, the decisions so far, and
//! what the root message last showed, so every delivery finds the conversation again.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::RequestRecord;

/// Where one approval prompt was posted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// The per-request Slack state kept in the store (`surface_data`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackData {
    pub channel: String,
    /// The Slack user who asked.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub response_url: Option<String>,
    /// The root status message, once posted.
    #[serde(default)]
    pub root_ts: Option<String>,
    #[serde(default)]
    pub prompts: Vec<Posted>,
    #[serde(default)]
    pub prompt_summary: Option<String>,
    /// True while the prompts still show buttons.
    #[serde(default)]
    pub prompt_open: bool,
    /// Decisions so far, as lines for the prompt ("✅ @x approved (1 of 2)").
    #[serde(default)]
    pub decisions: Vec<String>,
    /// Set at submission for a read-only command (`surface::is_private_answer`); kept here
    /// so writing this state back keeps it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private_answer: bool,
    /// A private answer's output was sent (so its success needs no line of its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answered: bool,
    /// An output was posted in the thread: a success's root message says "finished" and
    /// leaves the output to the reply (`chat::text::finished`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_shown: bool,
    /// The latest progress line, shown in the root message while the request runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The root message's text as last posted or edited (`chat::shown`): an edit that would
    /// show the same text is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_shown: Option<String>,
}

impl SlackData {
    pub fn read(request: &RequestRecord) -> Option<Self> {
        serde_json::from_value(request.surface_data.clone()?).ok()
    }
}

/// The surface data a Slack submission starts with.
pub fn initial_data(channel: &str, user: &str, response_url: &str) -> Value {
    json!({ "channel": channel, "user": user, "response_url": response_url })
}
