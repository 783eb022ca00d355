//! Workspaces, their settings, custom roles and memberships.

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

use super::{
    json_column, now, reading, Keyset, Page, PageAt, Reads, Store, StoreError, StoreResult, WriteTx,
};
use crate::model::roles::{PermissionSet, Role};

/// A workspace as stored.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Internal identifier.
    pub id: i64,
    /// URL-safe unique name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Where its data is meant to live (free text such as `us`, `eu`).
    pub region: String,
    /// Workspace settings (a JSON object).
    pub settings: Value,
    /// Workspace policies (a JSON object).
    pub policies: Value,
    /// Creation time.
    pub created_at: String,
}

const WORKSPACE_COLUMNS: &str =
    "w.id, w.slug, w.name, w.region, w.settings, w.policies, w.created_at";

fn workspace_from_row(row: &AnyRow) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        region: row.try_get("region")?,
        settings: json_column(&row.try_get::<String, _>("settings")?, "workspace settings")?,
        policies: json_column(&row.try_get::<String, _>("policies")?, "workspace policies")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A custom role: a named set of permissions based on a built-in role.
#[derive(Debug, Clone)]
pub struct CustomRole {
    /// Internal identifier.
    pub id: i64,
    /// Name, unique in its workspace.
    pub name: String,
    /// The built-in role it started from.
    pub base_role: Role,
    /// What it holds.
    pub permissions: PermissionSet,
    /// Creation time.
    pub created_at: String,
}

fn custom_role_from_row(row: &AnyRow) -> StoreResult<CustomRole> {
    custom_role_from(row, ["id", "name", "created_at"])
}

/// A custom role from `row`, whose id, name and creation time are in the
/// columns `names`.
fn custom_role_from(row: &AnyRow, names: [&str; 3]) -> StoreResult<CustomRole> {
    let [id, name, created_at] = names;
    let base: String = row.try_get("base_role")?;
    let perms: String = row.try_get("permissions")?;
    let perms: Vec<String> = serde_json::from_str(&perms)
        .map_err(|e| StoreError::Corrupt(format!("custom role permissions: {e}")))?;
    Ok(CustomRole {
        id: row.try_get(id)?,
        name: row.try_get(name)?,
        base_role: base.parse().map_err(StoreError::Corrupt)?,
        permissions: PermissionSet::parse(perms.iter().map(String::as_str))
            .map_err(StoreError::Corrupt)?,
        created_at: row.try_get(created_at)?,
    })
}

const CUSTOM_ROLE_COLUMNS: &str = "c.id, c.name, c.base_role, c.permissions, c.created_at";

/// A user's place in a workspace.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The built-in role (for a custom role: its base role).
    pub role: Role,
    /// The custom role, when the member holds one.
    pub custom_role: Option<CustomRole>,
}

impl Membership {
    /// The permissions this membership grants.
    pub fn permissions(&self) -> PermissionSet {
        match &self.custom_role {
            Some(c) => c.permissions.clone(),
            None => self.role.permissions(),
        }
    }
}

/// A member as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    /// The user's identifier.
    pub user_id: i64,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Built-in role (for a custom role: its base role).
    pub role: Role,
    /// Custom role name, if any.
    pub custom_role: Option<String>,
    /// When they joined.
    pub joined_at: String,
}

/// A workspace a user belongs to, with their role there.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserMembership {
    /// Workspace slug.
    pub workspace: String,
    /// Workspace display name.
    pub workspace_name: String,
    /// Built-in role.
    pub role: Role,
    /// Custom role name, if any.
    pub custom_role: Option<String>,
}

/// Reads a workspace by slug inside a transaction.
pub async fn workspace_by_slug_in(
    conn: &mut impl Reads,
    slug: &str,
) -> StoreResult<Option<Workspace>> {
    let row = sqlx::query(&format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w WHERE w.slug = $1"
    ))
    .bind(slug)
    .fetch_optional(reading(conn))
    .await?;
    row.map(|r| workspace_from_row(&r)).transpose()
}

