//! What the browser page and the CLI say to deckhand over a shell WebSocket, and back.
//!
//! Binary frames carry terminal bytes: keystrokes one way, the terminal's output the other.
//! Text frames carry one JSON control message each:
//!
//! - client -> deckhand: `{"type":"resize","cols":120,"rows":40}`
//! - deckhand -> client: `{"type":"exit","code":3}` when the shell exits, or
//!   `{"type":"error","message":"..."}` when the session cannot go on; the socket closes after.
//!
//! Ctrl-C and every other key are bytes in a binary frame: the pod's terminal turns them into
//! signals, exactly as on a local terminal.

use serde::{Deserialize, Serialize};

/// A terminal is never smaller than this, nor absurdly large; sizes outside are clamped, so a
/// broken client cannot ask the container's terminal for a 0x0 or 65535-wide window.
const MIN_SIZE: u16 = 2;
const MAX_SIZE: u16 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Resize { cols: u16, rows: u16 },
}

impl ClientMessage {
    /// Parses a text frame; the error says what a correct one looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            format!("unreadable control message ({e}); expected {{\"type\":\"resize\",\"cols\":N,\"rows\":N}}")
        })
    }

    pub fn resize(cols: u16, rows: u16) -> Self {
        ClientMessage::Resize {
            cols: cols.clamp(MIN_SIZE, MAX_SIZE),
            rows: rows.clamp(MIN_SIZE, MAX_SIZE),
        }
    }

    pub fn to_text(self) -> String {
        // A plain enum of integers always serializes.
        serde_json::to_string(&self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Exit { code: i32 },
    Error { message: String },
}

impl ServerMessage {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_round_trips_and_is_clamped() {
        let m = ClientMessage::parse(r#"{"type":"resize","cols":120,"rows":40}"#).unwrap();
        assert_eq!(m, ClientMessage::Resize { cols: 120, rows: 40 });
        assert_eq!(
            ClientMessage::resize(0, 60000),
            ClientMessage::Resize { cols: 2, rows: 1000 }
        );
        assert_eq!(
            ClientMessage::parse(&ClientMessage::resize(80, 24).to_text()).unwrap(),
            ClientMessage::Resize { cols: 80, rows: 24 }
        );
    }

    #[test]
    fn bad_control_messages_say_what_is_expected() {
        let e = ClientMessage::parse(r#"{"type":"reboot"}"#).unwrap_err();
        assert!(e.contains(r#"expected {"type":"resize""#), "{e}");
        assert!(ClientMessage::parse("not json").is_err());
    }

    #[test]
    fn server_messages_are_tagged_json() {
        assert_eq!(ServerMessage::Exit { code: 3 }.to_text(), r#"{"type":"exit","code":3}"#);
        assert_eq!(
            ServerMessage::parse(r#"{"type":"error","message":"gone"}"#),
            Some(ServerMessage::Error { message: "gone".into() })
        );
    }
}
