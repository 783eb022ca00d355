//! Moving a plugin between tiers while the server runs: an in-process
//! plugin whose calls keep panicking is moved to the worker tier for good
//! (`plugin_panic_policy = "worker"`, the default) rather than disabled.
//!
//! The in-process entry is taken out of use (`moved_to_worker`), the
//! installation's policy for the plugin becomes `worker` (announced as a
//! `plugin.isolation` event, which the server records in `plugin_policies`
//! and the audit chain in one transaction), and the same code is loaded
//! again from the same file, in a worker.

use std::sync::Arc;

use serde_json::json;

use super::{Isolation, PluginEntry, PluginEvent, PluginLink, Plugins, PolicyNote, Reason};
use crate::config::PanicPolicy;

impl Plugins {
    /// Whether `entry` reaching the panic limit moves it to a worker rather
    /// than disabling it.
    pub(super) fn moves_on_panics(&self, entry: &PluginEntry) -> bool {
        self.panic_policy == PanicPolicy::Worker
            && matches!(entry.link, Some(PluginLink::InProcess(_)))
            && entry.name().is_some()
    }

    /// Moves the in-process plugin `entry`, whose calls panicked `count`
    /// times in a row (the last with `last`), to the worker tier. Returns
    /// false if another call moved or disabled it first.
    pub(super) fn move_to_worker(
        self: &Arc<Self>,
        entry: &Arc<PluginEntry>,
        count: u32,
        last: &str,
    ) -> bool {
        let Some(name) = entry.name().map(str::to_owned) else {
            return false;
        };
        let reason = format!(
            "its calls panicked {count} times in a row in process (last: {last}); it runs in a \
             worker from now on"
        );
        if !self.disable_quietly(entry, Reason::MovedToWorker, reason.clone()) {
            return false;
        }
        {
            let mut tiers = self.tiers.write().unwrap_or_else(|e| e.into_inner());
            let note = PolicyNote {
                decided_by: "system".into(),
                reason: reason.clone(),
                updated_at: crate::store::now(),
                interrupted_call: None,
                interrupted_at: None,
            };
            *tiers = Arc::new(
                (**tiers)
                    .clone()
                    .with_policy(&name, Isolation::Worker, note),
            );
        }
        tracing::warn!(plugin = %name, "plugin moved to the worker tier: {reason}");
        self.announce(PluginEvent {
            action: "plugin.isolation",
            target: name,
            details: json!({"isolation": Isolation::Worker, "reason": reason, "path": entry.path}),
            entry: None,
        });
        // The same code as before: the loaded copy's checksum is pinned.
        let (plugins, entry) = (self.clone(), entry.clone());
        tokio::task::spawn_blocking(move || {
            let pinned = entry.sha256();
            plugins.load_path(&entry.path, pinned, entry.source, Some(entry.clone()));
        });
        true
    }
}
