//! A client to the API server for requests deckhand only passes through (proxy links).
//!
//! kube's `Client` takes whole request bodies (its streaming body constructor is private)
//! and retries 503s with backoff, which would replay a caller's POST. This one is the same
//! transport, TLS and credentials kube builds from the configuration (`ConfigExt` layers over
//! a hyper client), but generic over the body: request bodies stream as they arrive, answers
//! stream back, and protocol upgrades (WebSocket) get the raw connection.

use std::time::Duration;

use axum::body::Body;
use hyper::{Request, Response, body::Incoming};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use kube::client::ConfigExt;
use tower::{BoxError, ServiceBuilder, ServiceExt as _, util::BoxCloneSyncService};

use super::{ClusterError, connect::BearerFromFile};

#[derive(Clone)]
pub struct Passthrough {
    service: BoxCloneSyncService<Request<Body>, Response<Incoming>, BoxError>,
}

impl Passthrough {
    /// `token`: the `kubernetes.token_file` layer, when that is how deckhand authenticates.
    pub fn new(config: &kube::Config, token: Option<BearerFromFile>) -> Result<Self, ClusterError> {
        let not_configured = |e: kube::Error| ClusterError::NotConfigured(super::causes(&e));
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(config.connect_timeout);
        let connector = config
            .rustls_https_connector_with_connector(http)
            .map_err(not_configured)?;
        // Idle connections are kept for reuse: a page load through a link is dozens of
        // requests, and a TLS handshake to the API server for each would dominate.
        let client: Client<_, Body> = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        let service = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(config.auth_layer().map_err(not_configured)?)
            .option_layer(token)
            .layer(config.extra_headers_layer().map_err(not_configured)?)
            .map_err(BoxError::from)
            .service(client);
        Ok(Self {
            service: BoxCloneSyncService::new(service),
        })
    }

    /// Sends one request (path relative to the API server) and returns the answer as it
    /// starts to arrive.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, BoxError> {
        self.service.clone().oneshot(request).await
    }
}
