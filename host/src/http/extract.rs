//! Extractors: the API's JSON body reader and the bearer-token authenticator.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::domain::authz::{Access, Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::input::strict::Refused;
use crate::state::AppState;
use crate::store::users::TokenInfo;

/// A JSON body whose rejections use the API's error shape: 400 for broken
/// JSON, 422 for a body that is not an object, holds a NUL character, gives
/// a key twice, or has wrong or unknown fields, 415 for a missing JSON
/// content type, 413 for an oversized body. See [`crate::input`].
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the request body as JSON with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(e) => {
                return Err(if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge("the request body is too large".into())
                } else {
                    ApiError::bad_request("bad_request", "the request body could not be read")
                })
            }
        };
        let value = match crate::input::strict::parse(&bytes) {
            Ok(value) => value,
            Err(Refused::Syntax(why)) => {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    format!("the request body is not valid JSON: {why}"),
                ))
            }
            Err(Refused::Repeated(field)) => {
                return Err(ApiError::Validation {
                    message: format!(
                        "invalid request body: the key `{field}` is given twice; send it once"
                    ),
                    field: Some(field),
                })
            }
        };
        crate::input::json_body(value)
            .map(Self)
            .map_err(|r| ApiError::Validation {
                field: r.field,
                message: format!("invalid request body: {}", r.message),
            })
    }
}

/// Whether the request says its body is JSON (`application/json`, or a
/// `+json` type), as axum's own JSON extractor asks.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The authenticated API caller: the token presented and its holder.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who is acting.
    pub caller: Caller,
    /// The token used for this request.
    pub token: TokenInfo,
}

impl Principal {
    /// Resolves the caller's access to workspace `slug` and checks `p`.
    pub async fn workspace(
        &self,
        state: &AppState,
        slug: &str,
        p: Permission,
    ) -> ApiResult<Access> {
        Ok(self.caller.workspace(&state.store, slug, p).await?)
    }

    /// Fails with 403 unless the caller is a platform admin.
    pub fn require_platform_admin(&self, what: &str) -> ApiResult<()> {
        Ok(self.caller.require_platform_admin(what)?)
    }
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Unauthorized {
        code,
        message: message.into(),
    }
}

/// The token of `Authorization: Bearer <token>`, or a 401 saying what is
/// wrong with the header; `hint` ends the message of a missing header.
pub(super) fn bearer_token<'a>(
    headers: &'a axum::http::HeaderMap,
    hint: &str,
) -> Result<&'a str, ApiError> {
    let header = headers.get(AUTHORIZATION).ok_or_else(|| {
        unauthorized(
            "unauthenticated",
            format!("missing `Authorization: Bearer <token>` header{hint}"),
        )
    })?;
    header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            unauthorized(
                "unauthenticated",
                "the Authorization header must be `Bearer <token>`",
            )
        })
}

/// Reads `Authorization: Bearer vgl_…` and resolves it, or fails with 401.
/// A request whose caller was already resolved (the `Idempotency-Key`
/// layer does it before reading the body) is not looked up again.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    if let Some(known) = parts.extensions.get::<Principal>() {
        return Ok(known.clone());
    }
    let token = bearer_token(&parts.headers, "")?;
    let (caller, token) = crate::domain::tokens::authenticate(&state.store, token).await?;
    Ok(Principal { caller, token })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await
    }
}

/// The caller if a valid token was presented, None if no Authorization
/// header was sent at all. A presented but bad token is still a 401.
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybePrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.get(AUTHORIZATION).is_none() {
            return Ok(Self(None));
        }
        authenticate(parts, state).await.map(|p| Self(Some(p)))
    }
}

/// A path parameter whose rejection uses the API's error shape: 400 naming
/// the parameter and what it must be, 422 for a NUL character.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let message = match e.kind() {
                    ErrorKind::ParseErrorAtKey {
                        key, expected_type, ..
                    } => format!("`{key}` must be {}", type_term(expected_type)),
                    ErrorKind::ParseError { expected_type, .. }
                    | ErrorKind::ParseErrorAtIndex { expected_type, .. } => {
                        format!("the path parameter must be {}", type_term(expected_type))
                    }
                    ErrorKind::InvalidUtf8InPathParam { key } => {
                        format!("`{key}` is not valid UTF-8")
                    }
                    _ => "a path parameter is not valid".to_owned(),
                };
                Err(ApiError::bad_request(
                    "bad_request",
                    format!("invalid path parameter: {message}"),
                ))
            }
            Err(e) => Err(ApiError::bad_request(
                "bad_request",
                format!("invalid path parameter: {}", e.body_text()),
            )),
        }
    }
}

/// A Rust type's name, in the user's terms.
fn type_term(rust: &str) -> &'static str {
    match rust {
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, zero or more",
        "f32" | "f64" => "a number",
        "bool" => "`true` or `false`",
        _ => "a valid value",
    }
}

/// A query string whose rejection uses the API's error shape: 400 for a
/// value of the wrong type or an unknown parameter, 422 for a NUL character.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        crate::input::pairs(query.as_bytes())
            .map(Self)
            .map_err(|r| {
                if r.nul {
                    ApiError::Validation {
                        field: r.field,
                        message: r.message,
                    }
                } else {
                    ApiError::bad_request(
                        "bad_request",
                        format!("invalid query string: {}", r.message),
                    )
                }
            })
    }
}
