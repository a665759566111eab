//! `GET /api/v1/requests/{id}/attachments/{file}`: a file an action posted (a load test's
//! chart), for API and CLI users, who have no chat thread to see it in.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{ApiError, auth::Caller};
use crate::{app::App, attachments::Attachments};

pub async fn download(
    State(app): State<Arc<App>>,
    _caller: Caller,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = Attachments::new(app.store.pool().clone())
        .get_for(&id, &file)
        .await
        .map_err(crate::app::AppError::from)?;
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
