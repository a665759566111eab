use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{app::AppError, commands::RouteError};

/// Every API error is JSON: `{"error": {"code": "...", "message": "..."}}`, where the
/// message says what to do next.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Send a token from the configuration's [users] as `Authorization: Bearer <token>` (the CLI reads DECKHAND_TOKEN).",
        )
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = match &e {
            AppError::Route(RouteError::Forbidden { .. }) | AppError::NotApprover { .. } | AppError::NotYours(_) => {
                StatusCode::FORBIDDEN
            }
            AppError::Route(_) | AppError::ReasonRequired => StatusCode::BAD_REQUEST,
            AppError::Precondition(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::WrongState { .. }
            | AppError::SelfApproval(_)
            | AppError::AlreadyDecided(_)
            | AppError::Expired(_) => StatusCode::CONFLICT,
            AppError::NoAction(_) | AppError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let extra = match &e {
            AppError::Route(RouteError::Unknown { suggestions, .. }) => Some(json!({ "suggestions": suggestions })),
            AppError::Route(RouteError::Usage { usage, examples, .. }) => {
                Some(json!({ "usage": usage, "examples": examples }))
            }
            AppError::Route(RouteError::Arg { arg, usage, .. }) => Some(json!({ "argument": arg, "usage": usage })),
            _ => None,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "internal error");
            "Something went wrong inside deckhand; the operators can find the details in its log.".to_owned()
        } else {
            e.to_string()
        };
        Self {
            status,
            code: e.code(),
            message,
            extra,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some(extra), Some(obj)) = (self.extra, body.as_object_mut())
            && let Some(e) = extra.as_object()
        {
            obj.extend(e.clone());
        }
        (self.status, Json(json!({ "error": body }))).into_response()
    }
}
