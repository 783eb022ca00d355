//! The caller and their API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Principal};
use crate::domain::schemas::Line100;
use crate::domain::sessions;
use crate::domain::tokens::{self, NewToken};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::users::{TokenCreated, TokenInfo, User};
use crate::store::workspaces::UserMembership;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(set_password))
}

/// Who the caller is.
#[derive(Serialize, ToSchema)]
struct Me {
    user: User,
    /// The token used for this request.
    token: TokenInfo,
    memberships: Vec<UserMembership>,
}

/// The caller, the token used and the caller's workspaces.
#[utoipa::path(get, path = "/api/v1/me", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Me>> {
    let memberships = state.store.memberships_of(principal.caller.user.id).await?;
    Ok(Json(Me {
        user: principal.caller.user,
        token: principal.token,
        memberships,
    }))
}

/// A new token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    /// A name to recognise it by (1–100 characters).
    #[schema(value_type = Line100)]
    name: String,
    /// Lifetime in seconds; omitted means it never expires. At most ten
    /// years (of 366 days).
    #[schema(minimum = 1, maximum = 316224000)]
    expires_in_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
struct TokenList {
    tokens: Vec<TokenInfo>,
}

/// The caller's tokens, newest first.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody)))]
async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<TokenList>> {
    Ok(Json(TokenList {
        tokens: tokens::list(&state, &principal.caller).await?,
    }))
}

/// Creates a token for the caller. It carries exactly the caller's
/// permissions; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    request_body = CreateToken,
    responses((status = 201, body = TokenCreated), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let created = tokens::create(
        &state,
        &principal.caller,
        &NewToken {
            name: body.name,
            expires_in_seconds: body.expires_in_seconds,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes one of the caller's tokens. Requests with it fail with 401 from now on.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = i64, Path, description = "token id")),
    responses((status = 200, body = TokenInfo), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TokenInfo>> {
    Ok(Json(tokens::revoke(&state, &principal.caller, id).await?))
}

/// A new password for the web app.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    /// The current password (required when one is set).
    current_password: Option<String>,
    /// The new password (12–256 characters, no control characters, not a
    /// common one, not your name or address).
    #[schema(
        min_length = 12,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    password: String,
}

/// What changing the password did.
#[derive(Serialize, ToSchema)]
struct PasswordSet {
    /// Browser sessions that were signed out (all of them).
    sessions_ended: u64,
}

/// Sets the caller's password for signing in to the web app (the current
/// one is required when there is one). Every browser session of theirs is
/// signed out; API tokens keep working.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "tokens", security(("bearer" = [])),
    request_body = SetPassword,
    responses((status = 200, body = PasswordSet), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_password(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<SetPassword>,
) -> ApiResult<Json<PasswordSet>> {
    let ended = sessions::change_password(
        &state,
        &principal.caller,
        body.current_password.as_deref(),
        &body.password,
        true,
    )
    .await?;
    Ok(Json(PasswordSet {
        sessions_ended: ended,
    }))
}
