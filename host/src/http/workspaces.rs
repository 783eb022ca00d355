//! Workspaces, their settings, export, and workspace templates.
//!
//! An export and a template's snapshot are the same document
//! ([`Snapshot`]): exporting a workspace, storing the file as a template and
//! creating a workspace from that template reproduces its structure.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Access, ApiJson, ApiPath, Principal};
use super::validate;
use super::work_items::FieldDefinition;
use crate::audit::{self, NewEvent};
use crate::authz::{Permission, PermissionSet, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::{self, Workspace};

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

fn access_role(access: &Access) -> Option<(Role, Option<String>)> {
    access
        .membership
        .as_ref()
        .map(|m| (m.role, m.custom_role.as_ref().map(|c| c.name.clone())))
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
    let mine = state.store.memberships_of(principal.user.id).await?;
    let all = state.store.list_all_workspaces().await?;
    let workspaces = all
        .iter()
        .filter_map(|w| {
            let membership = mine.iter().find(|m| m.workspace == w.slug);
            match membership {
                Some(m) => Some(view(w, Some((m.role, m.custom_role.clone())), false)),
                None if principal.user.platform_admin => Some(view(w, None, false)),
                None => None,
            }
        })
        .collect();
    Ok(Json(WorkspaceList { workspaces }))
}

/// A new workspace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateWorkspace {
    /// Display name (1–100 characters).
    name: String,
    /// URL-safe unique name: 2–63 of `a-z`, `0-9`, `-`.
    slug: String,
    /// Region label such as `us` or `eu` (1–32 characters).
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
    let name = validate::text("name", &body.name, 100)?;
    let slug = validate::slug("slug", &body.slug)?;
    let region = validate::text("region", &body.region, 32)?;
    let mut tx = state.store.begin_write().await?;
    let snapshot = match &body.template {
        Some(t) => {
            let template = store::template_by_name_in(&mut tx, t).await?;
            Some(Snapshot::from_value(template.snapshot).map_err(|e| {
                ApiError::Internal(format!(
                    "stored template `{t}` is not a valid snapshot: {e}"
                ))
            })?)
        }
        None => None,
    };
    let empty = Value::Object(Map::new());
    let (settings, policies) = match &snapshot {
        Some(s) => (
            Value::Object(s.settings.clone()),
            Value::Object(s.policies.clone()),
        ),
        None => (empty.clone(), empty),
    };
    let workspace =
        store::insert_workspace(&mut tx, &slug, &name, &region, &settings, &policies).await?;
    if let Some(snapshot) = &snapshot {
        for role in &snapshot.custom_roles {
            let (base, perms) = role.parse()?;
            store::insert_custom_role(&mut tx, workspace.id, &role.name, base, &perms).await?;
        }
        for field in &snapshot.custom_fields {
            store::insert_custom_field(&mut tx, workspace.id, &field.parse()?).await?;
        }
        for playbook in &snapshot.playbooks {
            let (name, description, steps) = playbook.checked()?;
            store::insert_playbook(
                &mut tx,
                workspace.id,
                &name,
                &description,
                &steps,
                principal.user.id,
            )
            .await?;
        }
    }
    let details = json!({"name": name, "region": region, "template": body.template});
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(None, "workspace.create", &slug, details.clone()),
    )
    .await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(Some(workspace.id), "workspace.create", &slug, details),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(workspace = %slug, template = ?body.template, "workspace created");
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
    Ok(Json(view(&access.workspace, access_role(&access), true)))
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
    #[schema(value_type = Object)]
    value: Value,
}

const MAX_SETTING_BYTES: usize = 64 * 1024;

async fn write_setting(
    state: &AppState,
    principal: &Principal,
    slug: &str,
    key: &str,
    value: Option<Value>,
) -> ApiResult<Json<Settings>> {
    principal
        .workspace(state, slug, Permission::WorkspaceSettings)
        .await?;
    let key = validate::identifier("key", key)?;
    let mut tx = state.store.begin_write().await?;
    let workspace = store::workspace_by_slug_in(&mut tx, slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no workspace `{slug}`")))?;
    let mut settings = match workspace.settings {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let (action, details) = match value {
        Some(v) => {
            if v.to_string().len() > MAX_SETTING_BYTES {
                return Err(ApiError::invalid(
                    "value",
                    "a setting's value may be at most 64 KiB of JSON",
                ));
            }
            let details = json!({"key": key, "old": settings.get(&key), "new": v});
            settings.insert(key.clone(), v);
            ("workspace.settings.set", details)
        }
        None => {
            let old = settings.remove(&key).ok_or_else(|| {
                ApiError::NotFound(format!("workspace `{slug}` has no setting `{key}`"))
            })?;
            ("workspace.settings.unset", json!({"key": key, "old": old}))
        }
    };
    let settings = Value::Object(settings);
    store::update_settings(&mut tx, workspace.id, &settings).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(Some(workspace.id), action, key, details),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Settings { settings }))
}

