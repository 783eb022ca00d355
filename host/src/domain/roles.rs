//! Roles: the permission matrix as people see it, and custom roles.
//!
//! The matrix itself lives in [`crate::domain::authz`]. This module owns the rule
//! that nobody grants what they do not hold: a new custom role, and an
//! invite's role, may carry only permissions the caller has. Custom roles
//! are audited as `role.create` and `role.delete`.

use serde_json::json;

use super::{record, validate, DomainError, DomainResult};
use crate::domain::authz::{Access, Permission, PermissionSet, Role};
use crate::domain::Context;
use crate::store;
use crate::store::workspaces::CustomRole;

/// Fails with [`DomainError::Forbidden`] naming the first permission in
/// `perms` the caller does not hold; `what` names what would grant it
/// ("this role", "this invite").
pub fn ensure_grantable(access: &Access, perms: &PermissionSet, what: &str) -> DomainResult<()> {
    if let Some(p) = perms.0.iter().find(|p| !access.permissions.contains(**p)) {
        return Err(DomainError::forbidden(
            p.name(),
            format!(
                "{what} would grant `{p}`, which you do not hold in workspace `{}`",
                access.workspace.slug
            ),
        ));
    }
    Ok(())
}

/// The workspace's custom roles (needs `workspace.read`).
pub async fn custom_roles(state: &Context, access: &Access) -> DomainResult<Vec<CustomRole>> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state.store.list_custom_roles(access.workspace.id).await?)
}

/// A new custom role: the base role's permissions, plus `add`, minus `remove`.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    /// Name, unique in the workspace (1–64 of letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// Built-in role to start from.
    pub base_role: String,
    /// Permissions to add (wire names).
    pub add: Vec<String>,
    /// Permissions to remove (wire names).
    pub remove: Vec<String>,
}

/// Creates a custom role (needs `role.manage`, and every permission it
/// would hold).
pub async fn create(state: &Context, access: &Access, new: &NewRole) -> DomainResult<CustomRole> {
    access.require(Permission::RoleManage)?;
    let name = validate::identifier("name", &new.name)?;
    if Role::ALL.iter().any(|r| r.name() == name) {
        return Err(DomainError::invalid(
            "name",
            format!("`{name}` is a built-in role's name"),
        ));
    }
    let base: Role = new
        .base_role
        .parse()
        .map_err(|e| DomainError::invalid("base_role", e))?;
    let add = PermissionSet::parse(new.add.iter().map(String::as_str))
        .map_err(|e| DomainError::invalid("add", e))?;
    let remove = PermissionSet::parse(new.remove.iter().map(String::as_str))
        .map_err(|e| DomainError::invalid("remove", e))?;
    let mut perms = base.permissions();
    perms.0.extend(add.0);
    perms.0.retain(|p| !remove.contains(*p));
    ensure_grantable(access, &perms, "this role")?;
    let mut tx = state.store.begin_write().await?;
    let role =
        store::workspaces::insert_custom_role(&mut tx, access.workspace.id, &name, base, &perms)
            .await?;
    record(
        &mut tx,
        access,
        "role.create",
        &name,
        json!({"base_role": base, "permissions": perms.names()}),
    )
    .await?;
    tx.commit().await?;
    Ok(role)
}

/// Deletes a custom role that no member holds and no open invite names
/// (needs `role.manage`).
pub async fn delete(state: &Context, access: &Access, name: &str) -> DomainResult<CustomRole> {
    access.require(Permission::RoleManage)?;
    let mut tx = state.store.begin_write().await?;
    let role = store::workspaces::delete_custom_role(&mut tx, access.workspace.id, name).await?;
    record(
        &mut tx,
        access,
        "role.delete",
        name,
        json!({"base_role": role.base_role, "permissions": role.permissions.names()}),
    )
    .await?;
    tx.commit().await?;
    Ok(role)
}
