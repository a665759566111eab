//! Pod exec over WebSocket, as the API server and kubelet answer it: `GET .../pods/{pod}/exec`
//! with `command=` repeated, upgraded with one of the channel.k8s.io subprotocols the client
//! offered, then binary frames whose first byte is the channel (1 stdout, 2 stderr, 3 the
//! v1 Status with the exit code), then close.
//!
//! No process runs: a tiny scripted shell answers `echo ARGS...`, `sh -c "SCRIPT"` (`;`-separated
//! commands, `exit N`, and `>&2` at the end of a command), `false`, `true`, `sleep N`,
//! `cat /etc/hostname` (the pod's name); anything else is `<cmd>: command not found`, 127.
//!
//! With `tty=true` (and stdin) the scripted shell is interactive instead, as `kubectl exec -it`
//! sees a shell: see [`run_tty`].
//!
//! The upgrade is done by hand with hyper and tokio-tungstenite 0.30 (the version kube uses),
//! in a middleware in front of the API router, which only sees requests as bytes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::api::{Shared, error_response};
use super::resources;
use super::status::ApiError;
use super::store::Request as Recorded;
use super::util;

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;

/// The subprotocols this server speaks, in order of preference (v5 adds stream close).
const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// `/api/v1/namespaces/{ns}/pods/{pod}/exec` -> (ns, pod).
fn exec_target(path: &str) -> Option<(String, String)> {
    match path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["api", "v1", "namespaces", ns, "pods", pod, "exec"] if !ns.is_empty() && !pod.is_empty() => {
            Some((ns.to_string(), pod.to_string()))
        }
        _ => None,
    }
}

/// Middleware: takes exec requests, passes everything else to the API router.
pub async fn intercept(AxState(shared): AxState<Arc<Shared>>, req: Request, next: Next) -> Response {
    match exec_target(req.uri().path()) {
        Some((ns, pod)) => exec(shared, req, &ns, &pod).unwrap_or_else(|e| error_response(&e)),
        None => next.run(req).await,
    }
}

fn exec(shared: Arc<Shared>, mut req: Request, ns: &str, pod: &str) -> Result<Response, ApiError> {
    let pods = resources::lookup("pods").ok_or_else(ApiError::no_route)?;
    let query = req.uri().query().unwrap_or("").to_string();
    {
        let mut st = shared.lock();
        // The WebSocket upgrade is a GET, but since Kubernetes 1.35
        // (AuthorizePodWebsocketUpgradeCreatePermission) it is authorized as `create`, as the
        // POST of the SPDY protocol always was.
        st.requests.push(Recorded {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: query.clone(),
            rbac: Some((String::new(), "pods/exec".into(), "create".into())),
        });
        if let Some(f) = st.take_fault(req.method().as_str(), req.uri().path()) {
            let message = format!("injected failure: {} {}", f.code, f.reason);
            return Err(ApiError::new(f.code, &f.reason, message));
        }
        let who = super::rbac::Identity::of(req.extensions().get(), req.headers());
        let attrs = super::rbac::Attrs {
            verb: "create",
            group: "",
            resource: "pods",
            sub: Some("exec"),
            namespace: Some(ns),
            name: pod,
        };
        if st.denies(&who, &attrs) {
            return Err(ApiError::rbac(&who.user, pods, Some("exec"), "create", Some(ns), pod));
        }
        let obj = st.get(pods, ns, pod).ok_or_else(|| ApiError::not_found(pods, pod))?;
        if util::str_at(obj, "status.phase") != "Running" {
            return Err(ApiError::bad_request(format!(
                "pod {pod} is not running (phase {:?}); cannot exec into it",
                util::str_at(obj, "status.phase")
            )));
        }
    }
    if req.method() != Method::GET && req.method() != Method::POST {
        return Err(ApiError::method_not_allowed("exec takes GET (WebSocket) or POST"));
    }
    let argv: Vec<String> = serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?
        .into_iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v)
        .collect();
    if argv.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let tty = serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
        .unwrap_or_default()
        .iter()
        .any(|(k, v)| k == "tty" && (v == "true" || v == "1"));
    let headers = req.headers();
    let is_ws = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()));
    let (true, Some(accept)) = (is_ws, key) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    let protocol = PROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .ok_or_else(|| ApiError::bad_request(format!("none of the offered subprotocols {offered:?} is supported")))?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let pod_name = pod.to_string();
    let mut shutdown = shared.shutdown.subscribe();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let session = async {
            if tty {
                run_tty(ws, &argv, &pod_name).await;
            } else {
                run(ws, &argv, &pod_name).await;
            }
        };
        tokio::select! {
            () = session => {}
            // A dropped server ends its sessions, sleeping ones too.
            _ = shutdown.wait_for(|stopped| *stopped) => {}
        }
    });
    let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|e| ApiError::bad_request(e.to_string()))?,
    );
    *r.body_mut() = Body::empty();
    Ok(r)
}