/// Sets one setting (such as `holidays`).
#[utoipa::path(put, path = "/api/v1/workspaces/{slug}/settings/{key}", tag = "workspaces", security(("bearer" = [])),
    params(("slug" = String, Path), ("key" = String, Path)), request_body = SettingValue,
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
    params(("slug" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = Settings), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unset_setting(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<Settings>> {
    write_setting(&state, &principal, &slug, &key, None).await
}

/// Current version of the snapshot document.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// A workspace's structural configuration: what `workspace export` prints
/// and what a template stores.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Version of this document's shape (currently 1).
    pub schema_version: u32,
    /// Workspace settings.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Workspace policies.
    #[schema(value_type = Object)]
    pub policies: Map<String, Value>,
    /// Custom roles.
    pub custom_roles: Vec<SnapshotRole>,
    /// Custom field definitions.
    #[serde(default)]
    pub custom_fields: Vec<FieldDefinition>,
    /// Playbooks.
    #[serde(default)]
    pub playbooks: Vec<super::PlaybookDefinition>,
}

/// A custom role inside a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRole {
    /// Name.
    pub name: String,
    /// Built-in role it is based on.
    pub base_role: String,
    /// Permissions it holds.
    pub permissions: Vec<String>,
}

impl SnapshotRole {
    fn parse(&self) -> Result<(Role, PermissionSet), ApiError> {
        validate::identifier("custom_roles.name", &self.name)?;
        let base = self
            .base_role
            .parse::<Role>()
            .map_err(|e| ApiError::invalid("custom_roles.base_role", e))?;
        let perms = PermissionSet::parse(self.permissions.iter().map(String::as_str))
            .map_err(|e| ApiError::invalid("custom_roles.permissions", e))?;
        Ok((base, perms))
    }
}

impl Snapshot {
    fn from_value(v: Value) -> Result<Self, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    /// Checks a snapshot supplied by a user.
    fn validate(&self) -> Result<(), ApiError> {
        if self.schema_version != SNAPSHOT_SCHEMA_VERSION {
            return Err(ApiError::invalid(
                "snapshot.schema_version",
                format!(
                    "snapshot schema_version {} is not supported; this server reads version {SNAPSHOT_SCHEMA_VERSION}",
                    self.schema_version
                ),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for role in &self.custom_roles {
            role.parse()?;
            if !names.insert(role.name.as_str()) {
                return Err(ApiError::invalid(
                    "snapshot.custom_roles",
                    format!("custom role `{}` appears twice", role.name),
                ));
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for field in &self.custom_fields {
            field.parse().map_err(|e| match e {
                ApiError::Validation { field, message } => ApiError::Validation {
                    field: Some(format!(
                        "snapshot.custom_fields.{}",
                        field.unwrap_or_default()
                    )),
                    message,
                },
                other => other,
            })?;
            if !keys.insert(field.key.as_str()) {
                return Err(ApiError::invalid(
                    "snapshot.custom_fields",
                    format!("custom field `{}` appears twice", field.key),
                ));
            }
        }
        let mut playbook_names = std::collections::BTreeSet::new();
        for playbook in &self.playbooks {
            playbook.checked().map_err(|e| match e {
                ApiError::Validation { field, message } => ApiError::Validation {
                    field: Some(format!(
                        "snapshot.playbooks.{}.{}",
                        playbook.name,
                        field.unwrap_or_default()
                    )),
                    message,
                },
                other => other,
            })?;
            if !playbook_names.insert(playbook.name.as_str()) {
                return Err(ApiError::invalid(
                    "snapshot.playbooks",
                    format!("playbook `{}` appears twice", playbook.name),
                ));
            }
        }
        Ok(())
    }
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
    let roles = state.store.list_custom_roles(access.workspace.id).await?;
    let as_map = |v: &Value| match v {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    Ok(Json(Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        settings: as_map(&access.workspace.settings),
        policies: as_map(&access.workspace.policies),
        custom_roles: roles
            .into_iter()
            .map(|r| SnapshotRole {
                name: r.name,
                base_role: r.base_role.name().to_string(),
                permissions: r.permissions.names(),
            })
            .collect(),
        custom_fields: state
            .store
            .custom_fields(access.workspace.id)
            .await?
            .into_iter()
            .map(FieldDefinition::from_stored)
            .collect(),
        playbooks: state
            .store
            .list_playbooks(access.workspace.id)
            .await?
            .into_iter()
            .map(super::PlaybookDefinition::from_stored)
            .collect::<ApiResult<_>>()?,
    }))
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
    let templates = state
        .store
        .list_templates()
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
    name: String,
    /// Free text (at most 500 characters).
    #[serde(default)]
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
    let name = validate::identifier("name", &body.name)?;
    if body.description.chars().count() > 500 {
        return Err(ApiError::invalid(
            "description",
            "`description` may be at most 500 characters",
        ));
    }
    body.snapshot.validate()?;
    let value =
        serde_json::to_value(&body.snapshot).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut tx = state.store.begin_write().await?;
    let stored = store::insert_template(
        &mut tx,
        &name,
        body.description.trim(),
        &value,
        principal.user.id,
    )
    .await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            None,
            "template.create",
            &name,
            json!({"description": stored.description}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(TemplateView {
            name: stored.name,
            description: stored.description,
            created_at: stored.created_at,
            snapshot: body.snapshot,
        }),
    ))
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
    let t = state.store.template_by_name(&name).await?;
    let snapshot = Snapshot::from_value(t.snapshot).map_err(|e| {
        ApiError::Internal(format!(
            "stored template `{name}` is not a valid snapshot: {e}"
        ))
    })?;
    Ok(Json(TemplateView {
        name: t.name,
        description: t.description,
        created_at: t.created_at,
        snapshot,
    }))
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
    principal.require_platform_admin("delete workspace templates")?;
    let mut tx = state.store.begin_write().await?;
    store::delete_template(&mut tx, &name).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(None, "template.delete", &name, json!({})),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
