//! Workspaces: creating them (empty, or stamped from a template), their
//! settings, exporting their structure, and which ones a caller sees.
//!
//! Only platform admins create workspaces; a new workspace has no members
//! until someone is invited. Every change is audited: `workspace.create`
//! (in the installation's chain and the new workspace's),
//! `workspace.settings.set` and `workspace.settings.unset` with the old and
//! new values.

use serde_json::{json, Map, Value};

use super::templates::{Snapshot, SnapshotRole, SNAPSHOT_SCHEMA_VERSION};
use super::{fields::FieldDefinition, playbooks::PlaybookDefinition};
use super::{validate, DomainError, DomainResult};
use crate::audit::NewEvent;
use crate::domain::authz::{Access, Caller, Permission, Role};
use crate::domain::Context;
use crate::store;
use crate::store::workspaces::Workspace;

/// A workspace a caller can see, with their role there (None for a
/// platform admin who is not a member).
#[derive(Debug, Clone)]
pub struct Visible {
    /// The workspace.
    pub workspace: Workspace,
    /// The caller's built-in role and custom role name.
    pub role: Option<(Role, Option<String>)>,
}

/// The workspaces `caller` can see: a platform admin sees every workspace,
/// others the ones they are members of.
pub async fn visible(state: &Context, caller: &Caller) -> DomainResult<Vec<Visible>> {
    let mine = state.store.memberships_of(caller.user.id).await?;
    let all = state.store.list_all_workspaces().await?;
    Ok(all
        .into_iter()
        .filter_map(|w| {
            let membership = mine.iter().find(|m| m.workspace == w.slug);
            match membership {
                Some(m) => Some(Visible {
                    role: Some((m.role, m.custom_role.clone())),
                    workspace: w,
                }),
                None if caller.user.platform_admin => Some(Visible {
                    workspace: w,
                    role: None,
                }),
                None => None,
            }
        })
        .collect())
}

/// A new workspace.
#[derive(Debug, Clone, Default)]
pub struct NewWorkspace {
    /// Display name (1–100 characters).
    pub name: String,
    /// URL-safe unique name: 2–63 of `a-z`, `0-9`, `-`.
    pub slug: String,
    /// Region label such as `us` or `eu` (1–32 characters).
    pub region: String,
    /// Name of a template to stamp the workspace from.
    pub template: Option<String>,
}

/// Creates a workspace (platform admins only), optionally from a template.
pub async fn create(
    state: &Context,
    caller: &Caller,
    new: &NewWorkspace,
) -> DomainResult<Workspace> {
    caller.require_platform_admin("create workspaces")?;
    let name = validate::text("name", &new.name, 100)?;
    let slug = validate::slug("slug", &new.slug)?;
    let region = validate::text("region", &new.region, 32)?;
    let mut tx = state.store.begin_write().await?;
    let snapshot = match &new.template {
        Some(t) => {
            let template = store::templates::template_by_name_in(&mut tx, t).await?;
            Some(Snapshot::from_value(template.snapshot).map_err(|e| {
                DomainError::Internal(format!(
                    "stored template `{t}` is not a valid snapshot: {e}"
                ))
            })?)
        }
        None => None,
    };
    let empty = Value::Object(Map::new());
    let (settings, policies) = match &snapshot {
        Some(s) => (
            Value::Object(s.settings.clone()),
            Value::Object(s.policies.clone()),
        ),
        None => (empty.clone(), empty),
    };
    let workspace =
        store::workspaces::insert_workspace(&mut tx, &slug, &name, &region, &settings, &policies)
            .await?;
    if let Some(snapshot) = &snapshot {
        for role in &snapshot.custom_roles {
            let (base, perms) = role.parse()?;
            store::workspaces::insert_custom_role(&mut tx, workspace.id, &role.name, base, &perms)
                .await?;
        }
        if snapshot.custom_fields.len() > super::fields::MAX_FIELDS {
            return Err(super::fields::too_many_fields(snapshot.custom_fields.len()));
        }
        for field in &snapshot.custom_fields {
            store::custom_fields::insert_custom_field(&mut tx, workspace.id, &field.parse()?)
                .await?;
        }
        for playbook in &snapshot.playbooks {
            let checked = playbook.checked()?;
            store::integrations::insert_playbook(
                &mut tx,
                workspace.id,
                &checked.name,
                &checked.description,
                &checked.steps,
                caller.user.id,
            )
            .await?;
        }
    }
    let details = json!({"name": name, "region": region, "template": new.template});
    let actor = caller.actor();
    crate::store::audit::append(
        &mut tx,
        &actor,
        NewEvent::new(None, "workspace.create", &slug, details.clone()),
    )
    .await?;
    crate::store::audit::append(
        &mut tx,
        &actor,
        NewEvent::new(Some(workspace.id), "workspace.create", &slug, details),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(workspace = %slug, template = ?new.template, "workspace created");
    Ok(workspace)
}

/// The largest setting value, encoded as JSON.
pub const MAX_SETTING_BYTES: usize = 64 * 1024;

/// The setting that makes a change's approval a second person's: its
/// author may not approve it.
pub const FOUR_EYES: &str = "four_eyes";

/// The settings Vigilo itself reads have a shape: `holidays` is a list of
/// dates (`2026-12-25`), `four_eyes` is true or false. Others are free.
fn check_known_setting(key: &str, value: &Value) -> DomainResult<()> {
    match key {
        "holidays" => {
            let Some(days) = value.as_array() else {
                return Err(DomainError::invalid(
                    "value",
                    "holidays are a list of dates, such as [\"2026-12-25\"]",
                ));
            };
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let bad: Vec<String> = days
                .iter()
                .filter(|d| {
                    d.as_str()
                        .is_none_or(|text| time::Date::parse(text, format).is_err())
                })
                .map(Value::to_string)
                .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                Err(DomainError::invalid(
                    "value",
                    format!(
                        "not a date: {}; holidays are dates such as \"2026-12-25\"",
                        bad.join(", ")
                    ),
                ))
            }
        }
        FOUR_EYES if !value.is_boolean() => Err(DomainError::invalid(
            "value",
            "four_eyes is true (a change's author may not approve it) or false",
        )),
        _ => Ok(()),
    }
}

