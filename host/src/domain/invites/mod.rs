//! Invites: one at a time, in bulk from a CSV file, and accepting one.
//!
//! An invite grants a built-in role or a custom role, never more than the
//! inviter holds. Its accept token is shown once to the inviter and queued
//! in the outbox, sealed (the database never holds it in the clear), for
//! the mailer. A bulk invite checks every row (malformed email, unknown role
//! or custom role, duplicate in the file, already a member, already
//! invited), can be previewed without sending anything, and invites the good
//! rows even when others fail, in short transactions so that other writers
//! are not held up; running the same file again invites nobody twice.
//! Nothing shown to an inviter tells whether an address has an account
//! elsewhere. Audited as `member.invite`, `invite.revoke`, `member.join`.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

mod bulk;
mod expiry;

pub use bulk::{
    bulk, parse_csv, BulkReport, BulkRow, CsvRow, RowOutcome, BULK_COLUMNS, MAX_BULK_ROWS,
};
pub use expiry::expire_everywhere;
use expiry::{expire, expire_in_batches};

use super::paging::{Listed, Order, PageQuery};
use super::roles::ensure_grantable;
use super::{record, validate, DomainError, DomainResult};
use crate::audit::{Actor, NewEvent};
use crate::domain::authz::{Access, Caller, Permission, PermissionSet, Role};
use crate::domain::Context;
use crate::store::audit::ChainAppender;
use crate::store::invites::{Expiring, Invite, InviteGrant, InviteStatus};
use crate::store::users::{TokenCreated, User};
use crate::store::workspaces::CustomRole;
use crate::store::{self, WriteTx};

/// A page of the workspace's invites, newest first (needs
/// `member.read`); `after` and `before` are invite ids.
pub async fn list(
    state: &Context,
    access: &Access,
    query: PageQuery<i64>,
) -> DomainResult<Listed<Invite, i64>> {
    access.require(Permission::MemberRead)?;
    let (at, limit) = query.resolve(Order::Descending)?;
    let page = state
        .store
        .invites_page(access.workspace.id, &at, limit)
        .await?;
    Ok(Listed::new(page, |i| i.id))
}

/// An invite just created, with its one-time accept token and link.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InviteCreated {
    /// The invite.
    #[serde(flatten)]
    pub invite: Invite,
    /// The one-time accept token (shown only here).
    pub accept_token: String,
    /// Link to pass on to the invitee.
    pub accept_url: String,
}

/// What an invite grants, resolved.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The built-in role (a custom role's base role).
    pub role: Role,
    /// The custom role, if any.
    pub custom: Option<CustomRole>,
}

impl Grant {
    /// The permissions it grants.
    pub fn permissions(&self) -> PermissionSet {
        match &self.custom {
            Some(c) => c.permissions.clone(),
            None => self.role.permissions(),
        }
    }
}

/// Resolves a role name or a custom role name (not both; empty means
/// absent) against the workspace's custom roles.
pub fn resolve_grant(
    role: Option<&str>,
    custom: Option<&str>,
    customs: &[CustomRole],
) -> DomainResult<Grant> {
    let role = role.filter(|r| !r.is_empty());
    match (role, custom.filter(|c| !c.is_empty())) {
        (_, Some(name)) => {
            let found = customs.iter().find(|c| c.name == name).ok_or_else(|| {
                DomainError::invalid("custom_role", format!("unknown custom role `{name}`"))
            })?;
            if let Some(r) = role {
                r.parse::<Role>()
                    .map_err(|e| DomainError::invalid("role", e))?;
            }
            Ok(Grant {
                role: found.base_role,
                custom: Some(found.clone()),
            })
        }
        (Some(r), None) => Ok(Grant {
            role: r.parse().map_err(|e| DomainError::invalid("role", e))?,
            custom: None,
        }),
        (None, None) => Err(DomainError::invalid(
            "role",
            "give a role (owner, approver, engineer, viewer) or a custom role",
        )),
    }
}

/// Who invites, and where.
struct Inviter<'a> {
    state: &'a Context,
    access: &'a Access,
    actor: Actor,
}

