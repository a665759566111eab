//! `deckhand serve` and the configuration checks (`deckhand config validate`, `deckhand
//! services validate`): the commands that run or check the server rather than talk to it.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use deckhand::{configuration::Config, startup::Builder};

use super::exit;

const DEV_TOKEN: &str = "deckhand-local-dev-token";

pub(super) async fn serve(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<u8> {
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

/// Where a validated set came from: `dir`, or the built-in set when none is configured.
fn source(dir: &Path, built_in: &str) -> String {
    match dir.as_os_str().is_empty() {
        true => built_in.to_owned(),
        false => dir.display().to_string(),
    }
}

pub(super) fn validate(mut config: Config, dir: Option<PathBuf>) -> anyhow::Result<u8> {
    if let Some(dir) = dir {
        config.commands.dir = dir;
    }
    let from = source(&config.commands.dir, "built-in specs");
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

pub(super) fn validate_services(mut config: Config, dir: Option<PathBuf>) -> anyhow::Result<u8> {
    if let Some(dir) = dir {
        config.services.dir = dir;
    }
    let from = source(&config.services.dir, "built-in classes");
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
