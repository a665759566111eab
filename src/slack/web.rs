//! The Slack Web API as deckhand uses it: JSON calls with the bot token, response_url posts
//! and the external file upload, all retried through 429s (after Retry-After) and brief
//! outages, so a rate-limit storm delays messages but loses none.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::config::SlackConfig;

/// Longest single wait honoured from a Retry-After header; Slack asks for seconds, a huge
/// value is more likely a bug than a plan.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("slack {method}: {error}")]
    Api { method: String, error: String },
    #[error("slack {method}: HTTP {status}")]
    Status { method: String, status: u16 },
    #[error("slack {method}: {source}")]
    Transport { method: String, source: reqwest::Error },
    #[error("slack {method}: answer without {field}")]
    Shape { method: String, field: &'static str },
    #[error("slack {method}: still failing after retrying for {secs} s")]
    GaveUp { method: String, secs: u64 },
}

impl WebError {
    /// Errors that will not go away by trying again.
    pub fn permanent(&self) -> bool {
        match self {
            WebError::Api { .. } | WebError::Shape { .. } => true,
            // Still failing after the call's own retries: an outage the outbox waits out.
            WebError::GaveUp { .. } => false,
            WebError::Status { status, .. } => *status != 429 && *status < 500,
            WebError::Transport { .. } => false,
        }
    }
}

/// One outgoing HTTP call, before it is sent.
enum Body<'a> {
    Json(&'a Value),
    Form(&'a [(&'a str, String)]),
    Bytes(&'a [u8]),
}

#[derive(Clone)]
pub struct WebApi {
    http: reqwest::Client,
    base: String,
    bot_token: String,
    app_token: String,
    retry_for: Duration,
}

impl std::fmt::Debug for WebApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A file upload's result: the id Slack gave the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub file_id: String,
}

