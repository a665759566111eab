//! The `deckhand` command line: the server, and a client with every chat command.

use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use deckhand::{
    client::{Client, ClientError},
    configuration::Config,
    startup::Builder,
    store::Store,
};
use serde_json::Value;

use crate::printable::safe;

#[derive(Parser)]
#[command(
    name = "deckhand",
    version,
    about = "Self-service Kubernetes through chat: the server and its CLI"
)]
struct Cli {
    /// Configuration file laid over the embedded defaults.
    #[arg(long, env = "DECKHAND_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: HTTP API, chat webhooks and the worker.
    Serve {
        /// Address to listen on (overrides server.listen; env DECKHAND_LISTEN).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Submit a command, e.g. `deckhand run "env create checkout-preview"`, and follow it.
    Run {
        /// The command text, as typed in chat.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// Return once the request is stored instead of following it to the end.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a request's whole output (what chat showed cut), e.g. a long `exec`.
    Output {
        id: String,
        /// Only this stream of command output.
        #[arg(long, value_parser = ["stdout", "stderr"])]
        stream: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve a request waiting for you.
    Approve {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Deny a request waiting for you.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a request that has not ended.
    Cancel {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List requests: yours, those waiting for your approval, or all.
    Requests {
        #[arg(long, value_enum, default_value_t = Scope::Mine)]
        scope: Scope,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one request with its events.
    Request {
        id: String,
        /// Follow it live until it ends (as `run` does), with `run`'s exit codes: e.g. a
        /// request you ran with `--no-wait`, once someone approved it.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Open an interactive shell in a ready pod of an app (prod waits for approval).
    Shell {
        /// The app (its Deployment's name).
        app: String,
        /// The environment it runs in.
        #[arg(long)]
        env: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Work with command specs.
    Commands {
        #[command(subcommand)]
        command: CommandsCommand,
    },
    /// Service classes (services.dir, or the built-in ones).
    Services {
        #[command(subcommand)]
        command: ServicesCommand,
    },
    /// Create or upgrade the store's tables, then exit.
    Migrate,
    /// Slack app setup.
    Slack {
        #[command(subcommand)]
        command: SlackCommand,
    },
    /// Discord app setup.
    Discord {
        #[command(subcommand)]
        command: DiscordCommand,
    },
    /// Send HTTP load to a URL and report latency percentiles, status codes and errors.
    Loadgen(crate::loadgen_cli::LoadgenArgs),
    /// Run a load test in an environment (the `loadtest` command); with --wait, print its
    /// table and exit 0 (passed), 1 (a threshold failed) or 2 (could not run), for pipelines.
    #[command(after_help = crate::loadgen_cli::EXIT_CODES_HELP)]
    Loadtest {
        #[command(flatten)]
        test: crate::loadgen_cli::LoadtestArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum SlackCommand {
    /// Print a Slack app manifest (slash command, interactivity, scopes) for this deckhand.
    Manifest {
        /// The public base URL Slack should call, e.g. https://deckhand.example.com
        #[arg(long)]
        url: String,
    },
}

#[derive(Subcommand)]
enum DiscordCommand {
    /// Register the /deckhand application commands built from the command specs.
    Register {
        /// Register in one guild (instant) instead of globally.
        #[arg(long)]
        guild: Option<String>,
        /// Print the JSON instead of sending it.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum CommandsCommand {
    /// Check every spec; print each problem with file, command and field.
    Validate {
        /// Directory of *.yaml specs (default: commands.dir, or the built-in specs).
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ServicesCommand {
    /// Check every class (fields, parameter schema, templates rendered with the defaults);
    /// print each problem with file, class and field.
    Validate {
        /// Directory of *.yaml classes (default: services.dir, or the built-in classes).
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Scope {
    Mine,
    Pending,
    All,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Args)]
struct ClientArgs {
    /// Where deckhand serves its API.
    #[arg(long, env = "DECKHAND_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API token (one of a user's `tokens` in the configuration).
    #[arg(long, env = "DECKHAND_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Text, env = "DECKHAND_OUTPUT")]
    output: Output,
}

impl ClientArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let token = self
            .token
            .as_deref()
            .context("no API token: set DECKHAND_TOKEN (or --token) to one of your tokens from the configuration")?;
        Ok(Client::new(&self.url, token))
    }
}

/// Exit codes a script can rely on.
mod exit {
    pub const FAILED: u8 = 1;
    pub const REJECTED: u8 = 2;
    pub const NOT_DONE: u8 = 3;
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if prints_for_a_pipe(&cli.command) {
        restore_sigpipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let rejected = e
                .downcast_ref::<ClientError>()
                .is_some_and(|c| matches!(c, ClientError::Api { .. }));
            eprintln!("error: {}", safe(&format!("{e:#}")));
            ExitCode::from(if rejected { exit::REJECTED } else { exit::FAILED })
        }
    }
}

/// Commands whose job is printing (`deckhand requests | head`). Rust ignores SIGPIPE so that
/// sockets report EPIPE; for these a closed pipe should end the process quietly, as for any
/// Unix tool, rather than panic in `println!`. Not for the server, the shell or the load
/// generator, which write to sockets.
fn prints_for_a_pipe(command: &Command) -> bool {
    !matches!(
        command,
        Command::Serve { .. } | Command::Shell { .. } | Command::Loadgen(_) | Command::Loadtest { .. }
    )
}

fn restore_sigpipe() {
    // SAFETY: called first thing on the main thread, before any other thread exists;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let config = || Config::load(cli.config.as_deref()).context("invalid configuration");
    match cli.command {
        Command::Serve { listen } => serve(config()?, listen).await,
        Command::Migrate => {
            let config = config()?;
            deckhand::telemetry::init(&config.log);
            let store = Store::connect(&config.store.effective_url(), 1).await?;
            store.migrate().await?;
            println!("store is up to date ({:?})", store.backend());
            Ok(0)
        }
        Command::Commands {
            command: CommandsCommand::Validate { dir },
        } => validate(config()?, dir),
        Command::Services {
            command: ServicesCommand::Validate { dir },
        } => validate_services(config()?, dir),
        Command::Slack {
            command: SlackCommand::Manifest { url },
        } => {
            let config = config()?;
            let router = Builder::new(config.clone()).load_specs()?;
            println!("{}", deckhand::slack::manifest(&config, &router, &url)?);
            Ok(0)
        }
        Command::Discord {
            command: DiscordCommand::Register { guild, dry_run },
        } => {
            let config = config()?;
            let router = Builder::new(config.clone()).load_specs()?;
            println!(
                "{}",
                deckhand::discord::register(&config, &router, guild.as_deref(), dry_run).await?
            );
            Ok(0)
        }
        Command::Loadgen(args) => crate::loadgen_cli::loadgen(args).await,
        Command::Loadtest { test, client } => {
            let json = client.output == Output::Json;
            let run = async { crate::loadgen_cli::loadtest(&client.client()?, &test, json).await };
            Ok(crate::loadgen_cli::loadtest_exit(run).await)
        }
        Command::Run { text, no_wait, client } => run(&client, &text.join(" "), no_wait).await,
        Command::Shell { app, env, client } => {
            let token = client.token.as_deref().context(
                "no API token: set DECKHAND_TOKEN (or --token) to one of your tokens from the configuration",
            )?;
            crate::terminal::shell(&client.url, token, &app, &env).await
        }
        Command::Approve { id, client } => {
            let v = client.client()?.approve(&id).await?;
            print_result(&client, &v, v["message"].as_str().unwrap_or("approved"));
            Ok(0)
        }
        Command::Deny { id, reason, client } => {
            let v = client.client()?.deny(&id, &reason).await?;
            print_result(&client, &v, &format!("{id} denied"));
            Ok(0)
        }
        Command::Cancel { id, client } => {
            let v = client.client()?.cancel(&id).await?;
            print_result(&client, &v, &format!("{id} cancelled"));
            Ok(0)
        }
        Command::Requests { scope, client } => {
            let scope = match scope {
                Scope::Mine => "mine",
                Scope::Pending => "pending",
                Scope::All => "all",
            };
            let v = client.client()?.list(scope).await?;
            if client.output == Output::Json {
                println!("{v}");
            } else {
                let rows = v["requests"].as_array().cloned().unwrap_or_default();
                if rows.is_empty() {
                    println!("no requests");
                }
                for r in rows {
                    println!("{}", safe(&request_line(&r)));
                }
            }
            Ok(0)
        }
        Command::Output { id, stream, client } => {
            let text = client.client()?.output(&id, stream.as_deref()).await?;
            print!("{}", safe(&text));
            Ok(0)
        }
        Command::Request { id, wait: true, client } => {
            let c = client.client()?;
            let v = c.get(&id).await?;
            if client.output != Output::Json {
                println!("{}", safe(&request_line(&v["request"])));
            }
            let events = v["events"].as_array().cloned().unwrap_or_default();
            follow_to_end(&client, &c, v["request"].clone(), &events, false).await
        }
        Command::Request {
            id,
            wait: false,
            client,
        } => {
            let v = client.client()?.get(&id).await?;
            if client.output == Output::Json {
                println!("{v}");
            } else {
                println!("{}", safe(&request_line(&v["request"])));
                for e in v["events"].as_array().into_iter().flatten() {
                    println!(
                        "  {:>3} {:<8} {}",
                        e["seq"],
                        e["kind"].as_str().unwrap_or(""),
                        safe(e["message"].as_str().unwrap_or(""))
                    );
                }
            }
            Ok(0)
        }
    }
}

const DEV_TOKEN: &str = "deckhand-local-dev-token";

async fn serve(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<u8> {
    deckhand::telemetry::init(&config.log);
    let listen = listen.unwrap_or(config.server.listen);
    if config.users.values().any(|u| u.tokens.iter().any(|t| t == DEV_TOKEN)) {
        // The development token is public (it is in the README): never serve it to a network.
        anyhow::ensure!(
            listen.ip().is_loopback(),
            "the built-in development token is enabled while listening on {listen}; define [users] in your configuration (see config/example.toml) before serving beyond this machine"
        );
        tracing::warn!(
            "the built-in local development token is enabled; define [users] in your config before exposing deckhand"
        );
    }
    let running = Builder::new(config).start(listen).await?;
    let token = running.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing running requests");
        token.cancel();
    });
    running.wait().await;
    Ok(0)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn validate(mut config: Config, dir: Option<PathBuf>) -> anyhow::Result<u8> {
    if let Some(dir) = dir {
        config.commands.dir = dir;
    }
    let from = match config.commands.dir.as_os_str().is_empty() {
        true => "built-in specs".to_owned(),
        false => config.commands.dir.display().to_string(),
    };
    match Builder::new(config).load_specs() {
        Ok(router) => {
            println!("{} command(s) in {from}: all valid", router.specs().len());
            Ok(0)
        }
        Err(errors) => {
            eprint!("{errors}");
            Ok(exit::FAILED)
        }
    }
}

fn validate_services(mut config: Config, dir: Option<PathBuf>) -> anyhow::Result<u8> {
    if let Some(dir) = dir {
        config.services.dir = dir;
    }
    let from = match config.services.dir.as_os_str().is_empty() {
        true => "built-in classes".to_owned(),
        false => config.services.dir.display().to_string(),
    };
    match deckhand::services::Catalog::load(&config.services) {
        Ok(catalog) => {
            println!(
                "{} service class(es) in {from}: all valid ({})",
                catalog.len(),
                catalog.names().join(", ")
            );
            Ok(0)
        }
        Err(errors) => {
            eprint!("{errors}");
            Ok(exit::FAILED)
        }
    }
}

fn print_result(args: &ClientArgs, v: &Value, text: &str) {
    if args.output == Output::Json {
        println!("{v}");
    } else {
        println!("{}", safe(text));
    }
}

fn request_line(r: &Value) -> String {
    format!(
        "{}  {:<16} {:<10} {}",
        r["id"].as_str().unwrap_or("?"),
        r["state"].as_str().unwrap_or("?"),
        r["requester"].as_str().unwrap_or("?"),
        r["text"].as_str().unwrap_or("")
    )
}

/// Submits, then follows the request's events to its end, with a spinner on a terminal.
async fn run(args: &ClientArgs, text: &str, no_wait: bool) -> anyhow::Result<u8> {
    let client = args.client()?;
    let submitted = client.submit(text).await?;
    let json = args.output == Output::Json;
    let request = submitted["request"].clone();
    let events = submitted["events"].as_array().cloned().unwrap_or_default();
    if is_terminal(&request) {
        // Answered at once (help, whoami, ...): show the answer, not the bookkeeping.
        for e in events.iter().filter(|e| json || e["kind"] == "output") {
            print_event(e, json);
        }
        return Ok(finish(args, &request, no_wait));
    }
    follow_to_end(args, &client, request, &events, no_wait).await
}

/// Prints `events` (those seen so far), then, unless `no_wait`, the request's live events
/// until it ends; the exit code says how it ended.
async fn follow_to_end(
    args: &ClientArgs,
    client: &Client,
    mut request: Value,
    events: &[Value],
    no_wait: bool,
) -> anyhow::Result<u8> {
    let json = args.output == Output::Json;
    let id = request["id"].as_str().unwrap_or_default().to_owned();
    let mut last_seq = events.last().and_then(|e| e["seq"].as_i64()).unwrap_or(0);
    for e in events {
        print_event(e, json);
    }
    if !no_wait && !is_terminal(&request) {
        let spinner = Spinner::start(&id);
        loop {
            client
                .follow(&id, last_seq, |e| {
                    spinner.clear();
                    last_seq = e["seq"].as_i64().unwrap_or(last_seq);
                    print_event(&e, json);
                })
                .await?;
            request = client.get(&id).await?["request"].clone();
            // The server ends the stream when the request ends; a dropped connection
            // (a restarting server) just resumes from the last event seen.
            if is_terminal(&request) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        spinner.stop();
    }
    Ok(finish(args, &request, no_wait))
}

/// Prints how the request ended (the request itself with `--output json`) and returns the
/// exit code.
fn finish(args: &ClientArgs, request: &Value, no_wait: bool) -> u8 {
    let state = request["state"].as_str().unwrap_or_default();
    if args.output == Output::Json {
        println!("{request}");
    } else if state == "failed" {
        eprintln!(
            "error: {}",
            safe(request["outcome"].as_str().unwrap_or("the request failed"))
        );
    }
    match state {
        "succeeded" => 0,
        "failed" => exit::FAILED,
        _ if no_wait => 0,
        _ => exit::NOT_DONE,
    }
}

fn is_terminal(request: &Value) -> bool {
    !matches!(
        request["state"].as_str(),
        Some("pending_approval" | "queued" | "running")
    )
}

fn print_event(e: &Value, json: bool) {
    if json {
        println!("{e}");
        return;
    }
    let msg = safe(e["message"].as_str().unwrap_or_default());
    match e["kind"].as_str() {
        Some("output") => println!("{msg}"),
        Some("state") => println!("{} {msg}", safe(e["request_id"].as_str().unwrap_or_default())),
        _ => println!("  {msg}"),
    }
}

/// A one-line spinner on stderr, only when stderr is a terminal.
struct Spinner {
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl Spinner {
    fn start(label: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { stop: None };
        }
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let label = label.to_owned();
        tokio::spawn(async move {
            const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];
            let mut i = 0;
            loop {
                if *rx.borrow() {
                    break;
                }
                eprint!("\r{} {label}", FRAMES[i % FRAMES.len()]);
                let _ = std::io::stderr().flush();
                i += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(120)) => {}
                    _ = rx.changed() => {}
                }
            }
            eprint!("\r\x1b[2K");
        });
        Self { stop: Some(tx) }
    }

    fn clear(&self) {
        if self.stop.is_some() {
            eprint!("\r\x1b[2K");
        }
    }

    fn stop(&self) {
        if let Some(tx) = &self.stop {
            let _ = tx.send(true);
        }
    }
}
