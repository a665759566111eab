//! Runs the fake Kubernetes API server of the tests on its own, for kubectl or a local deckhand:
//!
//! ```text
//! cargo run --example kube-testserver -- --port 6443 --kubeconfig /tmp/kubeconfig
//! KUBECONFIG=/tmp/kubeconfig kubectl get ns
//! ```
//!
//! It is a local playground (tests/support/kube/playground.rs, which tests/playground.rs runs
//! the README's walkthrough against): the shipped service classes' kinds with a provider that
//! makes them ready, load-test pods running deckhand's real load generator, deployed apps
//! answering HTTP through their Services, and deckhand limited to deploy/clusterrole.yaml.
//!
//! Options: `--port N` (default: a free port), `--kubeconfig PATH` (write a kubeconfig for the
//! server there), `--step-ms N` (controller step, default 30), `--bare` (the API server and
//! its built-in controllers only, no playground). Stops on Ctrl-C.

#[path = "../tests/support/kube/mod.rs"]
mod kube_testserver;

use std::time::Duration;

use kube_testserver::KubeTestServer;

struct Args {
    port: u16,
    kubeconfig: Option<String>,
    step_ms: Option<u64>,
    bare: bool,
}

const USAGE: &str = "usage: kube-testserver [--port N] [--kubeconfig PATH] [--step-ms N] [--bare]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        kubeconfig: None,
        step_ms: None,
        bare: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--port" => args.port = value("--port")?.parse().map_err(|e| format!("--port: {e}"))?,
            "--kubeconfig" => args.kubeconfig = Some(value("--kubeconfig")?),
            "--step-ms" => args.step_ms = Some(value("--step-ms")?.parse().map_err(|e| format!("--step-ms: {e}"))?),
            "--bare" => args.bare = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let server = match KubeTestServer::start_on(args.port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    if let Some(ms) = args.step_ms {
        server.set_step(Duration::from_millis(ms));
    }
    if !args.bare {
        kube_testserver::playground::install(&server);
    }
    if let Some(path) = &args.kubeconfig {
        if let Err(e) = server.write_kubeconfig(path) {
            eprintln!("cannot write kubeconfig {path}: {e}");
            std::process::exit(1);
        }
        println!("kubeconfig written to {path}");
    }
    println!("kube test server listening on {}", server.url());
    let _ = tokio::signal::ctrl_c().await;
}
