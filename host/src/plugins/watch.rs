//! Watching the plugins directory: plugins appear, change and disappear
//! while the server runs.
//!
//! Every change in the directory (a file moved in, replaced, written or
//! removed) wakes the watcher, which waits until the directory has been
//! quiet for a moment and then runs [`super::Plugins::sync_dir`]: new files
//! load, changed files load in place of the version they replace (which
//! stays active if the new one fails), removed files disable their plugin
//! (and a removed file that never loaded is forgotten). A file modified
//! within the last 300 ms is taken to be still being written and is looked
//! at again once it has settled.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::watch::Receiver;

use super::Plugins;

/// How long the directory must be quiet before the watcher looks.
const QUIET: Duration = Duration::from_millis(150);

/// Watches `dir` until `shutdown` changes. Files in `installed` (loaded from
/// `installed_plugins`) are not the watcher's business.
pub async fn run(
    plugins: Arc<Plugins>,
    dir: PathBuf,
    installed: Vec<PathBuf>,
    mut shutdown: Receiver<bool>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = tx.send(event.is_ok());
    })
    .and_then(|mut watcher| {
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    let _watcher = match watcher {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the plugins directory; new plugins load at the next restart");
            return;
        }
    };
    tracing::info!(dir = %dir.display(), "watching the plugins directory");
    // Something may have changed between the startup scan and the watch.
    let mut due: Option<tokio::time::Instant> = Some(tokio::time::Instant::now());
    loop {
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            event = rx.recv() => {
                if event.is_none() {
                    return;
                }
                due = Some(tokio::time::Instant::now() + QUIET);
            }
            _ = wait => {
                due = None;
                let (plugins, dir, installed) = (plugins.clone(), dir.clone(), installed.clone());
                let again = tokio::task::spawn_blocking(move || plugins.sync_dir(&dir, &installed))
                    .await
                    .unwrap_or(None);
                if let Some(after) = again {
                    due = Some(tokio::time::Instant::now() + after);
                }
            }
        }
    }
}
