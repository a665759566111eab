//! `GET /shell/{token}/ws`: claims the link, attaches to the pod with a terminal, upgrades to
//! WebSocket and relays until the shell exits or the client leaves.
//!
//! The upgrade is done by hand with hyper and tokio-tungstenite (the version kube uses):
//! axum's `ws` feature would pull in a second tokio-tungstenite.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use kube::api::{AttachedProcess, TerminalSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::sync::CancellationToken;

use super::{
    Ending, Recorder, Session, Sessions,
    check::{Refusal, open_session},
    protocol::{ClientMessage, ServerMessage},
};
use crate::{
    app::App,
    cluster::{attach::attach, exec::Exit},
    domain::HumanDuration,
};

/// Keeps idle sessions alive through load balancers that drop silent connections.
const PING_EVERY: Duration = Duration::from_secs(30);
/// After the terminal's output ends, how long the exit status may take to arrive.
const STATUS_WAIT: Duration = Duration::from_secs(10);
/// The largest message a client may send (a paste is a message).
const MAX_MESSAGE: usize = 1024 * 1024;

pub(super) async fn socket(State(app): State<Arc<App>>, Path(token): Path<String>, mut req: Request) -> Response {
    let accept = match websocket_accept(req.headers()) {
        Ok(a) => a,
        Err(r) => return r.text(),
    };
    let session = match open_session(&app, &token).await {
        Ok(s) => s,
        Err(r) => return r.text(),
    };
    let client = match caller(&app, req.headers(), &session) {
        Ok(c) => c,
        Err(r) => return r.text(),
    };
    if client == "browser"
        && let Err(r) = super::binding::check_socket(&app, req.headers(), &session).await
    {
        return r.text();
    }
    let sessions = Sessions::new(app.store.pool().clone());
    match sessions.claim(&session, client).await {
        Ok(true) => {}
        // Someone else's connection won the race for this link a moment ago.
        Ok(false) => return open_session(&app, &token).await.err().map_or_else(used, |r| r.text()),
        Err(e) => {
            tracing::warn!(session = %session.id, error = %e, "could not claim a shell session");
            return Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Deckhand could not start this shell session just now; try again in a moment.",
            )
            .text();
        }
    }
    // Attach before answering, so a pod that cannot be reached is an HTTP error the client
    // can show, and the link is given back for another try.
    let process = match located_attach(&app, &session).await {
        Ok(p) => p,
        Err(e) => {
            let why = e.to_string();
            tracing::warn!(session = %session.id, pod = %session.pod, error = %why, "shell attach failed");
            if let Err(e) = sessions.release(&session, &why).await {
                tracing::warn!(session = %session.id, error = %e, "could not give a shell link back");
            }
            return Refusal::new(
                StatusCode::BAD_GATEWAY,
                "Pod unreachable",
                format!(
                    "Deckhand could not open a shell in pod {} of {} in {}: {why}. The link still works until it expires; try again, or ask for a new one if the pod is gone.",
                    session.pod, session.app, session.env
                ),
            )
            .text();
        }
    };
    tracing::info!(session = %session.id, user = %session.requester, pod = %session.pod, env = %session.env, client, "shell session started");
    let on_upgrade = hyper::upgrade::on(&mut req);
    // Counted until its end is recorded, so a shutdown can wait for that.
    let live = app.shells.enter();
    tokio::spawn(async move {
        let mut ws = match on_upgrade.await {
            Ok(upgraded) => {
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(limits())).await
            }
            Err(e) => {
                let ending = Ending::Failed(format!("the WebSocket upgrade failed: {e}"));
                record_end(&sessions, &session, &ending).await;
                return;
            }
        };
        let idle = app.cluster.config().shell_idle_timeout;
        let (ending, last_word) = relay(&mut ws, process, &sessions, &session, &live.stop, idle).await;
        // On record before the client hears of it, so whoever reads the audit after the
        // session ended sees the end.
        record_end(&sessions, &session, &ending).await;
        if let Some(message) = last_word {
            let _ = ws.send(Message::text(message.to_text())).await;
        }
        let _ = ws.close(None).await;
        drop(live);
    });
    let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    *r.body_mut() = Body::empty();
    r
}

/// Keystrokes and resizes are small: a client sending megabytes at once is broken or hostile,
/// and tungstenite's default (64 MiB) would buffer all of it.
fn limits() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

async fn record_end(sessions: &Sessions, session: &Session, ending: &Ending) {
    tracing::info!(session = %session.id, pod = %session.pod, ending = %ending.describe(), "shell session ended");
    if let Err(e) = sessions.finish(session, ending).await {
        tracing::warn!(session = %session.id, error = %e, "could not record the end of a shell session");
    }
}

fn used() -> Response {
    Refusal::new(
        StatusCode::GONE,
        "Shell link already used",
        "This shell link has already opened its session.",
    )
    .text()
}

/// The Sec-WebSocket-Accept for a proper WebSocket handshake, or what is wrong with it.
fn websocket_accept(headers: &HeaderMap) -> Result<HeaderValue, Refusal> {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    match (upgrade, version, headers.get(header::SEC_WEBSOCKET_KEY)) {
        (true, true, Some(key)) => HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|_| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "Bad handshake",
                "The Sec-WebSocket-Key header is unusable.",
            )
        }),
        _ => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "WebSocket only",
            "This address is the terminal's WebSocket (version 13). Open the link without /ws in a browser, or use `deckhand shell`.",
        )),
    }
}

