//! A local Slack for tests: the Web API (checks the bot token and its scopes, records every
//! call, can answer 429 with Retry-After or fail), response_url and file-upload endpoints,
//! and a Socket Mode WebSocket server that sends envelopes and records acknowledgements.
//!
//! `chat.postEphemeral` is checked as Slack checks it: `channel`, `user` and `text` or
//! `blocks` are required, the token needs `chat:write`, and the user must be a member of
//! the channel (when the test set the channel's members). What each user was shown
//! privately is kept per user ([`FakeSlack::ephemerals_to`]). Modals (views.open,
//! views.update) are checked as Slack checks them: see `views`.
#![allow(dead_code)]

mod views;

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;

pub const BOT_TOKEN: &str = "xoxb-test-bot-token";
pub const APP_TOKEN: &str = "xapp-test-app-token";
pub const SIGNING_SECRET: &str = "test-signing-secret-0123456789abcdef";

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Web API method, `response_url` or `upload`.
    pub method: String,
    pub body: Value,
    /// For response_url and uploads, the path that was hit.
    pub path: String,
    pub at: std::time::Instant,
    /// The ts the fake gave a posted message.
    pub ts: Option<String>,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// Calls refused with 429 (they are not in `calls`).
    limited: Vec<String>,
    rate_limit: Option<(usize, u64)>,
    /// While set, every Web API call answers 503 (an outage).
    down: bool,
    failures: VecDeque<(String, String)>,
    next_ts: u64,
    socket_url: Option<String>,
    usergroups: Vec<(String, Vec<String>)>,
    uploads: Vec<(String, Vec<u8>)>,
    /// The bot token's scopes; `None` means [`BOT_SCOPES`].
    scopes: Option<Vec<String>>,
    /// channel -> its members, for the channels the test described.
    members: std::collections::HashMap<String, Vec<String>>,
    views: views::Views,
}

/// The scopes deckhand's manifest asks for.
pub const BOT_SCOPES: &[&str] = &["chat:write", "commands", "files:write", "usergroups:read"];

/// The scope each Web API method deckhand calls needs (Slack's method reference).
fn scope_of(method: &str) -> Option<&'static str> {
    match method {
        "chat.postMessage" | "chat.update" | "chat.postEphemeral" => Some("chat:write"),
        "files.getUploadURLExternal" | "files.completeUploadExternal" => Some("files:write"),
        "usergroups.list" => Some("usergroups:read"),
        _ => None,
    }
}

