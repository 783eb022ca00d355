//! What the server knows of each plugin file it has seen: its manifest,
//! what it registered, its state (loaded, skipped, disabled) with the
//! reason, and the events the registry announces for the audit log.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use vigilo_sdk::loader::{Manifest, Registration};

use super::label::file_label;
use super::{PluginLink, Reason, Tier};

/// Names of the built-in custom field types; plugins may not take them.
pub use vigilo_sdk::loader::BUILTIN_FIELD_TYPES;

/// A plugin's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Running: its registrations are in use.
    Loaded,
    /// Never ran (see `reason`).
    Skipped,
    /// Ran, then was taken out of use (see `reason`).
    Disabled,
}

#[derive(Debug, Clone)]
pub(super) struct Status {
    pub(super) state: State,
    pub(super) reason: Option<Reason>,
    pub(super) message: Option<String>,
}

/// Where a plugin file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Listed in `installed_plugins`.
    Installed,
    /// Found in the plugins directory (watched while the server runs).
    Directory,
    /// Loaded by hand (`check-plugin`, tests).
    Manual,
}

/// What a file looked like when it was loaded: a changed signature means a
/// new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSignature {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileSignature {
    /// The signature of the file at `path` now.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileSignature {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }

    pub(super) fn age(&self) -> Duration {
        self.modified
            .and_then(|m| m.elapsed().ok())
            .unwrap_or(Duration::MAX)
    }
}

/// One plugin file the server has seen, whatever became of it.
#[derive(Debug)]
pub struct PluginEntry {
    /// The file as the operator named it.
    pub path: PathBuf,
    /// The file the code was loaded from: the server's private copy of
    /// `path` (None unless it loaded).
    pub loaded_from: Option<PathBuf>,
    /// Where it came from.
    pub source: Source,
    /// What the file looked like when it was loaded.
    pub signature: Option<FileSignature>,
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// What it registered (empty unless it loaded).
    pub registrations: Vec<Registration>,
    /// The loader's full report when it refused the file (abi_stable's
    /// layout comparison can run to kilobytes).
    pub detail: Option<String>,
    /// Its tier and what chose it (None unless it loaded).
    pub tier: Option<Tier>,
    pub(super) sha256: std::sync::OnceLock<Option<String>>,
    pub(super) link: Option<PluginLink>,
    pub(super) status: Mutex<Status>,
    pub(super) panics_in_a_row: AtomicU32,
    /// Calls that ran past their time limit and are still running.
    pub(super) stuck_calls: Arc<std::sync::atomic::AtomicUsize>,
    /// What its calls cost, per call kind.
    pub(super) metrics: super::metrics::PluginMetrics,
}

impl PluginEntry {
    /// The plugin's name, if its manifest could be read.
    pub fn name(&self) -> Option<&str> {
        self.manifest.as_ref().map(|m| m.name.as_str())
    }

    /// The plugin's name, or the file name when the manifest is unknown.
    pub fn label(&self) -> String {
        self.name()
            .map(str::to_owned)
            .unwrap_or_else(|| file_label(&self.path))
    }

    /// Hex SHA-256 of the loaded code (of the server's private copy, which
    /// nobody else can change), or of the file for a plugin that did not
    /// load. Computed on first use: hashing costs more than loading.
    pub fn sha256(&self) -> Option<String> {
        self.sha256
            .get_or_init(|| {
                let file = self.loaded_from.as_deref().unwrap_or(&self.path);
                let bytes = std::fs::read(file).ok()?;
                Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)))
            })
            .clone()
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.lock_status().state
    }

    /// Why it is not loaded (None when loaded).
    pub fn reason(&self) -> Option<Reason> {
        self.lock_status().reason
    }

    /// The explanation that goes with [`PluginEntry::reason`].
    pub fn message(&self) -> Option<String> {
        self.lock_status().message.clone()
    }

    /// Whether its registrations are in use.
    pub fn is_loaded(&self) -> bool {
        self.state() == State::Loaded
    }

    /// The embedded frontend asset at `path`, if it is listed in the manifest.
    pub fn asset(&self, path: &str) -> Option<(String, Vec<u8>)> {
        let listed = self
            .manifest
            .as_ref()?
            .frontend
            .iter()
            .find(|a| a.path == path)?;
        let bytes = self.link.as_ref()?.asset(path)?;
        Some((listed.content_type.clone(), bytes))
    }

    pub(super) fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What its calls cost so far, per call kind.
    pub fn call_figures(&self) -> Vec<super::metrics::CallFigures> {
        self.metrics.figures(self.manifest.as_ref().map(|m| m.kind))
    }

    /// Its calls to the host so far.
    pub fn host_call_figures(&self) -> super::metrics::HostCallFigures {
        self.metrics.host_figures()
    }

    /// The worker of a worker-tier plugin.
    pub fn worker(&self) -> Option<&std::sync::Arc<super::worker::WorkerPlugin>> {
        self.link.as_ref()?.worker()
    }

    pub(super) fn set_status(&self, state: State, reason: Option<Reason>, message: Option<String>) {
        if state != State::Loaded {
            self.retire_worker(
                message
                    .as_deref()
                    .unwrap_or("the plugin was taken out of use"),
            );
        }
        *self.lock_status() = Status {
            state,
            reason,
            message,
        };
    }

    /// Ends the worker of a plugin taken out of use (a worker is started
    /// again when it is enabled and called).
    pub(super) fn retire_worker(&self, because: &str) {
        if let Some(worker) = self.worker() {
            worker.retire(because);
        }
    }
}

/// A load, skip, reload, disable or enable, for the audit log.
#[derive(Debug, Clone)]
pub struct PluginEvent {
    /// `plugin.load`, `plugin.skip`, `plugin.reload`, `plugin.disable` or
    /// `plugin.enable`.
    pub action: &'static str,
    /// The plugin's name, or its file name.
    pub target: String,
    /// What happened.
    pub details: Value,
    /// The plugin, whose checksum the recorder adds to `details`.
    pub entry: Option<Arc<PluginEntry>>,
}
