//! The `deckhand` binary: client commands against a spawned server, and spec validation.

mod support;

#[path = "cli/server_text.rs"]
mod server_text;

use std::process::Output;

use deckhand::startup::Builder;
use support::{Backend, TestApp, TestDb, backends, spawn_app, test_config, token};

/// Runs the real binary as `user` against `app`, off the async runtime.
async fn deckhand(app: &TestApp, user: &str, args: &[&str]) -> Output {
    let url = app.url.clone();
    let token = token(user);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
            .args(&args)
            .env("DECKHAND_URL", url)
            .env("DECKHAND_TOKEN", token)
            .env_remove("DECKHAND_OUTPUT")
            .output()
            .expect("run deckhand")
    })
    .await
    .expect("join")
}

fn out(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_follows_requests_and_exit_codes_tell_the_outcome() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;

        let (code, stdout, _) = out(&deckhand(&app, "alice", &["run", "help"]).await);
        assert_eq!(code, 0);
        assert!(stdout.starts_with("Commands you can run:"), "{stdout}");

        let (code, stdout, _) = out(&deckhand(&app, "alice", &["run", "deploy", "nginx:1.27", "to", "web"]).await);
        assert_eq!(code, 0, "{stdout}");
        assert!(
            stdout.contains("counted web") && stdout.contains("done with web"),
            "{stdout}"
        );

        let (code, _, stderr) = out(&deckhand(&app, "alice", &["run", "deplyo nginx to web"]).await);
        assert_eq!(code, 2, "a rejected command exits 2");
        assert!(stderr.contains("Did you mean `deploy`?"), "{stderr}");

        let (code, _, stderr) = out(&deckhand(&app, "alice", &["run", "request r-zzzz"]).await);
        assert_eq!(code, 1, "a failed request exits 1");
        assert!(stderr.contains("There is no request r-zzzz"), "{stderr}");

        let o = deckhand(&app, "alice", &["run", "--output", "json", "whoami"]).await;
        let (code, stdout, _) = out(&o);
        assert_eq!(code, 0);
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(
            (last["state"].as_str(), last["requester"].as_str()),
            (Some("succeeded"), Some("alice")),
            "{stdout}"
        );
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_and_deny_from_the_cli() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let o = deckhand(
            &app,
            "alice",
            &[
                "run",
                "--no-wait",
                "--output",
                "json",
                "deploy nginx:1.27 to shop tier=prod",
            ],
        )
        .await;
        let (code, stdout, _) = out(&o);
        assert_eq!(code, 0);
        let request: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(request["state"], "pending_approval");
        let id = request["id"].as_str().unwrap().to_owned();

        let (_, stdout, _) = out(&deckhand(&app, "olga", &["requests", "--scope", "pending"]).await);
        assert!(stdout.contains(&id) && stdout.contains("pending_approval"), "{stdout}");

        let (code, _, stderr) = out(&deckhand(&app, "alice", &["approve", &id]).await);
        assert_eq!(code, 2);
        assert!(stderr.contains("You (alice) cannot approve"), "{stderr}");

        let (code, stdout, _) = out(&deckhand(&app, "olga", &["approve", &id]).await);
        assert_eq!(code, 0);
        assert!(stdout.contains(&format!("{id} approved")), "{stdout}");
        app.wait_for_state(&id, &["succeeded"]).await;

        let (_, v) = app.submit_as("alice", "deploy nginx:1.27 to cart tier=prod").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        let (code, _, _) = out(&deckhand(&app, "omar", &["deny", &id, "--reason", "freeze"]).await);
        assert_eq!(code, 0);
        let (_, stdout, _) = out(&deckhand(&app, "alice", &["request", &id]).await);
        assert!(
            stdout.contains("denied") && stdout.contains("omar denied: freeze"),
            "{stdout}"
        );
        app.shutdown().await;
    }
}

#[test]
fn missing_token_and_unreachable_server_read_well() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["run", "help"])
        .env_remove("DECKHAND_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("set DECKHAND_TOKEN"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args([
            "run",
            "help",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "whatever-token-1234",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Is `deckhand serve` running there?"));
}