/// What the scripted shell does, step by step.
#[derive(Debug)]
enum Step {
    Write(u8, String),
    Sleep(Duration),
}

/// Runs `argv` in the scripted shell: its steps and exit code.
fn script(argv: &[String], pod: &str, steps: &mut Vec<Step>) -> i32 {
    let Some((cmd, args)) = argv.split_first() else {
        return 0;
    };
    // `... >&2` sends what the command prints to stderr, as in `sh -c "echo oops >&2"`.
    let (args, out) = match args.split_last() {
        Some((last, rest)) if last == ">&2" => (rest, STDERR),
        _ => (args, STDOUT),
    };
    match cmd.as_str() {
        "echo" => {
            steps.push(Step::Write(out, format!("{}\n", args.join(" "))));
            0
        }
        "true" => 0,
        "false" => {
            steps.push(Step::Write(STDERR, "false: failing as asked\n".into()));
            1
        }
        "sleep" => match args.first().and_then(|s| s.parse::<f64>().ok()) {
            Some(secs) if secs >= 0.0 => {
                steps.push(Step::Sleep(Duration::from_secs_f64(secs)));
                0
            }
            _ => {
                steps.push(Step::Write(STDERR, "sleep: invalid time interval\n".into()));
                1
            }
        },
        "cat" if args == ["/etc/hostname"] => {
            steps.push(Step::Write(out, format!("{pod}\n")));
            0
        }
        "cat" => {
            let file = args.first().map_or("-", String::as_str);
            steps.push(Step::Write(STDERR, format!("cat: {file}: No such file or directory\n")));
            1
        }
        "sh" if args.first().is_some_and(|a| a == "-c") => {
            let mut code = 0;
            for part in args.get(1).map_or("", String::as_str).split(';') {
                let words: Vec<String> = part.split_whitespace().map(str::to_string).collect();
                if words.first().is_some_and(|w| w == "exit") {
                    return words.get(1).and_then(|n| n.parse().ok()).unwrap_or(code);
                }
                if !words.is_empty() {
                    code = script(&words, pod, steps);
                }
            }
            code
        }
        other => {
            steps.push(Step::Write(STDERR, format!("{other}: command not found\n")));
            127
        }
    }
}

/// The v1 Status the kubelet puts on the error channel when the command ends.
fn exit_status(argv: &[String], code: i32) -> serde_json::Value {
    if code == 0 {
        return json!({ "metadata": {}, "status": "Success" });
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            argv.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] }
    })
}

/// The kubelet ends a finished exec with a normal closure (1000); client-go reports a close
/// without a status code (1005) as an error reading the error stream.
fn normal_close() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::binary(v)
}

