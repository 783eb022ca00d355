//! How the registry judges a load's outcome (does it clash with a running
//! plugin?) and tells it: the event that announces it, and one log line per
//! loaded or skipped plugin.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::plugins::entry::Status;
use crate::plugins::label::file_label;
use crate::plugins::{
    FileSignature, Loaded, PluginEntry, PluginEvent, Reason, Skip, Source, State,
};

/// Why `loaded` may not run beside the running plugins (other than the one
/// it replaces): a name or a registration already taken.
pub(super) fn clash(
    entries: &[Arc<PluginEntry>],
    loaded: &Loaded,
    replacing: Option<&Arc<PluginEntry>>,
) -> Option<String> {
    let name = &loaded.manifest.name;
    let running: Vec<&Arc<PluginEntry>> = entries
        .iter()
        .filter(|e| e.is_loaded() && !replacing.is_some_and(|r| Arc::ptr_eq(r, e)))
        .collect();
    if let Some(other) = running.iter().find(|e| e.name() == Some(name)) {
        return Some(format!(
            "a plugin named `{name}` is already loaded from {}",
            other.path.display()
        ));
    }
    for registration in &loaded.registrations {
        // (A field type named like a built-in one was refused at load.)
        let kind = registration.kind();
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

/// Logs why a plugin was skipped: one line, with the full detail at debug
/// level.
pub(super) fn log_skip(skip: &Skip, replacing: Option<&PluginEntry>) {
    let plugin = skip.plugin.as_deref().unwrap_or("-");
    let still = replacing
        .filter(|old| old.is_loaded())
        .and_then(|old| old.manifest.as_ref())
        .map(|m| format!(" (version {} stays active)", m.version))
        .unwrap_or_default();
    tracing::warn!(
        file = %skip.path.display(),
        plugin = %plugin,
        reason = %skip.reason,
        "plugin skipped: {}{still}",
        skip.message
    );
    if let Some(detail) = &skip.detail {
        tracing::debug!(file = %skip.path.display(), "plugin load failure in full: {detail}");
    }
}

/// The event that announces `entry`, just loaded: a load, a reload that
/// replaces the version in `replacing`, or a load that waits, disabled,
/// for approval of the capabilities in `awaiting`. Logs it too.
pub(super) fn load_event(
    entry: &Arc<PluginEntry>,
    replacing: Option<&Arc<PluginEntry>>,
    awaiting: &[String],
    mut details: serde_json::Value,
) -> PluginEvent {
    let m = entry
        .manifest
        .as_ref()
        .expect("loaded plugins have a manifest");
    let action = match replacing.filter(|old| old.is_loaded()) {
        Some(old) => {
            let old_version = old
                .manifest
                .as_ref()
                .map(|m| m.version.clone())
                .unwrap_or_default();
            old.set_status(
                State::Disabled,
                Some(Reason::Replaced),
                Some(format!(
                    "replaced by {} {} from the same file",
                    m.name, m.version
                )),
            );
            tracing::info!(
                file = %entry.path.display(),
                plugin = %m.name,
                old_version = %old_version,
                version = %m.version,
                "plugin reloaded: the new version replaces the old one"
            );
            details["replaced_version"] = json!(old_version);
            "plugin.reload"
        }
        None => {
            tracing::info!(
                file = %entry.path.display(),
                plugin = %m.name,
                kind = %m.kind,
                version = %m.version,
                registered = entry.registrations.len(),
                "plugin loaded"
            );
            "plugin.load"
        }
    };
    let action = if awaiting.is_empty() {
        action
    } else {
        tracing::warn!(
            file = %entry.path.display(),
            plugin = %m.name,
            version = %m.version,
            "plugin disabled: new capabilities awaiting approval: {}",
            awaiting.join(", ")
        );
        entry.retire_worker("its new capabilities await approval");
        details["awaiting_approval"] = json!(awaiting);
        "plugin.awaiting_approval"
    };

    PluginEvent {
        action,
        target: m.name.clone(),
        details,
        entry: Some(Arc::clone(entry)),
    }
}

/// The entry of a plugin file that did not load, and the event that
/// announces it.
pub(super) fn skipped_entry(
    skip: Skip,
    source: Source,
    signature: Option<FileSignature>,
    replacing: Option<&PluginEntry>,
) -> (Arc<PluginEntry>, PluginEvent) {
    log_skip(&skip, replacing);
    let target = skip
        .plugin
        .clone()
        .unwrap_or_else(|| file_label(&skip.path));
    let sha256 = std::sync::OnceLock::new();
    if let Some(known) = &skip.sha256 {
        let _ = sha256.set(Some(known.clone()));
    } else if skip.reason == Reason::NotFound {
        let _ = sha256.set(None);
    }
    let mut details = json!({
        "path": skip.path, "plugin": skip.plugin,
        "reason": skip.reason, "message": skip.message,
    });
    if let Some(old) = replacing.filter(|old| old.is_loaded()) {
        details["still_running"] = json!(old.manifest.as_ref().map(|m| &m.version));
    }
    let entry = Arc::new(PluginEntry {
        path: skip.path,
        loaded_from: None,
        source,
        signature,
        manifest: skip.manifest,
        registrations: Vec::new(),
        detail: skip.detail,
        tier: None,
        sha256,
        link: None,
        status: Mutex::new(Status {
            state: State::Skipped,
            reason: Some(skip.reason),
            message: Some(skip.message),
        }),
        panics_in_a_row: AtomicU32::new(0),
        stuck_calls: Default::default(),
        metrics: Default::default(),
    });
    let event = PluginEvent {
        action: "plugin.skip",
        target,
        details,
        entry: Some(entry.clone()),
    };
    (entry, event)
}
