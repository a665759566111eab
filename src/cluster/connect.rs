//! Credentials for an API server named by `kubernetes.url`: the CA of its certificate
//! (`ca_file`, or `ca_data` as PEM text or base64 of PEM, like kubeconfig's
//! certificate-authority-data), a bearer token file (`token_file`) and a client certificate
//! (`client_cert_file` + `client_key_file`). Kubeconfig contexts (exec plugins included) and
//! the in-cluster service account go through kube's own loaders instead.
//!
//! Everything is read and checked up front, at configuration load and again on connect, so
//! a typo is an error naming the key rather than a TLS failure on the first command.
//!
//! The token file is not handed to kube: kube re-reads its `token_file` at most once a
//! minute, so for up to a minute after a rotation that revokes the old token every call
//! would fail. [`BearerFromFile`] looks at the file's metadata on every request (a `stat`,
//! next to a network round trip) and re-reads it when it changed, or after any 401.

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::SystemTime,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hyper::{Request, Response, StatusCode, header::AUTHORIZATION, header::HeaderValue};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::configuration::KubernetesConfig;

/// A credential key that cannot be used: which key, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CredentialError {
    pub key: &'static str,
    pub message: String,
}

impl CredentialError {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }

    pub fn key(&self) -> &'static str {
        self.key
    }
}

/// What the `kubernetes.url` credential keys say, read and checked.
pub struct Credentials {
    root_certs: Option<Vec<Vec<u8>>>,
    token: Option<Arc<TokenFile>>,
    client_cert: Option<(PathBuf, PathBuf)>,
}

fn set(path: &Path) -> bool {
    !path.as_os_str().is_empty()
}

impl Credentials {
    /// Reads the files the keys name and checks them; none set gives empty credentials.
    pub fn read(cfg: &KubernetesConfig) -> Result<Self, CredentialError> {
        let keys = [
            ("kubernetes.ca_file", set(&cfg.ca_file)),
            ("kubernetes.ca_data", !cfg.ca_data.trim().is_empty()),
            ("kubernetes.token_file", set(&cfg.token_file)),
            ("kubernetes.client_cert_file", set(&cfg.client_cert_file)),
            ("kubernetes.client_key_file", set(&cfg.client_key_file)),
        ];
        if cfg.url.is_empty()
            && let Some((key, _)) = keys.iter().find(|(_, on)| *on)
        {
            return Err(CredentialError::new(
                key,
                "applies to kubernetes.url, which is empty; set kubernetes.url to the API server's https:// address, or put the credentials in the kubeconfig instead",
            ));
        }
        let root_certs = match (keys[0].1, keys[1].1) {
            (true, true) => {
                return Err(CredentialError::new(
                    "kubernetes.ca_file",
                    "kubernetes.ca_file and kubernetes.ca_data are both set; keep one of them",
                ));
            }
            (true, false) => {
                let pem = read_file("kubernetes.ca_file", &cfg.ca_file)?;
                Some(certificates(
                    "kubernetes.ca_file",
                    &pem,
                    &cfg.ca_file.display().to_string(),
                )?)
            }
            (false, true) => Some(certificates(
                "kubernetes.ca_data",
                &ca_data(&cfg.ca_data)?,
                "the value",
            )?),
            (false, false) => None,
        };
        let client_cert = match (keys[3].1, keys[4].1) {
            (true, true) => {
                let cert = read_file("kubernetes.client_cert_file", &cfg.client_cert_file)?;
                certificates(
                    "kubernetes.client_cert_file",
                    &cert,
                    &cfg.client_cert_file.display().to_string(),
                )?;
                let key = read_file("kubernetes.client_key_file", &cfg.client_key_file)?;
                if PrivateKeyDer::from_pem_slice(&key).is_err() {
                    return Err(CredentialError::new(
                        "kubernetes.client_key_file",
                        format!(
                            "{} holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY); point it at the key of kubernetes.client_cert_file",
                            cfg.client_key_file.display()
                        ),
                    ));
                }
                Some((cfg.client_cert_file.clone(), cfg.client_key_file.clone()))
            }
            (true, false) => {
                return Err(CredentialError::new(
                    "kubernetes.client_cert_file",
                    "is set without kubernetes.client_key_file; set both (the certificate and its private key) or neither",
                ));
            }
            (false, true) => {
                return Err(CredentialError::new(
                    "kubernetes.client_key_file",
                    "is set without kubernetes.client_cert_file; set both (the certificate and its private key) or neither",
                ));
            }
            (false, false) => None,
        };
        let token = if keys[2].1 {
            Some(Arc::new(TokenFile::open(&cfg.token_file)?))
        } else {
            None
        };
        Ok(Self {
            root_certs,
            token,
            client_cert,
        })
    }

