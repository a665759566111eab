//! The CLI prints server text without the terminal control sequences in it (issue 12, item
//! 12): a request's progress lines, result and outcome come from other people and from pods,
//! and a terminal would run an OSC 52 (write the clipboard), a screen clear, a carriage
//! return that overwrites the line, or a bell. This runs the real binary's print paths
//! against a deckhand whose action says exactly such things.

use std::sync::Arc;

use async_trait::async_trait;
use deckhand::{
    actions::{Action, ActionContext, ActionError},
    events::Output,
};
use serde_json::json;

use super::{LOADTEST_ARGS, out, support};
use crate::support::{TestApp, TestDb, backends, test_config, token};

/// `loadtest` bound to [`Trap`], with no approval.
const TRAP_SPEC: &str = r#"
- name: loadtest
  help: Stand-in for the load test whose every line carries terminal control sequences
  pattern: '^loadtest (?P<target>\S+) in (?P<env>\S+) rate=(?P<rate>\S+) duration=(?P<duration>\S+)$'
  args:
    target: { type: text }
    env: { type: name }
    rate: { type: int, min: 1, max: 100 }
    duration: { type: duration }
  action: test.terminal_trap
  allow: [group:developers]
"#;

/// A progress line, a failed verdict and an outcome, each holding escape sequences.
struct Trap;

#[async_trait]
impl Action for Trap {
    fn name(&self) -> &'static str {
        "test.terminal_trap"
    }
    async fn run(&self, ctx: &ActionContext) -> Result<String, ActionError> {
        ctx.progress("warming up\u{1b}]52;c;ZXZpbA==\u{7} \u{1b}[2Jcleared\rback\u{7}")
            .await?;
        let verdict = Output::fields(json!({ "verdict": { "passed": false } }));
        ctx.output(
            "p95 \u{1b}[31m900ms\u{1b}[0m\u{1b}]0;pwned\u{7} over the limit",
            verdict,
        )
        .await?;
        Err(ActionError::Failed("threshold \u{1b}[1;1Hfailed\r\u{7}".into()))
    }
}

async fn spawn_with_trap(db: &TestDb) -> TestApp {
    support::init_tls();
    let mut specs = support::test_specs();
    specs.push(("tests/trap.yaml".into(), TRAP_SPEC.into()));
    let probe = Arc::new(support::actions::Probe::default());
    let running = support::actions::register(deckhand::startup::Builder::new(test_config(&db.url)), &probe)
        .action(Arc::new(Trap))
        .specs(specs)
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("app starts");
    TestApp::from_running(running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loadtest_wait_prints_no_terminal_control_sequences() {
    for backend in backends() {
        eprintln!("-- {backend:?}");
        let db = TestDb::new(backend).await;
        let app = spawn_with_trap(&db).await;
        let (url, token) = (app.url.clone(), token("alice"));
        let o = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
                .args(LOADTEST_ARGS)
                .env("DECKHAND_URL", url)
                .env("DECKHAND_TOKEN", token)
                .env_remove("DECKHAND_OUTPUT")
                .output()
                .expect("run deckhand")
        });
        let o = tokio::time::timeout(std::time::Duration::from_secs(30), o)
            .await
            .expect("the CLI returns once the request ends")
            .expect("join");
        let (code, stdout, stderr) = out(&o);
        assert_eq!(code, 1, "a failed threshold exits 1: {stderr}");
        for (name, printed) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(
                !printed.chars().any(|c| c.is_control() && c != '\n'),
                "control characters on {name}: {printed:?}"
            );
            assert!(
                !printed.contains("ZXZpbA") && !printed.contains("pwned"),
                "{name}: {printed:?}"
            );
        }
        // What the lines say still arrives, each where it belongs.
        assert!(
            stderr.contains("  warming up clearedback"),
            "the progress line: {stderr:?}"
        );
        assert!(stdout.contains("p95 900ms over the limit"), "the result: {stdout:?}");
        assert!(
            stderr.contains("error: threshold failed (failed)"),
            "the outcome: {stderr:?}"
        );
        app.shutdown().await;
    }
}
