//! Shared test helpers: a database per test on each backend, a configuration with known
//! people, test-only actions, and `spawn_app`, which starts the real server on a free port.
#![allow(dead_code)]

pub mod actions;

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use deckhand::{
    configuration::Config,
    domain::new_token,
    startup::{Builder, Running},
};
use serde_json::Value;

/// The store backends every backend-sensitive test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// PostgreSQL runs at 127.0.0.1:5432 on CI and dev machines (see README). Set
/// DECKHAND_TEST_PG_URL to point elsewhere, or to `off` to run SQLite only.
pub fn backends() -> Vec<Backend> {
    match std::env::var("DECKHAND_TEST_PG_URL").as_deref() {
        Ok("off") => {
            eprintln!("note: DECKHAND_TEST_PG_URL=off, PostgreSQL cases skipped");
            vec![Backend::Sqlite]
        }
        _ => vec![Backend::Sqlite, Backend::Postgres],
    }
}

fn pg_admin_url() -> String {
    std::env::var("DECKHAND_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database that disappears with the value.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// A store on this database with `connections` connections, migrated.
    pub async fn store(&self, connections: u32) -> deckhand::store::Store {
        let store = deckhand::store::Store::connect(&self.url, connections)
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store
    }

    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("deckhand.db").display());
                Self {
                    backend,
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let name = format!("deckhand_test_{}", new_token(12));
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for these tests ({e}); set DECKHAND_TEST_PG_URL=off to skip them"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Self {
                    backend,
                    url: format!("{base}/{name}"),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        let admin = pg_admin_url();
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                }
            });
        })
        .join();
    }
}

/// People in the test configuration: `token(name)` is their API token.
pub const OPS: &[&str] = &["olga", "omar", "otto"];
pub const DEVELOPERS: &[&str] = &["alice", "bob"];
pub const OUTSIDER: &str = "eve";
pub const ADMIN: &str = "root";

/// The Slack user id of a test user: `U` and the name in capitals (`alice` -> `UALICE`).
pub fn slack_id(user: &str) -> String {
    format!("U{}", user.to_uppercase())
}

/// The Discord user id (a snowflake) of a test user, stable per name.
pub fn discord_id(user: &str) -> String {
    let n = user
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)));
    format!("{}", 100_000_000_000_000_000 + n % 100_000_000_000_000_000)
}

pub fn token(user: &str) -> String {
    format!("token-for-{user}-0123456789")
}

/// A configuration TOML: the people above, twenty extra approvers (`ops01`..`ops20`),
/// a fast worker, and the given store.
pub fn config_toml(store_url: &str) -> String {
    let mut t = format!(
        r#"
[store]
url = "{store_url}"
max_connections = 10

[worker]
concurrency = 4
lease = "1s"
poll_interval = "1s"
shutdown_grace = "10s"

[groups.developers]
[groups.ops]
[groups.admins]
"#
    );
    let mut user = |name: &str, groups: &[&str]| {
        let groups: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
        t.push_str(&format!(
            "\n[users.{name}]\ngroups = [{}]\nidentities = [\"slack:{}\", \"discord:{}\"]\ntokens = [\"{}\"]\n",
            groups.join(", "),
            slack_id(name),
            discord_id(name),
            token(name)
        ));
    };
    for d in DEVELOPERS {
        user(d, &["developers"]);
    }
    for o in OPS {
        user(o, &["ops", "developers"]);
    }
    for i in 1..=20 {
        user(&format!("ops{i:02}"), &["ops"]);
    }
    user(OUTSIDER, &[]);
    user(ADMIN, &["admins", "ops", "developers"]);
    t
}

pub fn test_config(store_url: &str) -> Config {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deckhand.toml");
    std::fs::write(&path, config_toml(store_url)).expect("write config");
    Config::build(Some(&path), std::iter::empty()).expect("test config is valid")
}

/// Test specs: the built-in core commands plus commands bound to the test actions.
pub fn test_specs() -> Vec<(String, String)> {
    vec![
        (
            "commands/core.yaml".into(),
            include_str!("../../commands/core.yaml").into(),
        ),
        ("tests/test.yaml".into(), actions::TEST_SPECS.into()),
    ]
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub running: Option<Running>,
    pub probe: Arc<actions::Probe>,
    pub http: reqwest::Client,
}

