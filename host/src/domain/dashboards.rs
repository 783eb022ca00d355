//! Dashboards: each workspace's ordered list of widget instances, each
//! rendered by its plugin when the dashboard is shown.
//!
//! A widget reads data only through the host callbacks handed to it, which
//! answer only for the workspace being rendered. A widget whose plugin
//! fails, panics, times out or is gone gets an error in its own tile; the
//! rest of the dashboard still renders. Changes are audited as
//! `dashboard.widget.add`, `dashboard.widget.remove` and
//! `dashboard.reorder`.

use std::sync::Arc;

use serde_json::{json, Value};
use vigilo_sdk::loader::Registration;
use vigilo_sdk::wire::ElementSpec;
use vigilo_sdk::wire::RenderRequest;
use vigilo_sdk::PluginKind;

use super::{record, DomainError, DomainResult};
use crate::domain::authz::{Access, Permission};
use crate::domain::Context;
use crate::plugins::host_api::{HostCalls, Scope};
use crate::plugins::PluginEntry;
use crate::store;
use crate::store::dashboards::DashboardWidget;

/// A widget on the dashboard, rendered.
#[derive(Debug)]
pub struct Tile {
    /// The instance.
    pub instance: DashboardWidget,
    /// The plugin providing the widget (None if no loaded plugin does).
    pub plugin: Option<Arc<PluginEntry>>,
    /// What the widget rendered, or why it did not.
    pub data: DomainResult<Value>,
}

/// The workspace's dashboard, every widget rendered (needs `workspace.read`).
pub async fn render(state: &Context, access: &Access) -> DomainResult<Vec<Tile>> {
    render_only(state, access, None).await
}

/// As [`render`], only the tile `only` when given (none if there is no
/// such tile on the dashboard).
pub async fn render_only(
    state: &Context,
    access: &Access,
    only: Option<i64>,
) -> DomainResult<Vec<Tile>> {
    access.require(Permission::WorkspaceRead)?;
    let mut instances = state.store.dashboard(access.workspace.id).await?;
    if let Some(id) = only {
        instances.retain(|instance| instance.id == id);
    }
    let mut tiles = Vec::with_capacity(instances.len());
    for instance in instances {
        let found = state
            .plugins
            .registration(PluginKind::DashboardWidget, &instance.widget);
        let (plugin, data) = match found {
            None => (
                None,
                Err(DomainError::plugin_unavailable(format!(
                    "no loaded plugin provides the widget `{}`",
                    instance.widget
                ))),
            ),
            Some((entry, _)) => {
                let host = HostCalls::new(
                    state.store.clone(),
                    state.integrations.clone(),
                    Scope::Workspace {
                        id: access.workspace.id,
                        slug: access.workspace.slug.clone(),
                    },
                    entry.clone(),
                );
                let request = RenderRequest {
                    name: instance.widget.clone(),
                    workspace: access.workspace.slug.clone(),
                    config: instance.config.clone(),
                };
                let data = state
                    .plugins
                    .call(&entry, move |handle| handle.render_widget(&request, &host))
                    .await
                    .map_err(DomainError::from);
                (Some(entry), data)
            }
        };
        tiles.push(Tile {
            instance,
            plugin,
            data,
        });
    }
    Ok(tiles)
}

/// A widget the server offers for dashboards.
#[derive(Debug, Clone)]
pub struct WidgetType {
    /// The widget's name, used when adding it.
    pub name: String,
    /// Label for menus.
    pub label: String,
    /// Help text.
    pub description: String,
    /// JSON Schema of a tile's configuration.
    pub config_schema: Value,
    /// The custom element that draws its tiles, if the plugin has one.
    pub element: Option<ElementSpec>,
    /// The plugin providing it.
    pub plugin: Arc<PluginEntry>,
}

