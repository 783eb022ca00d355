//! Members: who belongs to a workspace, with which role, and removing
//! them.
//!
//! The last owner cannot be removed (the store refuses it). Removals are
//! audited as `member.remove`.

use serde_json::json;

use super::record;
use super::DomainResult;
use crate::authz::{Access, Permission};
use crate::state::AppState;
use crate::store::{self, Member};

/// The workspace's members (needs `member.read`).
pub async fn list(state: &AppState, access: &Access) -> DomainResult<Vec<Member>> {
    access.require(Permission::MemberRead)?;
    Ok(state.store.list_members(access.workspace.id).await?)
}

/// Removes the member with `email` (needs `member.remove`).
pub async fn remove(state: &AppState, access: &Access, email: &str) -> DomainResult<Member> {
    access.require(Permission::MemberRemove)?;
    let email = email.trim().to_ascii_lowercase();
    let mut tx = state.store.begin_write().await?;
    let member = store::remove_member(&mut tx, access.workspace.id, &email).await?;
    record(
        &mut tx,
        access,
        "member.remove",
        &email,
        json!({"role": member.role, "custom_role": member.custom_role}),
    )
    .await?;
    tx.commit().await?;
    Ok(member)
}
