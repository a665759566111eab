//! Discord's REST API through the crate's reqwest (rustls + ring), against a configurable
//! base URL. Rate limits (429) are waited out and retried, so no message is dropped for them.

use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;

/// A 429 that keeps coming back is given up on after this many tries.
const MAX_ATTEMPTS: u32 = 6;
/// Never sleep longer than this on one 429 (a misread header must not stall delivery).
const MAX_WAIT: Duration = Duration::from_secs(60);
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("cannot reach Discord: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("Discord answered {status} to {method} {path}: {body}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
    #[error("Discord kept rate-limiting {method} {path}")]
    RateLimited { method: Method, path: String },
    #[error("Discord answered with something that is not a message: {0}")]
    Protocol(String),
}

/// A transport error without its URL: webhook URLs carry the interaction token, which must
/// not reach logs or the outbox's recorded errors.
impl From<reqwest::Error> for RestError {
    fn from(e: reqwest::Error) -> Self {
        RestError::Transport(e.without_url())
    }
}

impl RestError {
    /// The interaction token is no longer accepted (expired, or never acknowledged):
    /// worth retrying in the channel with the bot token.
    /// Discord refused what was sent (4xx other than 429): sending it again will not help.
    pub fn permanent(&self) -> bool {
        matches!(self, RestError::Status { status, .. }
            if status.is_client_error() && *status != StatusCode::TOO_MANY_REQUESTS)
            || matches!(self, RestError::Protocol(_))
    }

    pub fn token_refused(&self) -> bool {
        matches!(self, RestError::Status { status, .. }
            if *status == StatusCode::NOT_FOUND || *status == StatusCode::UNAUTHORIZED)
    }
}

#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    bot_token: String,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest").field("base", &self.base).finish_non_exhaustive()
    }
}

/// Who authenticates a call: webhook URLs carry their token, everything else the bot's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Bot,
}

impl Rest {
    pub fn new(base: &str, bot_token: &str) -> Self {
        // One TLS provider (ring) for the whole process; without it reqwest's rustls has
        // none to pick.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent("DiscordBot (https://github.com/deckhand, 0.1)")
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            bot_token: bot_token.to_owned(),
        }
    }

    pub fn has_bot_token(&self) -> bool {
        !self.bot_token.is_empty()
    }

    /// One call, retried after the delay Discord asks for on 429. Returns the JSON body
    /// (`Value::Null` for 204).
    pub async fn call(&self, method: Method, path: &str, auth: Auth, body: Option<&Value>) -> Result<Value, RestError> {
        self.send(method, path, auth, |req| match body {
            Some(b) => req.json(b),
            None => req,
        })
        .await
    }

    /// A message with one file: multipart/form-data with `payload_json` and `files[0]`.
    pub async fn call_with_file(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        payload: &Value,
        file: &super::upload::FilePart<'_>,
    ) -> Result<Value, RestError> {
        let (content_type, body) = super::upload::multipart(payload, file);
        self.send(method, path, auth, |req| {
            req.header(reqwest::header::CONTENT_TYPE, content_type.clone())
                .body(body.clone())
        })
        .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        with_body: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Value, RestError> {
        let url = format!("{}{path}", self.base);
        for attempt in 1..=MAX_ATTEMPTS {
            let mut req = self.http.request(method.clone(), &url);
            if auth == Auth::Bot {
                req = req.header("Authorization", format!("Bot {}", self.bot_token));
            }
            let resp = with_body(req).send().await?;
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let headers = resp.headers().clone();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let wait = retry_after(&headers, &body).min(MAX_WAIT);
                tracing::info!(%method, path = %redact(path), attempt, wait_ms = wait.as_millis() as u64, "Discord rate limit; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status == StatusCode::NO_CONTENT {
                return Ok(Value::Null);
            }
            let text = resp.text().await?;
            if !status.is_success() {
                return Err(RestError::Status {
                    method,
                    path: redact(path),
                    status,
                    body: text.chars().take(300).collect(),
                });
            }
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| RestError::Protocol(e.to_string()));
        }
        Err(RestError::RateLimited {
            method,
            path: redact(path),
        })
    }
}

/// How long Discord wants us to wait: the body's `retry_after` or `X-RateLimit-Reset-After`
/// (both fractional seconds), else `Retry-After` (whole seconds); a second if none says.
pub fn retry_after(headers: &HeaderMap, body: &Value) -> Duration {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let secs = body
        .get("retry_after")
        .and_then(Value::as_f64)
        .or_else(|| header("x-ratelimit-reset-after"))
        .or_else(|| header("retry-after"))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs.min(MAX_WAIT.as_secs_f64()))
}

/// Interaction tokens are in webhook paths; logs get only their first characters.
fn redact(path: &str) -> String {
    match path.strip_prefix("/webhooks/") {
        Some(rest) => {
            let mut parts = rest.splitn(3, '/');
            let app = parts.next().unwrap_or_default();
            let token: String = parts.next().unwrap_or_default().chars().take(6).collect();
            let tail = parts.next().map(|t| format!("/{t}")).unwrap_or_default();
            format!("/webhooks/{app}/{token}…{tail}")
        }
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unreachable Discord never puts the interaction token (in webhook URLs) into the
    /// error text that logs and the outbox record.
    #[tokio::test]
    async fn transport_errors_leave_the_webhook_token_out() {
        let rest = Rest::new("http://127.0.0.1:9/api/v10", "bot");
        let path = "/webhooks/123/SECRET-INTERACTION-TOKEN/messages/@original";
        let e = rest.call(Method::PATCH, path, Auth::None, None).await.unwrap_err();
        let said = format!("{e} {e:?}");
        assert!(matches!(e, RestError::Transport(_)), "{said}");
        assert!(!said.contains("SECRET-INTERACTION-TOKEN"), "{said}");
    }
}