async fn run<S>(mut ws: WebSocketStream<S>, argv: &[String], pod: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut steps = Vec::new();
    let code = script(argv, pod, &mut steps);
    for step in steps {
        match step {
            Step::Write(channel, text) => {
                if ws.send(frame(channel, text.as_bytes())).await.is_err() {
                    return;
                }
            }
            Step::Sleep(d) => {
                let sleep = tokio::time::sleep(d);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        () = &mut sleep => break,
                        // The client may send stdin's close (v5) or pings; a close or a broken
                        // connection ends the session, as the kubelet kills the process then.
                        m = ws.next() => match m {
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                            Some(Ok(_)) => {}
                        },
                    }
                }
            }
        }
    }
    let status = serde_json::to_vec(&exit_status(argv, code)).unwrap_or_default();
    if ws.send(frame(STATUS, &status)).await.is_ok() {
        let _ = ws.close(Some(normal_close())).await;
    }
}

const STDIN: u8 = 0;
const RESIZE: u8 = 4;
/// v5: "this stream is closed", followed by the stream's channel.
const CLOSE: u8 = 255;

/// The interactive scripted shell behind a tty exec. It answers like `sh` on a terminal:
/// prints a prompt `$ `, echoes what is typed (the line discipline's echo, with backspace,
/// Ctrl-U), runs the line on Enter and writes `\r\n` line ends. Commands: `echo ARGS`,
/// `hostname` (the pod), `stty size` (`ROWS COLS` of the last resize on channel 4, 24 80
/// before any), `sleep N` (Ctrl-C interrupts it), `exit [N]`; anything else is
/// `sh: CMD: not found`. Ctrl-C prints `^C` and a new prompt; Ctrl-D on an empty line, or the
/// client closing stdin, exits. There is no stderr in tty mode: one stream, as on a terminal.
/// Only `sh` and `bash` exist in the image: another program fails to start, with the
/// container runtime's message on the status channel.
async fn run_tty<S>(mut ws: WebSocketStream<S>, argv: &[String], pod: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The image has sh and bash; anything else fails to start, as the runtime reports it.
    let program = argv.first().map_or("", String::as_str);
    if !["sh", "bash", "/bin/sh", "/bin/bash"].contains(&program) {
        let status = json!({
            "metadata": {},
            "status": "Failure",
            "reason": "InternalError",
            "message": format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH: unknown"
            ),
        });
        let status = serde_json::to_vec(&status).unwrap_or_default();
        if ws.send(frame(STATUS, &status)).await.is_ok() {
            let _ = ws.close(Some(normal_close())).await;
        }
        return;
    }
    let mut tty = Tty {
        line: Vec::new(),
        size: (24, 80),
        last: 0,
        escape: false,
    };
    if ws.send(frame(STDOUT, b"$ ")).await.is_err() {
        return;
    }
    let code = loop {
        let Some(Ok(message)) = ws.next().await else {
            return;
        };
        let data = match message {
            Message::Binary(b) => b,
            Message::Close(_) => return,
            _ => continue,
        };
        let Some((&channel, payload)) = data.split_first() else {
            continue;
        };
        match channel {
            STDIN => {
                let mut out = Vec::new();
                let mut sleep = None;
                let exit = tty.keys(payload, pod, &mut out, &mut sleep);
                if ws.send(frame(STDOUT, &out)).await.is_err() {
                    return;
                }
                if let Some(d) = sleep {
                    match sleep_interruptibly(&mut ws, d, &mut tty).await {
                        Some(text) => {
                            if ws.send(frame(STDOUT, text.as_bytes())).await.is_err() {
                                return;
                            }
                        }
                        None => return,
                    }
                }
                if let Some(code) = exit {
                    break code;
                }
            }
            RESIZE => {
                if let Ok(size) = serde_json::from_slice::<serde_json::Value>(payload) {
                    let rows = size["Height"].as_u64().unwrap_or(24);
                    let cols = size["Width"].as_u64().unwrap_or(80);
                    tty.size = (rows, cols);
                }
            }
            CLOSE if payload.first() == Some(&STDIN) => break tty.last,
            _ => {}
        }
    };
    let argv = ["sh".to_string()];
    let status = serde_json::to_vec(&exit_status(&argv, code)).unwrap_or_default();
    if ws.send(frame(STATUS, &status)).await.is_ok() {
        let _ = ws.close(Some(normal_close())).await;
    }
}

