//! What deckhand remembers about a Discord request, kept in the store's per-request surface
//! data so another replica (or a restart) can go on reporting where the request came from.

use serde::{Deserialize, Serialize};

use crate::{
    domain::{RequestId, now_ms},
    store::{Store, StoreError},
};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordState {
    pub application_id: String,
    /// The interaction token: edits @original and posts follow-ups until it expires.
    pub token: String,
    /// Unix milliseconds when the interaction arrived.
    pub received_at: i64,
    /// Unix milliseconds after which the token is not used any more (a margin before
    /// Discord's own expiry, so a call does not race it).
    pub token_expires_at: i64,
    pub channel_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<String>,
    /// The requester's Discord user id: private output goes to them (an ephemeral follow-up
    /// while the token lasts, a DM after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The status message (the interaction's original response), once known; after the
    /// token expired it is edited through the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_message_id: Option<String>,
    /// The message holding the Approve / Deny buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_message_id: Option<String>,
    /// Set at submission for a read-only command (`surface::is_private_answer`); kept here
    /// so writing this state back keeps it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private_answer: bool,
    /// A private answer's output was sent (so its success needs no line of its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answered: bool,
    /// An output was posted as a follow-up: a success's status message says "finished" and
    /// leaves the output to the follow-up (`chat::text::finished`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_shown: bool,
    /// The status message's text as last shown (`chat::shown`): an edit that would show the
    /// same text is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_shown: Option<String>,
}

impl DiscordState {
    pub fn token_valid(&self) -> bool {
        !self.token.is_empty() && now_ms() < self.token_expires_at
    }

    /// The state stored for `id`, read fresh: the record a surface is handed may predate it.
    pub async fn load(store: &Store, id: &RequestId) -> Result<Option<Self>, StoreError> {
        let Some(record) = store.get(id).await? else {
            return Ok(None);
        };
        Ok(record
            .surface_data
            .and_then(|v| serde_json::from_value::<DiscordState>(v).ok()))
    }
}
