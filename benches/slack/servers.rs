//! What the slack bench measures against: a Slack Web API sink, the verify-only baseline
//! handler, and deckhand itself on a fresh SQLite file or PostgreSQL database.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use deckhand::{
    configuration::Config,
    slack::verify::{RequestVerifier, SIGNATURE_HEADER, TIMESTAMP_HEADER},
    startup::{Builder, Running},
};

use super::slack_fake::{BOT_TOKEN, SIGNING_SECRET, now};

/// The bench's one command: stored, waits for an approval (so every command is a durable
/// write that the worker never runs), and needs no cluster.
const SPEC: &str = r#"
- name: bench
  help: Stored, waits for an approval
  pattern: '^bench (?P<env>\S+)$'
  args:
    env: { type: name }
  action: whoami
  allow: [group:developers]
  approval: { approvers: [group:ops], count: 1, expires: 1h }
"#;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The Slack Web API as a sink: every method answers `{"ok":true,"ts":"1.1"}` (plus an empty
/// `usergroups` for usergroups.list) and is only counted, so the sink costs next to nothing.
#[derive(Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

impl Sink {
    pub async fn start() -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/api/{method}", post(sink_api))
            .route("/response/{*rest}", post(sink_api))
            .with_state(calls.clone());
        Self {
            addr: serve(app).await,
            calls,
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Waits until the background posts stop (no new call for 2 s: the outbox polls every
    /// 250 ms), at most `max`, and says how many calls came after the phase that ended and
    /// within how long: the backlog the acks left behind them.
    pub async fn settle(&self, phase: &str, max: Duration) {
        let started = Instant::now();
        let first = self.calls();
        let (mut last, mut busy) = (first, Duration::ZERO);
        while started.elapsed() < max {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = self.calls();
            if now == last {
                println!(
                    "  posts after the {phase}: {} Web API calls within {:.0} s",
                    last - first,
                    busy.as_secs_f64().ceil()
                );
                return;
            }
            (last, busy) = (now, started.elapsed());
        }
        println!(
            "  background posts still going {} s after the {phase} (the bench moves on)",
            max.as_secs()
        );
    }
}

async fn sink_api(State(calls): State<Arc<AtomicUsize>>, Path(method): Path<String>) -> &'static str {
    calls.fetch_add(1, Ordering::Relaxed);
    // `SLACK_BENCH_NO_POSTS=1`: a Slack that never answers, so the outbox's slots wait and
    // the run shows what the acknowledgements cost without the posts beside them.
    if std::env::var("SLACK_BENCH_NO_POSTS").is_ok_and(|v| v == "1") {
        std::future::pending::<()>().await;
    }
    if method == "usergroups.list" {
        r#"{"ok":true,"ts":"1.1","usergroups":[]}"#
    } else {
        r#"{"ok":true,"ts":"1.1"}"#
    }
}

/// The baseline: an axum handler that checks the Slack signature (deckhand's scheme and
/// verifier: HMAC-SHA256 over `v0:{ts}:{body}`, 5-minute window) and answers 200. No parse,
/// no write, no posts.
pub async fn start_baseline() -> SocketAddr {
    let verifier = Arc::new(RequestVerifier::new(SIGNING_SECRET));
    let app = Router::new()
        .route("/slack/commands", post(verify_only))
        .with_state(verifier);
    serve(app).await
}

async fn verify_only(State(v): State<Arc<RequestVerifier>>, headers: HeaderMap, body: String) -> StatusCode {
    if signed(&v, &headers, &body) {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// The baseline's whole work: deckhand's check of the Slack signature headers over the body.
fn signed(v: &RequestVerifier, headers: &HeaderMap, body: &str) -> bool {
    let header = |name| headers.get(name).and_then(|h| h.to_str().ok()).unwrap_or("");
    v.verify_signature(header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER), body)
        .is_ok()
}

/// The floor: the baseline's check, then the two posts every stored command makes (a root
/// message, then the approval prompt in its thread) through deckhand's own Web API client to
/// the sink, then 200. No parse, no store. It acks only as fast as the machine can also post,
/// so its rate bounds any design that keeps its posts up with its acks on these cores.
pub async fn start_floor(sink: &Sink) -> SocketAddr {
    let config = deckhand::slack::SlackConfig {
        bot_token: BOT_TOKEN.into(),
        api_url: format!("http://{}/api", sink.addr),
        ..Default::default()
    };
    let state = Arc::new((
        RequestVerifier::new(SIGNING_SECRET),
        deckhand::slack::WebApi::new(&config),
    ));
    let app = Router::new()
        .route("/slack/commands", post(verify_and_post))
        .with_state(state);
    serve(app).await
}

type FloorState = Arc<(RequestVerifier, deckhand::slack::WebApi)>;

async fn verify_and_post(State(s): State<FloorState>, headers: HeaderMap, body: String) -> StatusCode {
    if !signed(&s.0, &headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let root = serde_json::json!({
        "channel": "CBENCH",
        "text": "`bench dev1` by <@UBENCH>: waiting for approval",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "`bench dev1` by <@UBENCH>: :hourglass: waiting for approval (group:ops, 1 of 1, expires in 1h)"}}],
    });
    let Ok(posted) = s.1.call("chat.postMessage", &root).await else {
        return StatusCode::BAD_GATEWAY;
    };
    let prompt = serde_json::json!({
        "channel": "CBENCH",
        "thread_ts": posted["ts"],
        "text": "Approve `bench dev1`?",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "<@UBENCH> asks to run `bench dev1`. Approvers: group:ops (1 of 1)."}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "style": "primary", "action_id": "approve", "value": "0123456789abcdefghjkmnpqrs"},
                {"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "style": "danger", "action_id": "reject", "value": "0123456789abcdefghjkmnpqrs"}
            ]}
        ],
    });
    match s.1.call("chat.postMessage", &prompt).await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_GATEWAY,
    }
}

