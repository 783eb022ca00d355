//! Plugins as the API shows them: the listing, their frontend assets, and
//! what they add to pickers (field types, dashboard widgets).

use axum::extract::State as AxumState;
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Principal};
use crate::domain::{dashboards, fields, plugins};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::plugins::metrics::{resident_bytes, CallFigures, HostCallFigures};
use crate::plugins::{
    assets, Isolation, PluginEntry, PolicyNote, Reason, State, TierSource, Tiers,
};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .routes(routes!(show_plugin))
        .routes(routes!(disable_plugin))
        .routes(routes!(enable_plugin))
        .routes(routes!(approve_plugin))
        .routes(routes!(set_plugin_tier))
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
    /// Where the web app loads it from: the loaded build's address,
    /// `/plugins/{name}/v/{version}/{path}` (a new build has a new one).
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
    /// Where it runs: `in_process` (loaded into the server) or `worker` (a
    /// confined process of its own); null if it never loaded.
    isolation: Option<Isolation>,
    /// What chose the tier: `policy` (the installation's stored decision),
    /// `plugin_settings`, `default` (`plugin_isolation`) or `manual`.
    isolation_source: Option<TierSource>,
    /// Its worker, for a worker-tier plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<WorkerView>,
    /// What the installation's stored policy says about the plugin and why
    /// (such as the in-process call the server stopped in, after which it
    /// runs in a worker); null when it says nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<PolicyNote>,
    /// What its calls cost since it loaded: one entry per call kind it
    /// serves (and any other it was called for).
    calls: Vec<CallFigures>,
    /// What it declares it asks of the host: `uses` (capabilities such as
    /// `work_items.read`, `storage`, `http`) and `http_hosts`; null when it
    /// declares nothing (then it may call only what plugins could before
    /// capabilities existed).
    #[schema(value_type = Option<Object>)]
    capabilities: Option<vigilo_sdk::Capabilities>,
    /// Its calls to the host since it loaded.
    host_calls: HostCallFigures,
    /// Why it is not loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
    /// The explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// A worker-tier plugin's worker.
#[derive(Serialize, ToSchema)]
struct WorkerView {
    /// The running worker's process id (null between a crash and the next
    /// call, which starts a new one).
    pid: Option<u32>,
    /// Workers started after the first (each after a crash or a timeout).
    restarts: u64,
    /// The running worker's resident memory in bytes (`VmRSS`; null when
    /// no worker runs or the system does not say).
    resident_bytes: Option<u64>,
    /// What confines it, in words.
    confinement: String,
}