pub async fn spawn_app(db: &TestDb) -> TestApp {
    spawn_app_with(test_config(&db.url), Arc::new(actions::Probe::default())).await
}

/// Starts the real server (HTTP + worker) with the test actions wired to `probe`.
pub async fn spawn_app_with(config: Config, probe: Arc<actions::Probe>) -> TestApp {
    init_tls();
    let builder = actions::register(Builder::new(config), &probe).specs(test_specs());
    let running = builder
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("app starts");
    let mut app = TestApp::from_running(running);
    app.probe = probe;
    app
}

/// `/release web` from `user` in Slack channel C0DECK, with `key` as its trigger id: a command
/// that needs approval, so each is a stored request with a root message and a prompt.
pub fn release_invocation(app: &deckhand::app::App, user: &str, key: String) -> deckhand::app::Invocation {
    deckhand::app::Invocation {
        principal: app.directory.user(user).expect("known user"),
        surface: deckhand::domain::Surface::Slack,
        text: "release web".into(),
        channel: Some("C0DECK".into()),
        thread: None,
        surface_data: Some(serde_json::json!({"channel": "C0DECK", "user": user})),
        idempotency_key: Some(key),
    }
}

/// A statement of `sqlx::query`'s shape on the Any driver, for [`plan`]'s `bind`.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// The plan the backend chooses for `sql`, as text (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN`
/// on PostgreSQL, neither of which runs it); `bind` binds the statement's parameters.
pub async fn plan(
    store: &deckhand::store::Store,
    backend: Backend,
    sql: &str,
    bind: impl FnOnce(AnyQuery<'static>) -> AnyQuery<'static>,
) -> String {
    use sqlx::Row;
    let (explain, column) = match backend {
        Backend::Sqlite => (format!("EXPLAIN QUERY PLAN {sql}"), "detail"),
        Backend::Postgres => (format!("EXPLAIN {sql}"), "QUERY PLAN"),
    };
    let rows = bind(sqlx::query(sqlx::AssertSqlSafe(explain)))
        .fetch_all(store.pool())
        .await
        .expect("explain");
    rows.iter()
        .map(|r| r.try_get::<String, _>(column).expect("plan line"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn init_tls() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The text of a request's first `output` event (what an instant command answered).
pub fn output_of(v: &Value) -> String {
    v["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["kind"] == "output"))
        .and_then(|e| e["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

impl TestApp {
    /// Wraps a server a test started itself (with its own surfaces or configuration).
    pub fn from_running(running: Running) -> Self {
        let addr = running.addr;
        TestApp {
            addr,
            url: format!("http://{addr}"),
            running: Some(running),
            probe: Arc::new(actions::Probe::default()),
            http: reqwest::Client::new(),
        }
    }

    pub fn app(&self) -> &Arc<deckhand::app::App> {
        &self.running.as_ref().expect("running").app
    }

    pub async fn submit_as(&self, user: &str, text: &str) -> (u16, Value) {
        self.post_as(user, "/api/v1/requests", serde_json::json!({ "text": text }))
            .await
    }

    pub async fn post_as(&self, user: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token(user))
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_as(&self, user: &str, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token(user))
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn approve(&self, user: &str, id: &str) -> (u16, Value) {
        self.post_as(user, &format!("/api/v1/requests/{id}/approve"), Value::Null)
            .await
    }

    /// Polls the API until the request reaches one of `states` (test-side polling only).
    pub async fn wait_for_state(&self, id: &str, states: &[&str]) -> Value {
        self.wait_for_state_as(ADMIN, id, states).await
    }

    /// As [`Self::wait_for_state`], reading the request as `user` sees it (private output
    /// is only the requester's).
    pub async fn wait_for_state_as(&self, user: &str, id: &str, states: &[&str]) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v) = self.get_as(user, &format!("/api/v1/requests/{id}")).await;
            if states.iter().any(|s| v["request"]["state"] == *s) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never reached {states:?}: {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    pub async fn kill(mut self) {
        if let Some(r) = self.running.take() {
            r.kill().await;
        }
    }
}
