//! Members: who belongs to a workspace, with which role (listed a page at
//! a time, see [`super::paging`]), changing their role and removing them.
//!
//! The last owner cannot be removed or given another role (the store
//! refuses it), and nobody grants more than they hold. Audited as
//! `member.role` and `member.remove`.

use serde_json::json;

use super::invites::resolve_grant;
use super::paging::{Listed, Order, PageQuery};
use super::roles::ensure_grantable;
use super::{record, DomainError, DomainResult};
use crate::domain::authz::{Access, Permission};
use crate::state::AppState;
use crate::store::{self, Member, PageAt};

/// A page of the workspace's members, by email (needs `member.read`);
/// `after` and `before` are emails.
pub async fn list(
    state: &AppState,
    access: &Access,
    query: PageQuery<String>,
) -> DomainResult<Listed<Member, String>> {
    access.require(Permission::MemberRead)?;
    let (at, limit) = query.resolve(Order::Ascending)?;
    let email = |e: String| e.trim().to_ascii_lowercase();
    let at = match at {
        PageAt::First => PageAt::First,
        PageAt::After(e) => PageAt::After(email(e)),
        PageAt::Before(e) => PageAt::Before(email(e)),
        PageAt::Between(a, b) => PageAt::Between(email(a), email(b)),
    };
    let page = state
        .store
        .members_page(access.workspace.id, &at, limit)
        .await?;
    Ok(Listed::new(page, |m| m.email.clone()))
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

/// Gives the member with `email` the built-in `role` or the `custom_role`
/// (one of the two; needs `role.manage`).
pub async fn set_role(
    state: &AppState,
    access: &Access,
    email: &str,
    role: Option<&str>,
    custom_role: Option<&str>,
) -> DomainResult<Member> {
    access.require(Permission::RoleManage)?;
    let email = email.trim().to_ascii_lowercase();
    let (role, custom_role) = (
        role.filter(|r| !r.is_empty()),
        custom_role.filter(|c| !c.is_empty()),
    );
    if role.is_some() && custom_role.is_some() {
        return Err(DomainError::invalid(
            "role",
            "give either a role or a custom role, not both",
        ));
    }
    let customs = state.store.list_custom_roles(access.workspace.id).await?;
    let grant = resolve_grant(role, custom_role, &customs)?;
    ensure_grantable(access, &grant.permissions(), "this role")?;
    let mut tx = state.store.begin_write().await?;
    let (before, after) = store::set_member_role(
        &mut tx,
        access.workspace.id,
        &email,
        grant.role,
        grant.custom.as_ref().map(|c| c.id),
    )
    .await?;
    record(
        &mut tx,
        access,
        "member.role",
        &email,
        json!({
            "from": {"role": before.role, "custom_role": before.custom_role},
            "to": {"role": after.role, "custom_role": after.custom_role},
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