/// Sets (`Some`) or removes (`None`) one workspace setting, such as
/// `holidays` (needs `workspace.settings`); returns every setting after the
/// change.
pub async fn write_setting(
    state: &Context,
    access: &Access,
    key: &str,
    value: Option<Value>,
) -> DomainResult<Value> {
    access.require(Permission::WorkspaceSettings)?;
    let key = validate::identifier("key", key)?;
    let slug = &access.workspace.slug;
    let mut tx = state.store.begin_write().await?;
    let workspace = store::workspaces::workspace_by_slug_in(&mut tx, slug)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no workspace `{slug}`")))?;
    let mut settings = match workspace.settings {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let (action, details) = match value {
        Some(v) => {
            if v.to_string().len() > MAX_SETTING_BYTES {
                return Err(DomainError::invalid(
                    "value",
                    "a setting's value may be at most 64 KiB of JSON",
                ));
            }
            check_known_setting(&key, &v)?;
            let details = json!({"key": key, "old": settings.get(&key), "new": v});
            settings.insert(key.clone(), v);
            ("workspace.settings.set", details)
        }
        None => {
            let old = settings.remove(&key).ok_or_else(|| {
                DomainError::NotFound(format!("workspace `{slug}` has no setting `{key}`"))
            })?;
            ("workspace.settings.unset", json!({"key": key, "old": old}))
        }
    };
    let settings = Value::Object(settings);
    store::workspaces::update_settings(&mut tx, workspace.id, &settings).await?;
    crate::store::audit::append(
        &mut tx,
        &access.actor(),
        NewEvent::new(Some(workspace.id), action, key, details),
    )
    .await?;
    tx.commit().await?;
    Ok(settings)
}

/// The workspace's structural configuration (needs `workspace.export`):
/// what `workspace export` prints and a template stores.
pub async fn export(state: &Context, access: &Access) -> DomainResult<Snapshot> {
    access.require(Permission::WorkspaceExport)?;
    let roles = state.store.list_custom_roles(access.workspace.id).await?;
    let as_map = |v: &Value| match v {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    Ok(Snapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION,
        settings: as_map(&access.workspace.settings),
        policies: as_map(&access.workspace.policies),
        custom_roles: roles
            .into_iter()
            .map(|r| SnapshotRole {
                name: r.name,
                base_role: r.base_role.name().to_string(),
                permissions: r.permissions.names(),
            })
            .collect(),
        custom_fields: state
            .store
            .custom_fields(access.workspace.id)
            .await?
            .into_iter()
            .map(FieldDefinition::from_stored)
            .collect(),
        playbooks: state
            .store
            .list_playbooks(access.workspace.id)
            .await?
            .into_iter()
            .map(PlaybookDefinition::from_stored)
            .collect::<DomainResult<_>>()?,
    })
}
