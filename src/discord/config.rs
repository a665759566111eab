use serde::{Deserialize, Deserializer};

use crate::domain::HumanDuration;

/// `[discord]` in the configuration. Discord is off while `public_key` is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// The application's public key (64 hex digits) from the developer portal; interactions
    /// are verified with it.
    #[serde(deserialize_with = "public_key")]
    pub public_key: String,
    /// The application id; needed by `deckhand discord register`.
    pub application_id: String,
    /// The bot token: command registration, and messages after an interaction token expired.
    pub bot_token: String,
    /// Discord's REST API; tests point it at a local fake.
    pub api_base: String,
    /// The top-level slash command every spec hangs under (`/deckhand env create ...`).
    pub command: String,
    /// How long an interaction token stays valid (Discord: 15 minutes); after that deckhand
    /// writes with the bot token in the channel instead.
    pub token_lifetime: HumanDuration,
    /// Interactions whose signed timestamp is further than this from the clock are refused,
    /// so a captured request cannot be replayed later.
    pub max_clock_skew: HumanDuration,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            public_key: String::new(),
            application_id: String::new(),
            bot_token: String::new(),
            api_base: "https://discord.com/api/v10".into(),
            command: "deckhand".into(),
            token_lifetime: HumanDuration::from_secs(15 * 60),
            max_clock_skew: HumanDuration::from_secs(5 * 60),
        }
    }
}

impl DiscordConfig {
    pub fn enabled(&self) -> bool {
        !self.public_key.is_empty()
    }
}

/// Refuses a malformed key when the configuration loads, so a typo is reported with its
/// key name instead of every interaction failing later.
fn public_key<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let key = String::deserialize(d)?;
    if !key.is_empty() {
        super::verify::InteractionVerifier::new(&key).map_err(serde::de::Error::custom)?;
    }
    Ok(key)
}
