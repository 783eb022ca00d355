//! Each plugin's key-value store (`plugin_kv`): per workspace, and one for
//! the installation (workspace 0). Every write is one statement, so
//! compare-and-set holds under concurrent calls on either database.

use sqlx::Row;

use super::{now, Store, StoreError, StoreResult, WriteTx};

/// The installation-wide store's workspace id: no workspace has it.
pub const INSTALLATION: i64 = 0;

/// One live entry.
#[derive(Debug, Clone, PartialEq)]
pub struct KvRow {
    /// The value, as JSON text.
    pub value: String,
    /// Writes of the entry, from 1.
    pub version: i64,
    /// When it expires, if it does.
    pub expires_at: Option<String>,
}

/// Where an entry lives.
#[derive(Debug, Clone, Copy)]
pub struct KvPlace<'a> {
    /// The plugin's name.
    pub plugin: &'a str,
    /// The workspace, or [`INSTALLATION`].
    pub workspace_id: i64,
    /// The key.
    pub key: &'a str,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvExpect {
    /// Whatever is there.
    Anything,
    /// No live entry.
    Absent,
    /// A live entry at this version.
    Version(i64),
}

impl Store {
    /// The live entry at `place`, if there is one.
    pub async fn kv_get(&self, place: KvPlace<'_>) -> StoreResult<Option<KvRow>> {
        let row = sqlx::query(
            "SELECT value, version, expires_at FROM plugin_kv
             WHERE plugin = $1 AND workspace_id = $2 AND key = $3
               AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(place.plugin)
        .bind(place.workspace_id)
        .bind(place.key)
        .bind(now())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(KvRow {
                value: row.try_get("value")?,
                version: row.try_get("version")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// The live keys of a plugin's store in one scope that start with
    /// `prefix`, after `after`, sorted, at most `limit`.
    pub async fn kv_keys(
        &self,
        plugin: &str,
        workspace_id: i64,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT key FROM plugin_kv
             WHERE plugin = $1 AND workspace_id = $2 AND substr(key, 1, CAST($3 AS INTEGER)) = $4
               AND key > $5 AND (expires_at IS NULL OR expires_at > $6)
             ORDER BY key LIMIT $7",
        )
        .bind(plugin)
        .bind(workspace_id)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(after.unwrap_or(""))
        .bind(now())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|row| Ok(row.try_get("key")?)).collect()
    }

    /// Stores `value` at `place` if what is there matches `expect`, with
    /// the entry live until `expires_at` (None: until deleted); answers the
    /// new version, or None when `expect` did not match. A new entry is
    /// refused with [`StoreError::Conflict`] when the scope already holds
    /// `max_entries`.
    pub async fn kv_set(
        &self,
        place: KvPlace<'_>,
        value: &str,
        expect: KvExpect,
        expires_at: Option<&str>,
        max_entries: i64,
    ) -> StoreResult<Option<i64>> {
        let now = now();
        let mut tx = self.begin_write().await?;
        // An expired entry is absent: it goes before anything is compared.
        sqlx::query(
            "DELETE FROM plugin_kv WHERE plugin = $1 AND workspace_id = $2 AND key = $3
               AND expires_at IS NOT NULL AND expires_at <= $4",
        )
        .bind(place.plugin)
        .bind(place.workspace_id)
        .bind(place.key)
        .bind(&now)
        .execute(tx.conn())
        .await?;
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM plugin_kv WHERE plugin = $1 AND workspace_id = $2 AND key = $3",
        )
        .bind(place.plugin)
        .bind(place.workspace_id)
        .bind(place.key)
        .fetch_optional(tx.conn())
        .await?;
        if exists.is_none() && expect != KvExpect::Absent {
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM plugin_kv WHERE plugin = $1 AND workspace_id = $2
                   AND (expires_at IS NULL OR expires_at > $3)",
            )
            .bind(place.plugin)
            .bind(place.workspace_id)
            .bind(&now)
            .fetch_one(tx.conn())
            .await?;
            if held >= max_entries {
                return Err(StoreError::Conflict(super::Clash::KvFull { held }));
            }
        }
        // One statement decides, so two plugins' calls racing on one key
        // cannot both win a compare-and-set (on PostgreSQL the second waits
        // for the first's row, then sees its version).
        let version: Option<i64> = match expect {
            KvExpect::Version(expected) => {
                sqlx::query_scalar(
                    "UPDATE plugin_kv SET value = $1, version = version + 1, expires_at = $2,
                         updated_at = $3
                     WHERE plugin = $4 AND workspace_id = $5 AND key = $6 AND version = $7
                     RETURNING version",
                )
                .bind(value)
                .bind(expires_at)
                .bind(&now)
                .bind(place.plugin)
                .bind(place.workspace_id)
                .bind(place.key)
                .bind(expected)
                .fetch_optional(tx.conn())
                .await?
            }
            KvExpect::Absent | KvExpect::Anything => {
                let on_conflict = if expect == KvExpect::Absent {
                    "DO NOTHING"
                } else {
                    "DO UPDATE SET value = excluded.value, version = plugin_kv.version + 1,
                         expires_at = excluded.expires_at, updated_at = excluded.updated_at"
                };
                sqlx::query_scalar(&format!(
                    "INSERT INTO plugin_kv (plugin, workspace_id, key, value, version, expires_at,
                         updated_at)
                     VALUES ($1, $2, $3, $4, 1, $5, $6)
                     ON CONFLICT (plugin, workspace_id, key) {on_conflict}
                     RETURNING version"
                ))
                .bind(place.plugin)
                .bind(place.workspace_id)
                .bind(place.key)
                .bind(value)
                .bind(expires_at)
                .bind(&now)
                .fetch_optional(tx.conn())
                .await?
            }
        };
        tx.commit().await?;
        Ok(version)
    }

    /// Deletes the live entry at `place` if it matches `expect`; answers
    /// whether one was deleted, or None when `expect` did not match.
    pub async fn kv_delete(
        &self,
        place: KvPlace<'_>,
        expect: KvExpect,
    ) -> StoreResult<Option<bool>> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let at_version = match expect {
            KvExpect::Version(_) => " AND version = $5",
            KvExpect::Anything | KvExpect::Absent => "",
        };
        let sql = format!(
            "DELETE FROM plugin_kv WHERE plugin = $1 AND workspace_id = $2 AND key = $3
               AND (expires_at IS NULL OR expires_at > $4){at_version}"
        );
        let mut query = sqlx::query(&sql)
            .bind(place.plugin)
            .bind(place.workspace_id)
            .bind(place.key)
            .bind(&now);
        if let KvExpect::Version(expected) = expect {
            query = query.bind(expected);
        }
        let deleted = query.execute(tx.conn()).await?.rows_affected() > 0;
        tx.commit().await?;
        Ok(match expect {
            KvExpect::Version(_) if !deleted => None,
            KvExpect::Absent if deleted => None,
            _ => Some(deleted),
        })
    }
}

/// Inside `tx`: deletes everything plugin `plugin` keeps, in every scope,
/// and the capabilities approved for it; answers how many entries went.
pub async fn delete_plugin_data(tx: &mut WriteTx, plugin: &str) -> StoreResult<u64> {
    let gone = sqlx::query("DELETE FROM plugin_kv WHERE plugin = $1")
        .bind(plugin)
        .execute(tx.conn())
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM plugin_approvals WHERE name = $1")
        .bind(plugin)
        .execute(tx.conn())
        .await?;
    Ok(gone)
}