impl Inviter<'_> {
    /// Creates the invite, queues its mail and audits it, in `tx`.
    async fn invite(
        &self,
        tx: &mut WriteTx,
        chain: &mut ChainAppender,
        email: &str,
        grant: &Grant,
    ) -> DomainResult<Option<InviteCreated>> {
        let workspace = &self.access.workspace;
        let Some(created) = store::invites::insert_invite(
            tx,
            workspace.id,
            email,
            &InviteGrant {
                role: grant.role,
                custom_role: grant.custom.as_ref().map(|c| (c.id, c.name.as_str())),
                invited_by: self.access.caller.user.id,
                invited_by_email: &self.actor.label,
                ttl_days: self.state.config.invite_ttl_days,
            },
        )
        .await?
        else {
            return Ok(None);
        };
        let accept_url = format!("{}/invites/{}", self.state.public_url, created.accept_token);
        let role_text = grant
            .custom
            .as_ref()
            .map(|c| c.name.as_str())
            .unwrap_or(grant.role.name());
        let body = format!(
            "{} invited you to the Vigilo workspace \"{}\" as {role_text}.\n\n\
             Accept the invite here (the link works once and expires at {}):\n{accept_url}\n\n\
             Or with the CLI:\nvigilo invite accept {} --url {} --name \"Your Name\"\n",
            self.actor.label,
            workspace.name,
            created.invite.expires_at,
            created.accept_token,
            self.state.public_url
        );
        // The body holds the invite token: it is stored sealed, like every
        // other secret, so the database never has it in the clear.
        store::invites::queue_mail(
            tx,
            "invite",
            email,
            &format!("You are invited to {} on Vigilo", workspace.name),
            &self
                .state
                .secrets
                .seal(&crate::mail::sealing_context(email), &body),
        )
        .await?;
        chain
            .append(
                tx,
                &self.actor,
                NewEvent::new(
                    Some(workspace.id),
                    "member.invite",
                    email,
                    json!({"invite_id": created.invite.id, "role": grant.role, "custom_role": grant.custom.as_ref().map(|c| &c.name)}),
                ),
            )
            .await?;
        Ok(Some(InviteCreated {
            invite: created.invite,
            accept_url,
            accept_token: created.accept_token,
        }))
    }
}

/// The refusal of an invite for an address that already has an open one.
fn already_invited(email: &str) -> DomainError {
    DomainError::Conflict(format!("{email} already has a pending invite"))
}

/// One person to invite: a built-in `role` or a `custom_role`, not both.
#[derive(Debug, Clone, Default)]
pub struct NewInvite {
    /// Their address.
    pub email: String,
    /// A built-in role.
    pub role: Option<String>,
    /// A custom role's name.
    pub custom_role: Option<String>,
}

/// Invites one person (needs `member.invite`). The accept link is returned
/// and queued in the outbox (and mailed when SMTP is configured).
pub async fn create(
    state: &Context,
    access: &Access,
    new: &NewInvite,
) -> DomainResult<InviteCreated> {
    access.require(Permission::MemberInvite)?;
    let email = validate::email("email", &new.email)?;
    if new.role.is_some() && new.custom_role.is_some() {
        return Err(DomainError::invalid(
            "role",
            "give either `role` or `custom_role`, not both",
        ));
    }
    let customs = state.store.list_custom_roles(access.workspace.id).await?;
    let grant = resolve_grant(new.role.as_deref(), new.custom_role.as_deref(), &customs)?;
    ensure_grantable(access, &grant.permissions(), "this invite")?;
    let mut tx = state.store.begin_write().await?;
    if store::workspaces::member_by_email_in(&mut tx, access.workspace.id, &email)
        .await?
        .is_some()
    {
        return Err(DomainError::Conflict(format!(
            "{email} is already a member of `{}`",
            access.workspace.slug
        )));
    }
    let inviter = Inviter {
        state,
        access,
        actor: access.actor(),
    };
    expire(&mut tx, Expiring::Address(access.workspace.id, &email)).await?;
    let mut chain = ChainAppender::open(&mut tx, Some(access.workspace.id)).await?;
    let created = inviter
        .invite(&mut tx, &mut chain, &email, &grant)
        .await?
        .ok_or_else(|| already_invited(&email))?;
    wake_mailer(state, &mut tx);
    tx.commit().await?;
    Ok(created)
}

/// Revokes a pending invite (needs `member.invite`).
pub async fn revoke(state: &Context, access: &Access, id: i64) -> DomainResult<Invite> {
    access.require(Permission::MemberInvite)?;
    let mut tx = state.store.begin_write().await?;
    let invite = store::invites::revoke_invite(&mut tx, access.workspace.id, id).await?;
    record(
        &mut tx,
        access,
        "invite.revoke",
        &invite.email,
        json!({"invite_id": id}),
    )
    .await?;
    tx.commit().await?;
    Ok(invite)
}

