use serde::Deserialize;

/// `[slack]` in the configuration. Slack is off while `bot_token` is empty.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    pub bot_token: String,
}
