//! The roles a workspace member can hold and the permissions they grant:
//! the permission matrix, in one place. The domain decides who may do what
//! with them (its `authz` module); the store reads and writes them by
//! their wire names.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use utoipa::ToSchema;

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
