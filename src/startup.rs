//! Wiring: configuration -> store -> specs -> app -> HTTP server and worker.

use std::{net::SocketAddr, sync::Arc};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    actions::{Action, ActionRegistry, register_all},
    app::App,
    commands::{Router, SpecContext, SpecErrors, spec},
    configuration::Config,
    store::{ReplicaLock, Store, StoreError},
    surface::{ChatSurface, Surfaces},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Specs(#[from] SpecErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Services(#[from] crate::services::ClassErrors),
    #[error(transparent)]
    Replica(#[from] crate::store::ReplicaError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Everything `serve` runs, assembled; tests use it to add actions, surfaces or specs.
pub struct Builder {
    config: Config,
    actions: ActionRegistry,
    surfaces: Surfaces,
    spec_sources: Option<Vec<(String, String)>>,
}

impl Builder {
    pub fn new(config: Config) -> Self {
        let mut actions = ActionRegistry::default();
        register_all(&mut actions);
        Self {
            config,
            actions,
            surfaces: Surfaces::default(),
            spec_sources: None,
        }
    }

    /// The chat surfaces the configuration turns on.
    fn configured_surfaces(&mut self, signer: &crate::signing::Signer) {
        for s in [
            crate::slack::surface(&self.config, signer),
            crate::discord::surface(&self.config, signer),
        ]
        .into_iter()
        .flatten()
        {
            // A surface a test registered itself stays.
            if !self.surfaces.has(s.surface()) {
                self.surfaces.register(s);
            }
        }
    }

    pub fn action(mut self, action: Arc<dyn Action>) -> Self {
        self.actions.register(action);
        self
    }

    pub fn surface(mut self, surface: Arc<dyn ChatSurface>) -> Self {
        self.surfaces.register(surface);
        self
    }

    /// Use these spec files instead of `commands.dir` or the built-in ones.
    pub fn specs(mut self, sources: Vec<(String, String)>) -> Self {
        self.spec_sources = Some(sources);
        self
    }

    /// Loads and validates the command specs exactly as `serve` would.
    pub fn load_specs(&self) -> Result<Router, SpecErrors> {
        let catalog = self.actions.catalog();
        let ctx = SpecContext {
            actions: &catalog,
            config: &self.config,
        };
        let specs = match &self.spec_sources {
            Some(sources) => spec::compile_sources(sources.clone(), &ctx)?,
            None if self.config.commands.dir.as_os_str().is_empty() => spec::load_builtin(&ctx)?,
            None => spec::load_dir(&self.config.commands.dir, &ctx)?,
        };
        Ok(Router::new(specs))
    }

    /// Validates specs, connects, claims (SQLite: one replica per file) and migrates the
    /// store: everything short of serving.
    async fn build(mut self) -> Result<(Arc<App>, ReplicaLock), StartupError> {
        let router = self.load_specs()?;
        // Refuse to start on a class that cannot render, as on a bad command spec.
        crate::services::Catalog::load(&self.config.services)?;
        let url = self.config.store.effective_url();
        let store = Store::connect(&url, self.config.store.max_connections).await?;
        let lock = store.claim_replica(&url)?;
        store.migrate().await?;
        let signer = crate::app::signer_for(&self.config);
        self.configured_surfaces(&signer);
        let app = Arc::new(App::new(
            Arc::new(self.config),
            router,
            store,
            self.actions,
            self.surfaces,
            signer,
        ));
        Ok((app, lock))
    }

    /// Binds `listen` (port 0 picks a free one) and starts the server and the worker.
    pub async fn start(self, listen: SocketAddr) -> Result<Running, StartupError> {
        let (app, lock) = self.build().await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| StartupError::Bind { addr: listen, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr: listen, source })?;
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(crate::worker::run(app.clone(), shutdown.clone()));
        let outbox = tokio::spawn(crate::outbox::run(app.clone(), shutdown.clone()));
        let woken = app.clone();
        let notifications = tokio::spawn(crate::store::listen_for_work(
            app.config.store.effective_url(),
            app.store.backend(),
            move || woken.wake.notify_one(),
            shutdown.clone(),
        ));
        crate::slack::spawn(app.clone(), shutdown.clone());
        crate::discord::spawn(app.clone(), shutdown.clone());
        // Cuts connections through links closed on any replica, or expired.
        let links = tokio::spawn(crate::proxy::cut_closed_links(app.clone(), shutdown.clone()));
        let routes = crate::http::router(app.clone());
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            // Small responses (acks, SSE events) must not wait for Nagle's algorithm.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "could not set TCP_NODELAY");
                }
            });
            let serve = axum::serve(listener, routes).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
        tracing::info!(%addr, backend = ?app.store.backend(), "deckhand listening");
        for line in surface_lines(&app.config, addr) {
            tracing::info!("{line}");
        }
        Ok(Running {
            addr,
            app,
            shutdown,
            server,
            worker,
            outbox,
            links,
            listener: notifications,
            _lock: lock,
        })
    }
}

