//! How the registry judges a load's outcome (does it clash with a running
//! plugin?) and tells it (one log line per skipped plugin).

use std::sync::Arc;

use super::super::{Loaded, PluginEntry, Skip};

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
