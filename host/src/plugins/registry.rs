//! The registry of plugins: loading the startup set, bringing it in line
//! with the plugins directory as files come, change and go, disabling and
//! enabling, and the lookups every caller uses (which see only loaded
//! plugins). Reading the startup set and the plugins directory is in
//! `files.rs`; judging and logging a load's outcome in `outcome.rs`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use vigilo_sdk::loader::Registration;
use vigilo_sdk::{Capabilities, PluginKind};

mod files;
mod outcome;

use self::outcome::{clash, load_event, skipped_entry};
use super::entry::Status;
use super::{
    load_file_with, FileSignature, LoadOptions, Loaded, PluginEntry, PluginEvent, Reason, Skip,
    Source, State, Tiers,
};

/// The plugin registry shared by the whole server.
#[derive(Debug)]
pub struct Plugins {
    entries: RwLock<Vec<Arc<PluginEntry>>>,
    vigilo_version: String,
    pub(super) call_timeout: Duration,
    pub(super) panic_limit: u32,
    events: Option<UnboundedSender<PluginEvent>>,
    private_dir: Option<PathBuf>,
    pub(super) tiers: RwLock<Arc<Tiers>>,
    /// Where in-process calls are recorded while they run (see
    /// [`super::forensics`]).
    pub(super) call_log: Option<Arc<super::forensics::CallLog>>,
    /// What a plugin that keeps panicking in process comes to.
    pub(super) panic_policy: crate::config::PanicPolicy,
    /// The capabilities approved for each plugin, by name.
    approvals: RwLock<Arc<std::collections::BTreeMap<String, Capabilities>>>,
}

