//! Each workspace's dashboard: an ordered list of widget instances, each
//! rendered by its plugin when the dashboard is fetched.
//!
//! A widget reads data only through the host API handed to it, and that
//! API answers only for the workspace being rendered. A widget whose plugin
//! fails, panics, times out or is gone shows an error in its own tile; the
//! rest of the dashboard still renders.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigilo_sdk::{
    check_config_against_schema, wire::RenderRequest, Host, PluginKind, Registration,
};

use super::extract::{ApiJson, ApiPath, Principal};
use super::plugins::{asset_views, AssetView};
use crate::audit::{self, NewEvent};
use crate::authz::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
use crate::state::AppState;
use crate::store::{self, Store};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_dashboard))
        .routes(routes!(add_widget))
        .routes(routes!(remove_widget))
        .routes(routes!(reorder_widgets))
}

/// A widget on the dashboard, rendered.
#[derive(Serialize, ToSchema)]
struct TileView {
    /// The instance's id (for removing and reordering).
    id: i64,
    /// The widget's registered name.
    widget: String,
    /// The plugin providing it (null if none is loaded).
    plugin: Option<String>,
    /// The tile's configuration.
    #[schema(value_type = Object)]
    config: Value,
    /// What the widget rendered (absent when it failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
    /// Why it did not render.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
    /// The plugin's frontend files, which draw the tile.
    assets: Vec<AssetView>,
}

#[derive(Serialize, ToSchema)]
struct DashboardView {
    /// The workspace.
    workspace: String,
    /// Its widgets, in order.
    widgets: Vec<TileView>,
}

/// The host API a widget gets: reads of the one workspace being rendered.
struct WorkspaceHost {
    store: Store,
    workspace_id: i64,
    slug: String,
    runtime: tokio::runtime::Handle,
}

impl Host for WorkspaceHost {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        match method {
            vigilo_sdk::WORK_ITEMS_COUNT_BY_STATUS => {
                let asked = input.get("workspace").and_then(Value::as_str).unwrap_or("");
                if asked != self.slug {
                    return Err(format!(
                        "a widget may read only the workspace it is rendered in (`{}`), not `{asked}`",
                        self.slug
                    ));
                }
                // Called on the blocking pool (never an async worker), so
                // waiting for the query here is allowed.
                let counts = self
                    .runtime
                    .block_on(self.store.count_work_items_by_status(self.workspace_id))
                    .map_err(|e| {
                        tracing::error!(error = %e, "host call {method} failed");
                        "the server could not read work items".to_owned()
                    })?;
                let get = |kind: &str| json!(counts.get(kind).cloned().unwrap_or_default());
                Ok(
                    json!({"changes": get("change"), "incidents": get("incident"), "tasks": get("task")}),
                )
            }
            other => Err(format!("the server has no host method `{other}`")),
        }
    }
}

/// The workspace's dashboard, every widget rendered.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/dashboard", tag = "dashboards", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = DashboardView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_dashboard(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<DashboardView>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let instances = state.store.dashboard(access.workspace.id).await?;
    let mut widgets = Vec::with_capacity(instances.len());
    for instance in instances {
        let found = state
            .plugins
            .registration(PluginKind::DashboardWidget, &instance.widget);
        let (plugin, assets, rendered) = match found {
            None => (
                None,
                Vec::new(),
                Err(ApiError::Plugin {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "plugin_unavailable",
                    message: format!("no loaded plugin provides the widget `{}`", instance.widget),
                }),
            ),
            Some((entry, _)) => {
                let host = WorkspaceHost {
                    store: state.store.clone(),
                    workspace_id: access.workspace.id,
                    slug: access.workspace.slug.clone(),
                    runtime: tokio::runtime::Handle::current(),
                };
                let request = RenderRequest {
                    name: instance.widget.clone(),
                    workspace: access.workspace.slug.clone(),
                    config: instance.config.clone(),
                };
                let rendered = state
                    .plugins
                    .call(&entry, move |handle| handle.render_widget(&request, &host))
                    .await
                    .map_err(ApiError::from);
                (
                    entry.name().map(str::to_owned),
                    asset_views(&entry),
                    rendered,
                )
            }
        };
        let (data, error) = match rendered {
            Ok(data) => (Some(data), None),
            Err(e) => (None, Some(e.detail())),
        };
        widgets.push(TileView {
            id: instance.id,
            widget: instance.widget,
            plugin,
            config: instance.config,
            data,
            error,
            assets,
        });
    }
    Ok(Json(DashboardView {
        workspace: access.workspace.slug,
        widgets,
    }))
}