#[test]
fn commands_validate_reports_every_problem() {
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["commands", "validate", concat!(env!("CARGO_MANIFEST_DIR"), "/commands")])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("all valid"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        r#"
- name: env create
  help: Create an environment
  pattern: '^env create (?P<name>\S+)(?: (?P<ttl>\S+))?$'
  args:
    name: { type: name }
    ttl: { type: duration, default: soon }
  action: env.make
  allow: [group:developerz]
  approval: { when: "tier = 'prod'", approvers: [group:ops], count: 0 }
- name: status
  help: Status
  pattern: '^status (?P<app>[a-z'
  action: help
  allow: [everyone]
- name: whoami
  help: Who you are
  pattern: '^whoami$'
  action: whoami
  allow: [everyone]
  answer: private
  approval: { approvers: [group:ops] }
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("syntax.yaml"), "- name: [unclosed\n").unwrap();
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["commands", "validate"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    for expected in [
        "broken.yaml: command `env create`: args.ttl.default: 'soon' is not a duration",
        "broken.yaml: command `env create`: action: unknown action 'env.make'",
        "broken.yaml: command `env create`: allow: unknown group 'developerz'",
        "broken.yaml: command `env create`: approval.when: expected '==', use == or !=",
        "broken.yaml: command `env create`: approval.count: must be at least 1",
        "broken.yaml: command `status`: pattern: is not a valid regex",
        "broken.yaml: command `whoami`: answer: a private answer cannot wait for an approval",
        "syntax.yaml: yaml:",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }

    // `serve` refuses to start on the same specs, with the same messages.
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DECKHAND_COMMANDS__DIR", dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite?mode=rwc", dir.path().display()),
        )
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(
        stderr.contains("unknown action 'env.make'") && stderr.contains("problem(s) in command specs"),
        "{stderr}"
    );
}

