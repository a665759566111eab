//! The README's "Local playground" walkthrough, run as written: the commands are read from the
//! section's code block (so README and test cannot drift) and typed, one line at a time, into
//! one bash (shell variables such as `$id` carry over), against the playground API server
//! (tests/support/kube/playground.rs, what `cargo run --example kube-testserver` runs) and a
//! child `deckhand serve` started by the README's own line. Each command's exit code, the output
//! line a user would look for and its object in the cluster are checked.
//!
//! SQLite only: the walkthrough runs deckhand on its embedded defaults, whose store is SQLite
//! (the PostgreSQL store runs these actions in tests/kube_actions.rs, tests/services.rs, ...).
//!
//! What differs from a person's terminals: the cluster runs in this test (same setup function,
//! a free port, the kubeconfig in a temporary directory instead of /tmp/kc), `deckhand` is the
//! binary cargo built for this test, and deckhand listens on a free port with its SQLite file
//! and links (`server.public_url`) there.

#[path = "support/kube/mod.rs"]
mod kube_fake;
#[path = "support/shell.rs"]
mod shell;

use std::{
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use kube_fake::{KubeTestServer, playground};
use serde_json::Value;
use shell::{Serve, Shell, free_port, ready};

const README: &str = include_str!("../README.md");

/// The lines that start the cluster and deckhand, which this test does itself (see the docs).
const START_CLUSTER: &str = "cargo run --example kube-testserver -- --port 6443 --kubeconfig /tmp/kc";
const BUILD: &str = r#"cargo build && export PATH="$PWD/target/debug:$PATH""#;
const SERVE_SUFFIX: &str = " deckhand serve";

/// Every command of the walkthrough after deckhand starts, in order; each is checked below.
const WALKTHROUGH: &[&str] = &[
    r#"export PATH="$PWD/target/debug:$PATH" DECKHAND_TOKEN=deckhand-local-dev-token"#,
    "deckhand run help",
    "deckhand run whoami",
    r#"deckhand run "env create demo""#,
    r#"deckhand run "env list""#,
    r#"deckhand run "env extend demo 2d""#,
    r#"deckhand run "deploy ghcr.io/acme/shop:1.0 to demo port=8080""#,
    r#"deckhand run "status shop in demo""#,
    r#"deckhand run "logs shop in demo""#,
    r#"deckhand run "scale shop in demo to 2""#,
    r#"deckhand run "exec shop in demo -- echo hello""#,
    r#"link=$(deckhand run "proxy open shop in demo" | grep -o 'http://[^ ]*/p/[^ ]*')"#,
    r#"curl -s "$link""#,
    r#"deckhand run "loadtest shop in demo rate=20 duration=2s p99<500ms""#,
    r#"id=$(deckhand run "service provision postgres orders-db in demo" --no-wait | awk 'NR==1 {print $1}')"#,
    "DECKHAND_TOKEN=olga-local-ops-token deckhand requests --scope pending",
    r#"DECKHAND_TOKEN=olga-local-ops-token deckhand approve "$id""#,
    r#"deckhand request "$id" --wait"#,
    r#"deckhand run "service bind orders-db to shop in demo""#,
    r#"deckhand run "request $id""#,
    "deckhand requests",
    r#"deckhand run "env delete demo""#,
];

/// The lines of the first `sh` code block of the README's "Local playground" section, without
/// comments and blank lines.
fn walkthrough_lines() -> Vec<String> {
    let section = README
        .split("\n## Local playground\n")
        .nth(1)
        .expect("the README has a \"## Local playground\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the Local playground section has a ```sh block");
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn has_line(out: &str, wanted: &str) -> bool {
    out.lines().any(|l| l.trim() == wanted)
}

fn object(k8s: &KubeTestServer, plural: &str, ns: &str, name: &str) -> Value {
    k8s.object(plural, ns, name)
        .unwrap_or_else(|| panic!("{plural} {ns}/{name} is in the cluster"))
}

/// Asserts what `line` did: its exit code, the output a user looks for, the cluster.
fn check(line: &str, code: i32, out: &str, k8s: &KubeTestServer) {
    let ok = |cond: bool, what: &str| assert!(cond, "`{line}`: {what}; exit {code}, output:\n{out}");
    let succeeded = || ok(code == 0, "exit code 0");
    match WALKTHROUGH.iter().position(|l| *l == line).expect("a known line") {
        // export
        0 => succeeded(),
        // help
        1 => {
            succeeded();
            for usage in [
                "env create <name> [tier[@cluster]] [ttl]",
                "deploy <image> to <env>",
                "service provision <class> <name> in <env>",
                "loadtest <app[:port][/path]|url> in <env>",
            ] {
                ok(out.contains(usage), usage);
            }
        }
        // whoami
        2 => {
            succeeded();
            ok(
                has_line(out, "You are local (admins, developers, ops), via api."),
                "who",
            );
        }
        // env create
        3 => {
            succeeded();
            ok(out.contains("environment demo (dev) is ready"), "the ready line");
            let ns = object(k8s, "namespaces", "", "demo");
            ok(ns["metadata"]["labels"]["deckhand.dev/owner"] == "local", "owner label");
            ok(
                k8s.object("resourcequotas", "demo", "deckhand-quota").is_some(),
                "the quota",
            );
        }
        // env list
        4 => {
            succeeded();
            ok(
                out.lines().any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.starts_with(&["demo", "dev", "local"])
                }),
                "a row for demo",
            );
        }
        // env extend
        5 => {
            succeeded();
            ok(out.contains("environment demo now expires at"), "the new expiry");
            ok(out.contains("(in 2d 0h)") || out.contains("(in 1d 23h)"), "two days");
        }
        // deploy
        6 => {
            succeeded();
            ok(
                out.contains("shop is available in demo (1/1 updated, 1 available)"),
                "the rollout's end",
            );
            let d = object(k8s, "deployments", "demo", "shop");
            ok(
                d["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/shop:1.0",
                "the image",
            );
            let svc = object(k8s, "services", "demo", "shop");
            ok(svc["spec"]["ports"][0]["port"] == 8080, "the Service's port");
        }
        // status
        7 => {
            succeeded();
            ok(
                out.contains("shop in demo: 1 of 1 ready, 1 available, image ghcr.io/acme/shop:1.0"),
                "the summary",
            );
        }
        // logs
        8 => {
            succeeded();
            ok(has_line(out, "listening on :8080"), "the pod's log");
        }
        // scale
        9 => {
            succeeded();
            ok(
                out.contains("shop in demo scaled to 2 (2/2 updated, 2 available)"),
                "the scale",
            );
            ok(
                object(k8s, "deployments", "demo", "shop")["spec"]["replicas"] == 2,
                "2 replicas",
            );
        }
        // exec
        10 => {
            succeeded();
            ok(has_line(out, "hello"), "the command's output");
            ok(out.contains("exited with 0"), "the exit code");
        }
        // link=$(proxy open)
        11 => succeeded(),
        // curl through the link
        12 => {
            succeeded();
            ok(out.trim() == "hello from shop", "the app's answer");
        }
        // loadtest
        13 => {
            succeeded();
            ok(out.contains("Load test of shop in demo: 20/s for 2s"), "the title");
            ok(out.contains("PASSED: pass p99<500ms (actual "), "the verdict");
            ok(
                out.lines()
                    .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["requests", "40", "-"]),
                "40 requests answered",
            );
        }
        // id=$(service provision --no-wait)
        14 => {
            succeeded();
            ok(
                k8s.object("postgresqlinstances", "demo", "orders-db").is_none(),
                "nothing applied before the approval",
            );
        }
        // olga: requests --scope pending
        15 => {
            succeeded();
            ok(
                out.lines().any(|l| {
                    l.contains("pending_approval") && l.ends_with("service provision postgres orders-db in demo")
                }),
                "the request waiting for olga",
            );
        }
        // olga: approve
        16 => {
            succeeded();
            ok(out.contains("approved; it is queued"), "the approval");
        }
        // request --wait
        17 => {
            succeeded();
            ok(
                out.contains(
                    "orders-db (postgres) is ready in demo at orders-db.c7x2.eu-west-1.rds.amazonaws.com:5432",
                ),
                "the database ready",
            );
            let claim = object(k8s, "postgresqlinstances", "demo", "orders-db");
            ok(
                claim["metadata"]["labels"]["deckhand.dev/owner"] == "local",
                "the claim's owner",
            );
            ok(
                k8s.object("secrets", "demo", "orders-db-conn").is_some(),
                "the connection Secret",
            );
        }
        // service bind
        18 => {
            succeeded();
            ok(
                out.contains("orders-db (postgres) is bound to shop in demo"),
                "the binding",
            );
            let d = object(k8s, "deployments", "demo", "shop");
            let env = d["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let pw = env.iter().find(|e| e["name"] == "PGPASSWORD");
            ok(
                pw.is_some_and(|e| e["valueFrom"]["secretKeyRef"]["name"] == "orders-db-conn"),
                "PGPASSWORD from the Secret",
            );
        }
        // request $id (the chat command)
        19 => {
            succeeded();
            ok(out.contains("/r/") && out.contains("Your page of r-"), "the page link");
        }
        // requests
        20 => {
            succeeded();
            ok(
                out.lines()
                    .any(|l| l.contains(" succeeded ") && l.ends_with("local      env create demo")),
                "env create among them",
            );
        }
        // env delete
        21 => {
            succeeded();
            ok(out.contains("environment demo is deleted"), "the deletion");
            ok(k8s.object("namespaces", "", "demo").is_none(), "the namespace gone");
        }
        _ => unreachable!("every walkthrough line has a check"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readme_walkthrough_runs_against_the_playground() {
    let lines = walkthrough_lines();
    // The block: the cluster, the build, deckhand, then the commands this test checks.
    assert!(lines.len() > 3, "{lines:#?}");
    assert_eq!(lines[0], START_CLUSTER, "the README starts the cluster differently");
    assert_eq!(lines[1], BUILD, "the README builds the CLI differently");
    let serve = &lines[2];
    assert!(
        serve.starts_with("KUBECONFIG=/tmp/kc ") && serve.ends_with(SERVE_SUFFIX),
        "the README starts deckhand differently: {serve}"
    );
    assert_eq!(
        &lines[3..],
        WALKTHROUGH,
        "the README's commands changed: update WALKTHROUGH and the checks"
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let k8s = KubeTestServer::start().await;
    playground::install(&k8s);
    let kubeconfig = dir.path().join("kc");
    k8s.write_kubeconfig(&kubeconfig).expect("kubeconfig written");

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_deckhand"))
        .parent()
        .expect("the binary's directory")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log file");
    let serve_line = serve.replace("/tmp/kc", &kubeconfig.display().to_string());
    let mut serve_child = Serve(
        Command::new("bash")
            .args(["--noprofile", "--norc", "-c", &serve_line])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("DECKHAND_LISTEN", format!("127.0.0.1:{port}"))
            .env("DECKHAND_SERVER__PUBLIC_URL", &url)
            .env("DECKHAND_STORE__SQLITE_PATH", dir.path().join("data/deckhand.db"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("bash starts deckhand"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(port) {
        if let Ok(Some(status)) = serve_child.0.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
            panic!("deckhand serve exited with {status}:\n{log}");
        }
        assert!(Instant::now() < deadline, "deckhand serve is not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut shell = Shell::start(dir.path(), &path, &url);
    for line in WALKTHROUGH {
        let (code, out) = tokio::task::block_in_place(|| shell.run(line, Duration::from_secs(90)));
        eprintln!("$ {line}\n{out}\n[exit {code}]");
        check(line, code, &out, &k8s);
        assert!(
            !out.contains(playground::DB_PASSWORD),
            "`{line}` printed the database password:\n{out}"
        );
    }
    drop(shell);
    drop(serve_child);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(
        !log.contains(playground::DB_PASSWORD),
        "deckhand logged the database password"
    );
}
