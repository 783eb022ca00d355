//! Who may do what: a caller, and what they may do in one workspace. The
//! roles and the permission matrix are in [`crate::model::roles`].
//!
//! A workspace member holds one built-in role (`owner`, `approver`,
//! `engineer`, `viewer`) or one custom role (a named set of permissions based
//! on a built-in role). A platform admin holds every permission in every
//! workspace plus the installation-wide ones. API tokens carry exactly their
//! holder's permissions, computed afresh on every request.
//!
//! Nobody compares role names: the domain asks an [`Access`] for a
//! [`Permission`] and gets a [`DomainError::Forbidden`] naming it when it is
//! missing. A [`Caller`] is who is acting (resolved from an API token or a
//! browser session); [`Caller::access`] resolves what they may do in one
//! workspace.

pub use crate::model::roles::{Permission, PermissionSet, Role};

use super::error::{DomainError, DomainResult};
use crate::audit::Actor;
use crate::store::users::User;
use crate::store::workspaces::{Membership, Workspace};
use crate::store::Store;

/// Who is acting: a user, through an API token or a browser session.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// The API token used, if the caller authenticated with one (None for a
    /// browser session).
    pub token_id: Option<i64>,
    /// The browser session used, if any.
    pub session_id: Option<i64>,
    /// The plugin acting through the host API, when a plugin is the caller
    /// (then `user` is a stand-in with no account behind it).
    pub plugin: Option<String>,
}

impl Caller {
    /// A plugin acting through the host API: audited as `plugin:NAME`,
    /// holding no account and no role.
    pub fn plugin(name: &str) -> Caller {
        Caller {
            user: User {
                id: 0,
                email: format!("plugin:{name}"),
                name: name.to_owned(),
                platform_admin: false,
                created_at: String::new(),
                time_zone: None,
            },
            token_id: None,
            session_id: None,
            plugin: Some(name.to_owned()),
        }
    }

    /// The audit actor for changes this caller makes.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.plugin.is_none().then_some(self.user.id),
            token_id: self.token_id,
            label: self.user.email.clone(),
        }
    }

    /// Fails with [`DomainError::Forbidden`] unless the caller is a platform
    /// admin; `what` says what they tried ("create workspaces").
    pub fn require_platform_admin(&self, what: &str) -> DomainResult<()> {
        if self.user.platform_admin {
            Ok(())
        } else {
            Err(DomainError::forbidden(
                "platform_admin",
                format!(
                    "only a platform admin may {what}; {} is not a platform admin",
                    self.user.email
                ),
            ))
        }
    }

    /// Resolves the caller's access to workspace `slug` and checks `p`.
    pub async fn workspace(
        &self,
        store: &Store,
        slug: &str,
        p: Permission,
    ) -> DomainResult<Access> {
        let access = self.access(store, slug).await?;
        access.require(p)?;
        Ok(access)
    }

    /// Resolves the caller's access to workspace `slug` without checking a
    /// permission.
    ///
    /// Only a platform admin learns that a workspace does not exist
    /// (not found); anyone else gets the same refusal for a workspace that
    /// does not exist as for one they are not a member of, so slugs cannot
    /// be probed, and learns nothing of its content.
    pub async fn access(&self, store: &Store, slug: &str) -> DomainResult<Access> {
        let not_a_member = || {
            DomainError::forbidden(
                "workspace.read",
                format!("{} is not a member of workspace `{slug}`", self.user.email),
            )
        };
        let Some((workspace, membership)) =
            store.workspace_with_membership(slug, self.user.id).await?
        else {
            return Err(if self.user.platform_admin {
                DomainError::NotFound(format!("no workspace `{slug}`"))
            } else {
                not_a_member()
            });
        };
        let permissions = if self.user.platform_admin {
            PermissionSet::all()
        } else {
            match &membership {
                Some(m) => m.permissions(),
                None => return Err(not_a_member()),
            }
        };
        Ok(Access {
            caller: self.clone(),
            workspace,
            membership,
            permissions,
        })
    }
}

/// What a caller may do in one workspace: who, where, holding what.
#[derive(Debug, Clone)]
pub struct Access {
    /// Who.
    pub caller: Caller,
    /// The workspace.
    pub workspace: Workspace,
    /// The caller's membership (None for a platform admin who is not a member).
    pub membership: Option<Membership>,
    /// The caller's permissions there.
    pub permissions: PermissionSet,
}

impl Access {
    /// Fails with [`DomainError::Forbidden`] naming `p` unless the caller
    /// holds it.
    pub fn require(&self, p: Permission) -> DomainResult<()> {
        if self.permissions.contains(p) {
            return Ok(());
        }
        let (held, role) = match &self.membership {
            Some(Membership {
                custom_role: Some(c),
                ..
            }) => (format!("custom role `{}`", c.name), c.name.clone()),
            Some(m) => (
                format!("role `{}`", m.role),
                capitalised(&m.role.to_string()),
            ),
            None => ("no role".to_string(), String::new()),
        };
        let words = if role.is_empty() {
            format!(
                "You need permission to {} in {}, and you are not a member of it.",
                p.description(),
                self.workspace.name
            )
        } else {
            format!(
                "You need permission to {} in {}; your role is {role}.",
                p.description(),
                self.workspace.name
            )
        };
        Err(DomainError::Forbidden {
            missing: p.name().to_owned(),
            message: format!(
                "missing permission `{p}` in workspace `{}` (you hold {held})",
                self.workspace.slug
            ),
            words: Some(words),
        })
    }

    /// Whether the caller holds `p` (for offering only what they may do).
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    /// The audit actor for changes the caller makes here.
    pub fn actor(&self) -> Actor {
        self.caller.actor()
    }

    /// The caller's built-in role and custom role name here (None for a
    /// platform admin who is not a member).
    pub fn role(&self) -> Option<(Role, Option<String>)> {
        self.membership
            .as_ref()
            .map(|m| (m.role, m.custom_role.as_ref().map(|c| c.name.clone())))
    }
}

/// `viewer` → `Viewer`.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
