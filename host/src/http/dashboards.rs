//! Each workspace's dashboard over JSON: every widget rendered by its
//! plugin (see [`crate::domain::dashboards`]); a widget that fails shows an
//! error in its own tile.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Principal};
use super::plugins::{asset_views, AssetView};
use crate::domain::authz::Permission;
use crate::domain::dashboards;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_dashboard))
        .routes(routes!(add_widget))
        .routes(routes!(remove_widget, update_widget))
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
    let widgets = dashboards::render(&state, &access)
        .await?
        .into_iter()
        .map(|tile| {
            let (data, error) = match tile.data {
                Ok(data) => (Some(data), None),
                Err(e) => (None, Some(ApiError::from(e).detail())),
            };
            TileView {
                id: tile.instance.id,
                widget: tile.instance.widget,
                plugin: tile
                    .plugin
                    .as_ref()
                    .and_then(|p| p.name())
                    .map(str::to_owned),
                config: tile.instance.config,
                data,
                error,
                assets: tile.plugin.as_deref().map(asset_views).unwrap_or_default(),
            }
        })
        .collect();
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
    let added = dashboards::add_widget(&state, &access, &body.widget, &body.config).await?;
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
    dashboards::remove_widget(&state, &access, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A tile's new options.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateWidget {
    /// The tile's options in full, checked against the widget's schema and
    /// by the widget.
    #[schema(value_type = Object)]
    config: Value,
}

/// Changes a tile's options; the tile shows them at its next refresh.
#[utoipa::path(put, path = "/api/v1/workspaces/{slug}/dashboard/widgets/{id}", tag = "dashboards", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)), request_body = UpdateWidget,
    responses((status = 200, body = WidgetInstance), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn update_widget(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
    body: Result<ApiJson<UpdateWidget>, ApiError>,
) -> ApiResult<Json<WidgetInstance>> {
    let access = principal
        .workspace(&state, &slug, Permission::DashboardEdit)
        .await?;
    let ApiJson(body) = body?;
    let updated = dashboards::update_widget(&state, &access, id, &body.config).await?;
    Ok(Json(WidgetInstance {
        id: updated.id,
        position: updated.position,
        widget: updated.widget,
        config: updated.config,
    }))
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
    dashboards::reorder(&state, &access, &body.ids).await?;
    Ok(StatusCode::NO_CONTENT)
}
