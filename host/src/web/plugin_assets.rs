//! Plugins' frontend files, served at URLs that change when the plugin's
//! library changes: `/plugins/{name}/v/{version}/{path}`, where the version
//! is the start of the loaded library's SHA-256 (see [`assets::url`]). So a
//! browser may cache them for good, and an upgraded plugin is never run
//! from a stale cached script. A file of a plugin that is not loaded, or of
//! another build than the loaded one, is a 404 in the API's error shape.
//! This is the one route that serves them; the plain address the API used
//! to list (`/plugins/{name}/assets/{path}`) leads here.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::plugins::assets::{self, safe_relative_path, version};
use crate::plugins::PluginEntry;
use crate::state::AppState;

/// A plugin's custom element as a page loads it: its tag, and the URLs of
/// its module and stylesheet in the plugin's current build.
pub struct PluginElement {
    /// The element's tag.
    pub tag: String,
    /// The URL of the module that defines it.
    pub module: String,
    /// The URL of its stylesheet, if it has one.
    pub stylesheet: Option<String>,
}

/// `element`, registered by `entry`, as a page loads it; or the frontend
/// API version the plugin was built for, when this server does not speak
/// it.
pub fn element(
    entry: &Arc<PluginEntry>,
    element: &vigilo_sdk::wire::ElementSpec,
) -> Result<PluginElement, u32> {
    let api = entry.manifest.as_ref().map(|m| m.frontend_api).unwrap_or(0);
    if api != vigilo_sdk::FRONTEND_API_VERSION {
        return Err(api);
    }
    Ok(PluginElement {
        tag: element.tag.clone(),
        module: assets::url(entry, &element.module),
        stylesheet: element.stylesheet.as_ref().map(|s| assets::url(entry, s)),
    })
}

/// `GET /plugins/{name}/v/{version}/{path}`.
pub async fn serve(
    State(state): State<AppState>,
    Path((name, wanted, path)): Path<(String, String, String)>,
) -> Response {
    let not_found = || {
        ApiError::NotFound(format!(
            "plugin `{name}` has no file `{path}` in the build that is loaded"
        ))
        .into_response()
    };
    if !safe_relative_path(&path) {
        return not_found();
    }
    let Some(entry) = state.plugins.loaded(&name) else {
        return not_found();
    };
    if let Some(dir) = state.config.dev_frontend.get(&name) {
        return super::dev::serve_from_disk(dir, &entry, &path);
    }
    // Hashing the library the first time takes a millisecond or so.
    let current = {
        let entry = entry.clone();
        match tokio::task::spawn_blocking(move || version(&entry)).await {
            Ok(v) => v,
            Err(_) => return not_found(),
        }
    };
    if current != wanted {
        return not_found();
    }
    match entry.asset(&path) {
        Some((content_type, bytes)) => (
            [
                (CONTENT_TYPE, content_type),
                (
                    CACHE_CONTROL,
                    "public, max-age=31536000, immutable".to_owned(),
                ),
            ],
            bytes,
        )
            .into_response(),
        None => not_found(),
    }
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/plugins/{name}/v/{version}/{*path}", get(serve))
}
