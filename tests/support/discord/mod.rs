//! A local stand-in for Discord: a REST API that records interaction webhook edits and
//! follow-ups, channel messages and command registration (and can answer 429 the way Discord
//! does), plus helpers that build interaction payloads and sign them with Ed25519 exactly as
//! Discord signs them.
//!
//! Who sees a message is kept as Discord decides it: a follow-up with the EPHEMERAL flag
//! (64) is seen only by the user the interaction came from (tests say who with
//! [`FakeDiscord::issue_token_to`]); a message in a DM channel (opened with
//! `POST /users/@me/channels`) only by its recipient; anything else by the channel. A bot
//! cannot post an ephemeral channel message (400, as Discord answers unknown flags).
#![allow(dead_code)]

pub mod limits;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{patch, post, put},
};
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Value, json};

pub const APPLICATION_ID: &str = "1100000000000000001";
pub const CHANNEL_ID: &str = "1000000000000000100";
pub const GUILD_ID: &str = "1000000000000000010";
pub const BOT_TOKEN: &str = "test-bot-token";

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
    /// When the fake received it.
    pub at: std::time::Instant,
}

/// A message as the fake keeps it, edits applied.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub id: String,
    pub channel_id: String,
    pub content: String,
    pub components: Value,
    /// Which interaction token created it ("" for bot messages).
    pub token: String,
    pub flags: u64,
    /// The one user who sees it (ephemeral follow-up, DM); `None` for the whole channel.
    pub visible_to: Option<String>,
    /// The `allowed_mentions` it was sent with (`Null` if none).
    pub allowed_mentions: Value,
}

/// Discord's message flags a webhook (interaction follow-up) may set: SUPPRESS_EMBEDS,
/// EPHEMERAL, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2.
const WEBHOOK_FLAGS: u64 = 4 | 64 | 4096 | 32768;
/// What a bot may set on a channel message: no EPHEMERAL.
const CHANNEL_FLAGS: u64 = 4 | 4096 | 32768;
pub const EPHEMERAL: u64 = 64;

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    messages: HashMap<String, Message>,
    /// token -> id of its original response message
    originals: HashMap<String, String>,
    /// token -> when the test issued it
    issued: HashMap<String, Instant>,
    next_id: u64,
    rate_limit_next: usize,
    rate_limited: usize,
    token_lifetime: Option<Duration>,
    /// interaction token -> the user who sent that interaction
    token_users: HashMap<String, String>,
    /// DM channel id -> its recipient
    dm_channels: HashMap<String, String>,
    /// token -> the flags of the interaction's initial (deferred) response
    response_flags: HashMap<String, u64>,
}

#[derive(Clone, Default)]
pub struct FakeDiscord {
    inner: Arc<Mutex<Inner>>,
}

type Shared = FakeDiscord;

pub struct FakeDiscordServer {
    pub fake: FakeDiscord,
    pub addr: SocketAddr,
}

impl FakeDiscordServer {
    pub async fn start() -> Self {
        let fake = FakeDiscord::default();
        let app = Router::new()
            .route("/api/v10/webhooks/{app}/{token}", post(followup))
            .route(
                "/api/v10/webhooks/{app}/{token}/messages/{id}",
                patch(edit_webhook_message),
            )
            .route("/api/v10/channels/{channel}/messages", post(channel_post))
            .route("/api/v10/users/@me/channels", post(open_dm))
            .route("/api/v10/channels/{channel}/messages/{id}", patch(channel_edit))
            .route("/api/v10/applications/{app}/commands", put(register_global))
            .route(
                "/api/v10/applications/{app}/guilds/{guild}/commands",
                put(register_guild),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake discord");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { fake, addr }
    }

    /// What `discord.api_base` should be.
    pub fn api_base(&self) -> String {
        format!("http://{}/api/v10", self.addr)
    }
}

impl FakeDiscord {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("fake discord lock")
    }

    /// The next `n` calls are answered 429 with Discord's rate-limit headers.
    pub fn rate_limit_next(&self, n: usize) {
        self.lock().rate_limit_next = n;
    }

    /// How many calls were answered 429.
    pub fn rate_limited(&self) -> usize {
        self.lock().rate_limited
    }

    /// Interaction tokens older than this are refused (401, code 50027), as Discord does
    /// after 15 minutes.
    pub fn set_token_lifetime(&self, d: Duration) {
        self.lock().token_lifetime = Some(d);
    }

