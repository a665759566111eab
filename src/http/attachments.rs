//! `GET /api/v1/requests/{id}/attachments/{file}`: a file an action posted (a load test's
//! chart), for API and CLI users, who have no chat thread to see it in.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{ApiError, auth::Caller};
use crate::{app::App, attachments::Attachments, domain::RequestId, identity::Principal, visibility::Audience};

/// A file is as private as the event that announced it; someone outside that event's
/// audience is told there is no such file, as for a guessed name.
async fn may_read(app: &App, who: &Principal, id: &str, file: &str) -> Result<bool, ApiError> {
    let Some(id) = RequestId::parse(id) else {
        return Ok(false);
    };
    let Some(request) = app.store.get(&id).await.map_err(crate::app::AppError::from)? else {
        return Ok(false);
    };
    let events = app.store.events(&id, 0).await.map_err(crate::app::AppError::from)?;
    let announced = events
        .iter()
        .find(|e| e.data.attachment().is_some_and(|a| a.id == file));
    Ok(announced.is_none_or(|e| Audience::of_event(e).admits(who, &request)))
}

pub async fn download(
    State(app): State<Arc<App>>,
    Caller(who): Caller,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = if may_read(&app, &who, &id, &file).await? {
        Attachments::new(app.store.pool().clone())
            .get_for(&id, &file)
            .await
            .map_err(crate::app::AppError::from)?
    } else {
        None
    };
    let Some((content_type, filename, bytes)) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("request {id} has no attachment {file}; `deckhand request {id}` lists its events and their files"),
        ));
    };
    let disposition = format!("attachment; filename=\"{}\"", filename.replace(['"', '\r', '\n'], ""));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
