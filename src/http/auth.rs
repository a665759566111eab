use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};

use super::error::ApiError;
use crate::{app::App, identity::Principal};

/// The caller of an API endpoint, from `Authorization: Bearer <token>`.
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        app.directory
            .by_token(token)
            .map(Caller)
            .ok_or_else(ApiError::unauthorized)
    }
}
