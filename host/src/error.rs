//! `ApiError`: the one place where failures become API responses.
//!
//! The domain layer says what went wrong ([`DomainError`]); this module
//! decides the status code and the body.
//!
//! Every error body has the same shape:
//! `{"error": {"code": "...", "message": "...", ...}}` with a stable
//! machine-readable `code`. Database and other internal errors become a 500
//! whose detail is logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DomainError, PluginFailure};
use crate::store::StoreError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not valid JSON (or otherwise unreadable).
    #[error("{message}")]
    BadRequest {
        /// Stable code (`invalid_json`, `bad_request`, `invalid_csv`).
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 401: no usable credentials.
    #[error("{message}")]
    Unauthorized {
        /// `unauthenticated`, `token_invalid`, `token_expired` or `token_revoked`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 403: authenticated, but a role or permission is missing.
    #[error("{message}")]
    Forbidden {
        /// The permission (or `platform_admin`) that is missing.
        missing: String,
        /// A sentence naming it.
        message: String,
    },
    /// 404: no such resource (or not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 408: the request's body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// 409: the request conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: the request is well-formed but a value is invalid.
    #[error("{message}")]
    Validation {
        /// The offending field, when there is one.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// 502/503/504: a plugin failed, panicked, crashed, is not loaded, or
    /// timed out.
    #[error("{message}")]
    Plugin {
        /// 502 (failed, panicked or crashed), 503 (not loaded) or 504 (timed
        /// out).
        status: StatusCode,
        /// `plugin_failed`, `plugin_panicked`, `plugin_crashed`,
        /// `plugin_unavailable` or `plugin_timeout`.
        code: &'static str,
        /// What happened, naming the plugin.
        message: String,
    },
    /// 503 `shutting_down`: the server is stopping and ended a long poll;
    /// reconnect (the response carries `Retry-After`).
    #[error("the server is shutting down; reconnect")]
    ShuttingDown,
    /// 500: something failed inside the server. The detail is logged only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of an error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// On 403: the permission (or `platform_admin`) the caller lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permission: Option<String>,
    /// On 422: the field that is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Plugin { status, .. } => *status,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error's JSON detail (also used for per-widget errors).
    pub fn detail(&self) -> ErrorDetail {
        let (code, message, missing, field) = match self {
            Self::BadRequest { code, message } => (*code, message.clone(), None, None),
            Self::Unauthorized { code, message } => (*code, message.clone(), None, None),
            Self::Forbidden { missing, message } => {
                ("forbidden", message.clone(), Some(missing.clone()), None)
            }
            Self::NotFound(m) => ("not_found", m.clone(), None, None),
            Self::MethodNotAllowed(m) => ("method_not_allowed", m.clone(), None, None),
            Self::RequestTimeout(m) => ("request_timeout", m.clone(), None, None),
            Self::Conflict(m) => ("conflict", m.clone(), None, None),
            Self::PayloadTooLarge(m) => ("payload_too_large", m.clone(), None, None),
            Self::UnsupportedMediaType(m) => ("unsupported_media_type", m.clone(), None, None),
            Self::Validation { field, message } => {
                ("validation_failed", message.clone(), None, field.clone())
            }
            Self::Plugin { code, message, .. } => (*code, message.clone(), None, None),
            Self::ShuttingDown => (
                "shutting_down",
                "the server is shutting down; reconnect".to_string(),
                None,
                None,
            ),
            Self::Internal(_) => (
                "internal",
                "internal server error; the server log has the details".to_string(),
                None,
                None,
            ),
        };
        ErrorDetail {
            code: code.to_string(),
            message,
            missing_permission: missing,
            field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed with an internal error");
        }
        let status = self.status();
        let mut response = (
            status,
            axum::Json(ErrorBody {
                error: self.detail(),
            }),
        )
            .into_response();
        if let Self::ShuttingDown = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("2"),
            );
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, message } => Self::Validation { field, message },
            DomainError::Forbidden {
                missing, message, ..
            } => Self::Forbidden { missing, message },
            DomainError::Unauthenticated { code, message } => Self::Unauthorized { code, message },
            DomainError::NotFound(m) => Self::NotFound(m),
            DomainError::Conflict(m) => Self::Conflict(m),
            DomainError::Unreadable { code, message } => Self::BadRequest { code, message },
            DomainError::Plugin {
                failure, message, ..
            } => {
                let (status, code) = match failure {
                    PluginFailure::Failed => (StatusCode::BAD_GATEWAY, "plugin_failed"),
                    PluginFailure::Panicked => (StatusCode::BAD_GATEWAY, "plugin_panicked"),
                    PluginFailure::Unavailable => {
                        (StatusCode::SERVICE_UNAVAILABLE, "plugin_unavailable")
                    }
                    PluginFailure::TimedOut => (StatusCode::GATEWAY_TIMEOUT, "plugin_timeout"),
                    PluginFailure::Crashed => (StatusCode::BAD_GATEWAY, "plugin_crashed"),
                };
                Self::Plugin {
                    status,
                    code,
                    message,
                }
            }
            DomainError::ShuttingDown => Self::ShuttingDown,
            DomainError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        DomainError::from(e).into()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
