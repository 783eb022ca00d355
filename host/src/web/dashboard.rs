//! `/w/{slug}`: the workspace's dashboard, each widget drawn by its
//! plugin's custom element with the data the widget rendered.
//!
//! A tile whose plugin is not loaded, whose render failed, or whose element
//! is built for another frontend API shows an error card in that tile only;
//! the loader module (`plugins.js`) does the same when the element's module
//! fails to load or to define its tag. Tiles refresh from `/w/{slug}/tiles`
//! at an interval and when the tab regains focus, without a page load.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use vigilo_sdk::PluginKind;

use super::session::SignedIn;
use super::{json_for_script, plugin_assets, render, Frame, PageError};
use crate::domain::authz::Permission;
use crate::domain::dashboards::{self, Tile};
use crate::state::AppState;

/// How a tile is drawn.
pub enum TileBody {
    /// By the plugin's element.
    Element {
        /// Its tag.
        tag: String,
        /// The module defining it.
        module: String,
        /// A stylesheet to link first.
        stylesheet: Option<String>,
        /// The rendered data, as JSON for a script element.
        data: String,
        /// The tile's configuration, likewise.
        config: String,
    },
    /// As the rendered data itself (the widget has no element).
    Plain(String),
    /// Not at all: why.
    Broken(String),
}

/// One tile of the page.
pub struct TileView {
    /// The widget instance's id.
    pub id: i64,
    /// The widget's label.
    pub title: String,
    /// The widget's name.
    pub widget: String,
    /// The plugin providing it.
    pub plugin: String,
    /// How it is drawn.
    pub body: TileBody,
}

fn error_text(e: &crate::domain::DomainError) -> String {
    e.to_string()
}

fn tile_view(state: &AppState, tile: Tile) -> TileView {
    let registration = state
        .plugins
        .registration(PluginKind::DashboardWidget, &tile.instance.widget);
    let title = registration
        .as_ref()
        .map(|(_, r)| r.label().to_owned())
        .unwrap_or_else(|| tile.instance.widget.clone());
    let plugin = tile
        .plugin
        .as_ref()
        .map(|p| p.label())
        .unwrap_or_else(|| "no plugin".into());
    let body = match (&tile.data, &tile.plugin, &registration) {
        (Err(e), _, _) => TileBody::Broken(error_text(e)),
        (Ok(data), Some(entry), Some((_, registration))) => match registration.element() {
            None => TileBody::Plain(serde_json::to_string_pretty(data).unwrap_or_default()),
            Some(element) => {
                let api = entry.manifest.as_ref().map(|m| m.frontend_api).unwrap_or(0);
                if api != vigilo_sdk::FRONTEND_API_VERSION {
                    TileBody::Broken(format!(
                        "the plugin `{}` was built for frontend API {api}; this server draws \
                         elements of frontend API {}. Install a version of the plugin built for it.",
                        entry.label(),
                        vigilo_sdk::FRONTEND_API_VERSION
                    ))
                } else {
                    TileBody::Element {
                        tag: element.tag.clone(),
                        module: plugin_assets::url(entry, &element.module),
                        stylesheet: element
                            .stylesheet
                            .as_ref()
                            .map(|s| plugin_assets::url(entry, s)),
                        data: json_for_script(data),
                        config: json_for_script(&tile.instance.config),
                    }
                }
            }
        },
        (Ok(_), _, _) => TileBody::Broken(format!(
            "no loaded plugin provides the widget `{}`",
            tile.instance.widget
        )),
    };
    TileView {
        id: tile.instance.id,
        title,
        widget: tile.instance.widget,
        plugin,
        body,
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    frame: Frame,
    slug: String,
    tiles: Vec<TileView>,
    can_edit: bool,
}

/// `GET /w/{slug}`.
pub async fn page(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let access = current
        .caller
        .workspace(&state.store, &slug, Permission::WorkspaceRead)
        .await?;
    let tiles = dashboards::render(&state, &access)
        .await?
        .into_iter()
        .map(|t| tile_view(&state, t))
        .collect();
    let frame = Frame::workspace(
        &state,
        &current,
        &access,
        "dashboard",
        &format!("Dashboard · {}", access.workspace.name),
    )
    .await?;
    Ok(render(&DashboardPage {
        frame,
        can_edit: access.can(Permission::DashboardEdit),
        slug,
        tiles,
    }))
}

/// `GET /w/{slug}/tiles`: every tile's data afresh, for the page's refresh.
pub async fn tiles(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let access = current
        .caller
        .workspace(&state.store, &slug, Permission::WorkspaceRead)
        .await?;
    let tiles: Vec<Value> = dashboards::render(&state, &access)
        .await?
        .into_iter()
        .map(|t| match t.data {
            Ok(data) => json!({"id": t.instance.id, "data": data}),
            Err(e) => json!({"id": t.instance.id, "error": error_text(&e)}),
        })
        .collect();
    Ok(Json(json!({ "tiles": tiles })).into_response())
}
