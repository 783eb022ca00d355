//! The native plugin host: which plugins run, what they registered, and how
//! the server calls them.
//!
//! At startup [`Plugins::load_startup`] loads every file in
//! `installed_plugins` and every `.so`/`.dylib` in the plugins directory
//! through [`load::load_file`]; a file that fails is logged with one WARN
//! line and kept in the registry as *skipped* with a [`Reason`], and startup
//! goes on. The registry is shared (`Arc`) and changes while the server runs:
//! plugins can be added ([`Plugins::add`]) and disabled ([`Plugins::disable`]),
//! and every lookup sees only plugins whose state is `loaded`.
//!
//! Libraries are never unloaded (see `../shared/DESIGN.md`): disabling a
//! plugin removes its registrations from every lookup, its code stays mapped.
//!
//! Calls into plugins are synchronous and may block or panic, so
//! [`Plugins::call`] runs them on tokio's blocking pool with a time limit.
//! A panic is caught by the SDK inside the plugin and comes back as an
//! error; after `plugin_panic_limit` panics in a row the plugin is disabled
//! (`disabled_after_panics`).
//!
//! Loads, skips and disables are announced on a channel as [`PluginEvent`]s;
//! the server appends them to the installation's audit chain as the system
//! actor.

pub mod assets;
mod load;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use vigilo_sdk::{CallError, Manifest, PluginErrorKind, PluginHandle, PluginKind, Registration};

pub use load::{is_library_name, load_file, Loaded, Reason, Skip};

/// Names of the built-in custom field types; plugins may not take them.
pub const BUILTIN_FIELD_TYPES: [&str; 5] = ["text", "number", "boolean", "date", "select"];

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
struct Status {
    state: State,
    reason: Option<Reason>,
    message: Option<String>,
}

/// One plugin file the server has seen, whatever became of it.
#[derive(Debug)]
pub struct PluginEntry {
    /// The file.
    pub path: PathBuf,
    /// Hex SHA-256 of the file, when it could be read.
    pub sha256: Option<String>,
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// What it registered (empty unless it loaded).
    pub registrations: Vec<Registration>,
    /// The loader's full report when it refused the file (abi_stable's
    /// layout comparison can run to kilobytes).
    pub detail: Option<String>,
    handle: Option<PluginHandle>,
    status: Mutex<Status>,
    panics_in_a_row: AtomicU32,
}

impl PluginEntry {
    /// The plugin's name, if its manifest could be read.
    pub fn name(&self) -> Option<&str> {
        self.manifest.as_ref().map(|m| m.name.as_str())
    }

    /// The plugin's name, or the file name when the manifest is unknown.
    pub fn label(&self) -> String {
        self.name().map(str::to_owned).unwrap_or_else(|| {
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.path.display().to_string())
        })
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
        let bytes = self.handle.as_ref()?.asset(path)?;
        Some((listed.content_type.clone(), bytes))
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A load, skip or disable, for the audit log.
#[derive(Debug, Clone)]
pub struct PluginEvent {
    /// `plugin.load`, `plugin.skip` or `plugin.disable`.
    pub action: &'static str,
    /// The plugin's name, or its file name.
    pub target: String,
    /// What happened.
    pub details: Value,
}

/// Why a call into a plugin produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginCallError {
    /// The plugin rejected the input (`BadInput`): for a field type, the
    /// reason the value is invalid.
    Rejected {
        /// The plugin.
        plugin: String,
        /// Its reason.
        message: String,
    },
    /// The plugin failed or answered nonsense.
    Failed {
        /// The plugin.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// The plugin panicked (the SDK caught it).
    Panicked {
        /// The plugin.
        plugin: String,
        /// The panic message.
        message: String,
        /// Whether this panic got the plugin disabled.
        disabled: bool,
    },
    /// The plugin did not answer in time.
    TimedOut {
        /// The plugin.
        plugin: String,
        /// The limit.
        after: Duration,
    },
    /// The plugin is no longer loaded.
    Unavailable {
        /// The plugin.
        plugin: String,
    },
}

impl std::fmt::Display for PluginCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rejected { plugin, message } => {
                write!(f, "plugin `{plugin}` rejected the input: {message}")
            }
            Self::Failed { plugin, message } => write!(f, "plugin `{plugin}` failed: {message}"),
            Self::Panicked {
                plugin,
                message,
                disabled,
            } => {
                write!(f, "plugin `{plugin}` panicked: {message}")?;
                if *disabled {
                    write!(f, "; it panicked too often and has been disabled")?;
                }
                Ok(())
            }
            Self::TimedOut { plugin, after } => write!(
                f,
                "plugin `{plugin}` did not answer within {} ms",
                after.as_millis()
            ),
            Self::Unavailable { plugin } => write!(f, "plugin `{plugin}` is not loaded"),
        }
    }
}