    /// Records that Discord handed out `token` now (an interaction was sent with it).
    pub fn issue_token(&self, token: &str) {
        self.lock().issued.insert(token.to_owned(), Instant::now());
    }

    /// As [`issue_token`](Self::issue_token), for an interaction `user` sent: ephemeral
    /// follow-ups on it are shown to that user alone.
    pub fn issue_token_to(&self, token: &str, user: &str) {
        let mut inner = self.lock();
        inner.issued.insert(token.to_owned(), Instant::now());
        inner.token_users.insert(token.to_owned(), user.to_owned());
    }

    /// Records the interaction's initial response, as Discord keeps it: a deferred response
    /// with the EPHEMERAL flag makes the original message visible to the sender alone.
    /// The rig learns the response after the app sent it, so the app's first edit of the
    /// original may already have arrived: that message takes the response's flags now.
    pub fn responded(&self, token: &str, response: &Value) {
        let flags = response["data"]["flags"].as_u64().unwrap_or(0);
        let mut inner = self.lock();
        inner.response_flags.insert(token.to_owned(), flags);
        let visible_to = (flags & EPHEMERAL != 0)
            .then(|| inner.token_users.get(token).cloned())
            .flatten();
        if let Some(id) = inner.originals.get(token).cloned()
            && let Some(m) = inner.messages.get_mut(&id)
        {
            m.flags |= flags & EPHEMERAL;
            m.visible_to = visible_to;
        }
    }

    /// Messages only `user` sees (ephemeral follow-ups to them, DMs to them), in order.
    pub fn private_to(&self, user: &str) -> Vec<Message> {
        self.all_sorted()
            .into_iter()
            .filter(|m| m.visible_to.as_deref() == Some(user))
            .collect()
    }

    /// Messages everyone in a channel sees (originals included), in order.
    pub fn public(&self) -> Vec<Message> {
        self.all_sorted()
            .into_iter()
            .filter(|m| m.visible_to.is_none())
            .collect()
    }

    fn all_sorted(&self) -> Vec<Message> {
        let mut v: Vec<Message> = self.lock().messages.values().cloned().collect();
        v.sort_by_key(|m| m.id.parse::<u64>().unwrap_or(0));
        v
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn message(&self, id: &str) -> Option<Message> {
        self.lock().messages.get(id).cloned()
    }

    /// The original response of the interaction with `token`, edits applied.
    pub fn original(&self, token: &str) -> Option<Message> {
        let inner = self.lock();
        let id = inner.originals.get(token)?;
        inner.messages.get(id).cloned()
    }

    /// Messages other than originals, in the order they were created.
    pub fn posted(&self) -> Vec<Message> {
        let inner = self.lock();
        let originals: Vec<&String> = inner.originals.values().collect();
        let mut v: Vec<Message> = inner
            .messages
            .values()
            .filter(|m| !originals.contains(&&m.id))
            .cloned()
            .collect();
        v.sort_by_key(|m| m.id.parse::<u64>().unwrap_or(0));
        v
    }

    /// Waits (test-side polling) until `pred` holds for the fake's state.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&FakeDiscord) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "fake Discord never saw: {what}\ncalls: {:#?}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn new_id(inner: &mut Inner) -> String {
        inner.next_id += 1;
        format!("{}", 1_300_000_000_000_000_000u64 + inner.next_id)
    }

    /// Records the call; `Some` response when it must be refused (429 or expired token).
    fn enter(
        &self,
        method: &str,
        path: String,
        headers: &HeaderMap,
        body: &Value,
        token: Option<&str>,
    ) -> Option<Response> {
        let mut inner = self.lock();
        inner.calls.push(Call {
            method: method.into(),
            path,
            body: body.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at: std::time::Instant::now(),
        });
        if inner.rate_limit_next > 0 {
            inner.rate_limit_next -= 1;
            inner.rate_limited += 1;
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({ "message": "You are being rate limited.", "retry_after": 0.05, "global": false })),
            )
                .into_response();
            let h = r.headers_mut();
            h.insert("retry-after", "1".parse().expect("header"));
            h.insert("x-ratelimit-limit", "5".parse().expect("header"));
            h.insert("x-ratelimit-remaining", "0".parse().expect("header"));
            h.insert("x-ratelimit-reset-after", "0.05".parse().expect("header"));
            h.insert("x-ratelimit-bucket", "fake-bucket".parse().expect("header"));
            h.insert("x-ratelimit-scope", "user".parse().expect("header"));
            return Some(r);
        }
        if let Some(token) = token {
            let expired = match (inner.issued.get(token), inner.token_lifetime) {
                (Some(at), Some(life)) => at.elapsed() > life,
                (None, _) => true,
                _ => false,
            };
            if expired {
                return Some(
                    (
                        StatusCode::UNAUTHORIZED,
                        Json(json!({ "message": "Invalid Webhook Token", "code": 50027 })),
                    )
                        .into_response(),
                );
            }
        }
        None
    }

    fn bot_ok(headers: &HeaderMap) -> bool {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bot {BOT_TOKEN}"))
    }
}