/// What this process serves, one line each, for the startup log: a chat app pointed at the
/// wrong path, or a surface left off by a missing secret, shows there instead of as silence.
/// The paths are those `crate::http::router` mounts.
pub fn surface_lines(config: &Config, addr: SocketAddr) -> Vec<String> {
    let base = format!("http://{addr}");
    let slack = &config.slack;
    let slack = match (slack.enabled(), slack.socket_mode) {
        (false, _) => "slack disabled (slack.bot_token is not set)".to_owned(),
        (true, true) => {
            "slack enabled: slash commands and interactivity over Socket Mode (no HTTP endpoints)".to_owned()
        }
        (true, false) => {
            format!("slack enabled: slash commands and interactivity at {base}/slack/commands, /slack/interactions")
        }
    };
    let discord = match config.discord.enabled() {
        true => format!("discord enabled: interactions at {base}/discord/interactions"),
        false => "discord disabled (discord.public_key is not set)".to_owned(),
    };
    vec![
        format!("API at {base}/api/v1/requests; health at /healthz, /readyz; metrics at /metrics"),
        slack,
        discord,
    ]
}

pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
    outbox: JoinHandle<()>,
    links: JoinHandle<()>,
    /// PostgreSQL: wake-ups from other replicas.
    listener: JoinHandle<()>,
    /// SQLite: this process serves the file until `Running` is dropped.
    _lock: ReplicaLock,
}

impl Running {
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops taking requests, lets running actions finish (up to the grace period), then
    /// closes the store.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        // Proxied connections are cut first: the server's graceful end waits for them.
        let _ = self.links.await;
        let _ = self.server.await;
        let _ = self.worker.await;
        let _ = self.outbox.await;
        let _ = self.listener.await;
        self.app.shells.close().await;
        self.app.store.close().await;
    }

    /// Waits until a shutdown is requested through the token, then shuts down gracefully.
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.shutdown().await;
    }

    /// Stops everything at once, mid-action, as a crash would (tests of recovery use it).
    pub async fn kill(self) {
        self.server.abort();
        self.worker.abort();
        self.outbox.abort();
        self.links.abort();
        self.listener.abort();
        let _ = self.server.await;
        let _ = self.worker.await;
        let _ = self.outbox.await;
        let _ = self.links.await;
        let _ = self.listener.await;
        self.app.store.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_lines_name_each_surface_and_where_it_listens() {
        let addr: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        let mut config = Config::defaults().unwrap();
        let lines = surface_lines(&config, addr);
        assert_eq!(
            lines[1..],
            [
                "slack disabled (slack.bot_token is not set)",
                "discord disabled (discord.public_key is not set)"
            ]
        );
        assert!(
            lines[0].starts_with("API at http://0.0.0.0:9000/api/v1/requests"),
            "{lines:?}"
        );

        config.slack.bot_token = "xoxb-1".into();
        config.discord.public_key = "ab".repeat(32);
        let lines = surface_lines(&config, addr);
        assert_eq!(
            lines[1..],
            [
                "slack enabled: slash commands and interactivity at http://0.0.0.0:9000/slack/commands, /slack/interactions",
                "discord enabled: interactions at http://0.0.0.0:9000/discord/interactions"
            ]
        );
        assert!(lines.iter().all(|l| !l.contains("xoxb-1")), "no secrets: {lines:?}");
        config.slack.socket_mode = true;
        assert!(surface_lines(&config, addr)[1].contains("over Socket Mode (no HTTP endpoints)"));
    }
}