/// The slug of workspace `id`, inside a transaction.
pub async fn workspace_slug_in(tx: &mut WriteTx, id: i64) -> StoreResult<String> {
    Ok(
        sqlx::query_scalar("SELECT slug FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?,
    )
}

/// Creates a workspace.
pub async fn insert_workspace(
    tx: &mut WriteTx,
    slug: &str,
    name: &str,
    region: &str,
    settings: &Value,
    policies: &Value,
) -> StoreResult<Workspace> {
    let row = sqlx::query(
        "INSERT INTO workspaces (slug, name, region, settings, policies, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, slug, name, region, settings, policies, created_at",
    )
    .bind(slug)
    .bind(name)
    .bind(region)
    .bind(settings.to_string())
    .bind(policies.to_string())
    .bind(now())
    .fetch_one(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::WorkspaceSlug(slug.to_owned()))
    }))?;
    workspace_from_row(&row)
}

/// Holds workspace `id` until `tx` ends, so that writes which must see
/// each other's counts (such as "at most N of something") take turns. On
/// SQLite the single writer already does; on PostgreSQL the workspace's
/// row is locked.
pub async fn lock_workspace(tx: &mut super::WriteTx, id: i64) -> StoreResult<()> {
    if tx.backend() == super::Backend::Postgres {
        sqlx::query("SELECT id FROM workspaces WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    }
    Ok(())
}

/// Replaces a workspace's settings object.
pub async fn update_settings(
    tx: &mut WriteTx,
    workspace_id: i64,
    settings: &Value,
) -> StoreResult<()> {
    sqlx::query("UPDATE workspaces SET settings = $1 WHERE id = $2")
        .bind(settings.to_string())
        .bind(workspace_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Adds a member.
pub async fn insert_membership(
    tx: &mut WriteTx,
    workspace_id: i64,
    user_id: i64,
    role: Role,
    custom_role_id: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO memberships (workspace_id, user_id, role, custom_role_id, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(workspace_id)
    .bind(user_id)
    .bind(role.name())
    .bind(custom_role_id)
    .bind(now())
    .execute(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::Membership)
    }))?;
    Ok(())
}

/// The membership of `user_id` in `workspace_id`, read inside a transaction.
pub async fn membership_in(
    conn: &mut impl Reads,
    workspace_id: i64,
    user_id: i64,
) -> StoreResult<Option<Membership>> {
    let row = sqlx::query(&format!(
        "SELECT m.role, {CUSTOM_ROLE_COLUMNS}
         FROM memberships m LEFT JOIN custom_roles c ON c.id = m.custom_role_id
         WHERE m.workspace_id = $1 AND m.user_id = $2"
    ))
    .bind(workspace_id)
    .bind(user_id)
    .fetch_optional(reading(conn))
    .await?;
    let Some(row) = row else { return Ok(None) };
    let role: String = row.try_get("role")?;
    let custom_id: Option<i64> = row.try_get("id")?;
    Ok(Some(Membership {
        role: role.parse().map_err(StoreError::Corrupt)?,
        custom_role: match custom_id {
            Some(_) => Some(custom_role_from_row(&row)?),
            None => None,
        },
    }))
}

/// How many members of the workspace are owners with the built-in role
/// (not a custom role based on it).
pub async fn count_owners_in(tx: &mut WriteTx, workspace_id: i64) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner' AND custom_role_id IS NULL",
    )
    .bind(workspace_id)
    .fetch_one(tx.conn())
    .await?)
}

