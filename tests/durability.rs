//! An acked slash command survives kill -9: deckhand runs as a child process (the release of
//! this crate's `deckhand serve`), 32 tasks send it signed slash commands that each need an
//! approval, the process is killed with SIGKILL while they are in flight, and every command
//! that got its 200 must be in the store with its events and audit row. Then a new process on
//! the same store takes the same commands again without storing any twice (idempotency holds
//! across the crash). Both backends.

#[path = "support/slack/mod.rs"]
mod slack_fake;
mod support;

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use slack_fake::{FakeSlack, SIGNING_SECRET, command_form, now, signed_headers};
use sqlx::{AnyPool, Row};
use support::{Backend, TestDb, backends};

const TASKS: usize = 32;
/// Kill once at least this many commands were acked (so the kill lands under load).
const ACKED_BEFORE_KILL: usize = 300;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Deckhand {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Deckhand {
    async fn start(store_url: &str, slack: &FakeSlack) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("deckhand.toml");
        // One command that needs an approval and no cluster: the ack is a durable write.
        std::fs::write(dir.path().join("hold.yaml"), HOLD_SPEC).expect("write spec");
        std::fs::write(
            &config,
            format!(
                r#"
[store]
url = "{store_url}"

[commands]
dir = "{dir}"

[slack]
bot_token = "{bot}"
signing_secret = "{SIGNING_SECRET}"
api_url = "{api}"

[users.dana]
groups = ["developers"]
identities = ["slack:UDANA"]
tokens = ["dana-token-0123456789"]
"#,
                bot = slack_fake::BOT_TOKEN,
                api = slack.api_url(),
                dir = dir.path().display(),
            ),
        )
        .expect("write config");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_deckhand"))
            .args(["--config"])
            .arg(&config)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start deckhand");
        let url = format!("http://127.0.0.1:{port}");
        let mut me = Self { child, url, _dir: dir };
        me.wait_ready().await;
        me
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("deckhand exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "deckhand not ready within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown hook, no flush, no graceful drain.
    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Deckhand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const HOLD_SPEC: &str = r#"
- name: hold
  help: Stored, waits for an ops approval
  pattern: '^hold (?P<env>\S+)$'
  args:
    env: { type: name }
  action: whoami
  allow: [group:developers]
  approval: { approvers: [group:ops], count: 1, expires: 1h }
"#;

/// Sends `hold dur-N` (needs an ops approval, so the ack is a durable write) with
/// trigger_id `dur.N`; true on 200.
async fn send(http: &reqwest::Client, url: &str, slack: &FakeSlack, n: usize) -> bool {
    let body = command_form(
        "UDANA",
        "CDUR",
        &format!("hold dur-{n}"),
        &format!("dur.{n}"),
        &slack.response_url("dur"),
    );
    let mut req = http
        .post(format!("{url}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in signed_headers(&body, now()) {
        req = req.header(k, v);
    }
    matches!(req.body(body).send().await, Ok(r) if r.status().is_success())
}

/// What the store holds for trigger `dur.N`: (requests, events, audit rows).
async fn stored(pool: &AnyPool, n: usize) -> (i64, i64, i64) {
    let key = format!("slack:dur.{n}");
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM requests WHERE idempotency_key = $1), \
                (SELECT COUNT(*) FROM events e JOIN requests r ON r.id = e.request_id WHERE r.idempotency_key = $1), \
                (SELECT COUNT(*) FROM audit a JOIN requests r ON r.id = a.request_id WHERE r.idempotency_key = $1)",
    )
    .bind(key)
    .fetch_one(pool)
    .await
    .expect("query the store");
    (row.get(0), row.get(1), row.get(2))
}

async fn acked_commands_survive_kill_9(backend: Backend) {
    support::init_tls();
    let db = TestDb::new(backend).await;
    let slack = FakeSlack::start().await;
    let mut first = Deckhand::start(&db.url, &slack).await;

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (acked, next, http, url, slack) = (
                acked.clone(),
                next.clone(),
                http.clone(),
                first.url.clone(),
                slack.clone(),
            );
            tokio::spawn(async move {
                // Each task sends until its first failure (the kill), at most 60 s.
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !send(&http, &url, &slack, n).await {
                        return;
                    }
                    acked.lock().unwrap().insert(n);
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < ACKED_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "{backend:?}: not {ACKED_BEFORE_KILL} acks within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill9();
    for t in tasks {
        t.await.expect("sender");
    }
    let acked = acked.lock().unwrap().clone();
    let sent = next.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{backend:?}: {} acked, {} sent when deckhand was killed",
        acked.len(),
        sent
    );
    assert!(
        sent > acked.len(),
        "{backend:?}: some commands were in flight at the kill"
    );

    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&db.url).await.expect("open the store");
    let told: Vec<_> = slack.calls_to("response_url").into_iter().take(1).collect();
    for &n in &acked {
        let (requests, events, audit) = stored(&pool, n).await;
        assert_eq!(
            requests, 1,
            "{backend:?}: acked command dur.{n} is in the store once (deckhand answered {told:?})"
        );
        assert!(events >= 1, "{backend:?}: acked command dur.{n} has its events");
        assert!(audit >= 1, "{backend:?}: acked command dur.{n} has its audit row");
    }
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(
        before >= acked.len() as i64 && before <= sent as i64,
        "{backend:?}: {before} stored for {} acked of {sent} sent",
        acked.len()
    );

    // A new process on the same store: Slack retries every command (acked or not); none is
    // stored twice, and every one is stored in the end.
    let second = Deckhand::start(&db.url, &slack).await;
    for n in 0..sent {
        assert!(
            send(&http, &second.url, &slack, n).await,
            "{backend:?}: the retry of dur.{n} is acked"
        );
    }
    for n in 0..sent {
        let (requests, _, _) = stored(&pool, n).await;
        assert_eq!(
            requests, 1,
            "{backend:?}: dur.{n} is stored exactly once after the retry"
        );
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acked_slash_commands_survive_kill_9_and_are_stored_once() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        acked_commands_survive_kill_9(backend).await;
    }
}

/// SQLite's checkpoints run off the commit path (src/store/checkpoint.rs): the writer only
/// checkpoints past 10,000 pages of log, so when a few hundred pages written through the
/// store reach the database file itself, the background checkpoint moved them. SQLite only:
/// PostgreSQL has no such log to copy back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_in_the_background_not_in_the_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deckhand.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let store = deckhand::store::Store::connect(&url, 4).await.expect("store");
    store.migrate().await.expect("migrate");
    let pool = store.pool();
    sqlx::query("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .execute(pool)
        .await
        .expect("create");
    let before = std::fs::metadata(&file).expect("db file").len();
    for i in 0..300 {
        sqlx::query("INSERT INTO filler (id, body) VALUES ($1, $2)")
            .bind(i as i64)
            .bind("x".repeat(4000))
            .execute(pool)
            .await
            .expect("insert");
    }
    let wal = dir.path().join("deckhand.db-wal");
    assert!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 1_000_000,
        "the inserts went to the write-ahead log"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&file).expect("db file").len();
        if now >= before + 1_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint copied the log into the database file within 10 s ({before} -> {now} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await;
}

/// A PostgreSQL server that dropped every connection of the store's pool during a quiet spell
/// (a restart, a failover, an idle timeout in a proxy between them) costs no request: the
/// pool finds a dead connection before handing it out (`store::pool_options`) and opens a
/// fresh one. PostgreSQL only: a SQLite connection is a file in this process and cannot be
/// dropped by a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_connection_dropped_while_idle_costs_no_request() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store(4).await;
    let idle = store.pool().size();
    assert!(idle > 0, "the pool keeps the connection migrate used");

    let admin = AnyPool::connect(&db.url).await.expect("admin connection");
    let dropped: i64 = sqlx::query(
        "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&admin)
    .await
    .and_then(|r| r.try_get("n"))
    .expect("terminate the store's connections");
    assert!(
        dropped >= i64::from(idle),
        "the server dropped the store's {idle} connection(s): {dropped}"
    );
    admin.close().await;

    for _ in 0..idle {
        let counts = store.counts().await;
        assert!(counts.is_ok(), "a statement after the drop failed: {counts:?}");
    }
    store.close().await;
}
