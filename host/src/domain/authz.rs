//! Roles and permissions: the permission matrix, in one place.
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

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use utoipa::ToSchema;

use super::error::{DomainError, DomainResult};
use crate::audit::Actor;
use crate::store::{Membership, Store, User, Workspace};

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

/// A workspace-level permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// See the workspace, its settings and its roles.
    WorkspaceRead,
    /// Change the workspace's settings and policies.
    WorkspaceSettings,
    /// Export the workspace's structural configuration.
    WorkspaceExport,
    /// List members and pending invites.
    MemberRead,
    /// Invite members (one at a time or in bulk) and revoke invites.
    MemberInvite,
    /// Remove members.
    MemberRemove,
    /// Create and delete custom roles.
    RoleManage,
    /// Read the workspace's audit log.
    AuditRead,
    /// Create, edit and move changes, incidents and tasks along their workflows.
    ItemWrite,
    /// Approve or reject changes pending approval.
    ChangeApprove,
    /// Add, remove and reorder dashboard widgets.
    DashboardEdit,
    /// Add and remove certificates in the inventory.
    CertManage,
    /// Configure integrations (adapters and their secrets) and send test messages.
    IntegrationManage,
    /// Create, edit and delete playbooks.
    PlaybookEdit,
    /// Run playbooks (each step also needs its own permission).
    PlaybookRun,
    /// Dry-run playbooks: evaluate every step without side effects.
    PlaybookDryRun,
}

impl Permission {
    /// Every permission, in matrix order.
    pub const ALL: [Permission; 16] = [
        Permission::WorkspaceRead,
        Permission::WorkspaceSettings,
        Permission::WorkspaceExport,
        Permission::MemberRead,
        Permission::MemberInvite,
        Permission::MemberRemove,
        Permission::RoleManage,
        Permission::AuditRead,
        Permission::ItemWrite,
        Permission::ChangeApprove,
        Permission::DashboardEdit,
        Permission::CertManage,
        Permission::IntegrationManage,
        Permission::PlaybookEdit,
        Permission::PlaybookRun,
        Permission::PlaybookDryRun,
    ];

    /// The wire name, such as `member.invite`.
    pub fn name(self) -> &'static str {
        match self {
            Permission::WorkspaceRead => "workspace.read",
            Permission::WorkspaceSettings => "workspace.settings",
            Permission::WorkspaceExport => "workspace.export",
            Permission::MemberRead => "member.read",
            Permission::MemberInvite => "member.invite",
            Permission::MemberRemove => "member.remove",
            Permission::RoleManage => "role.manage",
            Permission::AuditRead => "audit.read",
            Permission::ItemWrite => "item.write",
            Permission::ChangeApprove => "change.approve",
            Permission::DashboardEdit => "dashboard.edit",
            Permission::CertManage => "cert.manage",
            Permission::IntegrationManage => "integration.manage",
            Permission::PlaybookEdit => "playbook.edit",
            Permission::PlaybookRun => "playbook.run",
            Permission::PlaybookDryRun => "playbook.dry_run",
        }
    }

    /// One line for users.
    pub fn description(self) -> &'static str {
        match self {
            Permission::WorkspaceRead => "see the workspace, its settings and roles",
            Permission::WorkspaceSettings => "change workspace settings",
            Permission::WorkspaceExport => "export the workspace configuration",
            Permission::MemberRead => "list members and pending invites",
            Permission::MemberInvite => "invite members and revoke invites",
            Permission::MemberRemove => "remove members",
            Permission::RoleManage => "create and delete custom roles, and change members' roles",
            Permission::AuditRead => "read the workspace audit log",
            Permission::ItemWrite => "create, edit and move changes, incidents and tasks",
            Permission::ChangeApprove => "approve or reject changes",
            Permission::DashboardEdit => "add, remove and reorder dashboard widgets",
            Permission::CertManage => "add and remove certificates in the inventory",
            Permission::IntegrationManage => "configure integrations and send test messages",
            Permission::PlaybookEdit => "create, edit and delete playbooks",
            Permission::PlaybookRun => "run playbooks",
            Permission::PlaybookDryRun => "dry-run playbooks (no side effects)",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Permission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown permission `{s}` (known: {})",
                    Permission::ALL.map(Permission::name).join(", ")
                )
            })
    }
}

/// A built-in workspace role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the workspace: every workspace permission.
    Owner,
    /// Approves changes and reads the audit log.
    Approver,
    /// Does the work.
    Engineer,
    /// Read-only.
    Viewer,
}

impl Role {
    /// Every built-in role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Approver, Role::Engineer, Role::Viewer];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Approver => "approver",
            Role::Engineer => "engineer",
            Role::Viewer => "viewer",
        }
    }

    /// The permission matrix: what each built-in role holds.
    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        let list: &[Permission] = match self {
            Role::Owner => &Permission::ALL,
            Role::Approver => &[
                WorkspaceRead,
                MemberRead,
                AuditRead,
                ItemWrite,
                ChangeApprove,
                DashboardEdit,
                CertManage,
                PlaybookEdit,
                PlaybookRun,
                PlaybookDryRun,
            ],
            Role::Engineer => &[
                WorkspaceRead,
                MemberRead,
                ItemWrite,
                DashboardEdit,
                CertManage,
                PlaybookEdit,
                PlaybookRun,
                PlaybookDryRun,
            ],
            Role::Viewer => &[WorkspaceRead, MemberRead, PlaybookDryRun],
        };
        PermissionSet(list.iter().copied().collect())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!("unknown role `{s}` (built-in roles: owner, approver, engineer, viewer)")
            })
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(pub BTreeSet<Permission>);

impl PermissionSet {
    /// Every permission.
    pub fn all() -> Self {
        Self(Permission::ALL.into_iter().collect())
    }

    /// Whether `p` is in the set.
    pub fn contains(&self, p: Permission) -> bool {
        self.0.contains(&p)
    }

    /// Wire names, sorted in matrix order.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|p| p.name().to_string()).collect()
    }

    /// Parses wire names.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        names
            .into_iter()
            .map(Permission::from_str)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }
}

/// `viewer` → `Viewer`.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        // Each role holds everything the role below it holds.
        for pair in Role::ALL.windows(2) {
            let (upper, lower) = (pair[0].permissions(), pair[1].permissions());
            assert!(lower.0.is_subset(&upper.0), "{} ⊄ {}", pair[1], pair[0]);
        }
        assert_eq!(Role::Owner.permissions(), PermissionSet::all());
        assert!(!Role::Viewer
            .permissions()
            .contains(Permission::MemberInvite));
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.name().parse::<Permission>().unwrap(), p);
        }
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>().unwrap(), r);
        }
        assert!("member.everything".parse::<Permission>().is_err());
    }
}