/// Removes the membership of user `user_id` in the workspace.
pub async fn delete_membership(
    tx: &mut WriteTx,
    workspace_id: i64,
    user_id: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Gives user `user_id` the built-in `role`, or the custom role
/// `custom_role_id` (whose base role is `role`), in the workspace.
pub async fn update_membership_role(
    tx: &mut WriteTx,
    workspace_id: i64,
    user_id: i64,
    role: Role,
    custom_role_id: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE memberships SET role = $1, custom_role_id = $2 WHERE workspace_id = $3 AND user_id = $4",
    )
    .bind(role.name())
    .bind(custom_role_id)
    .bind(workspace_id)
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

const MEMBER_SELECT: &str =
    "SELECT u.id AS user_id, u.email, u.name, m.role, c.name AS custom_role,
            m.created_at AS joined_at
     FROM memberships m JOIN users u ON u.id = m.user_id
     LEFT JOIN custom_roles c ON c.id = m.custom_role_id";

fn member_from_row(r: &AnyRow) -> StoreResult<Member> {
    let role: String = r.try_get("role")?;
    Ok(Member {
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        role: role.parse().map_err(StoreError::Corrupt)?,
        custom_role: r.try_get("custom_role")?,
        joined_at: r.try_get("joined_at")?,
    })
}

/// The member of a workspace with (lower-case) `email`, read inside a
/// transaction.
pub async fn member_by_email_in(
    conn: &mut impl Reads,
    workspace_id: i64,
    email: &str,
) -> StoreResult<Option<Member>> {
    let row = sqlx::query(&format!(
        "{MEMBER_SELECT} WHERE m.workspace_id = $1 AND u.email = $2"
    ))
    .bind(workspace_id)
    .bind(email)
    .fetch_optional(reading(conn))
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// Creates a custom role.
pub async fn insert_custom_role(
    tx: &mut WriteTx,
    workspace_id: i64,
    name: &str,
    base_role: Role,
    permissions: &PermissionSet,
) -> StoreResult<CustomRole> {
    let perms = serde_json::to_string(&permissions.names()).expect("strings serialise");
    let row = sqlx::query(
        "INSERT INTO custom_roles (workspace_id, name, base_role, permissions, created_at)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, name, base_role, permissions, created_at",
    )
    .bind(workspace_id)
    .bind(name)
    .bind(base_role.name())
    .bind(perms)
    .bind(now())
    .fetch_one(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::CustomRoleName(name.to_owned()))
    }))?;
    custom_role_from_row(&row)
}

/// Custom roles of a workspace, read inside a transaction.
pub async fn list_custom_roles_in(
    conn: &mut impl Reads,
    workspace_id: i64,
) -> StoreResult<Vec<CustomRole>> {
    let rows = sqlx::query(&format!(
        "SELECT {CUSTOM_ROLE_COLUMNS} FROM custom_roles c WHERE c.workspace_id = $1 ORDER BY c.name"
    ))
    .bind(workspace_id)
    .fetch_all(reading(conn))
    .await?;
    rows.iter().map(custom_role_from_row).collect()
}

/// Deletes a custom role nobody holds and no open invite names.
pub async fn delete_custom_role(
    tx: &mut WriteTx,
    workspace_id: i64,
    name: &str,
) -> StoreResult<CustomRole> {
    let role = list_custom_roles_in(tx, workspace_id)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| StoreError::NotFound(super::Missing::CustomRole(name.to_owned())))?;
    let holders: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE custom_role_id = $1")
            .bind(role.id)
            .fetch_one(tx.conn())
            .await?;
    let invites: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM invites WHERE custom_role_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(role.id)
    .fetch_one(tx.conn())
    .await?;
    if holders > 0 || invites > 0 {
        return Err(StoreError::Conflict(super::Clash::RoleInUse {
            name: name.to_owned(),
            holders,
            invites,
        }));
    }
    sqlx::query("DELETE FROM custom_roles WHERE id = $1")
        .bind(role.id)
        .execute(tx.conn())
        .await?;
    Ok(role)
}

impl Store {
    /// A workspace by slug.
    pub async fn workspace_by_slug(&self, slug: &str) -> StoreResult<Option<Workspace>> {
        let mut conn = self.pool().acquire().await?;
        workspace_by_slug_in(&mut conn, slug).await
    }

