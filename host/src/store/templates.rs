//! Workspace templates: named snapshots of a workspace's structural config.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{json_column, now, reading, Reads, Store, StoreError, StoreResult, WriteTx};

/// A stored template.
#[derive(Debug, Clone)]
pub struct Template {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The snapshot (the same document `workspace export` produces).
    pub snapshot: Value,
    /// Creation time.
    pub created_at: String,
}

fn template_from_row(row: &AnyRow) -> StoreResult<Template> {
    Ok(Template {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        snapshot: json_column(&row.try_get::<String, _>("snapshot")?, "template snapshot")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Stores a template.
pub async fn insert_template(
    tx: &mut WriteTx,
    name: &str,
    description: &str,
    snapshot: &Value,
    created_by: i64,
) -> StoreResult<Template> {
    let row = sqlx::query(
        "INSERT INTO templates (name, description, snapshot, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING name, description, snapshot, created_at",
    )
    .bind(name)
    .bind(description)
    .bind(snapshot.to_string())
    .bind(created_by)
    .bind(now())
    .fetch_one(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::TemplateName(name.to_owned()))
    }))?;
    template_from_row(&row)
}

/// Reads a template inside a transaction.
pub async fn template_by_name_in(conn: &mut impl Reads, name: &str) -> StoreResult<Template> {
    let row = sqlx::query(
        "SELECT name, description, snapshot, created_at FROM templates WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(reading(conn))
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::Template(name.to_owned())))?;
    template_from_row(&row)
}

/// Deletes a template.
pub async fn delete_template(tx: &mut WriteTx, name: &str) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM templates WHERE name = $1")
        .bind(name)
        .execute(tx.conn())
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(super::Missing::Template(
            name.to_owned(),
        )));
    }
    Ok(())
}

impl Store {
    /// Every template, by name.
    pub async fn list_templates(&self) -> StoreResult<Vec<Template>> {
        let rows = sqlx::query(
            "SELECT name, description, snapshot, created_at FROM templates ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// A template by name.
    pub async fn template_by_name(&self, name: &str) -> StoreResult<Template> {
        let mut conn = self.pool().acquire().await?;
        template_by_name_in(&mut conn, name).await
    }
}