/// `cli` when the client shows a deckhand token, which must then be the requester's;
/// `browser` otherwise, which must then come from the browser the link is bound to
/// (`binding::check_socket`).
fn caller(app: &App, headers: &HeaderMap, session: &Session) -> Result<&'static str, Refusal> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Ok("browser");
    }
    let principal = crate::http::bearer(headers).and_then(|t| app.directory.by_token(t));
    match principal {
        Some(p) if p.user == session.requester => Ok("cli"),
        Some(p) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Not your shell",
            format!(
                "This shell link belongs to {}'s request; {} cannot open it. Ask for your own with `shell {} in {}`.",
                session.requester, p.user, session.app, session.env
            ),
        )),
        None => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Unknown token",
            "The Authorization header does not carry a deckhand token; check DECKHAND_TOKEN.",
        )),
    }
}

/// Relays until the shell exits, the client leaves, the client is idle too long or deckhand
/// shuts down (`stop`). Returns how it ended and what to tell the client last, if anything.
async fn relay<S>(
    ws: &mut WebSocketStream<S>,
    mut process: AttachedProcess,
    sessions: &Sessions,
    session: &Session,
    stop: &CancellationToken,
    idle: HumanDuration,
) -> (Ending, Option<ServerMessage>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (Some(mut stdin), Some(mut stdout)) = (process.stdin(), process.stdout()) else {
        let why = "the exec stream has no stdin or stdout".to_owned();
        return (Ending::Failed(why.clone()), Some(ServerMessage::Error { message: why }));
    };
    let mut resize = process.terminal_size();
    let status = process.take_status();
    let mut recorder = session.record.then(Recorder::default);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut buf = vec![0u8; 16 * 1024];
    // Reset by every key; output alone (a `tail -f`) does not keep a session alive.
    let quiet = tokio::time::sleep(idle.as_duration());
    tokio::pin!(quiet);
    let ending = loop {
        tokio::select! {
            n = stdout.read(&mut buf) => match n {
                Ok(0) => break None,
                Ok(n) => {
                    if ws.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        break Some((Ending::Disconnected, None));
                    }
                }
                Err(e) => {
                    let why = format!("reading the pod's terminal: {e}");
                    break Some((Ending::Failed(why.clone()), Some(ServerMessage::Error { message: why })));
                }
            },
            m = ws.next() => match m {
                Some(Ok(Message::Binary(keys))) => {
                    quiet.as_mut().reset(tokio::time::Instant::now() + idle.as_duration());
                    if let Some(r) = recorder.as_mut()
                        && r.feed(&keys)
                        && let Err(e) = sessions.record_lines(&session.id, r.lines()).await
                    {
                        tracing::warn!(session = %session.id, error = %e, "could not record typed lines");
                    }
                    if let Err(e) = stdin.write_all(&keys).await {
                        let why = format!("writing to the pod's terminal: {e}");
                        break Some((Ending::Failed(why.clone()), Some(ServerMessage::Error { message: why })));
                    }
                }
                Some(Ok(Message::Text(text))) => match ClientMessage::parse(&text) {
                    Ok(ClientMessage::Resize { cols, rows }) => {
                        let ClientMessage::Resize { cols, rows } = ClientMessage::resize(cols, rows);
                        if let Some(tx) = resize.as_mut() {
                            let _ = tx.send(TerminalSize { width: cols, height: rows }).await;
                        }
                    }
                    Err(message) => {
                        let ending = Ending::Failed(format!("the client sent {message}"));
                        break Some((ending, Some(ServerMessage::Error { message })));
                    }
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break Some((Ending::Disconnected, None)),
                Some(Ok(_)) => {}
            },
            () = &mut quiet => {
                let message = format!("nothing was typed for {idle}, which ends the session (kubernetes.shell_idle_timeout)");
                break Some((Ending::Idle(idle), Some(ServerMessage::Error { message })));
            }
            () = stop.cancelled() => {
                let message = "deckhand is shutting down, which ends this session; ask for a new shell in a moment".to_owned();
                break Some((Ending::Failed("deckhand shut down".into()), Some(ServerMessage::Error { message })));
            }
            _ = ping.tick() => {
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    break Some((Ending::Disconnected, None));
                }
            }
        }
    };
    if let Some(end) = ending {
        // Closing the exec stream makes the kubelet hang the shell up.
        process.abort();
        return end;
    }
    // The terminal's output ended: the shell exited and its status follows.
    let exit = match status {
        Some(s) => tokio::time::timeout(STATUS_WAIT, s).await.ok().flatten(),
        None => None,
    };
    let (ending, message) = match exit.as_ref().map(crate::cluster::exec::exit_of) {
        Some(Exit::Code(code)) => (Ending::Exited(code), ServerMessage::Exit { code }),
        Some(Exit::Failed(why)) => (Ending::Failed(why.clone()), ServerMessage::Error { message: why }),
        None => {
            let why = "the pod closed the session without an exit status".to_owned();
            (Ending::Failed(why.clone()), ServerMessage::Error { message: why })
        }
    };
    (ending, Some(message))
}

/// Attaches in the cluster the session's environment is in.
async fn located_attach(
    app: &crate::app::App,
    session: &super::Session,
) -> Result<kube::api::AttachedProcess, crate::cluster::attach::AttachError> {
    let cluster = app.clusters.locate(&session.env).await?;
    attach(&cluster, session).await
}
