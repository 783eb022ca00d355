//! `/w/{slug}`: the workspace's dashboard, each widget drawn by its
//! plugin's custom element with the data the widget rendered.
//!
//! A tile whose plugin is not loaded, whose render failed, or whose element
//! is built for another frontend API shows an error card in that tile only;
//! the loader module (`plugins.js`) does the same when the element's module
//! fails to load or to define its tag, or the element fails in the page.
//! Tiles refresh from `/w/{slug}/tiles` at an interval and when the tab
//! regains focus, without a page load; the answer says how each tile is
//! drawn now (element, data, configuration, or error), so a failed tile
//! recovers once its plugin is fixed.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use vigilo_sdk::PluginKind;

use super::session::SignedIn;
use super::{json_for_script, plugin_assets, render, Frame, PageError};
use crate::domain::authz::Permission;
use crate::domain::dashboards::{self, Tile};
use crate::domain::work_items;
use crate::state::AppState;
use crate::web::items;

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

/// How the page draws a tile: the widget's element (tag, module URL,
/// stylesheet URL), its data as it is, or an error.
enum Drawn {
    Element {
        tag: String,
        module: String,
        stylesheet: Option<String>,
    },
    Plain,
    Broken(String),
}

/// The widget's label, the plugin's, and how the tile is drawn.
fn drawn(state: &AppState, tile: &Tile) -> (String, String, Drawn) {
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
    let drawn = match (&tile.data, &tile.plugin, &registration) {
        (Err(e), _, _) => Drawn::Broken(error_text(e)),
        (Ok(_), Some(entry), Some((_, registration))) => match registration.element() {
            None => Drawn::Plain,
            Some(element) => match plugin_assets::element(entry, element) {
                Err(api) => Drawn::Broken(format!(
                    "the plugin `{}` was built for frontend API {api}; this server draws \
                     elements of frontend API {}. Install a version of the plugin built for it.",
                    entry.label(),
                    vigilo_sdk::FRONTEND_API_VERSION
                )),
                Ok(element) => Drawn::Element {
                    tag: element.tag,
                    module: element.module,
                    stylesheet: element.stylesheet,
                },
            },
        },
        (Ok(_), _, _) => Drawn::Broken(format!(
            "no loaded plugin provides the widget `{}`",
            tile.instance.widget
        )),
    };
    // The card is read by people: no backticks from the API's wording.
    let drawn = match drawn {
        Drawn::Broken(reason) => Drawn::Broken(reason.replace('`', "")),
        other => other,
    };
    (title, plugin, drawn)
}

fn tile_view(state: &AppState, tile: Tile) -> TileView {
    let (title, plugin, drawn) = drawn(state, &tile);
    let data = tile.data.as_ref().unwrap_or(&Value::Null);
    let body = match drawn {
        Drawn::Broken(reason) => TileBody::Broken(reason),
        Drawn::Plain => TileBody::Plain(serde_json::to_string_pretty(data).unwrap_or_default()),
        Drawn::Element {
            tag,
            module,
            stylesheet,
        } => TileBody::Element {
            tag,
            module,
            stylesheet,
            data: json_for_script(data),
            config: json_for_script(&tile.instance.config),
        },
    };
    TileView {
        id: tile.instance.id,
        title,
        widget: tile.instance.widget,
        plugin,
        body,
    }
}

/// A tile as the page's refresh reads it: `id`, `plugin`, and either
/// `error`, or `data` and `config` with the `element` (`tag`, `module`,
/// `stylesheet`) that draws them (none: shown as the data itself). The
/// element's URLs are those of the plugin's current build, so a page
/// open across an upgrade learns of the new module.
fn tile_json(state: &AppState, tile: &Tile) -> Value {
    let (_, plugin, drawn) = drawn(state, tile);
    let id = tile.instance.id;
    match (drawn, &tile.data) {
        (Drawn::Broken(reason), _) => json!({"id": id, "plugin": plugin, "error": reason}),
        (Drawn::Plain, Ok(data)) => {
            json!({"id": id, "plugin": plugin, "data": data, "config": tile.instance.config})
        }
        (
            Drawn::Element {
                tag,
                module,
                stylesheet,
            },
            Ok(data),
        ) => {
            let mut element = json!({"tag": tag, "module": module});
            if let Some(stylesheet) = stylesheet {
                element["stylesheet"] = json!(stylesheet);
            }
            json!({"id": id, "plugin": plugin, "data": data, "config": tile.instance.config,
                   "element": element})
        }
        (_, Err(e)) => json!({"id": id, "plugin": plugin, "error": error_text(e)}),
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    frame: Frame,
    slug: String,
    tiles: Vec<TileView>,
    can_edit: bool,
    /// The person's unfinished items.
    assigned: Vec<AssignedItem>,
}

/// An unfinished item assigned to the person, on their dashboard.
pub struct AssignedItem {
    href: String,
    label: String,
    title: String,
    status: String,
    status_label: String,
    updated: super::items::When,
}

/// How many of the person's items the dashboard lists.
const ASSIGNED_SHOWN: usize = 8;

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
    let assigned = work_items::assigned_to_me(&state, &access, ASSIGNED_SHOWN)
        .await?
        .into_iter()
        .map(|item| {
            let kind = items::pages_of(item.kind);
            AssignedItem {
                href: kind.item_url(&slug, item.id, ""),
                label: format!("{} {}", kind.label, item.id),
                title: item.title,
                status_label: items::humanise(item.status),
                status: item.status.to_string(),
                updated: items::when(&item.updated_at),
            }
        })
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
        assigned,
    }))
}

/// Which tiles `GET /w/{slug}/tiles` answers with.
#[derive(Debug, Deserialize)]
pub struct TilesQuery {
    /// Only this one (a tile element's own refresh).
    tile: Option<i64>,
}

/// `GET /w/{slug}/tiles`: every tile (or the one `?tile=ID`) afresh, for
/// the page's refresh; see [`tile_json`].
pub async fn tiles(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Query(query): Query<TilesQuery>,
) -> Result<Response, PageError> {
    let access = current
        .caller
        .workspace(&state.store, &slug, Permission::WorkspaceRead)
        .await?;
    let tiles: Vec<Value> = dashboards::render_only(&state, &access, query.tile)
        .await?
        .iter()
        .map(|t| tile_json(&state, t))
        .collect();
    Ok(Json(json!({ "tiles": tiles })).into_response())
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/w/{slug}", get(page))
        .route("/w/{slug}/tiles", get(tiles))
}
