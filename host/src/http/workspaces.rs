//! Workspaces, their settings, export, and workspace templates, over JSON
//! (see [`crate::domain::workspaces`] and [`crate::domain::templates`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Principal};
use crate::domain::authz::{Permission, Role};
use crate::domain::schemas::{Line100, Line32};
use crate::domain::templates::{self, NewTemplate, Snapshot, TemplateWithSnapshot};
use crate::domain::workspaces::{self, NewWorkspace};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::workspaces::Workspace;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace))
        .routes(routes!(get_settings))
        .routes(routes!(set_setting, unset_setting))
        .routes(routes!(export_workspace))
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, delete_template))
}

/// A workspace as the caller sees it.
#[derive(Serialize, ToSchema)]
pub(super) struct WorkspaceView {
    slug: String,
    name: String,
    region: String,
    created_at: String,
    /// The caller's built-in role here (null for a platform admin who is not a member).
    role: Option<Role>,
    /// The caller's custom role here, if any.
    custom_role: Option<String>,
    /// Settings (only when showing one workspace).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
}

fn view(
    w: &Workspace,
    access_role: Option<(Role, Option<String>)>,
    with_settings: bool,
) -> WorkspaceView {
    let (role, custom_role) = match access_role {
        Some((r, c)) => (Some(r), c),
        None => (None, None),
    };
    WorkspaceView {
        slug: w.slug.clone(),
        name: w.name.clone(),
        region: w.region.clone(),
        created_at: w.created_at.clone(),
        role,
        custom_role,
        settings: with_settings.then(|| w.settings.clone()),
    }
}

#[derive(Serialize, ToSchema)]
struct WorkspaceList {
    workspaces: Vec<WorkspaceView>,
}

/// Workspaces the caller can see: a platform admin sees every workspace,
/// others the ones they are members of.
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, body = WorkspaceList), (status = 401, body = ErrorBody)))]
async fn list_workspaces(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<WorkspaceList>> {
    let workspaces = workspaces::visible(&state, &principal.caller)
        .await?
        .into_iter()
        .map(|v| view(&v.workspace, v.role, false))
        .collect();
    Ok(Json(WorkspaceList { workspaces }))
}

/// A new workspace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateWorkspace {
    /// Display name (1–100 characters).
    #[schema(value_type = Line100)]
    name: String,
    /// URL-safe unique name: 2–63 of `a-z`, `0-9`, `-`.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{1,62}$")]
    slug: String,
    /// Region label such as `us` or `eu` (1–32 characters).
    #[schema(value_type = Line32)]
    region: String,
    /// Name of a template to stamp the workspace from.
    template: Option<String>,
}

/// Creates a workspace (platform admins only), optionally from a template.
/// The new workspace has no members until someone is invited.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    request_body = CreateWorkspace,
    responses((status = 201, body = WorkspaceView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_workspace(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<ApiJson<CreateWorkspace>, ApiError>,
) -> ApiResult<(StatusCode, Json<WorkspaceView>)> {
    principal.require_platform_admin("create workspaces")?;
    let ApiJson(body) = body?;
    let workspace = workspaces::create(
        &state,
        &principal.caller,
        &NewWorkspace {
            name: body.name,
            slug: body.slug,
            region: body.region,
            template: body.template,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&workspace, None, true))))
}

/// One workspace, with its settings.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}", tag = "workspaces", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = WorkspaceView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_workspace(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<WorkspaceView>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    Ok(Json(view(&access.workspace, access.role(), true)))
}

#[derive(Serialize, ToSchema)]
struct Settings {
    #[schema(value_type = Object)]
    settings: Value,
}

/// The workspace's settings.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/settings", tag = "workspaces", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = Settings), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_settings(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Settings>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    Ok(Json(Settings {
        settings: access.workspace.settings,
    }))
}

/// A setting's new value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SettingValue {
    /// Any JSON value (at most 64 KiB once encoded).
    #[schema(value_type = Value)]
    value: Value,
}

