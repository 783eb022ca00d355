//! Custom field definitions: the fields a workspace adds to its work items.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::model::field_types::FieldType;
use crate::model::workflow::Kind;

use super::{now, reading, Reads, Store, StoreError, StoreResult, WriteTx};

/// A custom field definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomField {
    /// Key used in work items' `fields`.
    pub key: String,
    /// Label shown in forms.
    pub label: String,
    /// Which kinds of work item carry it.
    pub applies_to: Vec<Kind>,
    /// `text`, `number`, `boolean`, `date`, `select`, or a plugin field type.
    pub field_type: FieldType,
    /// Whether a value must be present.
    pub required: bool,
    /// For `select`: the allowed values.
    pub options: Vec<String>,
}

const FIELD_COLUMNS: &str = "key, label, applies_to, field_type, required, options";

fn field_from_row(row: &AnyRow) -> StoreResult<CustomField> {
    fn list<T: serde::de::DeserializeOwned>(text: String, what: &str) -> StoreResult<Vec<T>> {
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
    }
    Ok(CustomField {
        key: row.try_get("key")?,
        label: row.try_get("label")?,
        applies_to: list(row.try_get("applies_to")?, "custom field applies_to")?,
        field_type: FieldType::named(&row.try_get::<String, _>("field_type")?),
        required: row.try_get::<i64, _>("required")? != 0,
        options: list(row.try_get("options")?, "custom field options")?,
    })
}

/// Stores a custom field definition.
pub async fn insert_custom_field(
    tx: &mut WriteTx,
    workspace_id: i64,
    field: &CustomField,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO custom_fields (workspace_id, key, label, applies_to, field_type, required, options, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(workspace_id)
    .bind(&field.key)
    .bind(&field.label)
    .bind(serde_json::to_string(&field.applies_to).unwrap_or_default())
    .bind(field.field_type.name())
    .bind(i64::from(field.required))
    .bind(serde_json::to_string(&field.options).unwrap_or_default())
    .bind(now())
    .execute(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::CustomFieldKey(field.key.clone()))
    }))?;
    Ok(())
}

/// How many custom fields `workspace_id` has, read inside a transaction.
pub async fn count_custom_fields_in(tx: &mut WriteTx, workspace_id: i64) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM custom_fields WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_one(tx.conn())
            .await?,
    )
}

/// Deletes a custom field definition (values already stored stay in items'
/// history but are no longer shown or validated).
pub async fn delete_custom_field(
    tx: &mut WriteTx,
    workspace_id: i64,
    key: &str,
) -> StoreResult<CustomField> {
    let field = custom_fields_in(tx, workspace_id)
        .await?
        .into_iter()
        .find(|f| f.key == key)
        .ok_or_else(|| StoreError::NotFound(super::Missing::CustomField(key.to_owned())))?;
    sqlx::query("DELETE FROM custom_fields WHERE workspace_id = $1 AND key = $2")
        .bind(workspace_id)
        .bind(key)
        .execute(tx.conn())
        .await?;
    Ok(field)
}

/// The custom fields of `workspace_id`, in creation order.
pub async fn custom_fields_in(
    conn: &mut impl Reads,
    workspace_id: i64,
) -> StoreResult<Vec<CustomField>> {
    let rows = sqlx::query(&format!(
        "SELECT {FIELD_COLUMNS} FROM custom_fields WHERE workspace_id = $1 ORDER BY id"
    ))
    .bind(workspace_id)
    .fetch_all(reading(conn))
    .await?;
    rows.iter().map(field_from_row).collect()
}

impl Store {
    /// The custom fields of `workspace_id`, in creation order.
    pub async fn custom_fields(&self, workspace_id: i64) -> StoreResult<Vec<CustomField>> {
        let mut conn = self.pool().acquire().await?;
        custom_fields_in(&mut conn, workspace_id).await
    }
}
