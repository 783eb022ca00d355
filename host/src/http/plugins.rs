//! Plugins as the API shows them: the listing, their frontend assets, and
//! what they add to pickers (field types, dashboard widgets).

use axum::extract::State as AxumState;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigilo_sdk::{PluginKind, Registration};

use super::extract::{ApiPath, ApiQuery, Principal};
use crate::audit::{self, NewEvent};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::plugins::{assets, EnableError, PluginEntry, Reason, State, BUILTIN_FIELD_TYPES};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .routes(routes!(disable_plugin))
        .routes(routes!(enable_plugin))
        .routes(routes!(plugin_asset))
        .routes(routes!(list_field_types))
        .routes(routes!(list_widgets))
}

/// A frontend file a plugin ships.
#[derive(Serialize, ToSchema)]
pub(super) struct AssetView {
    /// Path inside the plugin.
    path: String,
    /// MIME type it is served with.
    content_type: String,
    /// Where the web app loads it from.
    url: String,
}

/// Something a plugin registered.
#[derive(Serialize, ToSchema)]
struct RegistrationView {
    /// `field_type`, `dashboard_widget`, `integration_adapter` or `celery_task`.
    kind: String,
    /// Registered name.
    name: String,
    /// Label for pickers.
    label: String,
}

/// A plugin, loaded or not.
#[derive(Serialize, ToSchema)]
struct PluginView {
    /// Globally unique name (null when the file could not be read as a plugin).
    name: Option<String>,
    /// `field_type`, `dashboard_widget`, `integration_adapter` or `celery_task`.
    kind: Option<String>,
    /// The plugin's version.
    version: Option<String>,
    /// Its semver requirement on the server's version.
    compatible_with: Option<String>,
    /// `loaded`, `skipped` or `disabled`.
    state: State,
    /// The library file.
    path: String,
    /// Hex SHA-256 of the library file.
    sha256: Option<String>,
    /// One sentence from the vendor.
    description: Option<String>,
    /// The vigilo-sdk version it was built with.
    sdk_version: Option<String>,
    /// What it registered (only while loaded).
    registrations: Vec<RegistrationView>,
    /// Its frontend files (only while loaded).
    assets: Vec<AssetView>,
    /// Why it is not loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
    /// The explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

pub(super) fn asset_views(entry: &PluginEntry) -> Vec<AssetView> {
    match (&entry.manifest, entry.is_loaded()) {
        (Some(m), true) => m
            .frontend
            .iter()
            .map(|a| AssetView {
                path: a.path.clone(),
                content_type: a.content_type.clone(),
                url: assets::asset_url(&m.name, &a.path),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn plugin_view(entry: &PluginEntry) -> PluginView {
    let m = entry.manifest.as_ref();
    let loaded = entry.is_loaded();
    PluginView {
        name: m.map(|m| m.name.clone()),
        kind: m.map(|m| m.kind.as_str().to_owned()),
        version: m.map(|m| m.version.clone()),
        compatible_with: m.map(|m| m.compatible_with.clone()),
        state: entry.state(),
        path: entry.path.display().to_string(),
        sha256: entry.sha256(),
        description: m.map(|m| m.description.clone()),
        sdk_version: m.map(|m| m.sdk_version.clone()),
        registrations: if loaded {
            entry
                .registrations
                .iter()
                .map(|r| RegistrationView {
                    kind: r.kind().as_str().to_owned(),
                    name: r.name().to_owned(),
                    label: r.label().to_owned(),
                })
                .collect()
        } else {
            Vec::new()
        },
        assets: asset_views(entry),
        reason: entry.reason(),
        message: entry.message(),
    }
}

#[derive(Serialize, ToSchema)]
struct PluginList {
    plugins: Vec<PluginView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Also list skipped and disabled plugins with their reasons (platform admins).
    #[serde(default)]
    all: bool,
}

/// The loaded plugins, with their frontend assets, which the web app loads
/// at startup. `?all=true` (platform admins) adds skipped and disabled
/// plugins with `reason` and `message`.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = PluginList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_plugins(
    AxumState(state): AxumState<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<PluginList>> {
    if query.all {
        principal.require_platform_admin("list plugins that failed to load")?;
    }
    let entries: Vec<_> = state
        .plugins
        .list()
        .into_iter()
        .filter(|e| query.all || e.is_loaded())
        .collect();
    // The first listing hashes each library (a millisecond or so each).
    let plugins =
        tokio::task::spawn_blocking(move || entries.iter().map(|e| plugin_view(e)).collect())
            .await
            .map_err(|e| ApiError::Internal(format!("listing plugins failed: {e}")))?;
    Ok(Json(PluginList { plugins }))
}

/// Takes a loaded plugin out of use (platform admins): its field types,
/// widgets, adapters, tasks and frontend files stop being used until it is
/// enabled again or the server restarts. Its code stays loaded.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/disable", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = PluginView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn disable_plugin(
    AxumState(state): AxumState<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<PluginView>> {
    principal.require_platform_admin("disable plugins")?;
    let entry = state
        .plugins
        .loaded(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no loaded plugin named `{name}`")))?;
    let message = format!("disabled by {}", principal.user.email);
    let mut tx = state.store.begin_write().await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            None,
            "plugin.disable",
            name.clone(),
            json!({"path": entry.path, "reason": Reason::DisabledByAdmin, "version": entry.manifest.as_ref().map(|m| &m.version)}),
        ),
    )
    .await?;
    // Recorded first, so a failed write leaves the plugin running.
    tx.commit().await?;
    state
        .plugins
        .disable_quietly(&entry, Reason::DisabledByAdmin, message);
    Ok(Json(plugin_view(&entry)))
}

/// Puts a plugin that was disabled (by an admin, or after panicking) back
/// into use (platform admins). Enabling a loaded plugin changes nothing.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/enable", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = PluginView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn enable_plugin(
    AxumState(state): AxumState<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<PluginView>> {
    principal.require_platform_admin("enable plugins")?;
    let mut tx = state.store.begin_write().await?;
    let entry = match state.plugins.enable(&name) {
        Ok(entry) => entry,
        Err(EnableError::AlreadyLoaded(entry)) => return Ok(Json(plugin_view(&entry))),
        Err(EnableError::NotFound(message)) => return Err(ApiError::NotFound(message)),
        Err(EnableError::NotEnableable(message)) => return Err(ApiError::Conflict(message)),
    };
    let recorded = audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            None,
            "plugin.enable",
            name.clone(),
            json!({"path": entry.path, "version": entry.manifest.as_ref().map(|m| &m.version)}),
        ),
    )
    .await;
    let committed = match recorded {
        Ok(_) => tx.commit().await.map_err(ApiError::from),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = committed {
        // Not recorded: not enabled either.
        state
            .plugins
            .disable_quietly(&entry, Reason::DisabledByAdmin, "enabling it failed".into());
        return Err(e);
    }
    Ok(Json(plugin_view(&entry)))
}

/// A loaded plugin's frontend file. Public, like the web app's own files:
/// browsers load these with `<script>` and `<link>` tags. Only paths the
/// plugin's manifest lists are served, and only while it is loaded.
#[utoipa::path(get, path = "/plugins/{name}/assets/{*path}", tag = "plugins",
    params(("name" = String, Path), ("path" = String, Path)),
    responses((status = 200, description = "the file, with the content type the plugin declares"), (status = 404, body = ErrorBody)))]
async fn plugin_asset(
    AxumState(state): AxumState<AppState>,
    ApiPath((name, path)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let not_found = || ApiError::NotFound(format!("plugin `{name}` has no asset `{path}`"));
    if !assets::safe_relative_path(&path) {
        return Err(not_found());
    }
    let entry = state.plugins.loaded(&name).ok_or_else(not_found)?;
    // A copy of bytes embedded in the library: no need to leave the executor.
    let (content_type, bytes) = entry.asset(&path).ok_or_else(not_found)?;
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (CACHE_CONTROL, "no-cache".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// A type the Settings → Custom fields → Type dropdown offers.
#[derive(Serialize, ToSchema)]
struct FieldTypeView {
    /// The type's name, used in field definitions.
    name: String,
    /// Label for the dropdown.
    label: String,
    /// Help text.
    description: String,
    /// `builtin` or `plugin`.
    source: &'static str,
    /// The plugin providing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<String>,
    /// The plugin's frontend files (its editor).
    assets: Vec<AssetView>,
}

#[derive(Serialize, ToSchema)]
struct FieldTypeList {
    field_types: Vec<FieldTypeView>,
}

fn builtin_field_type(name: &str) -> (&'static str, &'static str) {
    match name {
        "text" => ("Text", "Any text up to 10,000 characters."),
        "number" => ("Number", "A number."),
        "boolean" => ("Yes/no", "true or false."),
        "date" => ("Date", "A calendar date, YYYY-MM-DD."),
        _ => ("Select", "One of the field's options."),
    }
}

/// Every custom field type: the built-in ones and those of loaded plugins.
#[utoipa::path(get, path = "/api/v1/field-types", tag = "plugins", security(("bearer" = [])),
    responses((status = 200, body = FieldTypeList), (status = 401, body = ErrorBody)))]
async fn list_field_types(
    AxumState(state): AxumState<AppState>,
    _principal: Principal,
) -> Json<FieldTypeList> {
    let mut field_types: Vec<FieldTypeView> = BUILTIN_FIELD_TYPES
        .iter()
        .map(|name| {
            let (label, description) = builtin_field_type(name);
            FieldTypeView {
                name: (*name).to_owned(),
                label: label.to_owned(),
                description: description.to_owned(),
                source: "builtin",
                plugin: None,
                assets: Vec::new(),
            }
        })
        .collect();
    for (entry, registration) in state.plugins.registrations(PluginKind::FieldType) {
        if let Registration::FieldType {
            name,
            label,
            description,
        } = registration
        {
            field_types.push(FieldTypeView {
                name,
                label,
                description,
                source: "plugin",
                plugin: entry.name().map(str::to_owned),
                assets: asset_views(&entry),
            });
        }
    }
    Json(FieldTypeList { field_types })
}

/// A widget the Settings → Dashboard → Add widget menu offers.
#[derive(Serialize, ToSchema)]
struct WidgetTypeView {
    /// The widget's name, used when adding it to a dashboard.
    name: String,
    /// Label for the menu.
    label: String,
    /// Help text.
    description: String,
    /// The plugin providing it.
    plugin: Option<String>,
    /// JSON Schema of the tile's configuration.
    #[schema(value_type = Object)]
    config_schema: Value,
    /// The plugin's frontend files (which draw the tile).
    assets: Vec<AssetView>,
}

#[derive(Serialize, ToSchema)]
struct WidgetTypeList {
    widgets: Vec<WidgetTypeView>,
}

/// Every dashboard widget loaded plugins provide.
#[utoipa::path(get, path = "/api/v1/widgets", tag = "plugins", security(("bearer" = [])),
    responses((status = 200, body = WidgetTypeList), (status = 401, body = ErrorBody)))]
async fn list_widgets(
    AxumState(state): AxumState<AppState>,
    _principal: Principal,
) -> Json<WidgetTypeList> {
    let widgets = state
        .plugins
        .registrations(PluginKind::DashboardWidget)
        .into_iter()
        .filter_map(|(entry, registration)| match registration {
            Registration::DashboardWidget {
                name,
                label,
                description,
                config_schema,
            } => Some(WidgetTypeView {
                name,
                label,
                description,
                plugin: entry.name().map(str::to_owned),
                config_schema,
                assets: asset_views(&entry),
            }),
            _ => None,
        })
        .collect();
    Json(WidgetTypeList { widgets })
}