fn parse(body: &Bytes) -> Value {
    if body.starts_with(b"--") {
        return parse_multipart(body);
    }
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// A message with files (multipart/form-data): the `payload_json` part, with the files'
/// names, sizes and first bytes (hex) recorded under `_files`.
fn parse_multipart(body: &[u8]) -> Value {
    let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
        return Value::Null;
    };
    let delimiter = [b"\r\n".as_slice(), &body[..end]].concat();
    let mut payload = Value::Null;
    let mut files = Vec::new();
    let mut rest = &body[end..];
    while let Some(at) = rest.windows(delimiter.len()).position(|w| w == delimiter.as_slice()) {
        let part = &rest[..at];
        rest = &rest[at + delimiter.len()..];
        let Some(split) = part.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]);
        let data = &part[split + 4..];
        if head.contains("name=\"payload_json\"") {
            payload = serde_json::from_slice(data).unwrap_or(Value::Null);
        } else if let Some(name) = head.split("filename=\"").nth(1).and_then(|r| r.split('"').next()) {
            let hex: String = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
            files.push(json!({ "filename": name, "size": data.len(), "head": hex }));
        }
    }
    if payload.is_object() {
        payload["_files"] = json!(files);
    }
    payload
}

fn message_json(m: &Message) -> Json<Value> {
    Json(json!({
        "id": m.id,
        "channel_id": m.channel_id,
        "content": m.content,
        "components": m.components,
        "author": { "id": APPLICATION_ID, "username": "deckhand", "discriminator": "0", "bot": true },
    }))
}

fn invalid_form(field: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "message": "Invalid Form Body", "code": 50035,
            "errors": { field: { "_errors": [{ "code": "BASE_TYPE_INVALID", "message": message }] } }
        })),
    )
        .into_response()
}

/// The message's flags if a sender allowed `allowed` may set them, else why Discord
/// answers 400 (see [`invalid_form`]).
fn flags_of(body: &Value, allowed: u64) -> Result<u64, &'static str> {
    let flags = match body.get("flags") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().ok_or("Value is not int.")?,
    };
    if flags & !allowed != 0 {
        return Err("Invalid flags");
    }
    Ok(flags)
}

/// 400 with Discord's objections when a message's components break its rules.
fn refuse_components(body: &Value) -> Option<Response> {
    let errors = limits::check_message(body);
    (!errors.is_empty()).then(|| invalid_form("components", &errors.join("; ")))
}

fn apply(m: &mut Message, body: &Value) {
    if let Some(a) = body.get("allowed_mentions") {
        m.allowed_mentions = a.clone();
    }
    if let Some(c) = body.get("content").and_then(Value::as_str) {
        m.content = c.to_owned();
    }
    if let Some(c) = body.get("components") {
        m.components = c.clone();
    }
}

