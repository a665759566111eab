//! `deckhand shell <app> --env <env>`: asks for a shell through the API (so approval rules
//! apply as in chat), follows the request through approval, then connects the session's
//! WebSocket with the user's deckhand token and turns this terminal into the pod's: raw
//! mode, window size at start and on every resize, keys out, output in, and the shell's exit
//! code as ours. Without a terminal on stdin it relays plain bytes (no raw mode, no resize)
//! and sends Ctrl-D when stdin ends, so `echo 'ls; exit 3' | deckhand shell ...` works.

use std::{
    io::{IsTerminal, Read, Write},
    os::fd::{AsRawFd, RawFd},
};

use anyhow::{Context, bail};
use deckhand::{
    client::Client,
    shell::protocol::{ClientMessage, ServerMessage},
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

use crate::printable::safe;

/// Exit codes besides the shell's own.
const FAILED: u8 = 1;
const NOT_DONE: u8 = 3;

const BROKE: &str = "the connection to the shell session broke";

/// Where the session's WebSocket is: the path deckhand announced (`/shell/TOKEN/ws`) on the
/// address this CLI already talks to, which may differ from the public URL in the link.
fn socket_url(api_base: &str, announced: &str) -> anyhow::Result<String> {
    let path = announced
        .find("/shell/")
        .map(|i| &announced[i..])
        .with_context(|| format!("deckhand announced an unusable shell address: {announced}"))?;
    let base = api_base.trim_end_matches('/');
    Ok(match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}{path}"),
        Some((_, rest)) => format!("ws://{rest}{path}"),
        None => format!("ws://{base}{path}"),
    })
}

/// The shell data of the request's output event, once it has one.
fn shell_data(event: &Value) -> Option<Value> {
    let shell = &event["data"]["shell"];
    shell["ws_url"].is_string().then(|| shell.clone())
}

fn is_terminal(state: &str) -> bool {
    !matches!(state, "pending_approval" | "queued" | "running")
}

