//! How a test API server starts: port, HTTPS with a test CA, a required bearer token and
//! client certificates (see `tls.rs`); plain HTTP without authentication by default, as most
//! tests use it.

use std::sync::Arc;

use super::api::{self, Shared};
use super::rbac::Identity;
use super::store::State;
use super::{KubeTestServer, apply_counter, controller_loop, tls};

/// How a test API server starts: plain HTTP without authentication unless told otherwise.
#[derive(Default)]
pub struct KubeTestServerBuilder {
    port: u16,
    ca: Option<Arc<tls::TestCa>>,
    client_certs: bool,
    token: Option<String>,
    users: Vec<(String, Identity)>,
}

impl KubeTestServerBuilder {
    /// 127.0.0.1:`port` (default 0: a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// HTTPS with a serving certificate for 127.0.0.1 and localhost that `ca` signs.
    pub fn https(mut self, ca: Arc<tls::TestCa>) -> Self {
        self.ca = Some(ca);
        self
    }

    /// With `https`: also accept client certificates `ca` signed, as a way to authenticate.
    pub fn client_certificates(mut self) -> Self {
        self.client_certs = true;
        self
    }

    /// Require this bearer token (or a verified client certificate, or the tests' admin
    /// token); anything else gets 401 Unauthorized.
    pub fn bearer_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Bearer `token` authenticates as `user` in `groups` (plus "system:authenticated"), e.g.
    /// `.user("t0k", "system:serviceaccount:team:ci", &["system:serviceaccounts"])`. Users
    /// turn RBAC on: from the start every request but the tests' admin client's is
    /// authorized by the roles and bindings the server holds (rbac.rs), deckhand's too.
    pub fn user(mut self, token: &str, user: &str, groups: &[&str]) -> Self {
        self.users.push((token.to_owned(), Identity::new(user, groups)));
        self
    }

    pub async fn start(self) -> KubeTestServer {
        self.start_io().await.expect("bind 127.0.0.1")
    }

    pub async fn start_io(self) -> std::io::Result<KubeTestServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        let addr = listener.local_addr()?;
        let mut state = State::new();
        state.server_address = addr.to_string();
        state.rbac = !self.users.is_empty();
        let shared = Arc::new(Shared::new(state));
        let applies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let auth = tls::Auth::with_ca(self.ca.clone());
        auth.set_token(self.token.clone());
        for (token, who) in &self.users {
            auth.add_user(token, who.clone());
        }
        let auth = Arc::new(auth);
        let authenticate = {
            let auth = auth.clone();
            axum::middleware::from_fn(move |req, next| tls::authenticate(auth.clone(), req, next))
        };
        let app = api::router(shared.clone())
            .layer(apply_counter(applies.clone()))
            .layer(authenticate);
        // Graceful shutdown on drop closes idle keep-alive connections too, so a client that
        // outlives the server sees a dead cluster rather than a zombie one.
        let mut stop = shared.shutdown.subscribe();
        let signal = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let server = match &self.ca {
            None => tokio::spawn(async move {
                // As a real API server does: small watch events and answers go out at once.
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
                    eprintln!("kube test server stopped: {e}");
                }
            }),
            Some(ca) => {
                let config = tls::server_config(ca, self.client_certs);
                let listener = tls::TlsListener::new(listener, config, auth.clone())?;
                let app = app.into_make_service_with_connect_info::<tls::ClientCert>();
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
                        eprintln!("kube test server stopped: {e}");
                    }
                })
            }
        };
        let controllers = tokio::spawn(controller_loop(shared.clone()));
        Ok(KubeTestServer {
            shared,
            addr,
            applies,
            ca: self.ca,
            auth,
            tasks: vec![server, controllers],
        })
    }
}