async fn write_setting(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    key: &str,
    value: Option<Value>,
) -> ApiResult<Json<Settings>> {
    let access = principal
        .workspace(state, slug, Permission::WorkspaceSettings)
        .await?;
    let settings = workspaces::write_setting(state, &access, key, value).await?;
    Ok(Json(Settings { settings }))
}

/// Sets one setting (such as `holidays`).
#[utoipa::path(put, path = "/api/v1/workspaces/{slug}/settings/{key}", tag = "workspaces", security(("bearer" = [])),
    params(("slug" = String, Path), ("key" = String, Path, pattern = "^[A-Za-z0-9_.-]{1,64}$")), request_body = SettingValue,
    responses((status = 200, body = Settings), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_setting(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, key)): ApiPath<(String, String)>,
    body: Result<ApiJson<SettingValue>, ApiError>,
) -> ApiResult<Json<Settings>> {
    principal
        .workspace(&state, &slug, Permission::WorkspaceSettings)
        .await?;
    let ApiJson(body) = body?;
    write_setting(&state, &principal, &slug, &key, Some(body.value)).await
}

/// Removes one setting.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/settings/{key}", tag = "workspaces", security(("bearer" = [])),
    params(("slug" = String, Path), ("key" = String, Path, pattern = "^[A-Za-z0-9_.-]{1,64}$")),
    responses((status = 200, body = Settings), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unset_setting(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<Settings>> {
    write_setting(&state, &principal, &slug, &key, None).await
}

/// Exports the workspace's structural configuration (owners and platform admins).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/export", tag = "workspaces", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = Snapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_workspace(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<Snapshot>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceExport)
        .await?;
    Ok(Json(workspaces::export(&state, &access).await?))
}

/// A template as listed.
#[derive(Serialize, ToSchema)]
struct TemplateSummary {
    name: String,
    description: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
struct TemplateList {
    templates: Vec<TemplateSummary>,
}

/// A template with its snapshot.
#[derive(Serialize, ToSchema)]
struct TemplateView {
    name: String,
    description: String,
    created_at: String,
    snapshot: Snapshot,
}

/// Every workspace template.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", security(("bearer" = [])),
    responses((status = 200, body = TemplateList), (status = 401, body = ErrorBody)))]
async fn list_templates(
    State(state): State<AppState>,
    _principal: Principal,
) -> ApiResult<Json<TemplateList>> {
    let templates = templates::list(&state)
        .await?
        .into_iter()
        .map(|t| TemplateSummary {
            name: t.name,
            description: t.description,
            created_at: t.created_at,
        })
        .collect();
    Ok(Json(TemplateList { templates }))
}

/// A new template.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTemplate {
    /// Unique name (1–64 of letters, digits, `_`, `-`, `.`).
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    name: String,
    /// Free text (at most 500 characters).
    #[serde(default)]
    #[schema(max_length = 500)]
    description: String,
    /// A workspace export.
    snapshot: Snapshot,
}

/// Stores a workspace export as a template (platform admins only).
#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", security(("bearer" = [])),
    request_body = CreateTemplate,
    responses((status = 201, body = TemplateView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_template(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<ApiJson<CreateTemplate>, ApiError>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    principal.require_platform_admin("create workspace templates")?;
    let ApiJson(body) = body?;
    let created = templates::create(
        &state,
        &principal.caller,
        NewTemplate {
            name: body.name,
            description: body.description,
            snapshot: body.snapshot,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(template_view(created))))
}

fn template_view(t: TemplateWithSnapshot) -> TemplateView {
    TemplateView {
        name: t.template.name,
        description: t.template.description,
        created_at: t.template.created_at,
        snapshot: t.snapshot,
    }
}

/// One template with its snapshot.
#[utoipa::path(get, path = "/api/v1/templates/{name}", tag = "templates", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = TemplateView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_template(
    State(state): State<AppState>,
    _principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<TemplateView>> {
    Ok(Json(template_view(templates::get(&state, &name).await?)))
}

/// Deletes a template (platform admins only). Workspaces made from it are unaffected.
#[utoipa::path(delete, path = "/api/v1/templates/{name}", tag = "templates", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_template(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    templates::delete(&state, &principal.caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