impl WebApi {
    pub fn new(config: &SlackConfig) -> Self {
        // The process-wide rustls provider (ring) is installed by whoever starts deckhand;
        // installing it here too keeps a library user from pulling a second one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            base: config.api_url.trim_end_matches('/').to_owned(),
            bot_token: config.bot_token.clone(),
            app_token: config.app_token.clone(),
            retry_for: config.retry_for.as_duration(),
        }
    }

    /// Calls `method` with a JSON body and the bot token; returns Slack's answer (ok=true).
    pub async fn call<T: Serialize + ?Sized>(&self, method: &str, body: &T) -> Result<Value, WebError> {
        let body = serde_json::to_value(body).map_err(|e| WebError::Api {
            method: method.into(),
            error: format!("cannot encode the request: {e}"),
        })?;
        let url = format!("{}/{method}", self.base);
        let answer = self
            .send(method, &url, Some(&self.bot_token), Body::Json(&body))
            .await?;
        slack_ok(method, answer)
    }

    /// Calls `method` with form fields, for the methods that do not take JSON.
    pub async fn call_form(&self, method: &str, form: &[(&str, String)]) -> Result<Value, WebError> {
        let url = format!("{}/{method}", self.base);
        let answer = self.send(method, &url, Some(&self.bot_token), Body::Form(form)).await?;
        slack_ok(method, answer)
    }

    /// apps.connections.open with the app-level token: the Socket Mode WebSocket URL.
    pub async fn open_connection(&self) -> Result<String, WebError> {
        let method = "apps.connections.open";
        let url = format!("{}/{method}", self.base);
        let answer = self.send(method, &url, Some(&self.app_token), Body::Form(&[])).await?;
        let answer = slack_ok(method, answer)?;
        answer["url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| WebError::Shape {
                method: method.into(),
                field: "url",
            })
    }

    /// Posts to an interaction's response_url (ephemeral replies, replacing a message).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), WebError> {
        self.send("response_url", response_url, None, Body::Json(body)).await?;
        Ok(())
    }

    /// The external upload: files.getUploadURLExternal, the bytes to the URL it gives, then
    /// files.completeUploadExternal sharing the file into `channel` (in `thread_ts`).
    pub async fn upload_file(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        filename: &str,
        title: &str,
        bytes: &[u8],
    ) -> Result<Uploaded, WebError> {
        let method = "files.getUploadURLExternal";
        // This method takes form fields, not JSON.
        let form = [("filename", filename.to_owned()), ("length", bytes.len().to_string())];
        let answer = self.call_form(method, &form).await?;
        let field = |name: &'static str| {
            answer[name].as_str().map(str::to_owned).ok_or_else(|| WebError::Shape {
                method: method.into(),
                field: name,
            })
        };
        let (upload_url, file_id) = (field("upload_url")?, field("file_id")?);
        self.send("file upload", &upload_url, None, Body::Bytes(bytes)).await?;
        let complete = slack_morphism::api::SlackApiFilesCompleteUploadExternalRequest {
            files: vec![slack_morphism::api::SlackApiFilesComplete {
                id: file_id.clone().into(),
                title: Some(title.to_owned()),
            }],
            channel_id: Some(channel.to_owned().into()),
            channels: None,
            initial_comment: None,
            blocks: None,
            thread_ts: thread_ts.map(|t| t.to_owned().into()),
            username: None,
            icon_url: None,
            icon_emoji: None,
        };
        self.call("files.completeUploadExternal", &complete).await?;
        Ok(Uploaded { file_id })
    }

    /// Sends one call, retrying 429 (after Retry-After), 5xx and transport errors until
    /// `retry_for` has passed.
    async fn send(&self, method: &str, url: &str, token: Option<&str>, body: Body<'_>) -> Result<Value, WebError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(250);
        loop {
            let (result, wait) = self.send_once(method, url, token, &body).await;
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) if e.permanent() => return Err(e),
                Err(e) => e,
            };
            let wait = wait.unwrap_or_else(|| {
                let w = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                w
            });
            if started.elapsed() + wait > self.retry_for {
                tracing::error!(method, error = %err, "giving up on a Slack call");
                return Err(WebError::GaveUp {
                    method: method.into(),
                    secs: self.retry_for.as_secs(),
                });
            }
            tracing::info!(method, error = %err, wait_ms = wait.as_millis() as u64, "Slack call will be retried");
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt; on a 429 also the wait Slack asked for.
    async fn send_once(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: &Body<'_>,
    ) -> (Result<Value, WebError>, Option<Duration>) {
        let mut req = self.http.post(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::Json(v) => req.json(v),
            // reqwest's `form` feature is off in this crate; the encoding is one call.
            Body::Form(f) => match serde_urlencoded::to_string(f) {
                Ok(encoded) => req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(encoded),
                Err(e) => {
                    let err = WebError::Api {
                        method: method.into(),
                        error: format!("cannot encode the form: {e}"),
                    };
                    return (Err(err), None);
                }
            },
            Body::Bytes(b) => req.header("content-type", "application/octet-stream").body(b.to_vec()),
        };
        // Without the URL: a response_url is a credential, and errors reach logs and the
        // outbox's recorded errors.
        let transport = |source: reqwest::Error| WebError::Transport {
            method: method.into(),
            source: source.without_url(),
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return (Err(transport(e)), None),
        };
        let status = resp.status().as_u16();
        if status == 429 {
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs)
                .min(MAX_RETRY_AFTER);
            let err = WebError::Status {
                method: method.into(),
                status,
            };
            return (Err(err), Some(wait));
        }
        if !(200..300).contains(&status) {
            let err = WebError::Status {
                method: method.into(),
                status,
            };
            return (Err(err), None);
        }
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return (Err(transport(e)), None),
        };
        // response_url and upload URLs answer with plain text ("ok", "OK - 123").
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (Ok(value), None)
    }
}

/// Slack answers 200 with `ok: false` for most errors.
fn slack_ok(method: &str, answer: Value) -> Result<Value, WebError> {
    if answer["ok"].as_bool() == Some(true) {
        Ok(answer)
    } else {
        Err(WebError::Api {
            method: method.into(),
            error: answer["error"].as_str().unwrap_or("unexpected answer").to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unreachable response_url (a credential) stays out of the error text, which the
    /// retry loop logs.
    #[tokio::test]
    async fn transport_errors_leave_the_response_url_out() {
        let config = SlackConfig {
            retry_for: "1s".parse().unwrap(),
            ..SlackConfig::default()
        };
        let web = WebApi::new(&config);
        let url = "http://127.0.0.1:9/commands/T1/SECRET-RESPONSE-URL";
        // One attempt: the error each retry logs, and the one a caller records.
        let body = serde_json::json!({ "text": "hi" });
        let (result, _) = web.send_once("response_url", url, None, &Body::Json(&body)).await;
        let e = result.unwrap_err();
        let said = format!("{e} {e:?}");
        assert!(matches!(e, WebError::Transport { .. }), "{said}");
        assert!(!said.contains("SECRET-RESPONSE-URL"), "{said}");
    }
}
