//! Socket Mode: the same commands and clicks over a WebSocket deckhand opens to Slack, for
//! installations without a public URL. apps.connections.open (app-level token) gives the
//! URL; every envelope is acknowledged with its envelope_id once what it asked is stored;
//! `disconnect` messages (Slack rotating the connection) reconnect at once, dropped
//! sockets reconnect with exponential backoff.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use slack_morphism::events::{SlackCommandEvent, SlackInteractionEvent};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{
    inbound::{self, Inbound, InboundError},
    modals,
};
use crate::app::App;

const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error(transparent)]
    Open(#[from] super::web::WebError),
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the connection closed")]
    Closed,
}

/// How a connection ended.
enum Ended {
    Shutdown,
    /// Slack asked us to reconnect (it is about to close this connection).
    Disconnect,
    /// The socket went away; `connected` says whether Slack had said hello on it.
    Dropped {
        connected: bool,
        error: SocketError,
    },
}

/// Keeps one Socket Mode connection up until `shutdown`.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let inbound = Arc::new(Inbound::new(&app.config));
    let min = Duration::from_millis(app.config.slack.reconnect_min_ms.max(1));
    let mut backoff = min;
    loop {
        let ended = session(&app, &inbound, &shutdown).await;
        let wait = match ended {
            Ended::Shutdown => return,
            Ended::Disconnect => {
                tracing::info!("Slack asked for a new Socket Mode connection");
                backoff = min;
                continue;
            }
            Ended::Dropped { connected, error } => {
                if connected {
                    backoff = min;
                }
                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "Socket Mode connection lost");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn session(app: &Arc<App>, inbound: &Arc<Inbound>, shutdown: &CancellationToken) -> Ended {
    let dropped = |connected, error| Ended::Dropped { connected, error };
    let url = tokio::select! {
        _ = shutdown.cancelled() => return Ended::Shutdown,
        r = inbound.web.open_connection() => match r {
            Ok(u) => u,
            Err(e) => return dropped(false, e.into()),
        },
    };
    let ws = match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok((ws, _)) => ws,
        Err(e) => return dropped(false, e.into()),
    };
    let (mut sink, mut stream) = ws.split();
    // Handlers run on their own tasks (one slow store write must not hold up the others)
    // and hand their acknowledgement back here, the only writer.
    let (acks, mut ack_rx) = mpsc::unbounded_channel::<String>();
    let mut connected = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = sink.send(Message::Close(None)).await;
                return Ended::Shutdown;
            }
            Some(ack) = ack_rx.recv() => {
                if let Err(e) = sink.send(Message::Text(ack.into())).await {
                    return dropped(connected, e.into());
                }
            }
            frame = stream.next() => match frame {
                None => return dropped(connected, SocketError::Closed),
                Some(Err(e)) => return dropped(connected, e.into()),
                Some(Ok(Message::Close(_))) => return dropped(connected, SocketError::Closed),
                Some(Ok(Message::Text(text))) => {
                    match on_frame(app, inbound, text.as_str(), &acks) {
                        Frame::Hello => connected = true,
                        Frame::Disconnect => return Ended::Disconnect,
                        Frame::Other => {}
                    }
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => {}
            },
        }
    }
}

enum Frame {
    Hello,
    Disconnect,
    Other,
}

fn ack(envelope_id: &str, payload: Option<Value>) -> String {
    match payload {
        Some(p) => json!({ "envelope_id": envelope_id, "payload": p }).to_string(),
        None => json!({ "envelope_id": envelope_id }).to_string(),
    }
}

fn on_frame(app: &Arc<App>, inbound: &Arc<Inbound>, text: &str, acks: &mpsc::UnboundedSender<String>) -> Frame {
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        tracing::warn!("Socket Mode frame that is not JSON");
        return Frame::Other;
    };
    let kind = v["type"].as_str().unwrap_or_default().to_owned();
    let envelope = v["envelope_id"].as_str().map(str::to_owned);
    match kind.as_str() {
        "hello" => return Frame::Hello,
        "disconnect" => return Frame::Disconnect,
        _ => {}
    }
    let Some(envelope) = envelope else {
        return Frame::Other;
    };
    let (app, inbound, acks) = (app.clone(), inbound.clone(), acks.clone());
    // slack-morphism's envelope models are not exported without its hyper feature; the
    // envelope is two fields, the payloads are its models.
    tokio::spawn(async move {
        let mut response = None;
        let result = match kind.as_str() {
            "slash_commands" => match serde_json::from_value::<SlackCommandEvent>(v["payload"].take()) {
                Ok(ev) => inbound::command(&app, &inbound, ev).await,
                Err(e) => Err(InboundError::Malformed(e.to_string())),
            },
            "interactive" => match modals::interaction(&app, &inbound, &v["payload"]).await {
                // A modal's answer (field errors) rides on the acknowledgement.
                Some(answer) => answer.map(|body| response = body),
                None => match serde_json::from_value::<SlackInteractionEvent>(v["payload"].take()) {
                    Ok(ev) => inbound::interaction(&app, &inbound, ev).await,
                    Err(e) => Err(InboundError::Malformed(e.to_string())),
                },
            },
            // Events API and anything newer: nothing to do, but acknowledge so Slack does
            // not keep redelivering it.
            _ => Ok(()),
        };
        match result {
            Ok(()) => {}
            Err(InboundError::Malformed(e)) => tracing::warn!(%envelope, error = %e, "malformed Socket Mode envelope"),
            Err(InboundError::Store(e)) => {
                // Unacknowledged, Slack redelivers it; the trigger_id keeps that idempotent.
                tracing::error!(%envelope, error = %e, "could not store a Socket Mode request; leaving it unacknowledged");
                return;
            }
        }
        let _ = acks.send(ack(&envelope, response));
    });
    Frame::Other
}
