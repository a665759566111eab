//! The HTTP transport: POST /slack/commands and /slack/interactions. Every request is
//! verified before anything else happens; a rejection is a 401 with no side effect.

use std::sync::Arc;

use axum::{
    Extension, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};

use super::{
    inbound::{self, Inbound, InboundError},
    modals,
    verify::{Delivery, RequestVerifier},
};
use crate::{app::App, configuration::Config};

#[derive(Clone)]
struct Http {
    inbound: Arc<Inbound>,
    verifier: RequestVerifier,
}

pub fn routes(config: &Config) -> Router<Arc<App>> {
    let http = Http {
        inbound: Arc::new(Inbound::new(config)),
        verifier: RequestVerifier::new(&config.slack.signing_secret),
    };
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .layer(Extension(http))
        // Inner to the server-wide limit, so this one applies to Slack's paths.
        .layer(DefaultBodyLimit::max(config.slack.body_limit))
}

fn rejected(why: impl std::fmt::Display) -> Response {
    tracing::warn!(reason = %why, "rejected a request claiming to be from Slack");
    (StatusCode::UNAUTHORIZED, "invalid Slack request").into_response()
}

fn failed(e: InboundError) -> Response {
    match e {
        InboundError::Malformed(m) => {
            tracing::warn!(error = %m, "malformed Slack payload");
            (StatusCode::BAD_REQUEST, "malformed Slack payload").into_response()
        }
        InboundError::Store(m) => {
            tracing::error!(error = %m, "could not store a Slack request");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "deckhand could not store the request; try again",
            )
                .into_response()
        }
    }
}

async fn commands(
    State(app): State<Arc<App>>,
    Extension(http): Extension<Http>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, _delivery) = match http.verifier.verify(&headers, &body) {
        Ok(v) => v,
        Err(e) => return rejected(e),
    };
    let cmd = match inbound::parse_command(form) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    // A redelivery goes through the same path: the trigger_id makes it the same request.
    match inbound::command(&app, &http.inbound, cmd).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => failed(e),
    }
}

async fn interactions(
    State(app): State<Arc<App>>,
    Extension(http): Extension<Http>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, delivery) = match http.verifier.verify(&headers, &body) {
        Ok(v) => v,
        Err(e) => return rejected(e),
    };
    let raw = match modals::payload(form) {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    if delivery == Delivery::Retry {
        // This very click was handled already; answering it again would only repeat the
        // explanation the person got the first time.
        return StatusCode::OK.into_response();
    }
    // Modals answer in the response body (field errors keep the form open).
    if let Some(answer) = modals::interaction(&app, &http.inbound, &raw).await {
        return match answer {
            Ok(Some(body)) => axum::Json(body).into_response(),
            Ok(None) => StatusCode::OK.into_response(),
            Err(e) => failed(e),
        };
    }
    let event = match serde_json::from_value(raw) {
        Ok(e) => e,
        Err(e) => return failed(InboundError::Malformed(e.to_string())),
    };
    match inbound::interaction(&app, &http.inbound, event).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => failed(e),
    }
}
