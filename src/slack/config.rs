use serde::Deserialize;

use crate::domain::HumanDuration;

/// `[slack]` in the configuration. Slack is off while `bot_token` is empty.
///
/// Every key has a default, so the section is optional; `config/default.toml` documents them.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSlackConfig")]
pub struct SlackConfig {
    /// Bot token (`xoxb-...`) for the Web API. Empty: Slack is off.
    pub bot_token: String,
    /// Signing secret from the app's Basic Information page; verifies HTTP requests.
    pub signing_secret: String,
    /// Receive commands and clicks over a WebSocket (Socket Mode) instead of HTTP.
    pub socket_mode: bool,
    /// App-level token (`xapp-...`, scope `connections:write`), needed for Socket Mode.
    pub app_token: String,
    /// Base of the Web API; tests point it at a local fake.
    pub api_url: String,
    /// The slash command the app registers (the manifest uses it).
    pub command: String,
    /// Name shown for the app and its bot user in the manifest.
    pub app_name: String,
    /// Channel id that receives a copy of every approval prompt; empty for none.
    pub approvals_channel: String,
    /// Largest request body accepted on /slack/* (bigger gets 413 before verification).
    pub body_limit: usize,
    /// Progress updates for one thread closer together than this are merged into one reply.
    pub progress_interval_ms: u64,
    /// How long one outgoing message keeps being retried through 429s and outages.
    pub retry_for: HumanDuration,
    /// Socket Mode: first reconnect delay after a dropped socket (doubles up to 30 s).
    pub reconnect_min_ms: u64,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            bot_token: String::new(),
            signing_secret: String::new(),
            socket_mode: false,
            app_token: String::new(),
            api_url: "https://slack.com/api".into(),
            command: "/deckhand".into(),
            app_name: "deckhand".into(),
            approvals_channel: String::new(),
            body_limit: 65_536,
            progress_interval_ms: 2_000,
            retry_for: HumanDuration::from_secs(600),
            reconnect_min_ms: 500,
        }
    }
}

impl SlackConfig {
    /// Slack is on once a bot token is configured.
    pub fn enabled(&self) -> bool {
        !self.bot_token.is_empty()
    }

    /// HTTP endpoints are served when Slack is on and Socket Mode is not.
    pub fn http_enabled(&self) -> bool {
        self.enabled() && !self.socket_mode
    }

    /// The rules serde cannot express; checked when the configuration is loaded.
    pub fn check(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        if self.socket_mode && self.app_token.is_empty() {
            return Err("socket_mode = true needs app_token (an xapp-... app-level token)".into());
        }
        if !self.socket_mode && self.signing_secret.is_empty() {
            return Err("bot_token is set but signing_secret is empty: HTTP requests could not be verified".into());
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            return Err(format!(
                "api_url '{}' must start with https:// or http://",
                self.api_url
            ));
        }
        if !self.command.starts_with('/') || self.command.len() < 2 {
            return Err(format!("command '{}' must start with '/'", self.command));
        }
        if self.body_limit < 1024 {
            return Err("body_limit must be at least 1024 bytes".into());
        }
        Ok(())
    }
}

/// The shape on disk; `SlackConfig` is this after `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSlackConfig {
    bot_token: String,
    signing_secret: String,
    socket_mode: bool,
    app_token: String,
    api_url: String,
    command: String,
    app_name: String,
    approvals_channel: String,
    body_limit: usize,
    progress_interval_ms: u64,
    retry_for: HumanDuration,
    reconnect_min_ms: u64,
}

impl Default for RawSlackConfig {
    fn default() -> Self {
        let d = SlackConfig::default();
        Self {
            bot_token: d.bot_token,
            signing_secret: d.signing_secret,
            socket_mode: d.socket_mode,
            app_token: d.app_token,
            api_url: d.api_url,
            command: d.command,
            app_name: d.app_name,
            approvals_channel: d.approvals_channel,
            body_limit: d.body_limit,
            progress_interval_ms: d.progress_interval_ms,
            retry_for: d.retry_for,
            reconnect_min_ms: d.reconnect_min_ms,
        }
    }
}

impl TryFrom<RawSlackConfig> for SlackConfig {
    type Error = String;

    fn try_from(r: RawSlackConfig) -> Result<Self, Self::Error> {
        let c = SlackConfig {
            bot_token: r.bot_token,
            signing_secret: r.signing_secret,
            socket_mode: r.socket_mode,
            app_token: r.app_token,
            api_url: r.api_url.trim_end_matches('/').to_owned(),
            command: r.command,
            app_name: r.app_name,
            approvals_channel: r.approvals_channel,
            body_limit: r.body_limit,
            progress_interval_ms: r.progress_interval_ms,
            retry_for: r.retry_for,
            reconnect_min_ms: r.reconnect_min_ms,
        };
        c.check()?;
        Ok(c)
    }
}
