//! HTTPS and authentication for the test API server, as a real one does them: a CA made at
//! test time signs the serving certificate (for 127.0.0.1 and localhost) and any client
//! certificates; a request is authenticated by a client certificate the TLS layer verified
//! against that CA, or by a bearer token, and otherwise answered 401 with the API server's
//! own Status body. The tests' admin client (`store::ADMIN_TOKEN`) is always accepted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use super::rbac::Identity;
use super::store::ADMIN_TOKEN;

/// The API server's answer to a request it cannot authenticate, byte for byte.
pub const UNAUTHORIZED_BODY: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
    /// Who each client certificate it issued names (CommonName, Organizations), by its DER:
    /// the server reads a verified certificate's subject from here rather than parsing it.
    subjects: Mutex<Vec<(Vec<u8>, Identity)>>,
}

/// A certificate with its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Arc<Self> {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        Arc::new(TestCa {
            issuer: rcgen::Issuer::new(params, key),
            pem: cert.pem(),
            subjects: Mutex::new(Vec::new()),
        })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn der(&self) -> Vec<u8> {
        CertificateDer::from_pem_slice(self.pem.as_bytes())
            .expect("CA PEM")
            .to_vec()
    }

    /// A serving certificate for 127.0.0.1 and localhost.
    pub fn server_cert(&self) -> Issued {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("SANs");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate for `user` (its CommonName, as Kubernetes reads it).
    pub fn client_cert(&self, user: &str) -> Issued {
        self.client_cert_in(user, &[])
    }

    /// A client certificate for `user` in `groups` (its Organizations, as Kubernetes reads
    /// them).
    pub fn client_cert_in(&self, user: &str, groups: &[&str]) -> Issued {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(rcgen::DnType::CommonName, user);
        for g in groups {
            params.distinguished_name.push(rcgen::DnType::OrganizationName, *g);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let (issued, der) = self.issue_der(params);
        self.subjects
            .lock()
            .expect("subjects")
            .push((der, Identity::new(user, groups)));
        issued
    }

    /// Who a client certificate this CA issued names.
    pub fn subject_of(&self, der: &[u8]) -> Option<Identity> {
        let subjects = self.subjects.lock().expect("subjects");
        subjects.iter().find(|(d, _)| d == der).map(|(_, who)| who.clone())
    }

    fn issue(&self, params: rcgen::CertificateParams) -> Issued {
        self.issue_der(params).0
    }

    fn issue_der(&self, params: rcgen::CertificateParams) -> (Issued, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed certificate");
        let der = cert.der().to_vec();
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        (issued, der)
    }
}

/// Who may call: the bearer token deckhand must show (none: no token is needed), other
/// users' tokens, the CA whose client certificates name users, and what was refused so far.
#[derive(Default)]
pub struct Auth {
    token: Mutex<Option<String>>,
    users: Mutex<Vec<(String, Identity)>>,
    ca: Option<Arc<TestCa>>,
    unauthorized: AtomicUsize,
    handshake_failures: Mutex<Vec<String>>,
}

impl Auth {
    pub fn set_token(&self, token: Option<String>) {
        *self.token.lock().expect("token") = token;
    }

    pub fn unauthorized(&self) -> usize {
        self.unauthorized.load(Ordering::SeqCst)
    }

    pub fn handshake_failures(&self) -> Vec<String> {
        self.handshake_failures.lock().expect("failures").clone()
    }

    /// Client certificates `ca` issued name their users.
    pub fn with_ca(ca: Option<Arc<TestCa>>) -> Self {
        Auth {
            ca,
            ..Default::default()
        }
    }

    /// `token` authenticates as `who`.
    pub fn add_user(&self, token: &str, who: Identity) {
        self.users.lock().expect("users").push((token.to_owned(), who));
    }

    /// Who a bearer token (if any) authenticates as; None: 401. The tests' admin token is a
    /// cluster admin, users' tokens their users, the required token deckhand; with no token
    /// required, any other caller is deckhand too.
    fn identify(&self, authorization: Option<&HeaderValue>) -> Option<Identity> {
        let required = self.token.lock().expect("token").clone();
        let shown = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let user = shown.and_then(|t| {
            let users = self.users.lock().expect("users");
            users.iter().find(|(tok, _)| tok == t).map(|(_, who)| who.clone())
        });
        match (shown, user) {
            (Some(ADMIN_TOKEN), _) => Some(Identity::admin()),
            (_, Some(who)) => Some(who),
            (Some(t), None) if required.as_deref() == Some(t) => Some(Identity::deckhand()),
            _ if required.is_none() => Some(Identity::deckhand()),
            _ => None,
        }
    }
}

/// The client certificate the connection showed, DER (rustls verified it against the CA
/// during the handshake; an unverifiable one fails the handshake).
#[derive(Clone, Debug)]
pub struct ClientCert(pub Option<Arc<Vec<u8>>>);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for ClientCert {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        let (_, session) = stream.io().get_ref();
        ClientCert(
            session
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Arc::new(c.to_vec())),
        )
    }
}

/// The authentication middleware: a verified client certificate (its CommonName the user,
/// its Organizations the groups) or an accepted token; the request goes on carrying the
/// `Identity` the authorizer (rbac.rs) checks.
pub async fn authenticate(auth: Arc<Auth>, mut request: Request, next: Next) -> Response {
    let by_cert = request
        .extensions()
        .get::<ConnectInfo<ClientCert>>()
        .and_then(|c| c.0.0.clone())
        .map(|der| {
            auth.ca
                .as_ref()
                .and_then(|ca| ca.subject_of(&der))
                .unwrap_or_else(Identity::deckhand)
        });
    let who = by_cert.or_else(|| auth.identify(request.headers().get(header::AUTHORIZATION)));
    if let Some(who) = who {
        request.extensions_mut().insert(who);
        return next.run(request).await;
    }
    auth.unauthorized.fetch_add(1, Ordering::SeqCst);
    let mut response = (StatusCode::UNAUTHORIZED, UNAUTHORIZED_BODY).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The server side of TLS: the serving certificate, and client certificates checked
/// against the CA when `client_certs` (optional: a client without one uses a token).
pub fn server_config(ca: &TestCa, client_certs: bool) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let issued = ca.server_cert();
    let chain = vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("server cert")];
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("server key");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions");
    let builder = if client_certs {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der())).expect("CA root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .expect("client verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key).expect("server certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// Accepts TCP connections and hands on those whose TLS handshake succeeded; handshakes run
/// on their own tasks so a stalled client holds up no one.
pub struct TlsListener {
    addr: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: rustls::ServerConfig, auth: Arc<Auth>) -> std::io::Result<Self> {
        let addr = tcp.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                // The server is gone once its listener (the receiver) is dropped.
                let accepted = tokio::select! {
                    _ = tx.closed() => return,
                    accepted = tcp.accept() => accepted,
                };
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (acceptor, tx, auth) = (acceptor.clone(), tx.clone(), auth.clone());
                tokio::spawn(async move {
                    match acceptor.accept(stream).await {
                        Ok(tls) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Err(e) => auth.handshake_failures.lock().expect("failures").push(e.to_string()),
                    }
                });
            }
        });
        Ok(TlsListener { addr, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
