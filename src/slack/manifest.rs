//! The Slack app manifest, generated from the command specs so installing is a paste.

use serde_json::json;
use slack_morphism::SlackAppManifest;

use super::{SlackError, config::SlackConfig};
use crate::commands::Router;

/// What the bot does and therefore needs: receive the slash command, post and edit in
/// channels (also ones it was not invited to), upload charts, read user groups for RBAC.
pub const BOT_SCOPES: &[&str] = &[
    "commands",
    "chat:write",
    "chat:write.public",
    "files:write",
    "usergroups:read",
];

/// Slack's limits on a slash command's description and usage hint.
const MAX_DESCRIPTION: usize = 140;
const MAX_USAGE_HINT: usize = 1000;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The manifest as pretty JSON (Slack's "Create from manifest" accepts JSON or YAML).
/// `base_url` is where deckhand is reachable from Slack; Socket Mode needs none.
pub fn render(config: &SlackConfig, router: &Router, base_url: &str) -> Result<String, SlackError> {
    let base = base_url.trim().trim_end_matches('/');
    if !config.socket_mode && !base.starts_with("https://") {
        return Err(SlackError::BadUrl(base_url.to_owned()));
    }
    let names: Vec<&str> = router.specs().iter().map(|s| s.name.as_str()).collect();
    let usage: Vec<&str> = router.specs().iter().map(|s| s.usage.as_str()).collect();
    let mut command = json!({
        "command": config.command,
        "description": clip(&format!("Platform self-service: {}", names.join(", ")), MAX_DESCRIPTION),
        "usage_hint": clip(&usage.join(" | "), MAX_USAGE_HINT),
        "should_escape": false,
    });
    let mut interactivity = json!({ "is_enabled": true });
    // Socket Mode needs no URLs: Slack delivers over the connection deckhand opens.
    if !config.socket_mode {
        command["url"] = json!(format!("{base}/slack/commands"));
        interactivity["request_url"] = json!(format!("{base}/slack/interactions"));
    }
    let manifest = json!({
        "display_information": {
            "name": config.app_name,
            "description": "Self-service front door of the Kubernetes platform",
            "long_description": format!(
                "Deckhand creates disposable environments, deploys images and watches rollouts, shows status and logs, and runs load tests on the Kubernetes platform. Type `{} help` for the commands you may run. Risky requests wait for an approval in the channel; progress, links and results arrive in each request's thread.",
                config.command
            ),
        },
        "features": {
            "bot_user": { "display_name": config.app_name, "always_online": true },
            "slash_commands": [command],
        },
        "oauth_config": { "scopes": { "bot": BOT_SCOPES } },
        "settings": {
            "interactivity": interactivity,
            "org_deploy_enabled": false,
            "socket_mode_enabled": config.socket_mode,
        },
    });
    // Through slack-morphism's model: a field Slack would not recognise fails here, not
    // at paste time.
    let typed: SlackAppManifest = serde_json::from_value(manifest).map_err(|e| SlackError::Manifest(e.to_string()))?;
    serde_json::to_string_pretty(&typed).map_err(|e| SlackError::Manifest(e.to_string()))
}