/// A widget to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddWidget {
    /// A widget's name from `GET /api/v1/widgets`.
    widget: String,
    /// The tile's configuration, checked against the widget's schema.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    config: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// A widget instance as stored.
#[derive(Serialize, ToSchema)]
struct WidgetInstance {
    id: i64,
    position: i64,
    widget: String,
    #[schema(value_type = Object)]
    config: Value,
}

/// Appends a widget to the dashboard.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/dashboard/widgets", tag = "dashboards", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = AddWidget,
    responses((status = 201, body = WidgetInstance), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_widget(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<AddWidget>, ApiError>,
) -> ApiResult<(StatusCode, Json<WidgetInstance>)> {
    let access = principal
        .workspace(&state, &slug, Permission::DashboardEdit)
        .await?;
    let ApiJson(body) = body?;
    let schema = match state
        .plugins
        .registration(PluginKind::DashboardWidget, &body.widget)
    {
        Some((_, Registration::DashboardWidget { config_schema, .. })) => config_schema,
        _ => {
            let available: Vec<String> = state
                .plugins
                .registrations(PluginKind::DashboardWidget)
                .into_iter()
                .map(|(_, r)| r.name().to_owned())
                .collect();
            return Err(ApiError::invalid(
                "widget",
                format!(
                    "no loaded plugin provides a widget `{}`; available: {}",
                    body.widget,
                    if available.is_empty() {
                        "none".to_owned()
                    } else {
                        available.join(", ")
                    }
                ),
            ));
        }
    };
    check_config_against_schema(&body.config, &schema)
        .map_err(|e| ApiError::invalid("config", format!("invalid widget configuration: {e}")))?;
    let mut tx = state.store.begin_write().await?;
    let added =
        store::add_dashboard_widget(&mut tx, access.workspace.id, &body.widget, &body.config)
            .await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "dashboard.widget.add",
            body.widget.clone(),
            json!({"id": added.id, "position": added.position, "config": added.config}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(WidgetInstance {
            id: added.id,
            position: added.position,
            widget: added.widget,
            config: added.config,
        }),
    ))
}

/// Removes a widget from the dashboard.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/dashboard/widgets/{id}", tag = "dashboards", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_widget(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::DashboardEdit)
        .await?;
    let mut tx = state.store.begin_write().await?;
    let removed = store::remove_dashboard_widget(&mut tx, access.workspace.id, id).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "dashboard.widget.remove",
            removed.widget.clone(),
            json!({"id": removed.id}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The new order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Reorder {
    /// Every widget id on the dashboard, in the new order.
    ids: Vec<i64>,
}

/// Reorders the dashboard's widgets.
#[utoipa::path(put, path = "/api/v1/workspaces/{slug}/dashboard/order", tag = "dashboards", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = Reorder,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reorder_widgets(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<Reorder>, ApiError>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::DashboardEdit)
        .await?;
    let ApiJson(body) = body?;
    let mut tx = state.store.begin_write().await?;
    let current = store::dashboard_in(&mut tx, access.workspace.id).await?;
    let mut have: Vec<i64> = current.iter().map(|w| w.id).collect();
    let mut want = body.ids.clone();
    have.sort_unstable();
    want.sort_unstable();
    if have != want {
        return Err(ApiError::invalid(
            "ids",
            format!(
                "`ids` must list every widget on the dashboard exactly once: {}",
                current
                    .iter()
                    .map(|w| w.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    store::set_dashboard_order(&mut tx, access.workspace.id, &body.ids).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "dashboard.reorder",
            access.workspace.slug.clone(),
            json!({"ids": body.ids}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
