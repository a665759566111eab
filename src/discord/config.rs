use serde::Deserialize;

/// `[discord]` in the configuration. Discord is off while `public_key` is empty.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    pub public_key: String,
}
