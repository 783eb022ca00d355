//! Members over JSON: the member list, changing a member's role and
//! removing members (see [`crate::domain::members`]).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Principal};
use crate::authz::{Permission, Role};
use crate::domain::members;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::Member;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(remove_member, set_member_role))
}

#[derive(Serialize, ToSchema)]
struct MemberList {
    members: Vec<Member>,
}

/// Members of a workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/members", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = MemberList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_members(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<MemberList>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberRead)
        .await?;
    Ok(Json(MemberList {
        members: members::list(&state, &access).await?,
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
