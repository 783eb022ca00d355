//! The server's side of `vigilo-plugin dev`, on only when the configuration
//! names `dev_frontend` directories (which it allows with a loopback `bind`
//! only):
//!
//! * those plugins' frontend files are read from their directories on every
//!   request and never cached, so an edit to the element shows on the next
//!   page load without rebuilding the library (the files must still be
//!   listed in the plugin's `frontend`, with their content types);
//! * `GET /dev/reload` answers a fingerprint of what the pages show (each
//!   loaded plugin's build and the newest file in each directory), and
//!   every page polls it and reloads itself when it changes.
//!
//! None of this exists on a server whose configuration has no
//! `dev_frontend`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::plugins::PluginEntry;
use crate::state::AppState;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether pages poll [`reload`] (the configuration has `dev_frontend`).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The route of the dev loop, when the configuration asks for it.
pub fn router(dev: bool) -> Router<AppState> {
    ENABLED.store(dev, Ordering::Relaxed);
    if dev {
        Router::new().route("/dev/reload", get(reload))
    } else {
        Router::new()
    }
}

/// `path` of `entry` read from `dir`, the plugin's frontend directory on
/// disk: the file as it is now, with the content type the plugin declares
/// for it, and not to be cached.
pub fn serve_from_disk(dir: &Path, entry: &Arc<PluginEntry>, path: &str) -> Response {
    let Some((content_type, embedded)) = entry.asset(path) else {
        return (StatusCode::NOT_FOUND, "no such plugin file").into_response();
    };
    // A file listed but not on disk (generated at build time, say) is the
    // library's own.
    let bytes = std::fs::read(dir.join(path)).unwrap_or(embedded);
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /dev/reload`: the fingerprint pages compare to reload themselves.
async fn reload(State(state): State<AppState>) -> Response {
    let dirs: Vec<_> = state.config.dev_frontend.values().cloned().collect();
    let plugins = state.plugins.clone();
    let fingerprint = tokio::task::spawn_blocking(move || {
        let mut parts: Vec<String> = plugins
            .list()
            .iter()
            .map(|entry| {
                format!(
                    "{}={}",
                    entry.name().unwrap_or("?"),
                    entry.sha256().unwrap_or_default()
                )
            })
            .collect();
        for dir in dirs {
            parts.push(newest_file(&dir, 3).to_string());
        }
        parts.join(" ")
    })
    .await
    .unwrap_or_default();
    ([(CACHE_CONTROL, "no-store")], fingerprint).into_response()
}

/// The newest modification time under `dir` (nanoseconds since 1970),
/// `depth` levels deep.
fn newest_file(dir: &Path, depth: u32) -> u128 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let Ok(meta) = entry.metadata() else { return 0 };
            if meta.is_dir() {
                return if depth > 0 {
                    newest_file(&entry.path(), depth - 1)
                } else {
                    0
                };
            }
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos())
        })
        .max()
        .unwrap_or(0)
}