/// Every widget loaded plugins provide.
pub fn widget_types(state: &Context) -> Vec<WidgetType> {
    state
        .plugins
        .registrations(PluginKind::DashboardWidget)
        .into_iter()
        .filter_map(|(entry, registration)| match registration {
            Registration::DashboardWidget {
                name,
                label,
                description,
                config_schema,
                element,
            } => Some(WidgetType {
                name,
                label,
                description,
                config_schema,
                element,
                plugin: entry,
            }),
            _ => None,
        })
        .collect()
}

/// Appends a widget to the dashboard (needs `dashboard.edit`); its
/// configuration is checked against the widget's schema.
pub async fn add_widget(
    state: &Context,
    access: &Access,
    widget: &str,
    config: &Value,
) -> DomainResult<DashboardWidget> {
    access.require(Permission::DashboardEdit)?;
    let schema = match state
        .plugins
        .registration(PluginKind::DashboardWidget, widget)
    {
        Some((_, Registration::DashboardWidget { config_schema, .. })) => config_schema,
        _ => {
            let available: Vec<String> = widget_types(state).into_iter().map(|w| w.name).collect();
            return Err(DomainError::invalid(
                "widget",
                format!(
                    "no loaded plugin provides a widget `{widget}`; available: {}",
                    if available.is_empty() {
                        "none".to_owned()
                    } else {
                        available.join(", ")
                    }
                ),
            ));
        }
    };
    let config = check_config(state, widget, &schema, config).await?;
    let mut tx = state.store.begin_write().await?;
    let added =
        store::dashboards::add_dashboard_widget(&mut tx, access.workspace.id, widget, &config)
            .await?;
    record(
        &mut tx,
        access,
        "dashboard.widget.add",
        widget,
        json!({"id": added.id, "position": added.position, "config": added.config}),
    )
    .await?;
    tx.commit().await?;
    Ok(added)
}

/// Changes the options of tile `id` (needs `dashboard.edit`): checked as
/// when it was added, audited as `dashboard.widget.update` with the options
/// before and after. The tile shows them at its next refresh.
pub async fn update_widget(
    state: &Context,
    access: &Access,
    id: i64,
    config: &Value,
) -> DomainResult<DashboardWidget> {
    access.require(Permission::DashboardEdit)?;
    let current = state
        .store
        .dashboard(access.workspace.id)
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| DomainError::NotFound(format!("no widget {id} on this dashboard")))?;
    let schema = match state
        .plugins
        .registration(PluginKind::DashboardWidget, &current.widget)
    {
        Some((_, Registration::DashboardWidget { config_schema, .. })) => config_schema,
        _ => {
            return Err(DomainError::plugin_unavailable(format!(
                "no loaded plugin provides the widget `{}`, so its options cannot be checked; \
                 ask an operator to install or enable it",
                current.widget
            )))
        }
    };
    let config = check_config(state, &current.widget, &schema, config).await?;
    let mut tx = state.store.begin_write().await?;
    let updated =
        store::dashboards::set_dashboard_widget_config(&mut tx, access.workspace.id, id, &config)
            .await?;
    record(
        &mut tx,
        access,
        "dashboard.widget.update",
        updated.widget.clone(),
        json!({"id": id, "previous": current.config, "config": updated.config}),
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Checks a tile's options in full against the widget's JSON Schema, then
/// asks the widget (which may refuse them with its own reason, or normalise
/// them); answers the options to store. A refusal names the option
/// (`config.warn_at`) when it is about one.
async fn check_config(
    state: &Context,
    widget: &str,
    schema: &Value,
    config: &Value,
) -> DomainResult<Value> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        DomainError::plugin_unavailable(format!(
            "the widget `{widget}` describes its options with a schema that is not valid \
             JSON Schema ({e}); ask its vendor for a fixed release"
        ))
    })?;
    if let Some(error) = validator.iter_errors(config).next() {
        let path: Vec<String> = error
            .instance_path()
            .as_str()
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect();
        let (field, message) = if path.is_empty() {
            (
                "config".to_owned(),
                format!("the options are not valid: {error}"),
            )
        } else {
            (
                format!("config.{}", path.join(".")),
                format!("option `{}`: {error}", path.join(".")),
            )
        };
        return Err(DomainError::invalid(field, message));
    }
    let Some((entry, _)) = state
        .plugins
        .registration(PluginKind::DashboardWidget, widget)
    else {
        return Ok(config.clone());
    };
    let request = vigilo_sdk::wire::ValidateConfigRequest {
        name: widget.to_owned(),
        config: config.clone(),
    };
    match state
        .plugins
        .call(&entry, move |handle| {
            handle.validate_widget_config(&request)
        })
        .await
    {
        Ok(normalised) => Ok(normalised),
        // Built before widgets could check their options: the schema is all.
        Err(crate::plugins::PluginCallError::Unsupported { .. }) => Ok(config.clone()),
        // "columns: ..." is about the option `columns`, when it has one.
        Err(crate::plugins::PluginCallError::Rejected { message, .. }) => {
            let about = message.split_once(": ").filter(|(key, _)| {
                schema["properties"]
                    .as_object()
                    .is_some_and(|p| p.contains_key(*key))
            });
            Err(match about {
                Some((key, why)) => {
                    DomainError::invalid(format!("config.{key}"), format!("option `{key}`: {why}"))
                }
                None => DomainError::invalid("config", message),
            })
        }
        Err(other) => Err(other.into()),
    }
}

