//! A small client for the JSON API: what `deckhand run`, `approve` and friends use.

use futures_util::StreamExt;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach deckhand at {url}: {source}. Is `deckhand serve` running there? (DECKHAND_URL)")]
    Connect { url: String, source: reqwest::Error },
    /// The server answered with an error; `message` says what to do.
    #[error("{message}")]
    Api { status: u16, code: String, message: String },
    #[error("unexpected answer from deckhand: {0}")]
    Protocol(String),
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Self {
        // One TLS provider (ring) for the whole process, shared with kube; without it
        // reqwest's rustls has none to pick.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    fn connect_err(&self, source: reqwest::Error) -> ClientError {
        ClientError::Connect {
            url: self.base.clone(),
            source,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        if status.is_success() {
            return Ok(body);
        }
        Err(api_error(status, &body))
    }

    pub async fn submit(&self, text: &str) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/api/v1/requests", self.base))
                .json(&json!({ "text": text })),
        )
        .await
    }

    pub async fn list(&self, scope: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/api/v1/requests?scope={scope}", self.base)))
            .await
    }

    pub async fn get(&self, id: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/api/v1/requests/{id}", self.base)))
            .await
    }

    /// A download (not JSON) from the API; an error answer is still the API's JSON error.
    async fn download(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Err(api_error(status, &body))
    }

    /// The request's whole output as text (`stream`: stdout or stderr of command output).
    pub async fn output(&self, id: &str, stream: Option<&str>) -> Result<String, ClientError> {
        let query = stream.map(|s| format!("?stream={s}")).unwrap_or_default();
        let resp = self.download(&format!("/api/v1/requests/{id}/output{query}")).await?;
        resp.text().await.map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// A file an action posted with request `id` (a load test's chart).
    pub async fn attachment(&self, id: &str, file: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self
            .download(&format!("/api/v1/requests/{id}/attachments/{file}"))
            .await?;
        let bytes = resp.bytes().await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(bytes.to_vec())
    }

    pub async fn approve(&self, id: &str) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}/api/v1/requests/{id}/approve", self.base)))
            .await
    }

    pub async fn deny(&self, id: &str, reason: &str) -> Result<Value, ClientError> {
        let body = json!({ "reason": reason });
        self.send(
            self.http
                .post(format!("{}/api/v1/requests/{id}/deny", self.base))
                .json(&body),
        )
        .await
    }

    pub async fn cancel(&self, id: &str) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}/api/v1/requests/{id}/cancel", self.base)))
            .await
    }

    /// Follows a request's server-sent events after `after`, calling `on_event` with each
    /// event's JSON, until the server ends the stream (the request ended).
    pub async fn follow(&self, id: &str, after: i64, mut on_event: impl FnMut(Value)) -> Result<(), ClientError> {
        let url = format!("{}/api/v1/requests/{id}/events?after={after}", self.base);
        let resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        if !resp.status().is_success() {
            return Err(ClientError::Protocol(format!(
                "event stream answered {}",
                resp.status()
            )));
        }
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.connect_err(e))?;
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Ok(v) = serde_json::from_str::<Value>(&data) {
                    on_event(v);
                }
            }
        }
        Ok(())
    }
}

/// The API's JSON error (`{"error": {"code", "message"}}`) as a client error.
fn api_error(status: reqwest::StatusCode, body: &Value) -> ClientError {
    let err = &body["error"];
    ClientError::Api {
        status: status.as_u16(),
        code: err["code"].as_str().unwrap_or("error").to_owned(),
        message: err["message"].as_str().unwrap_or("request failed").to_owned(),
    }
}