/// Files younger than this may still be being written; the watcher waits.
const SETTLE: Duration = Duration::from_millis(300);

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
            private_dir: None,
            tiers: RwLock::new(Arc::new(Tiers::default())),
            call_log: None,
            panic_policy: crate::config::PanicPolicy::Disable,
            approvals: Default::default(),
        }
    }

    /// Knows `approvals` as the capabilities approved for each plugin (the
    /// installation's stored approvals).
    pub fn with_approvals(
        self,
        approvals: impl IntoIterator<Item = (String, Capabilities)>,
    ) -> Self {
        *self.approvals.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(approvals.into_iter().collect());
        self
    }

    /// The capabilities approved for plugin `name`, if any were.
    pub fn approved(&self, name: &str) -> Option<Capabilities> {
        self.approvals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// From now on, `capabilities` are approved for plugin `name`.
    pub fn approve(&self, name: &str, capabilities: Capabilities) {
        let mut approvals = self.approvals.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**approvals).clone();
        next.insert(name.to_owned(), capabilities);
        *approvals = Arc::new(next);
    }

    /// What `manifest` declares beyond what is approved for its plugin, in
    /// words (`storage`, `http:api.example.com`); empty when nothing is, or
    /// when nothing was ever approved for it (its first load approves it).
    pub fn awaiting_approval(&self, manifest: &vigilo_sdk::loader::Manifest) -> Vec<String> {
        match (&manifest.capabilities, self.approved(&manifest.name)) {
            (Some(declared), Some(approved)) => declared.beyond(&approved),
            _ => Vec::new(),
        }
    }

    /// What a plugin that panics `panic_limit` times in a row in process
    /// comes to (by default here: disabled).
    pub fn with_panic_policy(mut self, policy: crate::config::PanicPolicy) -> Self {
        self.panic_policy = policy;
        self
    }

    /// Records every in-process call in `log` while it runs, so that the
    /// next start knows which call a crash ended.
    pub fn with_call_log(mut self, log: super::forensics::CallLog) -> Self {
        self.call_log = Some(Arc::new(log));
        self
    }

    /// Loads plugins in the tiers `tiers` gives them (by default every
    /// plugin loads in process).
    pub fn with_tiers(self, tiers: Tiers) -> Self {
        *self.tiers.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tiers);
        self
    }

    /// From now on, plugins load in the tiers `tiers` gives them (the ones
    /// loaded stay where they run until they are loaded again).
    pub fn replace_tiers(&self, tiers: Tiers) {
        *self.tiers.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tiers);
    }

    /// The tiers plugins load in.
    pub fn tiers(&self) -> Arc<Tiers> {
        self.tiers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads every plugin from a private copy in `dir` (emptied first: no
    /// earlier process's copies are in use), so operators' files can change
    /// afterwards without harm and a changed file really loads new code.
    pub fn with_private_dir(mut self, dir: PathBuf) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        self.private_dir = Some(dir);
        Ok(self)
    }

    /// The server version plugins are checked against.
    pub fn vigilo_version(&self) -> &str {
        &self.vigilo_version
    }

    pub(super) fn load_path(
        &self,
        path: &Path,
        expected_sha256: Option<String>,
        source: Source,
        replacing: Option<Arc<PluginEntry>>,
    ) -> Arc<PluginEntry> {
        let signature = FileSignature::of(path);
        let options = LoadOptions {
            expected_sha256,
            private_dir: self.private_dir.clone(),
            tiers: self.tiers(),
        };
        let outcome = load_file_with(path, &self.vigilo_version, &options);
        self.install(outcome, source, signature, replacing)
    }

    /// Adds the outcome of [`super::load_file`] (for `check-plugin` and tests).
    pub fn add(&self, outcome: Result<Loaded, Box<Skip>>) -> Arc<PluginEntry> {
        let signature = match &outcome {
            Ok(loaded) => FileSignature::of(&loaded.path),
            Err(skip) => FileSignature::of(&skip.path),
        };
        self.install(outcome, Source::Manual, signature, None)
    }

    /// Adds an outcome: a loaded plugin whose name or registrations clash
    /// with a running plugin (other than the one it replaces) is skipped as
    /// `duplicate_name`; a loaded replacement retires the plugin it
    /// replaces. Logs one line and announces the event.
    fn install(
        &self,
        outcome: Result<Loaded, Box<Skip>>,
        source: Source,
        signature: Option<FileSignature>,
        replacing: Option<Arc<PluginEntry>>,
    ) -> Arc<PluginEntry> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let outcome = match outcome {
            Ok(loaded) => match clash(&entries, &loaded, replacing.as_ref()) {
                Some(message) => Err(Box::new(Skip {
                    path: loaded.path.clone(),
                    plugin: Some(loaded.manifest.name.clone()),
                    manifest: Some(loaded.manifest.clone()),
                    sha256: loaded.sha256.clone(),
                    reason: Reason::DuplicateName,
                    message,
                    detail: None,
                })),
                None => Ok(loaded),
            },
            Err(skip) => Err(skip),
        };
        let path = match &outcome {
            Ok(loaded) => loaded.path.clone(),
            Err(skip) => skip.path.clone(),
        };
        let (entry, event) = match outcome {
            Ok(loaded) => self.loaded_entry(loaded, source, signature, replacing.as_ref()),
            Err(skip) => skipped_entry(*skip, source, signature, replacing.as_deref()),
        };
        // An earlier failure of the same file is superseded by this attempt.
        entries.retain(|e| !(e.path == path && e.source == source && e.state() == State::Skipped));
        entries.push(entry.clone());
        drop(entries);
        self.announce(event);
        entry
    }

    /// The entry of a plugin that loaded, and the event that announces it.
    fn loaded_entry(
        &self,
        loaded: Loaded,
        source: Source,
        signature: Option<FileSignature>,
        replacing: Option<&Arc<PluginEntry>>,
    ) -> (Arc<PluginEntry>, PluginEvent) {
        let sha256 = std::sync::OnceLock::new();
        if let Some(known) = loaded.sha256 {
            let _ = sha256.set(Some(known));
        }
        // A new version asking for more than was approved waits,
        // disabled, for a platform admin; a plugin's first load
        // approves what it declares.
        let awaiting = self.awaiting_approval(&loaded.manifest);
        let first_approval = match &loaded.manifest.capabilities {
            Some(declared) if self.approved(&loaded.manifest.name).is_none() => {
                self.approve(&loaded.manifest.name, declared.clone());
                true
            }
            _ => false,
        };
        let status = if awaiting.is_empty() {
            Status {
                state: State::Loaded,
                reason: None,
                message: None,
            }
        } else {
            Status {
                state: State::Disabled,
                reason: Some(Reason::AwaitingApproval),
                message: Some(format!(
                    "new capabilities awaiting approval: {}",
                    awaiting.join(", ")
                )),
            }
        };
        let entry = Arc::new(PluginEntry {
            path: loaded.path,
            loaded_from: Some(loaded.loaded_from),
            source,
            signature,
            manifest: Some(loaded.manifest),
            registrations: loaded.registrations,
            detail: None,
            tier: Some(loaded.tier),
            sha256,
            link: Some(loaded.link),
            status: Mutex::new(status),
            panics_in_a_row: AtomicU32::new(0),
            stuck_calls: Default::default(),
            metrics: Default::default(),
        });
        let m = entry
            .manifest
            .as_ref()
            .expect("loaded plugins have a manifest");
        let mut details = json!({
            "path": entry.path, "kind": m.kind, "version": m.version,
            "compatible_with": m.compatible_with,
            "registered": entry.registrations.iter().map(|r| r.name()).collect::<Vec<_>>(),
            "capabilities": m.capabilities,
        });
        if first_approval {
            details["approved"] = json!("first load");
        }
        let event = load_event(&entry, replacing, &awaiting, details);
        (entry, event)
    }

    /// Takes a loaded plugin out of use and announces it. Returns false if
    /// it was not loaded.
    pub fn disable(&self, entry: &Arc<PluginEntry>, reason: Reason, message: String) -> bool {
        if !self.disable_quietly(entry, reason, message.clone()) {
            return false;
        }
        self.announce(PluginEvent {
            action: "plugin.disable",
            target: entry.label(),
            details: json!({"path": entry.path, "reason": reason, "message": message}),
            entry: None,
        });
        true
    }

    /// Takes a loaded plugin out of use without announcing it (the caller
    /// records the event itself). Returns false if it was not loaded.
    pub fn disable_quietly(&self, entry: &PluginEntry, reason: Reason, message: String) -> bool {
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
        entry.retire_worker(&message);
        tracing::warn!(
            file = %entry.path.display(),
            plugin = %entry.label(),
            reason = %reason,
            "plugin disabled: {message}"
        );
        true
    }

    /// Puts a plugin disabled by an admin or after panics back into use
    /// (the caller records the event). Fails with a reason when there is no
    /// such plugin or it cannot be enabled.
    pub fn enable(&self, name: &str) -> Result<Arc<PluginEntry>, EnableError> {
        let entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = entries
            .iter()
            .find(|e| e.is_loaded() && e.name() == Some(name))
        {
            return Err(EnableError::AlreadyLoaded(running.clone()));
        }
        let candidate = entries
            .iter()
            .rev()
            .find(|e| e.name() == Some(name) && e.state() == State::Disabled)
            .cloned()
            .ok_or_else(|| EnableError::NotFound(format!("no disabled plugin named `{name}`")))?;
        match candidate.reason() {
            Some(
                Reason::DisabledByAdmin
                | Reason::DisabledAfterPanics
                | Reason::DisabledAfterCrashes,
            ) => {}
            Some(Reason::AwaitingApproval) => {
                let manifest = candidate
                    .manifest
                    .as_ref()
                    .expect("disabled plugins have a manifest");
                let awaiting = self.awaiting_approval(manifest);
                if !awaiting.is_empty() {
                    return Err(EnableError::NotEnableable(format!(
                        "plugin `{name}` {} asks for capabilities not approved yet ({}); approve them first",
                        manifest.version,
                        awaiting.join(", ")
                    )));
                }
            }
            other => {
                return Err(EnableError::NotEnableable(format!(
                    "plugin `{name}` was {}; install its file again instead",
                    match other {
                        Some(Reason::Replaced) => "replaced by a newer file",
                        Some(Reason::Removed) => "removed from the plugins directory",
                        _ => "not loaded",
                    }
                )))
            }
        }
        let as_loaded = Loaded {
            path: candidate.path.clone(),
            loaded_from: candidate.loaded_from.clone().unwrap_or_default(),
            sha256: None,
            link: candidate
                .link
                .clone()
                .expect("disabled plugins were loaded"),
            tier: candidate.tier.expect("disabled plugins were loaded"),
            manifest: candidate
                .manifest
                .clone()
                .expect("disabled plugins have a manifest"),
            registrations: candidate.registrations.clone(),
        };
        if let Some(message) = clash(&entries, &as_loaded, None) {
            return Err(EnableError::NotEnableable(message));
        }
        candidate.panics_in_a_row.store(0, Ordering::Relaxed);
        if let Some(worker) = candidate.worker() {
            worker.reset();
        }
        candidate.set_status(State::Loaded, None, None);
        tracing::info!(plugin = %name, file = %candidate.path.display(), "plugin enabled");
        Ok(candidate)
    }

    /// Every plugin the server has seen, in load order.
    pub fn list(&self) -> Vec<Arc<PluginEntry>> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Plugins that did not load, for strict mode.
    pub fn failures(&self) -> Vec<Arc<PluginEntry>> {
        self.list()
            .into_iter()
            .filter(|e| e.state() == State::Skipped)
            .collect()
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

    /// The time limit of a request-time call.
    pub(super) fn announce(&self, event: PluginEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// Why a plugin could not be enabled.
#[derive(Debug)]
pub enum EnableError {
    /// No disabled plugin has that name.
    NotFound(String),
    /// It is loaded already.
    AlreadyLoaded(Arc<PluginEntry>),
    /// It cannot be put back (replaced, removed, or its names are taken).
    NotEnableable(String),
}
