//! The installation's decisions about single plugins (`plugin_policies`):
//! shared by every server on the database, kept across restarts.

use sqlx::Row;

use super::{now, Store, StoreError, StoreResult, WriteTx};
use crate::config::Isolation;

/// What the installation decided about one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginPolicy {
    /// The plugin's name.
    pub name: String,
    /// The tier it runs in, when one was chosen for it.
    pub isolation: Option<Isolation>,
    /// Who decided: `system` or a user's email.
    pub decided_by: String,
    /// Why, in words.
    pub reason: String,
    /// When.
    pub updated_at: String,
    /// The in-process call the plugin was making when the server last
    /// stopped inside it (`field_type.validate`, ...), if that happened.
    pub interrupted_call: Option<String>,
    /// When that call started.
    pub interrupted_at: Option<String>,
}

impl Store {
    /// Every plugin's stored policy, by name.
    pub async fn plugin_policies(&self) -> StoreResult<Vec<PluginPolicy>> {
        let rows = sqlx::query(
            "SELECT name, isolation, decided_by, reason, updated_at, interrupted_call,
                 interrupted_at
             FROM plugin_policies ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let isolation: Option<String> = row.try_get("isolation")?;
                let isolation = match isolation {
                    None => None,
                    Some(text) => Some(Isolation::parse(&text).ok_or_else(|| {
                        StoreError::Corrupt(format!("plugin_policies.isolation `{text}`"))
                    })?),
                };
                Ok(PluginPolicy {
                    name: row.try_get("name")?,
                    isolation,
                    decided_by: row.try_get("decided_by")?,
                    reason: row.try_get("reason")?,
                    updated_at: row.try_get("updated_at")?,
                    interrupted_call: row.try_get("interrupted_call")?,
                    interrupted_at: row.try_get("interrupted_at")?,
                })
            })
            .collect()
    }
}

/// Inside `tx`: records the tier decided for plugin `name` (None: no
/// decision, the configuration chooses), by `decided_by`, for `reason`.
pub async fn set_plugin_isolation(
    tx: &mut WriteTx,
    name: &str,
    isolation: Option<Isolation>,
    decided_by: &str,
    reason: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO plugin_policies (name, isolation, decided_by, reason, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET isolation = excluded.isolation,
             decided_by = excluded.decided_by, reason = excluded.reason,
             updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(isolation.map(Isolation::as_str))
    .bind(decided_by)
    .bind(reason)
    .bind(now())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Inside `tx`: notes that the server stopped during the in-process call
/// `call` of plugin `name`, started at `started_at` (after
/// [`set_plugin_isolation`] made the row).
pub async fn set_plugin_interrupted_call(
    tx: &mut WriteTx,
    name: &str,
    call: &str,
    started_at: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE plugin_policies SET interrupted_call = $1, interrupted_at = $2 WHERE name = $3",
    )
    .bind(call)
    .bind(started_at)
    .bind(name)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The capabilities approved for one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginApproval {
    /// The plugin's name.
    pub name: String,
    /// What was approved, as a manifest's `capabilities` (JSON).
    pub capabilities: String,
    /// Who approved: `system` (the plugin's first load) or a user's email.
    pub approved_by: String,
    /// When.
    pub approved_at: String,
}

impl Store {
    /// Every plugin's approved capabilities, by name.
    pub async fn plugin_approvals(&self) -> StoreResult<Vec<PluginApproval>> {
        let rows = sqlx::query(
            "SELECT name, capabilities, approved_by, approved_at FROM plugin_approvals ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PluginApproval {
                    name: row.try_get("name")?,
                    capabilities: row.try_get("capabilities")?,
                    approved_by: row.try_get("approved_by")?,
                    approved_at: row.try_get("approved_at")?,
                })
            })
            .collect()
    }
}

/// Inside `tx`: records `capabilities` (JSON) as approved for plugin `name`
/// by `approved_by`, replacing what was approved before. With `only_first`,
/// an approval already stored is kept (a first load approves only once).
pub async fn set_plugin_approval(
    tx: &mut WriteTx,
    name: &str,
    capabilities: &str,
    approved_by: &str,
    only_first: bool,
) -> StoreResult<()> {
    let on_conflict = if only_first {
        "DO NOTHING"
    } else {
        "DO UPDATE SET capabilities = excluded.capabilities, approved_by = excluded.approved_by,
             approved_at = excluded.approved_at"
    };
    sqlx::query(&format!(
        "INSERT INTO plugin_approvals (name, capabilities, approved_by, approved_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (name) {on_conflict}"
    ))
    .bind(name)
    .bind(capabilities)
    .bind(approved_by)
    .bind(now())
    .execute(tx.conn())
    .await?;
    Ok(())
}
