//! Plugins in use: platform admins disable and enable them, and every load,
//! skip, reload, disable, install and uninstall is recorded in the
//! installation's audit chain.
//!
//! Disabling is recorded first, so a failed write leaves the plugin
//! running; enabling is undone if it cannot be recorded.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{record_installation, DomainError, DomainResult};
use crate::audit::{Actor, NewEvent};
use crate::domain::authz::Caller;
use crate::domain::Context;
use crate::plugins::{EnableError, PluginEntry, PluginEvent, Reason};
use crate::store::Store;

/// Every plugin the server has seen (with `all`, platform admins only), or
/// only the loaded ones.
pub fn list(state: &Context, caller: &Caller, all: bool) -> DomainResult<Vec<Arc<PluginEntry>>> {
    if all {
        caller.require_platform_admin("list plugins that failed to load")?;
    }
    Ok(state
        .plugins
        .list()
        .into_iter()
        .filter(|e| all || e.is_loaded())
        .collect())
}

/// The plugin called `name`: the loaded one, or for platform admins the
/// most recent entry that claimed the name, whatever its state.
pub fn find(state: &Context, caller: &Caller, name: &str) -> DomainResult<Arc<PluginEntry>> {
    if let Some(entry) = state.plugins.loaded(name) {
        return Ok(entry);
    }
    let not_found = || DomainError::NotFound(format!("no loaded plugin named `{name}`"));
    if caller
        .require_platform_admin("see plugins that are not loaded")
        .is_err()
    {
        return Err(not_found());
    }
    state
        .plugins
        .list()
        .into_iter()
        .rev()
        .find(|e| e.name() == Some(name))
        .ok_or_else(not_found)
}

/// Takes a loaded plugin out of use (platform admins): its field types,
/// widgets, adapters, tasks and frontend files stop being used until it is
/// enabled again or the server restarts. Its code stays loaded.
pub async fn disable(
    state: &Context,
    caller: &Caller,
    name: &str,
) -> DomainResult<Arc<PluginEntry>> {
    caller.require_platform_admin("disable plugins")?;
    let entry = state
        .plugins
        .loaded(name)
        .ok_or_else(|| DomainError::NotFound(format!("no loaded plugin named `{name}`")))?;
    let message = format!("disabled by {}", caller.user.email);
    let mut tx = state.store.begin_write().await?;
    let version = entry.manifest.as_ref().map(|m| &m.version);
    record_installation(
        &mut tx,
        caller,
        "plugin.disable",
        name,
        json!({"path": entry.path, "reason": Reason::DisabledByAdmin, "version": version}),
    )
    .await?;
    // Recorded first, so a failed write leaves the plugin running.
    tx.commit_now().await?;
    state
        .plugins
        .disable_quietly(&entry, Reason::DisabledByAdmin, message);
    Ok(entry)
}