async fn followup(
    State(f): State<Shared>,
    Path((app, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = parse(&body);
    if let Some(r) = refuse_components(&body) {
        return r;
    }
    if let Some(r) = f.enter(
        "POST",
        format!("/webhooks/{app}/{token}"),
        &headers,
        &body,
        Some(&token),
    ) {
        return r;
    }
    let flags = match flags_of(&body, WEBHOOK_FLAGS) {
        Ok(f) => f,
        Err(why) => return invalid_form("flags", why),
    };
    let mut inner = f.lock();
    let id = FakeDiscord::new_id(&mut inner);
    let visible_to = (flags & EPHEMERAL != 0).then(|| {
        inner
            .token_users
            .get(&token)
            .cloned()
            .unwrap_or_else(|| "the interaction's user".into())
    });
    let mut m = Message {
        id: id.clone(),
        channel_id: CHANNEL_ID.into(),
        token: token.clone(),
        components: json!([]),
        flags,
        visible_to,
        ..Default::default()
    };
    apply(&mut m, &body);
    inner.messages.insert(id, m.clone());
    message_json(&m).into_response()
}

async fn edit_webhook_message(
    State(f): State<Shared>,
    Path((app, token, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = parse(&body);
    if let Some(r) = refuse_components(&body) {
        return r;
    }
    if let Some(r) = f.enter(
        "PATCH",
        format!("/webhooks/{app}/{token}/messages/{id}"),
        &headers,
        &body,
        Some(&token),
    ) {
        return r;
    }
    let mut inner = f.lock();
    let id = if id == "@original" {
        match inner.originals.get(&token) {
            Some(id) => id.clone(),
            None => {
                // The deferred response created it; its id appears with the first edit.
                let id = FakeDiscord::new_id(&mut inner);
                inner.originals.insert(token.clone(), id.clone());
                let flags = inner.response_flags.get(&token).copied().unwrap_or(0);
                let visible_to = (flags & EPHEMERAL != 0)
                    .then(|| inner.token_users.get(&token).cloned())
                    .flatten();
                inner.messages.insert(
                    id.clone(),
                    Message {
                        id: id.clone(),
                        channel_id: CHANNEL_ID.into(),
                        token: token.clone(),
                        components: json!([]),
                        flags,
                        visible_to,
                        ..Default::default()
                    },
                );
                id
            }
        }
    } else {
        id
    };
    let Some(m) = inner.messages.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": "Unknown Message", "code": 10008 })),
        )
            .into_response();
    };
    apply(m, &body);
    message_json(m).into_response()
}

async fn channel_post(
    State(f): State<Shared>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = parse(&body);
    if let Some(r) = refuse_components(&body) {
        return r;
    }
    if let Some(r) = f.enter("POST", format!("/channels/{channel}/messages"), &headers, &body, None) {
        return r;
    }
    if !FakeDiscord::bot_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "401: Unauthorized", "code": 0 })),
        )
            .into_response();
    }
    let flags = match flags_of(&body, CHANNEL_FLAGS) {
        Ok(f) => f,
        Err(why) => return invalid_form("flags", why),
    };
    let mut inner = f.lock();
    let id = FakeDiscord::new_id(&mut inner);
    let visible_to = inner.dm_channels.get(&channel).cloned();
    let mut m = Message {
        id: id.clone(),
        channel_id: channel,
        components: json!([]),
        flags,
        visible_to,
        ..Default::default()
    };
    apply(&mut m, &body);
    inner.messages.insert(id, m.clone());
    message_json(&m).into_response()
}

/// Create DM: `{"recipient_id": snowflake}` with the bot token; the same channel for the
/// same recipient, as Discord does.
async fn open_dm(State(f): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = parse(&body);
    if let Some(r) = refuse_components(&body) {
        return r;
    }
    if let Some(r) = f.enter("POST", "/users/@me/channels".into(), &headers, &body, None) {
        return r;
    }
    if !FakeDiscord::bot_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "401: Unauthorized", "code": 0 })),
        )
            .into_response();
    }
    let Some(user) = body["recipient_id"]
        .as_str()
        .filter(|u| !u.is_empty() && u.chars().all(|c| c.is_ascii_digit()))
    else {
        return invalid_form("recipient_id", "Value \"\" is not snowflake.");
    };
    let mut inner = f.lock();
    let existing = inner
        .dm_channels
        .iter()
        .find(|(_, u)| *u == user)
        .map(|(c, _)| c.clone());
    let channel = match existing {
        Some(c) => c,
        None => {
            let c = FakeDiscord::new_id(&mut inner);
            inner.dm_channels.insert(c.clone(), user.to_owned());
            c
        }
    };
    Json(json!({
        "id": channel, "type": 1, "last_message_id": null, "flags": 0,
        "recipients": [{ "id": user, "username": format!("user{user}"), "global_name": null,
                         "avatar": null, "discriminator": "0", "public_flags": 0 }]
    }))
    .into_response()
}

async fn channel_edit(
    State(f): State<Shared>,
    Path((channel, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = parse(&body);
    if let Some(r) = refuse_components(&body) {
        return r;
    }
    if let Some(r) = f.enter(
        "PATCH",
        format!("/channels/{channel}/messages/{id}"),
        &headers,
        &body,
        None,
    ) {
        return r;
    }
    if !FakeDiscord::bot_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "401: Unauthorized", "code": 0 })),
        )
            .into_response();
    }
    let mut inner = f.lock();
    let Some(m) = inner.messages.get_mut(&id).filter(|m| m.channel_id == channel) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": "Unknown Message", "code": 10008 })),
        )
            .into_response();
    };
    apply(m, &body);
    message_json(m).into_response()
}