/// Sends a pending or expired invite again (needs `member.invite`): the
/// old link stops working, and a new invite with the same role, a fresh
/// link and a fresh expiry is created and mailed. Audited as
/// `member.invite` (the new invite) and `invite.resend` (which one it
/// replaces).
pub async fn resend(state: &Context, access: &Access, id: i64) -> DomainResult<InviteCreated> {
    access.require(Permission::MemberInvite)?;
    let mut tx = state.store.begin_write().await?;
    let old = store::invites::invite_by_id_in(&mut tx, access.workspace.id, id).await?;
    expire(
        &mut tx,
        Expiring::Address(access.workspace.id, &old.invite.email),
    )
    .await?;
    let old = store::invites::invite_by_id_in(&mut tx, access.workspace.id, id).await?;
    if !matches!(
        old.invite.status,
        InviteStatus::Pending | InviteStatus::Expired
    ) {
        return Err(DomainError::Conflict(format!(
            "invite {id} is {} and cannot be sent again",
            old.invite.status
        )));
    }
    let customs = state.store.list_custom_roles(access.workspace.id).await?;
    let grant = match old.custom_role_id {
        Some(custom_id) => {
            let custom = customs
                .iter()
                .find(|c| c.id == custom_id)
                .cloned()
                .ok_or_else(|| {
                    DomainError::Conflict(format!(
                        "the custom role of invite {id} no longer exists; invite {} again with another role",
                        old.invite.email
                    ))
                })?;
            Grant {
                role: custom.base_role,
                custom: Some(custom),
            }
        }
        None => Grant {
            role: old.invite.role,
            custom: None,
        },
    };
    ensure_grantable(access, &grant.permissions(), "this invite")?;
    if old.invite.status == InviteStatus::Pending {
        store::invites::revoke_invite(&mut tx, access.workspace.id, id).await?;
    }
    let inviter = Inviter {
        state,
        access,
        actor: access.actor(),
    };
    let mut chain = ChainAppender::open(&mut tx, Some(access.workspace.id)).await?;
    let created = inviter
        .invite(&mut tx, &mut chain, &old.invite.email, &grant)
        .await?
        .ok_or_else(|| already_invited(&old.invite.email))?;
    chain
        .append(
            &mut tx,
            &inviter.actor,
            NewEvent::new(
                Some(access.workspace.id),
                "invite.resend",
                &old.invite.email,
                json!({"invite_id": created.invite.id, "replaces": id}),
            ),
        )
        .await?;
    wake_mailer(state, &mut tx);
    tx.commit().await?;
    Ok(created)
}

/// Wakes the mailer once `tx`, which queued mail, is committed.
pub(crate) fn wake_mailer(state: &Context, tx: &mut WriteTx) {
    let mailer = state.mail_queued.clone();
    tx.after_commit(move || mailer.notify_one());
}

/// What an invite link shows before it is accepted. It does not say
/// whether the invited address has an account: the inviter holds the link
/// too, and must not learn that of an address that belongs to other
/// workspaces.
#[derive(Debug, Clone)]
pub struct InvitePreview {
    /// The invite.
    pub invite: Invite,
    /// The workspace's slug.
    pub workspace_slug: String,
    /// The workspace's name.
    pub workspace_name: String,
}

/// What the invite with accept token `token` is for (anyone holding the
/// token may see it).
pub async fn preview(state: &Context, token: &str) -> DomainResult<InvitePreview> {
    let not_found =
        || DomainError::NotFound("no such invite: check the link or ask for a new invite".into());
    if !crate::secrets::well_formed(token, crate::secrets::INVITE_TOKEN_PREFIX) {
        return Err(not_found());
    }
    let (record, workspace_slug, workspace_name) = state
        .store
        .invite_by_token(&crate::secrets::hash(token))
        .await?
        .ok_or_else(not_found)?;
    Ok(InvitePreview {
        invite: record.invite,
        workspace_slug,
        workspace_name,
    })
}

/// The outcome of accepting an invite.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accepted {
    /// The member.
    pub user: User,
    /// Workspace slug joined.
    pub workspace: String,
    /// The built-in role granted.
    pub role: Role,
    /// The custom role granted, if any.
    pub custom_role: Option<String>,
    /// The new member's first API token; null when the address already had
    /// an account (which then had to authenticate).
    pub token: Option<TokenCreated>,
}

/// What accepting an invite needs.
#[derive(Debug, Clone, Default)]
pub struct Acceptance {
    /// The invite's accept token (`vgi_...`).
    pub token: String,
    /// The new member's display name (1–100 characters).
    pub name: String,
    /// The new member's password, when they accept in the browser (checked
    /// against the password rules; ignored for an existing account).
    pub password: Option<String>,
    /// Whether a new member gets a first API token (the CLI's way in; the
    /// browser signs them in instead).
    pub first_token: bool,
}

