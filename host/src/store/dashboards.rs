//! Dashboard widget instances: the tiles on a workspace's dashboard, in order.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{json_column, now, reading, Reads, Store, StoreError, StoreResult, WriteTx};

/// A widget on a workspace's dashboard.
#[derive(Debug, Clone)]
pub struct DashboardWidget {
    /// Identifier.
    pub id: i64,
    /// Position on the dashboard (0 first).
    pub position: i64,
    /// The widget's registered name.
    pub widget: String,
    /// Its configuration.
    pub config: Value,
}

fn widget_from_row(row: &AnyRow) -> StoreResult<DashboardWidget> {
    Ok(DashboardWidget {
        id: row.try_get("id")?,
        position: row.try_get("position")?,
        widget: row.try_get("widget")?,
        config: json_column(
            &row.try_get::<String, _>("config")?,
            "dashboard widget config",
        )?,
    })
}

/// The dashboard of `workspace_id`, in order.
pub async fn dashboard_in(
    conn: &mut impl Reads,
    workspace_id: i64,
) -> StoreResult<Vec<DashboardWidget>> {
    let rows = sqlx::query(
        "SELECT id, position, widget, config FROM dashboard_widgets WHERE workspace_id = $1 ORDER BY position, id",
    )
    .bind(workspace_id)
    .fetch_all(reading(conn))
    .await?;
    rows.iter().map(widget_from_row).collect()
}

/// Appends a widget to the dashboard.
pub async fn add_dashboard_widget(
    tx: &mut WriteTx,
    workspace_id: i64,
    widget: &str,
    config: &Value,
) -> StoreResult<DashboardWidget> {
    let position = dashboard_in(tx, workspace_id).await?.len() as i64;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dashboard_widgets (workspace_id, position, widget, config, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(workspace_id)
    .bind(position)
    .bind(widget)
    .bind(config.to_string())
    .bind(now())
    .fetch_one(tx.conn())
    .await?;
    Ok(DashboardWidget {
        id,
        position,
        widget: widget.to_owned(),
        config: config.clone(),
    })
}

/// Replaces the options of widget `id`; answers it as it is now.
pub async fn set_dashboard_widget_config(
    tx: &mut WriteTx,
    workspace_id: i64,
    id: i64,
    config: &Value,
) -> StoreResult<DashboardWidget> {
    let changed =
        sqlx::query("UPDATE dashboard_widgets SET config = $1 WHERE workspace_id = $2 AND id = $3")
            .bind(config.to_string())
            .bind(workspace_id)
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound(super::Missing::Widget(id)));
    }
    dashboard_in(tx, workspace_id)
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| StoreError::NotFound(super::Missing::Widget(id)))
}

/// Removes a widget and closes the gap.
pub async fn remove_dashboard_widget(
    tx: &mut WriteTx,
    workspace_id: i64,
    id: i64,
) -> StoreResult<DashboardWidget> {
    let current = dashboard_in(tx, workspace_id).await?;
    let removed = current
        .iter()
        .find(|w| w.id == id)
        .cloned()
        .ok_or_else(|| StoreError::NotFound(super::Missing::Widget(id)))?;
    sqlx::query("DELETE FROM dashboard_widgets WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(tx.conn())
        .await?;
    let rest: Vec<i64> = current.iter().map(|w| w.id).filter(|w| *w != id).collect();
    set_dashboard_order(tx, workspace_id, &rest).await?;
    Ok(removed)
}

/// Puts the widgets in the order of `ids` (which must be exactly the
/// dashboard's widgets; the caller checks).
pub async fn set_dashboard_order(
    tx: &mut WriteTx,
    workspace_id: i64,
    ids: &[i64],
) -> StoreResult<()> {
    for (position, id) in ids.iter().enumerate() {
        sqlx::query(
            "UPDATE dashboard_widgets SET position = $1 WHERE workspace_id = $2 AND id = $3",
        )
        .bind(position as i64)
        .bind(workspace_id)
        .bind(id)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

impl Store {
    /// The dashboard of `workspace_id`, in order.
    pub async fn dashboard(&self, workspace_id: i64) -> StoreResult<Vec<DashboardWidget>> {
        let mut conn = self.pool().acquire().await?;
        dashboard_in(&mut conn, workspace_id).await
    }
}
