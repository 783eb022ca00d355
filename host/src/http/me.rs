//! The caller and their API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Principal};
use super::validate;
use crate::audit::{self, NewEvent};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::{self, TokenCreated, TokenInfo, User, UserMembership};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
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
    let memberships = state.store.memberships_of(principal.user.id).await?;
    Ok(Json(Me {
        user: principal.user,
        token: principal.token,
        memberships,
    }))
}

/// A new token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    /// A name to recognise it by (1–100 characters).
    name: String,
    /// Lifetime in seconds; omitted means it never expires. At most ten years.
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
        tokens: state.store.list_tokens(principal.user.id).await?,
    }))
}

const MAX_TOKEN_LIFETIME: u64 = 10 * 366 * 86_400;

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
    let name = validate::text("name", &body.name, 100)?;
    let expires_at = match body.expires_in_seconds {
        None => None,
        Some(0) => {
            return Err(ApiError::invalid(
                "expires_in_seconds",
                "`expires_in_seconds` must be positive",
            ))
        }
        Some(s) if s > MAX_TOKEN_LIFETIME => {
            return Err(ApiError::invalid(
                "expires_in_seconds",
                "a token may live at most ten years",
            ))
        }
        Some(s) => Some(store::now_plus(s as i64)),
    };
    let mut tx = state.store.begin_write().await?;
    let created = store::insert_token(&mut tx, principal.user.id, &name, expires_at).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            None,
            "token.create",
            created.info.id.to_string(),
            json!({"name": name, "prefix": created.info.prefix, "expires_at": created.info.expires_at, "user": principal.user.email}),
        ),
    )
    .await?;
    tx.commit().await?;
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
    let mut tx = state.store.begin_write().await?;
    let info = store::revoke_token(&mut tx, principal.user.id, id).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            None,
            "token.revoke",
            id.to_string(),
            json!({"name": info.name, "prefix": info.prefix, "user": principal.user.email}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(info))
}
