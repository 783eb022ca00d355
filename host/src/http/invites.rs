//! Invites over JSON: one at a time, in bulk from a CSV file, revoking and
//! accepting them (see [`crate::domain::invites`]).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, MaybePrincipal, Principal};
use crate::domain::authz::{Permission, Role};
use crate::domain::invites::{self, Acceptance, Accepted, BulkReport, InviteCreated, NewInvite};
use crate::domain::paging::PageQuery;
use crate::domain::schemas::{Email, Line100};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::invites::Invite;

/// The bulk invite's route.
pub(super) const BULK_ROUTE: &str = "/api/v1/workspaces/{slug}/invites/bulk";

/// The largest CSV file a bulk invite takes. A 10,000-row CSV is about
/// 400 KB; generous files are allowed on this route only (the rest keep the
/// API's limit).
pub(super) const CSV_LIMIT: usize = 16 * 1024 * 1024;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invites, create_invite))
        .routes(routes!(revoke_invite))
        .routes(routes!(resend_invite))
        .merge(
            // Read before the invite's token is checked: kept small.
            OpenApiRouter::new()
                .routes(routes!(accept_invite))
                .layer(DefaultBodyLimit::max(crate::edge::ANONYMOUS_FORM_LIMIT)),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(bulk_invite))
                .layer(DefaultBodyLimit::max(CSV_LIMIT)),
        )
}

/// A page of a workspace's invites, newest first.
#[derive(Serialize, ToSchema)]
struct InviteList {
    invites: Vec<Invite>,
    /// How many invites the workspace has (in every status).
    total: i64,
    /// Pass as `before` for the next page, of older invites (null on the
    /// last page).
    next_before: Option<i64>,
    /// Pass as `after` for the previous page, of newer invites (null on
    /// the first page).
    prev_after: Option<i64>,
}

/// Which page of invites.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct InviteQuery {
    /// Only invites with a smaller id (older: the next page).
    before: Option<i64>,
    /// Only invites with a larger id (newer: the previous page).
    after: Option<i64>,
    /// At most this many (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Invites of a workspace, newest first, a page at a time (never their
/// tokens); `before`/`after` an invite id, both: the invites between them.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/invites", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path), InviteQuery),
    responses((status = 200, body = InviteList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_invites(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<InviteQuery>,
) -> ApiResult<Json<InviteList>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberRead)
        .await?;
    let page = invites::list(
        &state,
        &access,
        PageQuery {
            after: query.after,
            before: query.before,
            limit: query.limit,
        },
    )
    .await?;
    Ok(Json(InviteList {
        invites: page.rows,
        total: page.total,
        next_before: page.next,
        prev_after: page.prev,
    }))
}

/// One invite: a built-in `role` or a `custom_role`, not both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateInvite {
    /// Their address.
    #[schema(value_type = Email)]
    email: String,
    /// A built-in role.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// The name of one of the workspace's custom roles.
    custom_role: Option<String>,
}

/// Invites one person (needs `member.invite`). The accept link is returned
/// and queued in the outbox (and mailed when SMTP is configured).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/invites", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = CreateInvite,
    responses((status = 201, body = InviteCreated), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_invite(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<CreateInvite>, ApiError>,
) -> ApiResult<(StatusCode, Json<InviteCreated>)> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberInvite)
        .await?;
    let ApiJson(body) = body?;
    let created = invites::create(
        &state,
        &access,
        &NewInvite {
            email: body.email,
            role: body.role,
            custom_role: body.custom_role,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes a pending invite.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/invites/{id}", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = Invite), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_invite(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<Invite>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberInvite)
        .await?;
    Ok(Json(invites::revoke(&state, &access, id).await?))
}

/// Sends a pending or expired invite again (needs `member.invite`): the old
/// link stops working; a new invite with the same role, link and expiry is
/// returned and mailed.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/invites/{id}/resend", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 201, body = InviteCreated), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resend_invite(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<(StatusCode, Json<InviteCreated>)> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberInvite)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(invites::resend(&state, &access, id).await?),
    ))
}

/// Invites everyone in a CSV file (`Content-Type: text/csv`, header
/// `email,role,custom_role_name`). Every row is checked; valid rows are
/// invited even when others fail; running the same file again invites
/// nobody twice. A wrong header refuses the whole file.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/invites/bulk", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body(content = String, content_type = "text/csv", description = "CSV with header email,role,custom_role_name"),
    responses((status = 200, body = BulkReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn bulk_invite(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<BulkReport>> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the CSV file is larger than 16 MiB".into())
        } else {
            ApiError::bad_request("bad_request", e.body_text())
        }
    })?;
    let access = principal
        .workspace(&state, &slug, Permission::MemberInvite)
        .await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(ApiError::UnsupportedMediaType(
            "send the file with `Content-Type: text/csv`".into(),
        ));
    }
    let rows = invites::parse_csv(&body)?;
    Ok(Json(invites::bulk(&state, &access, rows, false).await?))
}

/// Accepting an invite.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AcceptInvite {
    /// The new member's display name (1–100 characters).
    #[schema(value_type = Line100)]
    name: String,
}

/// Accepts an invite with its one-time token. With a bearer token, it must
/// be the invited address's own (403 otherwise); without one, a new address
/// becomes a user and gets its first API token, and an address that already
/// has an account is asked for that account's token (401).
#[utoipa::path(post, path = "/api/v1/invites/{token}/accept", tag = "members",
    params(("token" = String, Path, description = "the invite's accept token (vgi_...)")), request_body = AcceptInvite,
    responses((status = 201, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn accept_invite(
    State(state): State<AppState>,
    MaybePrincipal(principal): MaybePrincipal,
    ApiPath(token): ApiPath<String>,
    ApiJson(body): ApiJson<AcceptInvite>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let accepted = invites::accept(
        &state,
        principal.as_ref().map(|p| &p.caller),
        &Acceptance {
            token,
            name: body.name,
            password: None,
            first_token: true,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(accepted)))
}