    /// Every workspace, by slug.
    pub async fn list_all_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        let rows = sqlx::query(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces w ORDER BY w.slug"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(workspace_from_row).collect()
    }

    /// Workspace `slug` and the membership of `user_id` in it, with one
    /// statement: what every request to a workspace reads first.
    pub async fn workspace_with_membership(
        &self,
        slug: &str,
        user_id: i64,
    ) -> StoreResult<Option<(Workspace, Option<Membership>)>> {
        let row = sqlx::query(&format!(
            "SELECT {WORKSPACE_COLUMNS}, m.role AS member_role, c.id AS role_id,
                    c.name AS role_name, c.base_role, c.permissions, c.created_at AS role_created_at
             FROM workspaces w
             LEFT JOIN memberships m ON m.workspace_id = w.id AND m.user_id = $2
             LEFT JOIN custom_roles c ON c.id = m.custom_role_id
             WHERE w.slug = $1"
        ))
        .bind(slug)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let workspace = workspace_from_row(&row)?;
        let role: Option<String> = row.try_get("member_role")?;
        let Some(role) = role else {
            return Ok(Some((workspace, None)));
        };
        let role_id: Option<i64> = row.try_get("role_id")?;
        let custom_role = match role_id {
            None => None,
            Some(_) => Some(custom_role_from(
                &row,
                ["role_id", "role_name", "role_created_at"],
            )?),
        };
        Ok(Some((
            workspace,
            Some(Membership {
                role: role.parse().map_err(StoreError::Corrupt)?,
                custom_role,
            }),
        )))
    }

    /// The membership of `user_id` in `workspace_id`.
    pub async fn membership(
        &self,
        workspace_id: i64,
        user_id: i64,
    ) -> StoreResult<Option<Membership>> {
        let mut conn = self.pool().acquire().await?;
        membership_in(&mut conn, workspace_id, user_id).await
    }

    /// The member of `workspace_id` with (lower-case) `email`.
    pub async fn member_by_email(
        &self,
        workspace_id: i64,
        email: &str,
    ) -> StoreResult<Option<Member>> {
        let mut conn = self.pool().acquire().await?;
        member_by_email_in(&mut conn, workspace_id, email).await
    }

    /// The workspaces `user_id` belongs to.
    pub async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<UserMembership>> {
        let rows = sqlx::query(
            "SELECT w.slug AS workspace, w.name AS workspace_name, m.role, c.name AS custom_role
             FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
             LEFT JOIN custom_roles c ON c.id = m.custom_role_id
             WHERE m.user_id = $1 ORDER BY w.slug",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                Ok(UserMembership {
                    workspace: r.try_get("workspace")?,
                    workspace_name: r.try_get("workspace_name")?,
                    role: role.parse().map_err(StoreError::Corrupt)?,
                    custom_role: r.try_get("custom_role")?,
                })
            })
            .collect()
    }

    /// The emails of a workspace's members.
    pub async fn member_emails(&self, workspace_id: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// A page of a workspace's members, by email: `at` names members'
    /// emails; at most `limit` rows.
    pub async fn members_page(
        &self,
        workspace_id: i64,
        at: &PageAt<String>,
        limit: i64,
    ) -> StoreResult<Page<Member>> {
        let mut conn = self.pool().acquire().await?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1")
                .bind(workspace_id)
                .fetch_one(&mut *conn)
                .await?;
        Keyset {
            select: &format!("{MEMBER_SELECT} WHERE m.workspace_id = $1"),
            exists: "SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
                     WHERE m.workspace_id = $1",
            column: "u.email",
            descending: false,
        }
        .read(&mut conn, workspace_id, at, limit, total, member_from_row)
        .await
    }

    /// Custom roles of a workspace.
    pub async fn list_custom_roles(&self, workspace_id: i64) -> StoreResult<Vec<CustomRole>> {
        let mut conn = self.pool().acquire().await?;
        list_custom_roles_in(&mut conn, workspace_id).await
    }
}