/// Refuses an invite that is no longer pending, or that is for another
/// address than the signed-in `caller`'s.
fn acceptable_by(invite: &store::invites::Invite, caller: Option<&Caller>) -> DomainResult<()> {
    if invite.status != InviteStatus::Pending {
        return Err(DomainError::Conflict(format!(
            "this invite is {} and can no longer be accepted",
            invite.status
        )));
    }
    if let Some(c) = caller.filter(|c| c.user.email != invite.email) {
        return Err(DomainError::forbidden(
            "invitee",
            format!(
                "this invite is for {}, and you are signed in as {}: sign out (or use no token) to accept it",
                invite.email, c.user.email
            ),
        ));
    }
    Ok(())
}

/// Checks the password a new account chose when accepting the invite with
/// `token`, and hashes it (slowly, on purpose, off the executor).
async fn new_password_hash(
    state: &Context,
    token: &str,
    password: &str,
    name: &str,
) -> DomainResult<String> {
    let (record, _, _) = state
        .store
        .invite_by_token(&crate::secrets::hash(token))
        .await?
        .ok_or_else(|| {
            DomainError::NotFound("no such invite: check the link or ask for a new invite".into())
        })?;
    super::passwords::check_new(password, &record.invite.email, name)?;
    super::passwords::hash_off_executor(password.to_owned()).await
}

/// Accepts an invite with its one-time token. A caller who is signed in
/// (or sends a token) must be the invited address, whether or not it has an
/// account; without one, a new address becomes a user (with the password,
/// when one is given) and gets its first API token, and an address that
/// already has an account is asked to authenticate as it. The password and
/// name are checked first, the same way in both cases.
pub async fn accept(
    state: &Context,
    caller: Option<&Caller>,
    acceptance: &Acceptance,
) -> DomainResult<Accepted> {
    let name = validate::text("name", &acceptance.name, 100)?;
    let not_found =
        || DomainError::NotFound("no such invite: check the link or ask for a new invite".into());
    let token = &acceptance.token;
    if !crate::secrets::well_formed(token, crate::secrets::INVITE_TOKEN_PREFIX) {
        return Err(not_found());
    }
    // A password is checked and hashed before the writer is taken (the
    // hash is slow on purpose), whether or not the address has an account.
    let password_hash = match (&acceptance.password, caller) {
        (Some(password), None) => Some(new_password_hash(state, token, password, &name).await?),
        _ => None,
    };
    let mut tx = state.store.begin_write().await?;
    let record = store::invites::invite_by_token_hash(&mut tx, &crate::secrets::hash(token))
        .await?
        .ok_or_else(not_found)?;
    let invite = &record.invite;
    acceptable_by(invite, caller)?;
    let existing = store::users::user_by_email(&mut tx, &invite.email).await?;
    let new_user = existing.is_none();
    let (user, first_token, actor) = match (existing, caller) {
        (Some(user), Some(c)) => (user, None, c.actor()),
        (Some(_), None) => {
            return Err(DomainError::Unauthenticated {
                code: "unauthenticated",
                message: format!(
                    "This invite cannot be accepted this way. If {} already has a Vigilo account, \
                     sign in as it (or send its API token) to accept.",
                    invite.email
                ),
            })
        }
        (None, _) => {
            let user = store::users::insert_user(&mut tx, &invite.email, &name, false).await?;
            if let Some(hash) = &password_hash {
                store::sessions::set_password_hash(&mut tx, user.id, hash).await?;
            }
            let token = if acceptance.first_token {
                Some(store::users::insert_token(&mut tx, user.id, "first token", None).await?)
            } else {
                None
            };
            let actor = Actor {
                user_id: Some(user.id),
                token_id: None,
                label: user.email.clone(),
            };
            (user, token, actor)
        }
    };
    store::workspaces::insert_membership(
        &mut tx,
        record.workspace_id,
        user.id,
        invite.role,
        record.custom_role_id,
    )
    .await?;
    store::invites::mark_invite_accepted(&mut tx, invite.id).await?;
    let workspace = store::workspaces::workspace_slug_in(&mut tx, record.workspace_id).await?;
    crate::store::audit::append(
        &mut tx,
        &actor,
        NewEvent::new(
            Some(record.workspace_id),
            "member.join",
            &user.email,
            json!({"invite_id": invite.id, "role": invite.role, "custom_role": invite.custom_role, "new_user": new_user}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Accepted {
        user,
        workspace,
        role: invite.role,
        custom_role: invite.custom_role.clone(),
        token: first_token,
    })
}