#[derive(Clone)]
pub struct FakeSlack {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl FakeSlack {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            next_ts: 100,
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fake = FakeSlack {
            addr,
            inner,
            changed: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .route("/api/{method}", post(api))
            .route("/response/{*rest}", post(response_url))
            .route("/upload/{id}", post(upload))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// A response_url that lands in this fake.
    pub fn response_url(&self, name: &str) -> String {
        format!("http://{}/response/{name}", self.addr)
    }

    pub fn set_socket_url(&self, url: &str) {
        self.inner.lock().unwrap().socket_url = Some(url.to_owned());
    }

    pub fn set_usergroups(&self, groups: &[(&str, &[&str])]) {
        self.inner.lock().unwrap().usergroups = groups
            .iter()
            .map(|(g, us)| (g.to_string(), us.iter().map(|u| u.to_string()).collect()))
            .collect();
    }

    /// An outage: while `down`, every Web API call answers 503 as Slack's edge does.
    pub fn set_down(&self, down: bool) {
        self.inner.lock().unwrap().down = down;
    }

    /// The next `n` calls (of any kind) answer 429 with `Retry-After: secs`.
    pub fn rate_limit(&self, n: usize, secs: u64) {
        self.inner.lock().unwrap().rate_limit = Some((n, secs));
    }

    /// The next call to `method` answers `{"ok": false, "error": error}`.
    pub fn fail_next(&self, method: &str, error: &str) {
        self.inner
            .lock()
            .unwrap()
            .failures
            .push_back((method.to_owned(), error.to_owned()));
    }

    /// The bot token has exactly these scopes from now on.
    pub fn set_scopes(&self, scopes: &[&str]) {
        self.inner.lock().unwrap().scopes = Some(scopes.iter().map(|s| s.to_string()).collect());
    }

    /// Only these users are members of `channel` (others get `user_not_in_channel`).
    pub fn set_members(&self, channel: &str, users: &[&str]) {
        self.inner
            .lock()
            .unwrap()
            .members
            .insert(channel.to_owned(), users.iter().map(|u| u.to_string()).collect());
    }

    /// The ephemeral messages Slack accepted for `user` (Slack user id), in order: what
    /// only that person was shown.
    pub fn ephemerals_to(&self, user: &str) -> Vec<Call> {
        self.calls_to("chat.postEphemeral")
            .into_iter()
            .filter(|c| c.body["user"] == user && c.ts.is_some())
            .collect()
    }

    /// Messages everyone in a channel sees: posts and edits.
    pub fn public_messages(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "chat.postMessage" || c.method == "chat.update")
            .collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    pub fn limited(&self) -> usize {
        self.inner.lock().unwrap().limited.len()
    }

    pub fn uploads(&self) -> Vec<(String, Vec<u8>)> {
        self.inner.lock().unwrap().uploads.clone()
    }

    /// Slack handing out `trigger_id` now (with a slash command or a click).
    pub fn issue_trigger(&self, trigger_id: &str) {
        self.issue_trigger_at(trigger_id, std::time::Instant::now());
    }

    pub fn issue_trigger_at(&self, trigger_id: &str, at: std::time::Instant) {
        self.inner.lock().unwrap().views.issue(trigger_id, at);
    }

    /// An open modal as Slack holds it (with its id, hash and state), and its hash.
    pub fn view(&self, id: &str) -> Option<(Value, String)> {
        self.inner.lock().unwrap().views.get(id)
    }

    /// The modal the last successful views.open or views.update showed.
    pub fn last_view(&self) -> Option<Value> {
        self.inner.lock().unwrap().views.last()
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap().calls.clear();
    }

    /// Waits until `check` holds for the recorded calls (or panics after `secs`).
    pub async fn wait_for(&self, secs: u64, what: &str, check: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let notified = self.changed.notified();
            let calls = self.calls();
            if check(&calls) {
                return calls;
            }
            let now = tokio::time::Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {what}; calls so far: {:#?}",
                summary(&calls)
            );
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    fn record(&self, method: &str, path: &str, body: Value) {
        self.record_ts(method, path, body, None);
    }

    fn record_ts(&self, method: &str, path: &str, body: Value, ts: Option<String>) {
        self.inner.lock().unwrap().calls.push(Call {
            method: method.to_owned(),
            body,
            path: path.to_owned(),
            at: std::time::Instant::now(),
            ts,
        });
        self.changed.notify_waiters();
    }

    /// 429 if a rate-limit storm is on; counts it down.
    fn limited_now(&self, method: &str) -> Option<Response> {
        let mut inner = self.inner.lock().unwrap();
        let (n, secs) = inner.rate_limit?;
        if n == 0 {
            inner.rate_limit = None;
            return None;
        }
        inner.rate_limit = Some((n - 1, secs));
        inner.limited.push(method.to_owned());
        Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                "rate limited",
            )
                .into_response(),
        )
    }
}

impl FakeSlack {
    /// Slack's refusal of `method` with `body`, if it would refuse: a missing scope, or for
    /// chat.postEphemeral a missing argument or a user who is not in the channel.
    fn refuse(&self, method: &str, body: &Value) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        if let Some(needed) = scope_of(method) {
            let scopes: Vec<String> = inner
                .scopes
                .clone()
                .unwrap_or_else(|| BOT_SCOPES.iter().map(|s| s.to_string()).collect());
            if !scopes.iter().any(|s| s == needed) {
                return Some(
                    json!({ "ok": false, "error": "missing_scope", "needed": needed, "provided": scopes.join(",") }),
                );
            }
        }
        if matches!(method, "chat.postMessage" | "chat.postEphemeral" | "chat.update")
            && let Some(why) = invalid_blocks(&body["blocks"])
        {
            return Some(json!({ "ok": false, "error": "invalid_blocks", "errors": [why] }));
        }
        if method != "chat.postEphemeral" {
            return None;
        }
        let text = |k: &str| body[k].as_str().filter(|v| !v.is_empty());
        let (Some(channel), Some(user)) = (text("channel"), text("user")) else {
            return Some(json!({ "ok": false, "error": "invalid_arguments" }));
        };
        let blocks = body["blocks"].as_array().is_some_and(|b| !b.is_empty());
        if text("text").is_none() && !blocks {
            return Some(json!({ "ok": false, "error": "no_text" }));
        }
        match inner.members.get(channel) {
            Some(members) if !members.iter().any(|m| m == user) => {
                Some(json!({ "ok": false, "error": "user_not_in_channel" }))
            }
            _ => None,
        }
    }
}

