//! What a status message shows now, as a short digest kept in the conversation state, so an
//! edit that would show the same text is skipped. A waiting request's state event and its
//! approval prompt each refresh the status message; without this, both re-send an unchanged
//! text (on Slack, two of every four Web API calls for a command that needs approval). Slack
//! keeps it as `SlackData::root_shown`, Discord as `DiscordState::status_shown`.

use sha2::Digest;

/// 16 hex digits of SHA-256 of `text`: stable across builds and replicas, unlike std's hasher.
pub fn digest(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` is what `shown` says the message already shows.
pub fn unchanged(shown: Option<&str>, text: &str) -> bool {
    shown == Some(digest(text).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_same_digest_other_text_other_digest() {
        let d = digest("waiting for approval");
        assert_eq!(d.len(), 16);
        assert!(unchanged(Some(&d), "waiting for approval"));
        assert!(!unchanged(Some(&d), "queued"));
        assert!(!unchanged(None, "waiting for approval"));
    }
}