/// Waits `d` for `sleep`, unless Ctrl-C comes first; what to print then (a new prompt), or
/// `None` when the client left.
async fn sleep_interruptibly<S>(ws: &mut WebSocketStream<S>, d: Duration, tty: &mut Tty) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let sleep = tokio::time::sleep(d);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => {
                tty.last = 0;
                return Some("$ ".into());
            }
            m = ws.next() => match m {
                Some(Ok(Message::Binary(b))) if b.first() == Some(&STDIN) && b[1..].contains(&0x03) => {
                    tty.last = 130;
                    return Some("^C\r\n$ ".into());
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            },
        }
    }
}

struct Tty {
    line: Vec<u8>,
    /// (rows, cols) from the last resize.
    size: (u64, u64),
    /// The last command's exit code, for a bare `exit`.
    last: i32,
    /// Inside an escape sequence (arrow keys): skipped until its final byte.
    escape: bool,
}

impl Tty {
    /// Handles typed bytes, appending what the terminal shows to `out`. Returns the exit
    /// code when the shell exits; sets `sleep` when a `sleep` command starts.
    fn keys(&mut self, keys: &[u8], pod: &str, out: &mut Vec<u8>, sleep: &mut Option<Duration>) -> Option<i32> {
        for &b in keys {
            if self.escape {
                self.escape = !(b.is_ascii_alphabetic() || b == b'~');
                continue;
            }
            match b {
                0x1b => self.escape = true,
                b'\r' | b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                    match self.command(&line, pod, out, sleep) {
                        Some(code) => return Some(code),
                        None if sleep.is_some() => return None,
                        None => out.extend_from_slice(b"$ "),
                    }
                }
                0x03 => {
                    self.line.clear();
                    self.last = 130;
                    out.extend_from_slice(b"^C\r\n$ ");
                }
                0x04 if self.line.is_empty() => {
                    out.extend_from_slice(b"exit\r\n");
                    return Some(self.last);
                }
                0x15 => {
                    for _ in 0..self.line.len() {
                        out.extend_from_slice(b"\x08 \x08");
                    }
                    self.line.clear();
                }
                0x7f | 0x08 => {
                    if self.line.pop().is_some() {
                        out.extend_from_slice(b"\x08 \x08");
                    }
                }
                b if b < 0x20 => {}
                b => {
                    self.line.push(b);
                    out.push(b);
                }
            }
        }
        None
    }

    fn command(&mut self, line: &str, pod: &str, out: &mut Vec<u8>, sleep: &mut Option<Duration>) -> Option<i32> {
        let words: Vec<&str> = line.split_whitespace().collect();
        // An empty line runs nothing and keeps the shell going.
        let (cmd, args) = words.split_first()?;
        let mut say = |text: String| out.extend_from_slice(format!("{text}\r\n").as_bytes());
        self.last = match (*cmd, args) {
            ("exit", []) => return Some(self.last),
            ("exit", [n, ..]) => return Some(n.parse().unwrap_or(2)),
            ("echo", args) => {
                say(args.join(" "));
                0
            }
            ("hostname", []) => {
                say(pod.to_string());
                0
            }
            ("stty", ["size"]) => {
                say(format!("{} {}", self.size.0, self.size.1));
                0
            }
            ("sleep", [n]) => match n.parse::<f64>() {
                Ok(secs) if secs >= 0.0 => {
                    *sleep = Some(Duration::from_secs_f64(secs));
                    0
                }
                _ => {
                    say(format!("sleep: invalid number '{n}'"));
                    1
                }
            },
            (other, _) => {
                say(format!("sh: {other}: not found"));
                127
            }
        };
        None
    }
}
