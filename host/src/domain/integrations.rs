//! Integrations: a workspace's configured adapters. Holders of
//! `integration.manage` add, change, remove and test them; members see them
//! without their secrets, which are sealed at rest and never shown again.
//!
//! A configuration is checked against the adapter's published schema by the
//! server, then by the adapter itself. An update that changes a secret must
//! give every stored secret again (see [`crate::integrations`]), and an
//! update never overwrites a change someone made meanwhile. Audited as
//! `integration.create`, `integration.update`, `integration.delete` and
//! `integration.test`, with the plain settings and which secrets are set,
//! never their values.

use serde_json::{json, Map, Value};
use vigilo_sdk::Event;

use super::{record, validate, DomainError, DomainResult};
use crate::domain::authz::{Access, Permission};
use crate::domain::Context;
use crate::integrations::DeliveryOutcome;
use crate::store;
use crate::store::integrations::{Delivery, Integration};

/// Audit details of a configuration: its plain settings and which secret
/// settings are set, never their values.
fn config_details(plain: &Map<String, Value>, sealed: &Map<String, Value>) -> Value {
    json!({"config": plain, "secrets_set": sealed.keys().collect::<Vec<_>>()})
}

/// The workspace's integrations (needs `workspace.read`).
pub async fn list(state: &Context, access: &Access) -> DomainResult<Vec<Integration>> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state.store.list_integrations(access.workspace.id).await?)
}

/// One integration (needs `workspace.read`).
pub async fn get(state: &Context, access: &Access, name: &str) -> DomainResult<Integration> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state.store.integration(access.workspace.id, name).await?)
}

/// Adds an integration of `adapter` (needs `integration.manage`).
pub async fn create(
    state: &Context,
    access: &Access,
    name: &str,
    adapter: &str,
    config: Map<String, Value>,
) -> DomainResult<Integration> {
    access.require(Permission::IntegrationManage)?;
    let name = validate::name_not_number("name", name)?;
    let (plain, sealed) = state
        .integrations
        .prepare(access.workspace.id, &name, adapter, config, None)
        .await?;
    let mut tx = state.store.begin_write().await?;
    let integration = store::integrations::insert_integration(
        &mut tx,
        access.workspace.id,
        &name,
        adapter,
        &plain,
        &sealed,
        access.caller.user.id,
    )
    .await?;
    let mut details = config_details(&plain, &sealed);
    details["adapter"] = json!(adapter);
    record(&mut tx, access, "integration.create", &name, details).await?;
    tx.commit().await?;
    Ok(integration)
}

/// Changes to an integration.
#[derive(Debug, Clone, Default)]
pub struct IntegrationChanges {
    /// Settings to set (merged over the stored ones; `null` removes one).
    pub config: Map<String, Value>,
    /// Turn delivery on or off.
    pub enabled: Option<bool>,
}

/// Changes an integration's settings or turns it on or off (needs
/// `integration.manage`).
pub async fn update(
    state: &Context,
    access: &Access,
    name: &str,
    changes: &IntegrationChanges,
) -> DomainResult<Integration> {
    access.require(Permission::IntegrationManage)?;
    let mut integration = state.store.integration(access.workspace.id, name).await?;
    // Turning an integration on or off needs no check of its settings (its
    // adapter may be gone, which may be why it is being turned off).
    if !changes.config.is_empty() {
        let mut config = integration.config.clone();
        let mut previous = integration.clone();
        for (key, value) in &changes.config {
            if value.is_null() {
                config.remove(key);
                previous.sealed_secrets.remove(key);
            } else {
                config.insert(key.clone(), value.clone());
            }
        }
        let (plain, sealed) = state
            .integrations
            .prepare(
                access.workspace.id,
                &integration.name,
                &integration.adapter,
                config,
                Some((&previous, &changes.config)),
            )
            .await?;
        integration.config = plain;
        integration.sealed_secrets = sealed;
    }
    if let Some(enabled) = changes.enabled {
        integration.enabled = enabled;
    }
    let mut tx = state.store.begin_write().await?;
    // The settings were checked against what was read before the adapter
    // was called; if someone changed the integration meanwhile, say so
    // rather than overwrite their change.
    let current = store::integrations::integration_in(&mut tx, access.workspace.id, name).await?;
    if current.updated_at != integration.updated_at {
        return Err(DomainError::Conflict(format!(
            "integration `{}` was changed by someone else meanwhile; read it again and retry",
            integration.name
        )));
    }
    let integration =
        store::integrations::update_integration(&mut tx, access.workspace.id, &integration).await?;
    let mut details = config_details(&integration.config, &integration.sealed_secrets);
    details["changed"] = json!(changes.config.keys().collect::<Vec<_>>());
    details["enabled"] = json!(integration.enabled);
    record(
        &mut tx,
        access,
        "integration.update",
        &integration.name,
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(integration)
}

/// Removes an integration (needs `integration.manage`); its delivery log
/// stays.
pub async fn delete(state: &Context, access: &Access, name: &str) -> DomainResult<Integration> {
    access.require(Permission::IntegrationManage)?;
    let mut tx = state.store.begin_write().await?;
    let integration =
        store::integrations::integration_in(&mut tx, access.workspace.id, name).await?;
    store::integrations::delete_integration(&mut tx, access.workspace.id, integration.id).await?;
    record(
        &mut tx,
        access,
        "integration.delete",
        &integration.name,
        json!({"adapter": integration.adapter}),
    )
    .await?;
    tx.commit().await?;
    Ok(integration)
}

/// Sends a test message through the integration (needs
/// `integration.manage`). A failed delivery is an outcome with `ok: false`
/// and the reason, not an error; it is recorded in the delivery log either
/// way.
pub async fn test(
    state: &Context,
    access: &Access,
    name: &str,
    text: Option<&str>,
) -> DomainResult<DeliveryOutcome> {
    access.require(Permission::IntegrationManage)?;
    let integration = state.store.integration(access.workspace.id, name).await?;
    let sender = &access.caller.user.email;
    let text = match text {
        Some(text) => validate::text("text", text, 2000)?,
        None => format!(
            "Test message from Vigilo for workspace {} (sent by {sender}).",
            access.workspace.name
        ),
    };
    let event = Event {
        event_type: "integration.test".into(),
        workspace: access.workspace.slug.clone(),
        title: format!("Vigilo test message: {}", integration.name),
        text,
        data: json!({"integration": integration.name, "sent_by": sender}),
    };
    let outcome = state
        .integrations
        .deliver(access.workspace.id, &integration, &event, "test")
        .await;
    let mut tx = state.store.begin_write().await?;
    record(
        &mut tx,
        access,
        "integration.test",
        &integration.name,
        json!({"ok": outcome.ok, "error": outcome.error, "delivery_id": outcome.delivery_id}),
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// The integration's delivery log, newest first (needs `workspace.read`).
pub async fn deliveries(
    state: &Context,
    access: &Access,
    name: &str,
    limit: Option<i64>,
) -> DomainResult<Vec<Delivery>> {
    access.require(Permission::WorkspaceRead)?;
    let limit = validate::limit(limit, 50, 1000)?;
    let integration = state.store.integration(access.workspace.id, name).await?;
    Ok(state
        .store
        .deliveries(access.workspace.id, integration.id, limit)
        .await?)
}