pub(super) fn asset_views(entry: &PluginEntry) -> Vec<AssetView> {
    match (&entry.manifest, entry.is_loaded()) {
        (Some(m), true) => m
            .frontend
            .iter()
            .map(|a| AssetView {
                path: a.path.clone(),
                content_type: a.content_type.clone(),
                url: assets::url(entry, &a.path),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn plugin_view(entry: &PluginEntry, tiers: &Tiers) -> PluginView {
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
        isolation: entry.tier.map(|t| t.isolation),
        isolation_source: entry.tier.map(|t| t.source),
        worker: entry.worker().map(|w| WorkerView {
            pid: w.pid(),
            resident_bytes: w.pid().and_then(resident_bytes),
            restarts: w.restarts(),
            confinement: w.confinement().to_owned(),
        }),
        policy: entry.name().and_then(|n| tiers.note(n)).cloned(),
        calls: entry.call_figures(),
        capabilities: m.and_then(|m| m.capabilities.clone()),
        host_calls: entry.host_call_figures(),
        reason: entry.reason(),
        message: entry.message(),
    }
}

#[derive(Serialize, ToSchema)]
struct PluginList {
    plugins: Vec<PluginView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    let entries = plugins::list(&state, &principal.caller, query.all)?;
    let tiers = state.plugins.tiers();
    // The first listing hashes each library (a millisecond or so each).
    let plugins = tokio::task::spawn_blocking(move || {
        entries.iter().map(|e| plugin_view(e, &tiers)).collect()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("listing plugins failed: {e}")))?;
    Ok(Json(PluginList { plugins }))
}

/// One plugin by name: the loaded one, or (platform admins) the most recent
/// file that claimed the name, loaded or not.
#[utoipa::path(get, path = "/api/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = PluginView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_plugin(
    AxumState(state): AxumState<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<PluginView>> {
    let entry = plugins::find(&state, &principal.caller, &name)?;
    let tiers = state.plugins.tiers();
    let view = tokio::task::spawn_blocking(move || plugin_view(&entry, &tiers))
        .await
        .map_err(|e| ApiError::Internal(format!("showing a plugin failed: {e}")))?;
    Ok(Json(view))
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
    let entry = plugins::disable(&state, &principal.caller, &name).await?;
    Ok(Json(plugin_view(&entry, &state.plugins.tiers())))
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
    let entry = plugins::enable(&state, &principal.caller, &name).await?;
    Ok(Json(plugin_view(&entry, &state.plugins.tiers())))
}

/// Approves what a plugin declares it asks of the server (platform
/// admins): its newest version's capabilities become the approved set
/// (audited as `plugin.approve`), and a version that waited for them
/// (`awaiting_approval`) is enabled.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/approve", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = PluginView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve_plugin(
    AxumState(state): AxumState<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<PluginView>> {
    let entry = plugins::approve(&state, &principal.caller, &name).await?;
    Ok(Json(plugin_view(&entry, &state.plugins.tiers())))
}

/// Where a platform admin wants a plugin to run.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum TierChoice {
    /// In the server's own process.
    InProcess,
    /// In a confined worker process of its own.
    Worker,
    /// As the configuration says (`[plugin_settings.NAME]`, then
    /// `plugin_isolation`).
    Config,
}

/// The tier to set.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetTier {
    /// `in_process`, `worker`, or `config` to hand the choice back to the
    /// configuration.
    tier: TierChoice,
}

/// Chooses where a plugin runs on every server of the installation
/// (platform admins), over the configuration, or hands the choice back to
/// it (`config`). Stored as the installation's policy for the plugin
/// (`policy` in the answer) and audited as `plugin.isolation`; a server
/// applies it when it next loads the plugin (a restart or a new file).
#[utoipa::path(put, path = "/api/v1/plugins/{name}/tier", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = SetTier,
    responses((status = 200, body = PluginView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_plugin_tier(
    AxumState(state): AxumState<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    body: Result<ApiJson<SetTier>, ApiError>,
) -> ApiResult<Json<PluginView>> {
    principal
        .caller
        .require_platform_admin("choose where plugins run")?;
    let ApiJson(body) = body?;
    let isolation = match body.tier {
        TierChoice::InProcess => Some(crate::plugins::Isolation::InProcess),
        TierChoice::Worker => Some(crate::plugins::Isolation::Worker),
        TierChoice::Config => None,
    };
    let entry = plugins::set_tier(&state, &principal.caller, &name, isolation).await?;
    Ok(Json(plugin_view(&entry, &state.plugins.tiers())))
}

/// A loaded plugin's frontend file by its plain address: a redirect (307)
/// to the address of the loaded build's copy,
/// `/plugins/{name}/v/{version}/{path}`, which is served immutable (a new
/// build has new addresses). Public, like the web app's own files. Only
/// paths the plugin's manifest lists lead anywhere, and only while it is
/// loaded.
#[utoipa::path(get, path = "/plugins/{name}/assets/{*path}", tag = "plugins",
    params(("name" = String, Path), ("path" = String, Path)),
    responses((status = 307, description = "the file is at the address in `Location`",
            headers(("Location" = String, description = "`/plugins/{name}/v/{version}/{path}`"))),
        (status = 404, body = ErrorBody)))]
async fn plugin_asset(
    AxumState(state): AxumState<AppState>,
    ApiPath((name, path)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let not_found = || ApiError::NotFound(format!("plugin `{name}` has no asset `{path}`"));
    if !assets::safe_relative_path(&path) {
        return Err(not_found());
    }
    let entry = state.plugins.loaded(&name).ok_or_else(not_found)?;
    let listed = entry
        .manifest
        .as_ref()
        .is_some_and(|m| m.frontend.iter().any(|a| a.path == path));
    if !listed {
        return Err(not_found());
    }
    // Hashing the library the first time takes a millisecond or so.
    let file = path.clone();
    let to = tokio::task::spawn_blocking(move || assets::url(&entry, &file))
        .await
        .map_err(|_| not_found())?;
    Ok((
        StatusCode::TEMPORARY_REDIRECT,
        [(LOCATION, to), (CACHE_CONTROL, "no-cache".to_owned())],
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

/// Every custom field type: the built-in ones and those of loaded plugins.
#[utoipa::path(get, path = "/api/v1/field-types", tag = "plugins", security(("bearer" = [])),
    responses((status = 200, body = FieldTypeList), (status = 401, body = ErrorBody)))]
async fn list_field_types(
    AxumState(state): AxumState<AppState>,
    _principal: Principal,
) -> Json<FieldTypeList> {
    let field_types = fields::field_types(&state)
        .into_iter()
        .map(|t| FieldTypeView {
            source: if t.plugin.is_some() {
                "plugin"
            } else {
                "builtin"
            },
            plugin: t.plugin.as_ref().and_then(|p| p.name()).map(str::to_owned),
            assets: t.plugin.as_deref().map(asset_views).unwrap_or_default(),
            name: t.name,
            label: t.label,
            description: t.description,
        })
        .collect();
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
    let widgets = dashboards::widget_types(&state)
        .into_iter()
        .map(|w| WidgetTypeView {
            plugin: w.plugin.name().map(str::to_owned),
            assets: asset_views(&w.plugin),
            name: w.name,
            label: w.label,
            description: w.description,
            config_schema: w.config_schema,
        })
        .collect();
    Json(WidgetTypeList { widgets })
}