/// Puts a plugin that was disabled (by an admin, or after panicking) back
/// into use (platform admins). Enabling a loaded plugin changes nothing.
pub async fn enable(
    state: &Context,
    caller: &Caller,
    name: &str,
) -> DomainResult<Arc<PluginEntry>> {
    caller.require_platform_admin("enable plugins")?;
    let mut tx = state.store.begin_write().await?;
    let entry = match state.plugins.enable(name) {
        Ok(entry) => entry,
        Err(EnableError::AlreadyLoaded(entry)) => return Ok(entry),
        Err(EnableError::NotFound(message)) => return Err(DomainError::NotFound(message)),
        Err(EnableError::NotEnableable(message)) => return Err(DomainError::Conflict(message)),
    };
    let recorded = crate::store::audit::append(
        &mut tx,
        &caller.actor(),
        NewEvent::new(
            None,
            "plugin.enable",
            name,
            json!({"path": entry.path, "version": entry.manifest.as_ref().map(|m| &m.version)}),
        ),
    )
    .await;
    let committed = match recorded {
        Ok(_) => tx.commit_now().await.map_err(DomainError::from),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = committed {
        // Not recorded: not enabled either.
        state
            .plugins
            .disable_quietly(&entry, Reason::DisabledByAdmin, "enabling it failed".into());
        return Err(e);
    }
    Ok(entry)
}

/// Approves what plugin `name` declares it asks of the server (platform
/// admins): its newest version's capabilities become the approved set, in
/// the installation's approvals and its audit chain (`plugin.approve`, with
/// what was added), and a version that was waiting for them is enabled.
pub async fn approve(
    state: &Context,
    caller: &Caller,
    name: &str,
) -> DomainResult<Arc<PluginEntry>> {
    caller.require_platform_admin("approve plugins' capabilities")?;
    let entry = find(state, caller, name)?;
    let manifest = entry
        .manifest
        .as_ref()
        .ok_or_else(|| DomainError::NotFound(format!("no plugin named `{name}`")))?;
    let declared = manifest.capabilities.clone().ok_or_else(|| {
        DomainError::Conflict(format!(
            "plugin `{name}` declares no capabilities: there is nothing to approve"
        ))
    })?;
    let added = match state.plugins.approved(name) {
        Some(approved) => declared.beyond(&approved),
        None => declared.beyond(&vigilo_sdk::Capabilities::none()),
    };
    let mut tx = state.store.begin_write().await?;
    crate::store::plugin_policies::set_plugin_approval(
        &mut tx,
        name,
        &json!(declared).to_string(),
        &caller.user.email,
        false,
    )
    .await?;
    record_installation(
        &mut tx,
        caller,
        "plugin.approve",
        name,
        json!({"version": manifest.version, "capabilities": declared, "added": added}),
    )
    .await?;
    tx.commit_now().await?;
    state.plugins.approve(name, declared);
    if entry.reason() == Some(Reason::AwaitingApproval) {
        return enable(state, caller, name).await;
    }
    Ok(entry)
}

/// Records the tier decided for plugin `name` (None: the configuration
/// chooses again) in the installation's policies, which every server on
/// the database applies from its next load of the plugin, and in the
/// installation's audit chain, in one transaction.
pub async fn record_isolation(
    store: &Store,
    actor: &Actor,
    name: &str,
    isolation: Option<crate::plugins::Isolation>,
    reason: &str,
) -> DomainResult<()> {
    let mut tx = store.begin_write().await?;
    crate::store::plugin_policies::set_plugin_isolation(
        &mut tx,
        name,
        isolation,
        &actor.label,
        reason,
    )
    .await?;
    crate::store::audit::append(
        &mut tx,
        actor,
        NewEvent::new(
            None,
            "plugin.isolation",
            name,
            json!({"isolation": isolation, "reason": reason}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets the tier plugin `name` runs in on every server of the
/// installation (platform admins), over the configuration; `None` hands
/// the choice back to the configuration (`[plugin_settings.NAME]`, then
/// `plugin_isolation`). Stored in the installation's policies and audited
/// as `plugin.isolation`; a server applies it when it next loads the
/// plugin (a restart, or a new file): the loaded code keeps running where
/// it runs.
pub async fn set_tier(
    state: &Context,
    caller: &Caller,
    name: &str,
    isolation: Option<crate::plugins::Isolation>,
) -> DomainResult<Arc<PluginEntry>> {
    caller.require_platform_admin("choose where plugins run")?;
    let entry = find(state, caller, name)?;
    let reason = match isolation {
        Some(tier) => format!(
            "{} chose the {} tier for it",
            caller.user.email,
            match tier {
                crate::plugins::Isolation::InProcess => "in-process",
                crate::plugins::Isolation::Worker => "worker",
            }
        ),
        None => format!(
            "{} handed the choice of its tier back to the configuration",
            caller.user.email
        ),
    };
    record_isolation(&state.store, &caller.actor(), name, isolation, &reason).await?;
    let tiers = crate::plugins::Tiers::read(&state.config, &state.store)
        .await
        .map_err(|e| DomainError::Internal(format!("{e:#}")))?;
    state.plugins.replace_tiers(tiers);
    Ok(entry)
}

/// The policy applied to a plugin the server died in: the words recorded
/// as the reason its tier is `worker` from now on.
pub fn interrupted_reason(found: &crate::plugins::forensics::Interrupted) -> String {
    format!(
        "the server stopped during its in-process call `{}` started at {}; it runs in a worker \
         from now on",
        found.call, found.started_at
    )
}

/// Applies the policy for a plugin whose in-process call the server died
/// in: it runs in a worker from now on. Recorded in the installation's
/// policies (with the call and its start) and in its audit chain, as the
/// system actor, in one transaction.
pub async fn record_interrupted_call(
    store: &Store,
    found: &crate::plugins::forensics::Interrupted,
) -> DomainResult<()> {
    let actor = Actor::system();
    let reason = interrupted_reason(found);
    let worker = crate::plugins::Isolation::Worker;
    let mut tx = store.begin_write().await?;
    crate::store::plugin_policies::set_plugin_isolation(
        &mut tx,
        &found.plugin,
        Some(worker),
        &actor.label,
        &reason,
    )
    .await?;
    crate::store::plugin_policies::set_plugin_interrupted_call(
        &mut tx,
        &found.plugin,
        &found.call,
        &found.started_at,
    )
    .await?;
    crate::store::audit::append(
        &mut tx,
        &actor,
        NewEvent::new(
            None,
            "plugin.isolation",
            found.plugin.clone(),
            json!({
                "isolation": worker, "reason": reason,
                "interrupted_call": found.call, "interrupted_at": found.started_at,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records the registry's loads, skips, reloads, disables and moves
/// between tiers in the installation's audit chain as the system actor
/// (a move also in the installation's policies, in the same transaction),
/// until every sender is gone.
pub async fn record_events(
    store: Store,
    mut events: tokio::sync::mpsc::UnboundedReceiver<PluginEvent>,
) {
    while let Some(mut event) = events.recv().await {
        if let Some(entry) = event.entry.take() {
            // Hashing a library takes a millisecond or so: not on the executor.
            let sha256 = tokio::task::spawn_blocking(move || entry.sha256())
                .await
                .ok()
                .flatten();
            event.details["sha256"] = json!(sha256);
        }
        let result = async {
            let mut tx = store.begin_write().await?;
            if event.action == "plugin.isolation" {
                // A move between tiers is the installation's policy from now on.
                let isolation = event.details["isolation"]
                    .as_str()
                    .and_then(crate::plugins::Isolation::parse);
                let reason = event.details["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                crate::store::plugin_policies::set_plugin_isolation(
                    &mut tx,
                    &event.target,
                    isolation,
                    "system",
                    &reason,
                )
                .await?;
            }
            if event.details["approved"] == "first load" {
                // A plugin's first load approves what it declares, once for
                // the installation (another server may have done it first).
                crate::store::plugin_policies::set_plugin_approval(
                    &mut tx,
                    &event.target,
                    &event.details["capabilities"].to_string(),
                    "system",
                    true,
                )
                .await?;
            }
            crate::store::audit::append(
                &mut tx,
                &Actor::system(),
                NewEvent::new(None, event.action, event.target.clone(), event.details),
            )
            .await?;
            tx.commit().await?;
            Ok::<_, DomainError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(action = event.action, plugin = %event.target, error = %e, "cannot record a plugin event in the audit log");
        }
    }
}

/// Deletes what plugin `name` stored (its key-value entries in every
/// scope) and its approved capabilities, recorded as `plugin.purge` by the
/// system in the same transaction; answers how many entries went.
pub async fn purge(store: &Store, name: &str) -> DomainResult<u64> {
    let mut tx = store.begin_write().await?;
    let gone = crate::store::plugin_kv::delete_plugin_data(&mut tx, name).await?;
    crate::store::audit::append(
        &mut tx,
        &Actor::system(),
        NewEvent::new(None, "plugin.purge", name, json!({"stored_entries": gone})),
    )
    .await?;
    tx.commit().await?;
    Ok(gone)
}

/// Makes `change` to the plugins directory inside the transaction that
/// records it as `action` on `plugin` (by the system actor): if the record
/// cannot be appended the change is not made; if the change fails nothing
/// is recorded; if the commit fails, `undo` puts the directory back.
pub async fn record_file_change<E>(
    store: &Store,
    action: &'static str,
    plugin: &str,
    details: Value,
    change: impl FnOnce() -> Result<(), E>,
    undo: impl FnOnce(),
) -> Result<(), FileChangeError<E>> {
    let mut tx = store
        .begin_write()
        .await
        .map_err(|e| FileChangeError::Record(e.into()))?;
    if !details["approved_capabilities"].is_null() {
        // Installed with the operator's approval of what it asks for.
        crate::store::plugin_policies::set_plugin_approval(
            &mut tx,
            plugin,
            &details["approved_capabilities"].to_string(),
            "operator (plugin install)",
            false,
        )
        .await
        .map_err(|e| FileChangeError::Record(e.into()))?;
    }
    crate::store::audit::append(
        &mut tx,
        &Actor::system(),
        NewEvent::new(None, action, plugin.to_owned(), details),
    )
    .await
    .map_err(|e| FileChangeError::Record(e.into()))?;
    change().map_err(FileChangeError::Change)?;
    if let Err(e) = tx.commit_now().await {
        undo();
        return Err(FileChangeError::Undone(e.into()));
    }
    Ok(())
}

/// Why [`record_file_change`] did not complete.
#[derive(Debug)]
pub enum FileChangeError<E> {
    /// The record could not be started; nothing was changed.
    Record(DomainError),
    /// The change itself failed; nothing was recorded.
    Change(E),
    /// The record could not be committed, so the change was undone.
    Undone(DomainError),
}
