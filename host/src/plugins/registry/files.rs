//! The plugin files the registry reads: the startup set, and the plugins
//! directory brought in line with the registry as files come, change and
//! go.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::super::{is_library_name, FileSignature, PluginEntry, Reason, Source, State};
use super::{Plugins, SETTLE};

impl Plugins {
    /// The plugin libraries in `dir`, sorted by name (none if it is missing).
    pub fn library_files(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|read| {
                read.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| is_library_name(p) && p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    /// Loads `installed` in order, then the plugin libraries in `dir`
    /// (blocking: call it off the async executor).
    pub fn load_startup(&self, installed: &[crate::config::InstalledPlugin], dir: &Path) {
        for plugin in installed {
            self.load_path(plugin.path(), plugin.sha256(), Source::Installed, None);
        }
        let listed: Vec<&Path> = installed.iter().map(|p| p.path()).collect();
        for path in Self::library_files(dir) {
            if !listed.iter().any(|l| same_file(l, &path)) {
                self.load_path(&path, None, Source::Directory, None);
            }
        }
        let entries = self.list();
        let loaded = entries.iter().filter(|e| e.is_loaded()).count();
        tracing::info!(loaded, skipped = entries.len() - loaded, "plugins ready");
    }

    /// Brings the registry in line with the plugins directory: loads new
    /// files, loads changed files in place of their previous version, and
    /// disables plugins whose file is gone (forgetting gone files that
    /// never loaded). Files in `installed` are left alone. Returns how long
    /// to wait before calling again when a file looked as if it were still
    /// being written.
    pub fn sync_dir(&self, dir: &Path, installed: &[PathBuf]) -> Option<Duration> {
        let mut again: Option<Duration> = None;
        for path in Self::library_files(dir) {
            if installed.iter().any(|l| same_file(l, &path)) {
                continue;
            }
            let Some(signature) = FileSignature::of(&path) else {
                continue;
            };
            let latest = self.latest_for(&path, Source::Directory);
            if latest.as_ref().and_then(|e| e.signature) == Some(signature) {
                continue;
            }
            let age = signature.age();
            if age < SETTLE {
                let wait = SETTLE - age + Duration::from_millis(20);
                again = Some(again.map_or(wait, |a| a.min(wait)));
                continue;
            }
            let replacing = self
                .list()
                .into_iter()
                .rev()
                .find(|e| e.source == Source::Directory && e.path == path && e.is_loaded());
            self.load_path(&path, None, Source::Directory, replacing);
        }
        self.forget_removed_failures();
        for entry in self.list() {
            if entry.source == Source::Directory && entry.is_loaded() && !entry.path.exists() {
                self.disable(
                    &entry,
                    Reason::Removed,
                    format!(
                        "its file {} was removed from the plugins directory",
                        entry.path.display()
                    ),
                );
            }
        }
        again
    }

    /// Drops the skipped entries of files gone from the plugins directory:
    /// nothing of theirs was ever loaded, so once the file is gone there is
    /// nothing left to report.
    fn forget_removed_failures(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| {
            let gone =
                e.source == Source::Directory && e.state() == State::Skipped && !e.path.exists();
            if gone {
                tracing::info!(
                    file = %e.path.display(),
                    plugin = %e.label(),
                    "a plugin file that did not load was removed from the plugins directory"
                );
            }
            !gone
        });
    }

    /// The most recent entry for `path` from `source`.
    fn latest_for(&self, path: &Path, source: Source) -> Option<Arc<PluginEntry>> {
        self.list()
            .into_iter()
            .rev()
            .find(|e| e.source == source && e.path == path)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
