//! The `deckhand` command line: the server, and a client with every chat command. This file
//! holds the arguments (clap) and their dispatch; server.rs runs and checks the server,
//! follow.rs submits a command and follows it to its end.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use crate::printable::safe;
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use deckhand::{
    client::{Client, ClientError},
    configuration::Config,
    startup::Builder,
    store::Store,
};

mod follow;
mod server;

use follow::{follow_to_end, print_result, request_line, run};
use server::{serve, validate, validate_services};

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
