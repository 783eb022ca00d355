//! Roles over JSON: the built-in permission matrix, and a workspace's
//! custom roles (created from a built-in role, never holding more than the
//! caller; see [`crate::domain::roles`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Principal};
use crate::domain::authz::{Permission, Role};
use crate::domain::roles::{self, NewRole};
use crate::domain::schemas::{CustomRoleName, PermissionName};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::workspaces::CustomRole;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(role_matrix))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(delete_role))
}

/// One permission, for users.
#[derive(Serialize, ToSchema)]
struct PermissionInfo {
    name: &'static str,
    description: &'static str,
}

/// A role and what it holds.
#[derive(Serialize, ToSchema)]
struct RoleInfo {
    name: String,
    /// True for `owner`, `approver`, `engineer`, `viewer`.
    builtin: bool,
    /// For a custom role: the built-in role it is based on.
    base_role: Option<Role>,
    permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

fn builtin_roles() -> Vec<RoleInfo> {
    Role::ALL
        .into_iter()
        .map(|r| RoleInfo {
            name: r.name().into(),
            builtin: true,
            base_role: None,
            permissions: r.permissions().names(),
            created_at: None,
        })
        .collect()
}

fn custom_role_info(c: CustomRole) -> RoleInfo {
    RoleInfo {
        name: c.name,
        builtin: false,
        base_role: Some(c.base_role),
        permissions: c.permissions.names(),
        created_at: Some(c.created_at),
    }
}

#[derive(Serialize, ToSchema)]
struct RoleMatrix {
    permissions: Vec<PermissionInfo>,
    roles: Vec<RoleInfo>,
}

/// The built-in permission matrix.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])),
    responses((status = 200, body = RoleMatrix), (status = 401, body = ErrorBody)))]
async fn role_matrix(_principal: Principal) -> Json<RoleMatrix> {
    Json(RoleMatrix {
        permissions: Permission::ALL
            .into_iter()
            .map(|p| PermissionInfo {
                name: p.name(),
                description: p.description(),
            })
            .collect(),
        roles: builtin_roles(),
    })
}

#[derive(Serialize, ToSchema)]
struct RoleList {
    roles: Vec<RoleInfo>,
}

/// Built-in and custom roles of a workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/roles", tag = "roles", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = RoleList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_roles(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<RoleList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let mut list = builtin_roles();
    list.extend(
        roles::custom_roles(&state, &access)
            .await?
            .into_iter()
            .map(custom_role_info),
    );
    Ok(Json(RoleList { roles: list }))
}

/// A new custom role: the base role's permissions, plus `add`, minus `remove`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRole {
    /// Name, unique in the workspace (1–64 of letters, digits, `_`, `-`,
    /// `.`; not a built-in role's name).
    #[schema(value_type = CustomRoleName)]
    name: String,
    /// Built-in role to start from.
    #[schema(value_type = Role)]
    base_role: String,
    /// Permissions to add.
    #[serde(default)]
    #[schema(value_type = Vec<PermissionName>)]
    add: Vec<String>,
    /// Permissions to remove.
    #[serde(default)]
    #[schema(value_type = Vec<PermissionName>)]
    remove: Vec<String>,
}

/// Creates a custom role (needs `role.manage`).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/roles", tag = "roles", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = CreateRole,
    responses((status = 201, body = RoleInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_role(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<CreateRole>, ApiError>,
) -> ApiResult<(StatusCode, Json<RoleInfo>)> {
    let access = principal
        .workspace(&state, &slug, Permission::RoleManage)
        .await?;
    let ApiJson(body) = body?;
    let role = roles::create(
        &state,
        &access,
        &NewRole {
            name: body.name,
            base_role: body.base_role,
            add: body.add,
            remove: body.remove,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(custom_role_info(role))))
}

/// Deletes a custom role that no member holds and no open invite names.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/roles/{name}", tag = "roles", security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_role(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::RoleManage)
        .await?;
    roles::delete(&state, &access, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
