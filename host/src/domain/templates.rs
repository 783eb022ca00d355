//! The export document and workspace templates.
//!
//! A workspace export and a template's snapshot are the same document
//! ([`Snapshot`]): exporting a workspace, storing the file as a template and
//! creating a workspace from that template reproduces its structure
//! (settings, policies, custom roles, custom fields, playbooks). Only
//! platform admins create and delete templates (`template.create`,
//! `template.delete`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::fields::FieldDefinition;
use super::playbooks::PlaybookDefinition;
use super::{record_installation, validate, DomainError, DomainResult};
use crate::domain::authz::{Caller, PermissionSet, Role};
use crate::domain::Context;
use crate::store;
use crate::store::templates::Template;

/// Current version of the snapshot document.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// A workspace's structural configuration: what `workspace export` prints
/// and what a template stores.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Version of this document's shape (currently 1).
    #[schema(minimum = 1, maximum = 1)]
    pub schema_version: u32,
    /// Workspace settings.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Workspace policies.
    #[schema(value_type = Object)]
    pub policies: Map<String, Value>,
    /// Custom roles.
    pub custom_roles: Vec<SnapshotRole>,
    /// Custom field definitions (at most 100, a workspace's limit).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub custom_fields: Vec<FieldDefinition>,
    /// Playbooks.
    #[serde(default)]
    pub playbooks: Vec<PlaybookDefinition>,
}

/// A custom role inside a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRole {
    /// Name (unique among the snapshot's custom roles).
    #[schema(value_type = super::schemas::CustomRoleName)]
    pub name: String,
    /// Built-in role it is based on.
    #[schema(value_type = crate::domain::authz::Role)]
    pub base_role: String,
    /// Permissions it holds.
    #[schema(value_type = Vec<super::schemas::PermissionName>)]
    pub permissions: Vec<String>,
}

impl SnapshotRole {
    /// The role's base and permissions, checked.
    pub fn parse(&self) -> DomainResult<(Role, PermissionSet)> {
        validate::identifier("custom_roles.name", &self.name)?;
        let base = self
            .base_role
            .parse::<Role>()
            .map_err(|e| DomainError::invalid("custom_roles.base_role", e))?;
        let perms = PermissionSet::parse(self.permissions.iter().map(String::as_str))
            .map_err(|e| DomainError::invalid("custom_roles.permissions", e))?;
        Ok((base, perms))
    }
}

impl Snapshot {
    /// Reads a stored snapshot.
    pub fn from_value(v: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(v)
    }

    /// Checks a snapshot supplied by a user.
    pub fn validate(&self) -> DomainResult<()> {
        if self.schema_version != SNAPSHOT_SCHEMA_VERSION {
            return Err(DomainError::invalid(
                "snapshot.schema_version",
                format!(
                    "snapshot schema_version {} is not supported; this server reads version {SNAPSHOT_SCHEMA_VERSION}",
                    self.schema_version
                ),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for role in &self.custom_roles {
            role.parse()?;
            if !names.insert(role.name.as_str()) {
                return Err(DomainError::invalid(
                    "snapshot.custom_roles",
                    format!("custom role `{}` appears twice", role.name),
                ));
            }
        }
        if self.custom_fields.len() > super::fields::MAX_FIELDS {
            return Err(super::fields::too_many_fields(self.custom_fields.len())
                .under("snapshot.custom_fields"));
        }
        let mut keys = std::collections::BTreeSet::new();
        for field in &self.custom_fields {
            field
                .parse()
                .map_err(|e| e.under("snapshot.custom_fields"))?;
            if !keys.insert(field.key.as_str()) {
                return Err(DomainError::invalid(
                    "snapshot.custom_fields",
                    format!("custom field `{}` appears twice", field.key),
                ));
            }
        }
        let mut playbook_names = std::collections::BTreeSet::new();
        for playbook in &self.playbooks {
            playbook
                .checked()
                .map_err(|e| e.under(&format!("snapshot.playbooks.{}", playbook.name)))?;
            if !playbook_names.insert(playbook.name.as_str()) {
                return Err(DomainError::invalid(
                    "snapshot.playbooks",
                    format!("playbook `{}` appears twice", playbook.name),
                ));
            }
        }
        Ok(())
    }
}

/// A template with its snapshot read.
#[derive(Debug, Clone)]
pub struct TemplateWithSnapshot {
    /// The stored template.
    pub template: Template,
    /// Its snapshot.
    pub snapshot: Snapshot,
}

/// Every template, by name.
pub async fn list(state: &Context) -> DomainResult<Vec<Template>> {
    Ok(state.store.list_templates().await?)
}

/// One template with its snapshot.
pub async fn get(state: &Context, name: &str) -> DomainResult<TemplateWithSnapshot> {
    let template = state.store.template_by_name(name).await?;
    let snapshot = Snapshot::from_value(template.snapshot.clone()).map_err(|e| {
        DomainError::Internal(format!(
            "stored template `{name}` is not a valid snapshot: {e}"
        ))
    })?;
    Ok(TemplateWithSnapshot { template, snapshot })
}

/// A new template.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// Unique name (1–64 of letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// Free text (at most 500 characters).
    pub description: String,
    /// A workspace export.
    pub snapshot: Snapshot,
}

/// Stores a workspace export as a template (platform admins only).
pub async fn create(
    state: &Context,
    caller: &Caller,
    new: NewTemplate,
) -> DomainResult<TemplateWithSnapshot> {
    caller.require_platform_admin("create workspace templates")?;
    let name = validate::identifier("name", &new.name)?;
    if new.description.chars().count() > 500 {
        return Err(DomainError::invalid(
            "description",
            "`description` may be at most 500 characters",
        ));
    }
    new.snapshot.validate()?;
    let value =
        serde_json::to_value(&new.snapshot).map_err(|e| DomainError::Internal(e.to_string()))?;
    let mut tx = state.store.begin_write().await?;
    let stored = store::templates::insert_template(
        &mut tx,
        &name,
        new.description.trim(),
        &value,
        caller.user.id,
    )
    .await?;
    record_installation(
        &mut tx,
        caller,
        "template.create",
        &name,
        json!({"description": stored.description}),
    )
    .await?;
    tx.commit().await?;
    Ok(TemplateWithSnapshot {
        template: stored,
        snapshot: new.snapshot,
    })
}

/// Deletes a template (platform admins only). Workspaces made from it are
/// unaffected.
pub async fn delete(state: &Context, caller: &Caller, name: &str) -> DomainResult<()> {
    caller.require_platform_admin("delete workspace templates")?;
    let mut tx = state.store.begin_write().await?;
    store::templates::delete_template(&mut tx, name).await?;
    record_installation(&mut tx, caller, "template.delete", name, json!({})).await?;
    tx.commit().await?;
    Ok(())
}