fn pg_admin_url() -> String {
    std::env::var("DECKHAND_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Where deckhand stores: a SQLite file in a temporary directory, or a PostgreSQL database
/// created for the run and dropped by `drop_db`.
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    pub async fn new(postgres: bool) -> Self {
        if !postgres {
            return Db::Sqlite(tempfile::tempdir().expect("tempdir"));
        }
        use sqlx::Connection;
        let name = format!("deckhand_bench_{}_{}", std::process::id(), now());
        let mut conn = sqlx::PgConnection::connect(&pg_admin_url())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is needed ({e})", pg_admin_url()));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        Db::Postgres(name)
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()),
            Db::Postgres(name) => {
                let admin = pg_admin_url();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                format!("{base}/{name}")
            }
        }
    }

    pub async fn drop_db(self) {
        if let Db::Postgres(name) = self {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
            }
        }
    }
}

/// Writes deckhand's configuration into `dir` (with the bench command as the only spec):
/// Slack on, the Web API pointed at `sink`, storing in `db`. The path of the TOML.
pub fn write_config(dir: &std::path::Path, db: &Db, sink: &Sink) -> std::path::PathBuf {
    std::fs::write(dir.join("bench.yaml"), SPEC).expect("spec");
    let path = dir.join("deckhand.toml");
    let toml = format!(
        r#"
[store]
url = "{}"

[commands]
dir = "{}"

[slack]
bot_token = "{BOT_TOKEN}"
signing_secret = "{SIGNING_SECRET}"
api_url = "http://{}/api"

[users.bench]
groups = ["developers"]
identities = ["slack:UBENCH"]
tokens = ["bench-token-0123456789"]
"#,
        db.url(),
        dir.display(),
        sink.addr
    );
    std::fs::write(&path, toml).expect("config");
    path
}

/// Deckhand in this process with the configuration above.
pub async fn start_deckhand(db: &Db, sink: &Sink) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::build(Some(&write_config(dir.path(), db, sink)), std::iter::empty()).expect("config");
    let running = Builder::new(config)
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("deckhand starts");
    (running, dir)
}

/// Requests deckhand has stored (every state).
pub async fn stored(running: &Running) -> i64 {
    running
        .app
        .store
        .counts()
        .await
        .map(|c| c.iter().map(|(_, _, n)| n).sum())
        .unwrap_or(-1)
}
