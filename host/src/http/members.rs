//! Members over JSON: the member list, changing a member's role and
//! removing members (see [`crate::domain::members`]).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Principal};
use crate::domain::authz::{Permission, Role};
use crate::domain::members;
use crate::domain::paging::PageQuery;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::workspaces::Member;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(remove_member, set_member_role))
}

/// A page of a workspace's members, by email.
#[derive(Serialize, ToSchema)]
struct MemberList {
    members: Vec<Member>,
    /// How many members the workspace has.
    total: i64,
    /// Pass as `after` for the next page (null on the last page).
    next_after: Option<String>,
    /// Pass as `before` for the previous page (null on the first page).
    prev_before: Option<String>,
}

/// Which page of members.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct MemberQuery {
    /// Only members whose email sorts after this one (the next page).
    after: Option<String>,
    /// Only members whose email sorts before this one (the previous page).
    before: Option<String>,
    /// At most this many (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Members of a workspace, by email, a page at a time (`after`/`before`
/// an email; both: the members between them).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/members", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path), MemberQuery),
    responses((status = 200, body = MemberList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_members(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<MemberQuery>,
) -> ApiResult<Json<MemberList>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberRead)
        .await?;
    let page = members::list(
        &state,
        &access,
        PageQuery {
            after: query.after,
            before: query.before,
            limit: query.limit,
        },
    )
    .await?;
    Ok(Json(MemberList {
        members: page.rows,
        total: page.total,
        next_after: page.next,
        prev_before: page.prev,
    }))
}

/// Removes a member (needs `member.remove`). The last owner cannot be removed.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/members/{email}", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path), ("email" = String, Path)),
    responses((status = 200, body = Member), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, email)): ApiPath<(String, String)>,
) -> ApiResult<Json<Member>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberRemove)
        .await?;
    Ok(Json(members::remove(&state, &access, &email).await?))
}

/// A member's new role: a built-in `role` or a `custom_role`, not both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetRole {
    /// `owner`, `approver`, `engineer` or `viewer`.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// The name of one of the workspace's custom roles.
    custom_role: Option<String>,
}

/// Gives a member another role (needs `role.manage`; nobody grants more
/// than they hold). The last owner keeps the owner role.
#[utoipa::path(patch, path = "/api/v1/workspaces/{slug}/members/{email}", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path), ("email" = String, Path)), request_body = SetRole,
    responses((status = 200, body = Member), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_member_role(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, email)): ApiPath<(String, String)>,
    body: Result<ApiJson<SetRole>, ApiError>,
) -> ApiResult<Json<Member>> {
    let access = principal
        .workspace(&state, &slug, Permission::RoleManage)
        .await?;
    let ApiJson(body) = body?;
    Ok(Json(
        members::set_role(
            &state,
            &access,
            &email,
            body.role.as_deref(),
            body.custom_role.as_deref(),
        )
        .await?,
    ))
}