#[test]
fn bad_configuration_names_the_key() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["commands", "validate"])
        .env("DECKHAND_WORKER__CONCURRENCY", "lots")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("worker.concurrency") && stderr.contains("DECKHAND_WORKER__CONCURRENCY"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_creates_the_store() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        // On SQLite the file goes into a directory that does not exist yet.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/deckhand.db");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", file.display()),
            Backend::Postgres => db.url.clone(),
        };
        // A quick process that needs nothing from this runtime: run it in place.
        let migrate = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
                .arg("migrate")
                .env("DATABASE_URL", &url)
                .output()
                .unwrap()
        };
        let o = migrate();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("store is up to date"));
        if backend == Backend::Sqlite {
            assert!(file.exists());
        }
        // Every migration in the repository is recorded as applied.
        let applied: i64 = match backend {
            Backend::Sqlite => {
                use sqlx::Connection;
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            }
        };
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
            .count();
        assert_eq!(applied, files as i64);
        // Migrating again has nothing to do.
        let o = migrate();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn the_development_token_is_never_served_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite?mode=rwc", dir.path().display()),
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("define [users] in your configuration"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_prints_a_requests_whole_output() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let (_, v) = app.submit_as("alice", "help").await;
        let id = v["request"]["id"].as_str().unwrap().to_owned();
        app.wait_for_state(&id, &["succeeded"]).await;
        let (code, stdout, _) = out(&deckhand(&app, "alice", &["output", &id]).await);
        assert_eq!(code, 0);
        assert!(stdout.starts_with("Commands you can run:"), "{stdout}");
        let (code, _, stderr) = out(&deckhand(&app, "alice", &["output", "r-zzzz"]).await);
        assert_eq!(code, 2, "refused like any API error: {stderr}");
        assert!(stderr.contains("There is no request r-zzzz"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_pipe_ends_the_client_quietly() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_app(&db).await;
        let (url, token) = (app.url.clone(), token("alice"));
        let stderr = tokio::task::spawn_blocking(move || {
            use std::process::{Command, Stdio};
            // `deckhand run help | true`: the reader is gone before the answer is printed.
            let mut child = Command::new(env!("CARGO_BIN_EXE_deckhand"))
                .args(["run", "help"])
                .env("DECKHAND_URL", url)
                .env("DECKHAND_TOKEN", token)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run deckhand");
            drop(child.stdout.take());
            let out = child.wait_with_output().expect("wait");
            String::from_utf8_lossy(&out.stderr).into_owned()
        })
        .await
        .expect("join");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `loadtest` bound to the counting test action, always waiting for one ops approval: the
/// CLI's side of a load test without a cluster.
const LOADTEST_STAND_IN: &str = r#"
- name: loadtest
  help: Stand-in for the load test, waiting for ops
  pattern: '^loadtest (?P<target>\S+) in (?P<env>\S+) rate=(?P<rate>\S+) duration=(?P<duration>\S+)$'
  args:
    target: { type: text }
    env: { type: name }
    rate: { type: int, min: 1, max: 100 }
    duration: { type: duration }
  action: test.count
  allow: [group:developers]
  approval: { approvers: [group:ops], count: 1, expires: 1h }
"#;

async fn spawn_with_loadtest(db: &TestDb) -> TestApp {
    support::init_tls();
    let probe = std::sync::Arc::new(support::actions::Probe::default());
    let mut specs = support::test_specs();
    specs.push(("tests/loadtest.yaml".into(), LOADTEST_STAND_IN.into()));
    let running = support::actions::register(Builder::new(test_config(&db.url)), &probe)
        .specs(specs)
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("app starts");
    TestApp::from_running(running)
}

/// The CLI load test the exit-code tests run.
const LOADTEST_ARGS: &[&str] = &[
    "loadtest",
    "shop",
    "--env",
    "lt",
    "--rate",
    "5",
    "--duration",
    "1s",
    "--wait",
];

/// `deckhand loadtest shop --env lt ... --wait` as alice, in the background.
fn loadtest_in_background(app: &TestApp) -> tokio::task::JoinHandle<Output> {
    let (url, token) = (app.url.clone(), token("alice"));
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
            .args(LOADTEST_ARGS)
            .env("DECKHAND_URL", url)
            .env("DECKHAND_TOKEN", token)
            .env_remove("DECKHAND_OUTPUT")
            .output()
            .expect("run deckhand")
    })
}

/// The id of the load test waiting for approval, once the CLI has submitted it.
async fn pending_loadtest(app: &TestApp) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, v) = app.get_as(support::ADMIN, "/api/v1/requests?scope=pending").await;
        let found = v["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["text"].as_str().is_some_and(|t| t.starts_with("loadtest shop in lt")));
        if let Some(r) = found {
            return r["id"].as_str().expect("id").to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "no pending load test: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn finished(cli: tokio::task::JoinHandle<Output>) -> (i32, String, String) {
    let o = tokio::time::timeout(std::time::Duration::from_secs(30), cli)
        .await
        .expect("the CLI returns once the request ends")
        .expect("join");
    out(&o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loadtest_exits_2_when_the_test_could_not_run_and_0_when_it_passed() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_with_loadtest(&db).await;

        let cli = loadtest_in_background(&app);
        let id = pending_loadtest(&app).await;
        let (status, v) = app
            .post_as(
                "omar",
                &format!("/api/v1/requests/{id}/deny"),
                serde_json::json!({ "reason": "freeze" }),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (code, _, stderr) = finished(cli).await;
        assert_eq!(code, 2, "a denied test did not run: {stderr}");
        assert!(
            stderr.contains("the load test could not run") && stderr.contains("denied"),
            "{stderr}"
        );

        let cli = loadtest_in_background(&app);
        let id = pending_loadtest(&app).await;
        assert_eq!(app.approve("olga", &id).await.0, 200);
        let (code, _, stderr) = finished(cli).await;
        assert_eq!(code, 0, "{stderr}");
        app.shutdown().await;
    }
}

#[test]
fn loadtest_exits_2_when_deckhand_cannot_be_reached_and_documents_its_exit_codes() {
    let loadtest = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
            .args(LOADTEST_ARGS)
            .args(extra)
            .env_remove("DECKHAND_URL")
            .env_remove("DECKHAND_TOKEN")
            .output()
            .unwrap()
    };
    let o = loadtest(&["--url", "http://127.0.0.1:9", "--token", "whatever-token-1234"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach deckhand at http://127.0.0.1:9"),
        "{stderr}"
    );
    let o = loadtest(&[]);
    assert_eq!(o.status.code(), Some(2), "no token, no test");
    assert!(String::from_utf8_lossy(&o.stderr).contains("set DECKHAND_TOKEN"));

    let help = loadtest(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for line in [
        "0  the test ran and every threshold passed",
        "1  the test ran and a threshold failed",
        "2  the test could not run",
    ] {
        assert!(help.contains(line), "{help}");
    }
}

#[test]
fn client_commands_take_url_and_token_from_the_environment() {
    for command in [
        "deny", "approve", "cancel", "request", "requests", "output", "run", "loadtest", "shell",
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
            .args([command, "--help"])
            .env("DECKHAND_TOKEN", "secret-token-never-shown")
            .env_remove("DECKHAND_URL")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&o.stdout);
        let usage = help.lines().find(|l| l.starts_with("Usage:")).expect("usage line");
        assert!(
            !usage.contains("--url") && !usage.contains("--token"),
            "{command}: {usage}"
        );
        assert!(
            help.contains("[env: DECKHAND_TOKEN]") && help.contains("[env: DECKHAND_URL"),
            "{command}: {help}"
        );
        assert!(!help.contains("secret-token-never-shown"), "{command}: {help}");
    }
}