/// Slack's objection to a message's blocks, if it has one: a button's text is 1 to 75
/// characters, its url at most 3,000, its action_id at most 255 and its value at most 2,000.
/// (https://docs.slack.dev/reference/block-kit/block-elements/button-element, checked
/// December 2026.)
pub fn invalid_blocks(blocks: &Value) -> Option<String> {
    let elements = blocks
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default());
    for e in elements.filter(|e| e["type"] == "button") {
        let len = |k: &str| e[k].as_str().map(|s| s.chars().count());
        let text = e["text"]["text"].as_str().map_or(0, |t| t.chars().count());
        if text == 0 || text > 75 {
            return Some(format!(
                "must be less than 76 characters [json-pointer:/text/text] ({text})"
            ));
        }
        if len("url").is_some_and(|n| n > 3000) {
            return Some("must be less than 3001 characters [json-pointer:/url]".into());
        }
        if len("action_id").is_some_and(|n| n > 255) || len("value").is_some_and(|n| n > 2000) {
            return Some("action_id or value too long".into());
        }
    }
    None
}

/// Method and text of each call, for failure messages.
pub fn summary(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            let text = c.body["text"].as_str().unwrap_or_default();
            format!(
                "{} {} {}",
                c.method,
                c.body["channel"].as_str().unwrap_or(&c.path),
                text
            )
        })
        .collect()
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Value {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    Value::Object(fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

async fn api(State(fake): State<FakeSlack>, Path(method): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if fake.inner.lock().unwrap().down {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "upstream connect error").into_response();
    }
    if let Some(r) = fake.limited_now(&method) {
        return r;
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let wanted = if method == "apps.connections.open" {
        APP_TOKEN
    } else {
        BOT_TOKEN
    };
    if token != wanted {
        return axum::Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    let body = parse_body(&headers, &body);
    let failure = {
        let mut inner = fake.inner.lock().unwrap();
        let pos = inner.failures.iter().position(|(m, _)| *m == method);
        pos.and_then(|p| inner.failures.remove(p)).map(|(_, e)| e)
    };
    let refusal = failure
        .map(|e| json!({ "ok": false, "error": e }))
        .or_else(|| fake.refuse(&method, &body));
    let posts = method == "chat.postMessage" || method == "chat.postEphemeral";
    let ts = (posts && refusal.is_none()).then(|| {
        let mut inner = fake.inner.lock().unwrap();
        inner.next_ts += 1;
        format!("1700000000.{:06}", inner.next_ts)
    });
    fake.record_ts(&method, "", body.clone(), ts.clone());
    if let Some(refusal) = refusal {
        return axum::Json(refusal).into_response();
    }
    let answer = match method.as_str() {
        "chat.postMessage" => {
            json!({ "ok": true, "channel": body["channel"], "ts": ts, "message": { "text": body["text"] } })
        }
        "chat.update" => json!({ "ok": true, "channel": body["channel"], "ts": body["ts"], "text": body["text"] }),
        "chat.postEphemeral" => json!({ "ok": true, "message_ts": ts }),
        "files.getUploadURLExternal" => {
            let id = format!("F{}", fake.calls_to("files.getUploadURLExternal").len());
            json!({ "ok": true, "upload_url": format!("http://{}/upload/{id}", fake.addr), "file_id": id })
        }
        "files.completeUploadExternal" => {
            json!({ "ok": true, "files": [{ "id": body["files"][0]["id"], "title": body["files"][0]["title"] }] })
        }
        "usergroups.list" => {
            let groups: Vec<Value> = fake
                .inner
                .lock()
                .unwrap()
                .usergroups
                .iter()
                .map(|(id, users)| json!({ "id": id, "users": users }))
                .collect();
            json!({ "ok": true, "usergroups": groups })
        }
        "views.open" => fake.inner.lock().unwrap().views.open(&body),
        "views.update" => fake.inner.lock().unwrap().views.update(&body),
        "apps.connections.open" => match fake.inner.lock().unwrap().socket_url.clone() {
            Some(url) => json!({ "ok": true, "url": url }),
            None => json!({ "ok": false, "error": "socket_mode_not_enabled" }),
        },
        _ => json!({ "ok": false, "error": "unknown_method" }),
    };
    axum::Json(answer).into_response()
}

async fn response_url(
    State(fake): State<FakeSlack>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = fake.limited_now("response_url") {
        return r;
    }
    let body = parse_body(&headers, &body);
    if let Some(why) = invalid_blocks(&body["blocks"]) {
        return (axum::http::StatusCode::BAD_REQUEST, why).into_response();
    }
    fake.record("response_url", &rest, body);
    "ok".into_response()
}

async fn upload(State(fake): State<FakeSlack>, Path(id): Path<String>, body: Bytes) -> Response {
    fake.inner.lock().unwrap().uploads.push((id.clone(), body.to_vec()));
    fake.record("upload", &id, json!({ "bytes": body.len() }));
    "OK - uploaded".into_response()
}

/// Socket Mode's WebSocket end: says hello on each connection, sends what the test queues,
/// records acknowledgements.
pub struct SocketServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<SocketState>>,
    changed: Arc<Notify>,
}

#[derive(Default)]
struct SocketState {
    connections: usize,
    current: Option<mpsc::UnboundedSender<Option<String>>>,
    acks: Vec<String>,
    /// The `payload` an acknowledgement carried (a modal's answer), by envelope id.
    ack_payloads: std::collections::HashMap<String, Value>,
}

impl SocketServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state: Arc<Mutex<SocketState>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let (st, ch) = (state.clone(), changed.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    continue;
                };
                let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
                {
                    let mut s = st.lock().unwrap();
                    s.connections += 1;
                    s.current = Some(tx);
                }
                ch.notify_waiters();
                let (st, ch) = (st.clone(), ch.clone());
                tokio::spawn(async move {
                    let (mut sink, mut stream) = ws.split();
                    let hello = json!({
                        "type": "hello", "num_connections": 1,
                        "connection_info": { "app_id": "A123456" },
                        "debug_info": { "host": "applink-test", "approximate_connection_time": 18060 }
                    });
                    let _ = sink.send(Message::Text(hello.to_string().into())).await;
                    loop {
                        tokio::select! {
                            out = rx.recv() => match out {
                                Some(Some(text)) => { let _ = sink.send(Message::Text(text.into())).await; }
                                // Drop the socket without a close frame, like a network failure.
                                Some(None) | None => return,
                            },
                            frame = stream.next() => match frame {
                                Some(Ok(Message::Text(t))) => {
                                    if let Ok(v) = serde_json::from_str::<Value>(t.as_str())
                                        && let Some(id) = v["envelope_id"].as_str()
                                    {
                                        let mut s = st.lock().unwrap();
                                        s.acks.push(id.to_owned());
                                        if !v["payload"].is_null() {
                                            s.ack_payloads.insert(id.to_owned(), v["payload"].clone());
                                        }
                                        drop(s);
                                        ch.notify_waiters();
                                    }
                                }
                                Some(Ok(_)) => {}
                                _ => return,
                            },
                        }
                    }
                });
            }
        });
        Self { addr, state, changed }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/link/?ticket=test", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub fn acks(&self) -> Vec<String> {
        self.state.lock().unwrap().acks.clone()
    }

    /// What the acknowledgement of `envelope_id` answered (`Null` when nothing).
    pub fn ack_payload(&self, envelope_id: &str) -> Value {
        self.state
            .lock()
            .unwrap()
            .ack_payloads
            .get(envelope_id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Waits for connection number `n` (1-based) to be up.
    pub async fn wait_connections(&self, n: usize, secs: u64) {
        self.wait(secs, &format!("{n} connections"), |s| {
            s.connections >= n && s.current.is_some()
        })
        .await;
    }

    pub async fn wait_ack(&self, envelope_id: &str, secs: u64) {
        self.wait(secs, &format!("ack of {envelope_id}"), |s| {
            s.acks.iter().any(|a| a == envelope_id)
        })
        .await;
    }

    async fn wait(&self, secs: u64, what: &str, check: impl Fn(&SocketState) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let notified = self.changed.notified();
            if check(&self.state.lock().unwrap()) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// Sends a frame on the current connection.
    pub fn send(&self, frame: Value) {
        let s = self.state.lock().unwrap();
        s.current
            .as_ref()
            .expect("a connection")
            .send(Some(frame.to_string()))
            .expect("connection alive");
    }

    /// Sends an envelope of `kind` (slash_commands, interactive) with `payload`.
    pub fn envelope(&self, id: &str, kind: &str, payload: Value) {
        self.send(json!({ "envelope_id": id, "type": kind, "accepts_response_payload": kind != "events_api", "payload": payload }));
    }

    /// Slack's warning that it is about to close this connection.
    pub fn disconnect(&self) {
        self.send(json!({
            "type": "disconnect", "reason": "refresh_requested",
            "debug_info": { "host": "applink-test" }
        }));
    }

    /// Drops the current socket without a close frame.
    pub fn drop_connection(&self) {
        let mut s = self.state.lock().unwrap();
        if let Some(tx) = s.current.take() {
            let _ = tx.send(None);
        }
    }
}

/// Slack's headers for `body`, signed now (or at `ts`).
pub fn signed_headers(body: &str, ts: i64) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    vec![
        ("x-slack-request-timestamp", ts.clone()),
        (
            "x-slack-signature",
            deckhand::slack::verify::sign(SIGNING_SECRET, &ts, body),
        ),
    ]
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A slash command body as Slack sends it (form-encoded, the fixture's field order).
pub fn command_form(user_id: &str, channel: &str, text: &str, trigger_id: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", "T0001"),
        ("team_domain", "example"),
        ("channel_id", channel),
        ("channel_name", "platform-requests"),
        ("user_id", user_id),
        ("user_name", &user_id.to_lowercase()),
        ("command", "/deckhand"),
        ("text", text),
        ("api_app_id", "A123456"),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ])
    .expect("form")
}

/// The fixture's block_actions payload for a click on `action_id` with `value` by `user_id`.
pub fn block_actions(user_id: &str, action_id: &str, value: &str, response_url: &str) -> Value {
    let mut v: Value = serde_json::from_str(include_str!("fixtures/block_actions.json")).expect("fixture");
    v["user"]["id"] = json!(user_id);
    v["actions"][0]["action_id"] = json!(action_id);
    v["actions"][0]["value"] = json!(value);
    v["response_url"] = json!(response_url);
    v
}

/// `payload=<urlencoded json>`, the interactivity body.
pub fn interaction_form(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form")
}

/// A choice in a modal's select (`block_actions` from a view), as Slack sends it.
pub fn view_action(user_id: &str, view: &Value, action_id: &str, selected: &str, trigger_id: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": { "id": user_id, "username": user_id.to_lowercase(), "team_id": "T0001" },
        "api_app_id": "A123456",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": { "type": "view", "view_id": view["id"] },
        "trigger_id": trigger_id,
        "team": { "id": "T0001", "domain": "example" },
        "view": view,
        "actions": [{
            "type": "static_select", "action_id": action_id, "block_id": "command-0",
            "selected_option": { "text": { "type": "plain_text", "text": selected }, "value": selected },
            "action_ts": "1700000100.123456"
        }]
    })
}

/// A modal's submission with `values` (block_id -> {"value": {...}}), as Slack sends it.
pub fn view_submission(user_id: &str, view: &Value, values: Value) -> Value {
    let mut view = view.clone();
    view["state"] = json!({ "values": values });
    json!({
        "type": "view_submission",
        "team": { "id": "T0001", "domain": "example" },
        "user": { "id": user_id, "username": user_id.to_lowercase(), "team_id": "T0001" },
        "api_app_id": "A123456",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "trigger_id": "12466734323.1395872398.view-submission",
        "view": view,
        "response_urls": []
    })
}

/// A text input's state in a view submission.
pub fn typed(text: &str) -> Value {
    json!({ "value": { "type": "plain_text_input", "value": text } })
}

/// A static select's state in a view submission.
pub fn picked(value: &str) -> Value {
    json!({ "value": { "type": "static_select", "selected_option": { "value": value, "text": { "type": "plain_text", "text": value } } } })
}
