//! JSON API under /api/v1, used by the CLI and scripts.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::json;

use super::{auth::Caller, error::ApiError};
use crate::{
    app::{App, Invocation},
    domain::{RequestId, State as ReqState, Surface},
    store::{Event, ListFilter, RequestRecord},
};

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("The body must be JSON like {{\"text\": \"help\"}}: {e}"),
        )
    })
}

pub(super) fn request_id(raw: &str) -> Result<RequestId, ApiError> {
    RequestId::parse(raw).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("'{raw}' is not a request id; they look like r-0pcx9k2m4f7hqa"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    text: String,
    #[serde(default)]
    idempotency_key: Option<String>,
}

pub async fn submit(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: SubmitBody = parse_body(&body)?;
    let key = idempotency_key(body.idempotency_key, &headers)?;
    let inv = Invocation {
        principal: who.clone(),
        surface: Surface::Api,
        text: body.text,
        channel: None,
        thread: None,
        surface_data: None,
        idempotency_key: key,
    };
    let submitted = app.submit(inv).await?;
    let events = app
        .store
        .events(&submitted.request.id, 0)
        .await
        .map_err(crate::app::AppError::from)?;
    let events = crate::visibility::events_for(events, &who, &submitted.request);
    let status = if submitted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = json!({ "request": submitted.request, "duplicate": submitted.duplicate, "events": events });
    Ok((status, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut filter = ListFilter {
        limit: q.limit.unwrap_or(50),
        ..Default::default()
    };
    if let Some(s) = &q.state {
        let state: ReqState = s.parse().map_err(|_| {
            let all: Vec<_> = ReqState::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_state",
                format!("unknown state '{s}'; use one of {}", all.join(", ")),
            )
        })?;
        filter.states.push(state);
    }
    let records: Vec<RequestRecord> = match q.scope.as_deref().unwrap_or("mine") {
        "mine" => {
            filter.requester = Some(who.user.clone());
            app.store.list(&filter).await.map_err(crate::app::AppError::from)?
        }
        "all" => app.store.list(&filter).await.map_err(crate::app::AppError::from)?,
        "pending" => {
            filter.states = vec![ReqState::PendingApproval];
            let all = app.store.list(&filter).await.map_err(crate::app::AppError::from)?;
            all.into_iter().filter(|r| app.may_approve(&who, r).is_ok()).collect()
        }
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_scope",
                format!("unknown scope '{other}'; use mine, pending or all"),
            ));
        }
    };
    Ok(Json(json!({ "requests": records })))
}

pub async fn get(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = request_id(&id)?;
    let request = app.get(&id).await?;
    let events: Vec<Event> = app
        .store
        .events(&id, 0)
        .await
        .map_err(crate::app::AppError::from)?
        .into_iter()
        .map(|e| crate::visibility::event_for(e, &who, &request))
        .collect();
    let approvals = app.store.approvals(&id).await.map_err(crate::app::AppError::from)?;
    // Whether each event reached the chat thread (empty for API requests).
    let deliveries = app.store.deliveries(&id).await.map_err(crate::app::AppError::from)?;
    Ok(Json(
        json!({ "request": request, "events": events, "approvals": approvals, "deliveries": deliveries }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputQuery {
    #[serde(default)]
    stream: Option<String>,
}

/// The request's output as a plain-text download: what a chat message had to cut (exec's
/// stdout/stderr are kept up to 256 KiB each in the event data) comes whole from here.
/// `?stream=stdout|stderr` picks one stream of command output.
pub async fn output(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Query(q): Query<OutputQuery>,
) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    let request = app.get(&id).await?;
    let streams: &[&str] = match q.stream.as_deref() {
        None | Some("all") => &["stdout", "stderr"],
        Some("stdout") => &["stdout"],
        Some("stderr") => &["stderr"],
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_stream",
                format!("stream must be stdout, stderr or all, not {other:?}"),
            ));
        }
    };
    let events = app.store.events(&id, 0).await.map_err(crate::app::AppError::from)?;
    let mut text = String::new();
    let events = events
        .into_iter()
        .map(|e| crate::visibility::event_for(e, &who, &request));
    for e in events {
        let crate::events::EventData::Output(out) = &e.data else {
            continue;
        };
        let kept: Vec<&str> = streams
            .iter()
            .filter_map(|s| out.fields.get(*s).and_then(serde_json::Value::as_str))
            .collect();
        if out.fields.contains_key("stdout") {
            kept.iter().for_each(|k| text.push_str(k));
        } else if q.stream.is_none() {
            text.push_str(&e.message);
            text.push('\n');
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.txt\""),
            ),
        ],
        text,
    )
        .into_response())
}

pub async fn approve(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = request_id(&id)?;
    let approved = app.approve(&id, &who, Surface::Api.as_str()).await?;
    Ok(Json(json!({
        "request": approved.request,
        "approvals": approved.approvals,
        "needed": approved.needed,
        "message": approved.to_string(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    reason: String,
}

pub async fn deny(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = request_id(&id)?;
    let body: DenyBody = parse_body(&body)?;
    let request = app.deny(&id, &who, &body.reason, Surface::Api.as_str()).await?;
    Ok(Json(json!({ "request": request })))
}

pub async fn cancel(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = request_id(&id)?;
    let (request, was) = app.cancel(&id, &who, Surface::Api.as_str()).await?;
    Ok(Json(json!({ "request": request, "was": was })))
}

/// The request's idempotency key, from the body or else the `Idempotency-Key` header; an
/// empty key is none.
fn idempotency_key(in_body: Option<String>, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let bad = |problem: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_idempotency_key", problem);
    let key = match (in_body, headers.get("idempotency-key")) {
        (Some(key), _) => Some(key),
        (None, Some(header)) => Some(header.to_str().map(str::to_owned).map_err(|_| {
            bad("The Idempotency-Key header must be printable ASCII; send the key in the JSON body to use other characters.".into())
        })?),
        (None, None) => None,
    };
    let key = key.filter(|k| !k.is_empty());
    match key.as_deref().and_then(idempotency_key_problem) {
        Some(problem) => Err(bad(problem)),
        None => Ok(key),
    }
}

/// What is wrong with an idempotency key, if anything: it is stored with the request, and
/// PostgreSQL cannot store a NUL (the same key is refused on both backends).
fn idempotency_key_problem(key: &str) -> Option<String> {
    if key.chars().count() > 200 {
        return Some("Idempotency keys are at most 200 characters; send a shorter key.".into());
    }
    let c = key.chars().find(|c| c.is_control())?;
    Some(format!(
        "Idempotency keys cannot hold control characters (found U+{:04X}); send a key without it.",
        u32::from(c)
    ))
}
