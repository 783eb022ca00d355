//! Members: who belongs to a workspace, with which role (listed a page at
//! a time, see [`super::paging`]), changing their role and removing them.
//!
//! The last owner cannot be removed or given another role
//! ([`keep_an_owner`]), and nobody grants more than they hold. Audited as
//! `member.role` and `member.remove`.

use serde_json::json;

use super::invites::resolve_grant;
use super::paging::{Listed, Order, PageQuery};
use super::roles::ensure_grantable;
use super::{record, DomainError, DomainResult};
use crate::domain::authz::{Access, Permission, Role};
use crate::domain::Context;
use crate::store::workspaces::Member;
use crate::store::{self, PageAt, WriteTx};

/// A page of the workspace's members, by email (needs `member.read`);
/// `after` and `before` are emails.
pub async fn list(
    state: &Context,
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
pub async fn remove(state: &Context, access: &Access, email: &str) -> DomainResult<Member> {
    access.require(Permission::MemberRemove)?;
    let email = email.trim().to_ascii_lowercase();
    let mut tx = state.store.begin_write().await?;
    let member = member_in(&mut tx, access.workspace.id, &email).await?;
    keep_an_owner(&mut tx, access.workspace.id, &member, false).await?;
    store::workspaces::delete_membership(&mut tx, access.workspace.id, member.user_id).await?;
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
    state: &Context,
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
    let workspace_id = access.workspace.id;
    let custom_role_id = grant.custom.as_ref().map(|c| c.id);
    let mut tx = state.store.begin_write().await?;
    let before = member_in(&mut tx, workspace_id, &email).await?;
    let stays_owner = grant.role == Role::Owner && custom_role_id.is_none();
    keep_an_owner(&mut tx, workspace_id, &before, stays_owner).await?;
    store::workspaces::update_membership_role(
        &mut tx,
        workspace_id,
        before.user_id,
        grant.role,
        custom_role_id,
    )
    .await?;
    let after = member_in(&mut tx, workspace_id, &email).await?;
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

/// The member with (lower-case) `email`, inside the write transaction.
async fn member_in(tx: &mut WriteTx, workspace_id: i64, email: &str) -> DomainResult<Member> {
    store::workspaces::member_by_email_in(tx, workspace_id, email)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("{email} is not a member of this workspace")))
}

/// The rule that a workspace always keeps an owner: `member`, an owner
/// with the built-in role, may stop being one (removed, or given another
/// role, unless `stays_owner`) only while another member is one too.
async fn keep_an_owner(
    tx: &mut WriteTx,
    workspace_id: i64,
    member: &Member,
    stays_owner: bool,
) -> DomainResult<()> {
    let is_owner = member.role == Role::Owner && member.custom_role.is_none();
    if !is_owner || stays_owner {
        return Ok(());
    }
    if store::workspaces::count_owners_in(tx, workspace_id).await? <= 1 {
        return Err(DomainError::Conflict(format!(
            "{} is the workspace's last owner; make someone else an owner first",
            member.email
        )));
    }
    Ok(())
}