impl std::error::Error for PluginCallError {}

/// The plugin registry shared by the whole server.
#[derive(Debug)]
pub struct Plugins {
    entries: RwLock<Vec<Arc<PluginEntry>>>,
    vigilo_version: String,
    call_timeout: Duration,
    panic_limit: u32,
    events: Option<UnboundedSender<PluginEvent>>,
}

impl Plugins {
    /// An empty registry for a server running `vigilo_version`. Events go to
    /// `events` (for the audit log) when given.
    pub fn new(
        vigilo_version: &str,
        call_timeout: Duration,
        panic_limit: u32,
        events: Option<UnboundedSender<PluginEvent>>,
    ) -> Self {
        Plugins {
            entries: RwLock::new(Vec::new()),
            vigilo_version: vigilo_version.to_owned(),
            call_timeout,
            panic_limit: panic_limit.max(1),
            events,
        }
    }

    /// The server version plugins are checked against.
    pub fn vigilo_version(&self) -> &str {
        &self.vigilo_version
    }

    /// Every file to load at startup: `installed` in order, then the
    /// plugin libraries in `dir` sorted by name (a missing `dir` is fine).
    pub fn startup_files(installed: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = installed.to_vec();
        if let Ok(read) = std::fs::read_dir(dir) {
            let mut found: Vec<PathBuf> = read
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_library_name(p))
                .collect();
            found.sort();
            for path in found {
                if !files.iter().any(|f| same_file(f, &path)) {
                    files.push(path);
                }
            }
        }
        files
    }

    /// Loads every file (blocking: call it off the async executor).
    pub fn load_all(&self, files: &[PathBuf]) {
        for path in files {
            let outcome = load_file(path, &self.vigilo_version);
            self.add(outcome);
        }
        let entries = self.list();
        let loaded = entries.iter().filter(|e| e.is_loaded()).count();
        tracing::info!(loaded, skipped = entries.len() - loaded, "plugins ready");
    }

    /// Adds the outcome of [`load_file`]: a loaded plugin whose name or
    /// registrations clash with a running plugin is skipped as
    /// `duplicate_name`. Logs one line and announces the event.
    pub fn add(&self, outcome: Result<Loaded, Box<Skip>>) -> Arc<PluginEntry> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let outcome = match outcome {
            Ok(loaded) => match clash(&entries, &loaded) {
                Some(message) => Err(Box::new(Skip {
                    path: loaded.path.clone(),
                    plugin: Some(loaded.manifest.name.clone()),
                    manifest: Some(loaded.manifest.clone()),
                    sha256: Some(loaded.sha256.clone()),
                    reason: Reason::DuplicateName,
                    message,
                    detail: None,
                })),
                None => Ok(loaded),
            },
            Err(skip) => Err(skip),
        };
        let entry = match outcome {
            Ok(loaded) => {
                let m = &loaded.manifest;
                tracing::info!(
                    file = %loaded.path.display(),
                    plugin = %m.name,
                    kind = %m.kind,
                    version = %m.version,
                    registered = loaded.registrations.len(),
                    "plugin loaded"
                );
                self.announce(PluginEvent {
                    action: "plugin.load",
                    target: m.name.clone(),
                    details: json!({
                        "path": loaded.path, "sha256": loaded.sha256, "kind": m.kind,
                        "version": m.version, "compatible_with": m.compatible_with,
                        "registered": loaded.registrations.iter().map(|r| r.name()).collect::<Vec<_>>(),
                    }),
                });
                Arc::new(PluginEntry {
                    path: loaded.path,
                    sha256: Some(loaded.sha256),
                    manifest: Some(loaded.manifest),
                    registrations: loaded.registrations,
                    detail: None,
                    handle: Some(loaded.handle),
                    status: Mutex::new(Status {
                        state: State::Loaded,
                        reason: None,
                        message: None,
                    }),
                    panics_in_a_row: AtomicU32::new(0),
                })
            }
            Err(skip) => {
                log_skip(&skip);
                let target = skip
                    .plugin
                    .clone()
                    .unwrap_or_else(|| file_label(&skip.path));
                self.announce(PluginEvent {
                    action: "plugin.skip",
                    target,
                    details: json!({
                        "path": skip.path, "sha256": skip.sha256, "plugin": skip.plugin,
                        "reason": skip.reason, "message": skip.message,
                    }),
                });
                Arc::new(PluginEntry {
                    path: skip.path,
                    sha256: skip.sha256,
                    manifest: skip.manifest,
                    registrations: Vec::new(),
                    detail: skip.detail,
                    handle: None,
                    status: Mutex::new(Status {
                        state: State::Skipped,
                        reason: Some(skip.reason),
                        message: Some(skip.message),
                    }),
                    panics_in_a_row: AtomicU32::new(0),
                })
            }
        };
        entries.push(entry.clone());
        entry
    }

    /// Takes a loaded plugin out of use. Returns false if it was not loaded.
    pub fn disable(&self, entry: &PluginEntry, reason: Reason, message: String) -> bool {
        {
            let mut status = entry.lock_status();
            if status.state != State::Loaded {
                return false;
            }
            *status = Status {
                state: State::Disabled,
                reason: Some(reason),
                message: Some(message.clone()),
            };
        }
        tracing::warn!(
            file = %entry.path.display(),
            plugin = %entry.label(),
            reason = %reason,
            "plugin disabled: {message}"
        );
        self.announce(PluginEvent {
            action: "plugin.disable",
            target: entry.label(),
            details: json!({"path": entry.path, "reason": reason, "message": message}),
        });
        true
    }

    /// Every plugin the server has seen, in load order.
    pub fn list(&self) -> Vec<Arc<PluginEntry>> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The loaded plugin called `name`.
    pub fn loaded(&self, name: &str) -> Option<Arc<PluginEntry>> {
        self.list()
            .into_iter()
            .find(|e| e.is_loaded() && e.name() == Some(name))
    }

    /// Every registration of `kind` from loaded plugins, with its plugin.
    pub fn registrations(&self, kind: PluginKind) -> Vec<(Arc<PluginEntry>, Registration)> {
        self.list()
            .into_iter()
            .filter(|e| e.is_loaded())
            .flat_map(|e| {
                e.registrations
                    .iter()
                    .filter(|r| r.kind() == kind)
                    .map(|r| (e.clone(), r.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The loaded registration of `kind` called `name`, with its plugin.
    pub fn registration(
        &self,
        kind: PluginKind,
        name: &str,
    ) -> Option<(Arc<PluginEntry>, Registration)> {
        self.registrations(kind)
            .into_iter()
            .find(|(_, r)| r.name() == name)
    }

    /// Calls into `entry` off the async executor, within the time limit.
    ///
    /// `f` gets the plugin's handle; its `CallError` is classified into a
    /// [`PluginCallError`]. A panic counts towards the plugin's limit; any
    /// other outcome resets the count.
    pub async fn call<T, F>(
        self: &Arc<Self>,
        entry: &Arc<PluginEntry>,
        f: F,
    ) -> Result<T, PluginCallError>
    where
        T: Send + 'static,
        F: FnOnce(&PluginHandle) -> Result<T, CallError> + Send + 'static,
    {
        let plugin = entry.label();
        let handle = match (&entry.handle, entry.is_loaded()) {
            (Some(handle), true) => *handle,
            _ => return Err(PluginCallError::Unavailable { plugin }),
        };
        let task = tokio::task::spawn_blocking(move || f(&handle));
        let outcome = match tokio::time::timeout(self.call_timeout, task).await {
            Err(_) => {
                tracing::warn!(plugin = %plugin, timeout_ms = self.call_timeout.as_millis() as u64, "plugin call timed out");
                return Err(PluginCallError::TimedOut {
                    plugin,
                    after: self.call_timeout,
                });
            }
            Ok(Err(join)) => Err(CallError::Plugin {
                kind: PluginErrorKind::Panicked,
                message: format!("the call could not complete: {join}"),
            }),
            Ok(Ok(outcome)) => outcome,
        };
        match outcome {
            Ok(value) => {
                entry.panics_in_a_row.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(CallError::Plugin {
                kind: PluginErrorKind::Panicked,
                message,
            }) => {
                let count = entry.panics_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(plugin = %plugin, panics_in_a_row = count, "plugin panicked in a call: {message}");
                let disabled = count >= self.panic_limit
                    && self.disable(
                        entry,
                        Reason::DisabledAfterPanics,
                        format!("panicked in {count} calls in a row; last: {message}"),
                    );
                Err(PluginCallError::Panicked {
                    plugin,
                    message,
                    disabled,
                })
            }
            Err(CallError::Plugin {
                kind: PluginErrorKind::BadInput,
                message,
            }) => {
                entry.panics_in_a_row.store(0, Ordering::Relaxed);
                Err(PluginCallError::Rejected { plugin, message })
            }
            Err(other) => {
                entry.panics_in_a_row.store(0, Ordering::Relaxed);
                Err(PluginCallError::Failed {
                    plugin,
                    message: other.message(),
                })
            }
        }
    }

    fn announce(&self, event: PluginEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// Why `loaded` cannot join `entries`, if it cannot.
fn clash(entries: &[Arc<PluginEntry>], loaded: &Loaded) -> Option<String> {
    let name = &loaded.manifest.name;
    let running: Vec<&Arc<PluginEntry>> = entries.iter().filter(|e| e.is_loaded()).collect();
    if let Some(other) = running.iter().find(|e| e.name() == Some(name)) {
        return Some(format!(
            "a plugin named `{name}` is already loaded from {}",
            other.path.display()
        ));
    }
    for registration in &loaded.registrations {
        let kind = registration.kind();
        if kind == PluginKind::FieldType && BUILTIN_FIELD_TYPES.contains(&registration.name()) {
            return Some(format!(
                "field type `{}` is a built-in type",
                registration.name()
            ));
        }
        for other in &running {
            if other
                .registrations
                .iter()
                .any(|r| r.kind() == kind && r.name() == registration.name())
            {
                return Some(format!(
                    "{} `{}` is already registered by plugin `{}`",
                    kind,
                    registration.name(),
                    other.label()
                ));
            }
        }
    }
    None
}

fn log_skip(skip: &Skip) {
    let plugin = skip.plugin.as_deref().unwrap_or("-");
    tracing::warn!(
        file = %skip.path.display(),
        plugin = %plugin,
        reason = %skip.reason,
        "plugin skipped: {}",
        skip.message
    );
    if let Some(detail) = &skip.detail {
        tracing::debug!(file = %skip.path.display(), "plugin load failure in full: {detail}");
    }
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