/// Removes a widget from the dashboard (needs `dashboard.edit`).
pub async fn remove_widget(
    state: &Context,
    access: &Access,
    id: i64,
) -> DomainResult<DashboardWidget> {
    access.require(Permission::DashboardEdit)?;
    let mut tx = state.store.begin_write().await?;
    let removed =
        store::dashboards::remove_dashboard_widget(&mut tx, access.workspace.id, id).await?;
    record(
        &mut tx,
        access,
        "dashboard.widget.remove",
        removed.widget.clone(),
        json!({"id": removed.id}),
    )
    .await?;
    tx.commit().await?;
    Ok(removed)
}

/// Puts the widgets in the order of `ids`, which must list every widget on
/// the dashboard exactly once (needs `dashboard.edit`).
pub async fn reorder(state: &Context, access: &Access, ids: &[i64]) -> DomainResult<()> {
    access.require(Permission::DashboardEdit)?;
    let mut tx = state.store.begin_write().await?;
    let current = store::dashboards::dashboard_in(&mut tx, access.workspace.id).await?;
    let mut have: Vec<i64> = current.iter().map(|w| w.id).collect();
    let mut want = ids.to_vec();
    have.sort_unstable();
    want.sort_unstable();
    if have != want {
        return Err(DomainError::invalid(
            "ids",
            format!(
                "`ids` must list every widget on the dashboard exactly once: {}",
                current
                    .iter()
                    .map(|w| w.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    store::dashboards::set_dashboard_order(&mut tx, access.workspace.id, ids).await?;
    record(
        &mut tx,
        access,
        "dashboard.reorder",
        access.workspace.slug.clone(),
        json!({"ids": ids}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Moves widget `id` one place up (`-1`) or down (`+1`) (needs
/// `dashboard.edit`); moving past either end changes nothing.
pub async fn move_widget(state: &Context, access: &Access, id: i64, by: i64) -> DomainResult<()> {
    access.require(Permission::DashboardEdit)?;
    let mut ids: Vec<i64> = state
        .store
        .dashboard(access.workspace.id)
        .await?
        .into_iter()
        .map(|w| w.id)
        .collect();
    let at = ids
        .iter()
        .position(|w| *w == id)
        .ok_or_else(|| DomainError::NotFound(format!("no widget {id} on this dashboard")))?;
    let to = at as i64 + by;
    if to < 0 || to >= ids.len() as i64 {
        return Ok(());
    }
    ids.swap(at, to as usize);
    reorder(state, access, &ids).await
}