pub async fn shell(api_base: &str, token: &str, app: &str, env: &str) -> anyhow::Result<u8> {
    let client = Client::new(api_base, token);
    let submitted = client.submit(&format!("shell {app} in {env}")).await?;
    let mut request = submitted["request"].clone();
    let id = safe(request["id"].as_str().unwrap_or_default());
    let mut found = None;
    let mut last_seq = 0;
    for e in submitted["events"].as_array().into_iter().flatten() {
        last_seq = e["seq"].as_i64().unwrap_or(last_seq);
        found = found.or_else(|| shell_data(e));
        note(e);
    }
    while !is_terminal(request["state"].as_str().unwrap_or_default()) {
        client
            .follow(&id, last_seq, |e| {
                last_seq = e["seq"].as_i64().unwrap_or(last_seq);
                if found.is_none() {
                    found = shell_data(&e);
                }
                note(&e);
            })
            .await?;
        request = client.get(&id).await?["request"].clone();
        if !is_terminal(request["state"].as_str().unwrap_or_default()) {
            // The stream broke (deckhand restarting): resume after the last event seen.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    match request["state"].as_str().unwrap_or_default() {
        "succeeded" => {}
        "failed" => {
            eprintln!(
                "error: {}",
                safe(request["outcome"].as_str().unwrap_or("the request failed"))
            );
            return Ok(FAILED);
        }
        other => {
            eprintln!("{id} {}: no shell", safe(other));
            return Ok(NOT_DONE);
        }
    }
    let Some(shell) = found else {
        bail!("request {id} succeeded but announced no shell session; is the server a deckhand with `pod.shell`?");
    };
    let announced = shell["ws_url"].as_str().unwrap_or_default();
    let url = socket_url(api_base, announced)?;
    eprintln!(
        "connecting to pod {} of {app} in {env}{}",
        safe(shell["pod"].as_str().unwrap_or("?")),
        if shell["recorded"] == true {
            " (the lines you type are recorded)"
        } else {
            ""
        }
    );
    session(&url, token).await
}

/// Prints a request's progress on stderr; stdout belongs to the remote terminal.
fn note(e: &Value) {
    let msg = safe(e["message"].as_str().unwrap_or_default());
    match e["kind"].as_str() {
        // The link itself is for the browser; this CLI opens it.
        Some("output") if shell_data(e).is_some() => {}
        Some("state") => eprintln!("{} {msg}", safe(e["request_id"].as_str().unwrap_or_default())),
        _ if !msg.is_empty() => eprintln!("  {msg}"),
        _ => {}
    }
}

async fn session(url: &str, token: &str) -> anyhow::Result<u8> {
    let mut req = url
        .into_client_request()
        .with_context(|| format!("invalid shell address {url}"))?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the API token has characters a header cannot carry")?,
    );
    let (mut ws, _) = match tokio_tungstenite::connect_async(req).await {
        Ok(c) => c,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .trim()
                .to_owned();
            bail!("deckhand refused the shell session ({}): {body}", resp.status());
        }
        Err(e) => bail!("cannot open the shell session at {url}: {e}"),
    };

    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    // Restored when this function returns, on every path (errors and signals included).
    let _raw_mode = if tty {
        Some(RawMode::enter(stdin.as_raw_fd())?)
    } else {
        None
    };
    let mut winch = if tty {
        Some(signal(SignalKind::window_change())?)
    } else {
        None
    };
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    if tty && let Some(size) = window_size(stdin.as_raw_fd()) {
        ws.send(Message::text(size.to_text())).await.context(BROKE)?;
    }
    let mut keys = read_stdin();
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            chunk = keys.recv() => match chunk {
                Some(bytes) => ws.send(Message::binary(bytes)).await.context(BROKE)?,
                None => {
                    // End of input: what Ctrl-D at an empty prompt does, so the shell exits.
                    ws.send(Message::binary(vec![0x04])).await.context(BROKE)?;
                    keys = closed_channel();
                }
            },
            m = ws.next() => match m {
                Some(Ok(Message::Binary(out))) => {
                    stdout.write_all(&out).and_then(|()| stdout.flush()).context("cannot write to this terminal")?;
                }
                Some(Ok(Message::Text(text))) => match ServerMessage::parse(&text) {
                    Some(ServerMessage::Exit { code }) => {
                        let _ = ws.close(None).await;
                        // As a shell reports a child's status: the low byte.
                        return Ok(u8::try_from(code.rem_euclid(256)).unwrap_or(FAILED));
                    }
                    Some(ServerMessage::Error { message }) => {
                        let _ = ws.close(None).await;
                        bail!("the shell session ended: {message}");
                    }
                    None => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("{BROKE}: {e}"),
                None => {
                    bail!("deckhand closed the shell session before the shell exited");
                }
            },
            Some(()) = async { match winch.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                if let Some(size) = window_size(stdin.as_raw_fd()) {
                    ws.send(Message::text(size.to_text())).await.context(BROKE)?;
                }
            }
            _ = hangup.recv() => return left(&mut ws, 129).await,
            _ = terminate.recv() => return left(&mut ws, 143).await,
            _ = interrupt.recv() => return left(&mut ws, 130).await,
        }
    }
}

/// Ends the session because this process was told to stop (128 + the signal, like a shell).
async fn left<S>(ws: &mut S, code: u8) -> anyhow::Result<u8>
where
    S: SinkExt<Message> + Unpin,
{
    let _ = ws.close().await;
    Ok(code)
}

/// Reads stdin on a thread of its own: a blocking read cannot be cancelled, and a thread
/// outside tokio's blocking pool does not hold up the runtime's shutdown when we exit.
fn read_stdin() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// A receiver that never yields, for after stdin ended.
fn closed_channel() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::mem::forget(tx);
    rx
}

fn window_size(fd: RawFd) -> Option<ClientMessage> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0 && ws.ws_row > 0).then(|| ClientMessage::resize(ws.ws_col, ws.ws_row))
}

/// The terminal in raw mode (no echo, no line editing, no signals from keys: Ctrl-C goes to
/// the pod as a byte) until dropped, which puts the saved settings back.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: RawFd) -> anyhow::Result<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error()).context("cannot read the terminal's settings");
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct; tcsetattr applies it to our own terminal.
        unsafe { libc::cfmakeraw(&mut raw) };
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(std::io::Error::last_os_error()).context("cannot put the terminal in raw mode");
        }
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: puts back the settings read in `enter` on the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
        // The remote shell may have left the cursor mid-line.
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_reached_through_the_cli_address() {
        assert_eq!(
            socket_url("http://127.0.0.1:9000/", "wss://deckhand.example.com/shell/T/ws").unwrap(),
            "ws://127.0.0.1:9000/shell/T/ws"
        );
        assert_eq!(
            socket_url("https://deckhand.example.com", "ws://x/shell/T/ws").unwrap(),
            "wss://deckhand.example.com/shell/T/ws"
        );
        assert!(socket_url("http://x", "nonsense").is_err());
    }
}