async fn register_global(
    State(f): State<Shared>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    register(f, format!("/applications/{app}/commands"), headers, body)
}

async fn register_guild(
    State(f): State<Shared>,
    Path((app, guild)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    register(f, format!("/applications/{app}/guilds/{guild}/commands"), headers, body)
}

fn register(f: Shared, path: String, headers: HeaderMap, body: Bytes) -> Response {
    let body = parse(&body);
    if let Some(r) = f.enter("PUT", path, &headers, &body, None) {
        return r;
    }
    if !FakeDiscord::bot_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "401: Unauthorized", "code": 0 })),
        )
            .into_response();
    }
    let mut out = body.clone();
    if let Some(list) = out.as_array_mut() {
        for (i, c) in list.iter_mut().enumerate() {
            c["id"] = json!(format!("{}", 1_100_000_000_000_000_050u64 + i as u64));
            c["application_id"] = json!(APPLICATION_ID);
        }
    }
    Json(out).into_response()
}

/// Signs interactions as Discord does: Ed25519 over timestamp + body, hex signature.
pub struct InteractionSigner {
    key: SigningKey,
}

impl InteractionSigner {
    /// A fresh key made for this test.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("random seed");
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public_key_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let msg = [timestamp.as_bytes(), body].concat();
        hex(&self.key.sign(&msg).to_bytes())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

static NEXT_INTERACTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh interaction id (a snowflake) and token.
pub fn new_interaction() -> (String, String) {
    let n = NEXT_INTERACTION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let id = format!("{}", 1_200_000_000_000_000_100u64 + n);
    (id.clone(), format!("interaction-token-{id}"))
}

fn member(user_id: &str, roles: &[&str]) -> Value {
    json!({
        "avatar": null, "deaf": false, "flags": 0, "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "mute": false, "nick": null, "pending": false, "permissions": "2248473465835073",
        "premium_since": null, "roles": roles,
        "user": { "avatar": null, "discriminator": "0", "global_name": null, "id": user_id,
                  "public_flags": 0, "username": format!("user{user_id}") }
    })
}

/// An application command (type 2) as Discord sends it, shaped like the shared fixture:
/// `/deckhand <words...> <options>`; `options` are (name, value) with JSON numbers for
/// integer options.
pub fn command_payload(
    id: &str,
    token: &str,
    user_id: &str,
    roles: &[&str],
    words: &[&str],
    options: &[(&str, Value)],
) -> Value {
    let mut payload: Value =
        serde_json::from_str(include_str!("fixtures/application_command.json")).expect("fixture parses");
    let leaf: Vec<Value> = options
        .iter()
        .map(|(name, v)| {
            let kind = if v.is_i64() {
                4
            } else if v.is_boolean() {
                5
            } else {
                3
            };
            json!({ "name": name, "type": kind, "value": v })
        })
        .collect();
    let opts = match words {
        [sub] => json!([{ "name": sub, "type": 1, "options": leaf }]),
        [group, sub] => json!([{ "name": group, "type": 2, "options": [{ "name": sub, "type": 1, "options": leaf }] }]),
        _ => panic!("one or two words"),
    };
    payload["data"]["options"] = opts;
    payload["id"] = json!(id);
    payload["token"] = json!(token);
    payload["member"] = member(user_id, roles);
    payload
}

/// A button click (type 3) on `custom_id`, shaped like the shared fixture.
pub fn component_payload(id: &str, token: &str, user_id: &str, roles: &[&str], custom_id: &str) -> Value {
    let mut payload: Value =
        serde_json::from_str(include_str!("fixtures/message_component.json")).expect("fixture parses");
    payload["data"]["custom_id"] = json!(custom_id);
    payload["id"] = json!(id);
    payload["token"] = json!(token);
    payload["member"] = member(user_id, roles);
    payload
}

/// A modal submission (type 5) of the modal `custom_id` with text inputs (custom_id, value),
/// from a message component, as Discord sends it.
pub fn modal_submit_payload(id: &str, token: &str, user_id: &str, custom_id: &str, inputs: &[(&str, &str)]) -> Value {
    let mut payload = component_payload(id, token, user_id, &[], custom_id);
    payload["type"] = json!(5);
    let rows: Vec<Value> = inputs
        .iter()
        .map(|(name, value)| json!({ "type": 1, "components": [{ "type": 4, "custom_id": name, "value": value }] }))
        .collect();
    payload["data"] = json!({ "custom_id": custom_id, "components": rows });
    payload
}