    /// Puts the CA and client certificate into `config`; the token, if any, is a layer for
    /// the client's stack.
    pub(super) fn apply(self, config: &mut kube::Config) -> Option<BearerFromFile> {
        if let Some(certs) = self.root_certs {
            config.root_cert = Some(certs);
        }
        if let Some((cert, key)) = self.client_cert {
            config.auth_info.client_certificate = Some(cert.display().to_string());
            config.auth_info.client_key = Some(key.display().to_string());
        }
        self.token.map(|file| BearerFromFile { file })
    }
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, CredentialError> {
    std::fs::read(path).map_err(|e| {
        CredentialError::new(
            key,
            format!(
                "cannot read {}: {e}; check the path and that deckhand may read it",
                path.display()
            ),
        )
    })
}

/// `ca_data`: PEM text, or base64 of it (kubeconfig's certificate-authority-data).
fn ca_data(value: &str) -> Result<Vec<u8>, CredentialError> {
    let value = value.trim();
    if value.contains("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).map_err(|_| {
        CredentialError::new(
            "kubernetes.ca_data",
            "is neither PEM (-----BEGIN CERTIFICATE-----) nor base64 of PEM; paste the CA certificate or a kubeconfig's certificate-authority-data",
        )
    })
}

/// The DER of every CERTIFICATE block in `pem`, each checked to be a usable X.509 CA.
fn certificates(key: &'static str, pem: &[u8], what: &str) -> Result<Vec<Vec<u8>>, CredentialError> {
    let bad = |detail: String| {
        CredentialError::new(
            key,
            format!("{what} is not a PEM certificate ({detail}); it must hold -----BEGIN CERTIFICATE----- blocks"),
        )
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate found".into()));
    }
    let mut store = rustls::RootCertStore::empty();
    for cert in &certs {
        store
            .add(cert.clone())
            .map_err(|e| bad(format!("unreadable certificate: {e}")))?;
    }
    Ok(certs.into_iter().map(|c| c.to_vec()).collect())
}

/// A bearer token file: the last token read, and what the file looked like then.
pub struct TokenFile {
    path: PathBuf,
    state: Mutex<TokenState>,
}

struct TokenState {
    header: HeaderValue,
    stamp: Option<Stamp>,
    /// A 401 came back: read the file again even if it looks unchanged.
    stale: bool,
}

/// Enough of a file's metadata to notice it was rewritten or swapped (a projected service
/// account token is a symlink swapped to a new file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

// Never prints the token.
impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TokenFile {
    fn open(path: &Path) -> Result<Self, CredentialError> {
        let stamp = stamp(path);
        let header = bearer(path)?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new(TokenState {
                header,
                stamp,
                stale: false,
            }),
        })
    }

    /// The `Authorization` value to send now: the file is re-read when it changed since the
    /// last read or a 401 came back. A file that cannot be read keeps the last token (as
    /// client-go does), so a brief gap during rotation is not an outage.
    pub fn header(&self) -> HeaderValue {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamp(&self.path);
        if state.stale || (now.is_some() && now != state.stamp) {
            match bearer(&self.path) {
                Ok(header) => {
                    if header != state.header {
                        tracing::info!(path = %self.path.display(), "kubernetes.token_file changed; using the new token");
                    }
                    state.header = header;
                    state.stamp = now;
                    state.stale = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "kubernetes.token_file could not be re-read; keeping the last token")
                }
            }
        }
        state.header.clone()
    }

    fn unauthorized(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stale = true;
    }
}

fn bearer(path: &Path) -> Result<HeaderValue, CredentialError> {
    const KEY: &str = "kubernetes.token_file";
    let bytes = read_file(KEY, path)?;
    let token = std::str::from_utf8(&bytes).map(str::trim).unwrap_or_default();
    if token.is_empty() {
        return Err(CredentialError::new(
            KEY,
            format!("{} is empty or not text; it must hold the bearer token", path.display()),
        ));
    }
    let mut header = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
        CredentialError::new(
            KEY,
            format!(
                "{} holds characters a bearer token cannot have; it must hold the token alone",
                path.display()
            ),
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// A tower layer that sends the token file's current token with every request.
#[derive(Clone, Debug)]
pub struct BearerFromFile {
    file: Arc<TokenFile>,
}

impl<S> tower::Layer<S> for BearerFromFile {
    type Service = WithBearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithBearer {
            inner,
            file: self.file.clone(),
        }
    }
}

#[derive(Clone)]
pub struct WithBearer<S> {
    inner: S,
    file: Arc<TokenFile>,
}

impl<S, B, R> tower::Service<Request<B>> for WithBearer<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.headers_mut().insert(AUTHORIZATION, self.file.header());
        let file = self.file.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                file.unauthorized();
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests;
