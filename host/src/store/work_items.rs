//! Work items (changes, incidents, tasks): writing, reading, listing and
//! counting them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sqlx::any::AnyArguments;
use sqlx::any::AnyRow;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use crate::model::workflow::{Kind, Status};

use super::{
    json_column, now, reading, word, Backend, Reads, Store, StoreError, StoreResult, WriteTx,
};

/// A stored work item.
#[derive(Debug, Clone)]
pub struct WorkItem {
    /// Identifier (unique across the installation).
    pub id: i64,
    /// A change, an incident or a task.
    pub kind: Kind,
    /// One line.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Where it is in its kind's workflow.
    pub status: Status,
    /// Custom field values by key.
    pub fields: Map<String, Value>,
    /// Creator's email (if the user still exists), or `plugin:NAME` for an
    /// item a plugin created.
    pub created_by: Option<String>,
    /// The assignee's email: the member working on it, if anyone is.
    pub assignee: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

pub(super) const ITEM_COLUMNS: &str =
    "i.id, i.kind, i.title, i.description, i.status, i.fields, COALESCE(u.email, 'plugin:' || i.created_by_plugin) AS created_by, a.email AS assignee, i.created_at, i.updated_at";
pub(super) const ITEM_FROM: &str =
    "work_items i LEFT JOIN users u ON u.id = i.created_by LEFT JOIN users a ON a.id = i.assignee_id";

pub(super) fn item_from_row(row: &AnyRow) -> StoreResult<WorkItem> {
    let fields = match json_column(&row.try_get::<String, _>("fields")?, "work item fields")? {
        Value::Object(map) => map,
        _ => {
            return Err(StoreError::Corrupt(
                "work item fields are not an object".into(),
            ))
        }
    };
    Ok(WorkItem {
        id: row.try_get("id")?,
        kind: word(row, "kind", "work item")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        status: word(row, "status", "work item")?,
        fields,
        created_by: row.try_get("created_by")?,
        assignee: row.try_get("assignee")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What a new work item holds.
pub struct NewWorkItem<'a> {
    /// A change, an incident or a task.
    pub kind: Kind,
    /// One line.
    pub title: &'a str,
    /// Free text.
    pub description: &'a str,
    /// Initial status.
    pub status: Status,
    /// Validated custom field values.
    pub fields: &'a Map<String, Value>,
    /// The person who created it, if a person did.
    pub created_by: Option<i64>,
    /// The plugin that created it, if a plugin did.
    pub created_by_plugin: Option<&'a str>,
    /// The creating person's email, which the item shows as its creator.
    pub creator_email: Option<&'a str>,
}

/// New work items (each with its workspace) whose ids are taken, to be
/// inserted with one statement: what a batch of creates costs, however
/// many it holds. On SQLite that statement can travel to the database with
/// others, in one round trip ([`ItemRows::sql`], [`ItemRows::bind`]).
pub struct ItemRows<'a> {
    items: &'a [(i64, NewWorkItem<'a>)],
    ids: Vec<i64>,
    at: String,
    backend: Backend,
}

impl<'a> ItemRows<'a> {
    /// Takes the ids of `items` (one statement).
    pub async fn take_ids(
        tx: &mut WriteTx,
        items: &'a [(i64, NewWorkItem<'a>)],
    ) -> StoreResult<Self> {
        let backend = tx.backend();
        let ids = if items.is_empty() {
            Vec::new()
        } else {
            take_item_ids(tx.conn(), backend, items.len()).await?
        };
        Ok(ItemRows {
            items,
            ids,
            at: now(),
            backend,
        })
    }

    /// The statement that inserts them (its values bound by
    /// [`ItemRows::bind`]).
    pub fn sql(&self) -> String {
        format!(
            "INSERT INTO work_items (id, workspace_id, kind, title, description, status, fields, created_by, created_by_plugin, created_at, updated_at)
             VALUES {}",
            super::values_list(self.backend, self.items.len(), 11)
        )
    }

    /// Binds the values of [`ItemRows::sql`] to `query`, after those bound
    /// before.
    pub fn bind<'q>(
        &'q self,
        mut query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Query<'q, Any, AnyArguments<'q>> {
        for ((workspace_id, item), id) in self.items.iter().zip(&self.ids) {
            // Both times are the same value, bound twice.
            query = query
                .bind(*id)
                .bind(*workspace_id)
                .bind(item.kind.as_str())
                .bind(item.title)
                .bind(item.description)
                .bind(item.status.as_str())
                .bind(Value::Object(item.fields.clone()).to_string())
                .bind(item.created_by)
                .bind(item.created_by_plugin)
                .bind(&self.at)
                .bind(&self.at);
        }
        query
    }

    /// Inserts them with a statement of its own.
    pub async fn insert(&self, tx: &mut WriteTx) -> StoreResult<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let sql = self.sql();
        self.bind(sqlx::query(&sql)).execute(tx.conn()).await?;
        Ok(())
    }

    /// The items as they are stored once inserted, in the order given.
    pub fn stored(&self) -> Vec<WorkItem> {
        self.items
            .iter()
            .zip(&self.ids)
            .map(|((_, item), &id)| WorkItem {
                id,
                kind: item.kind,
                title: item.title.to_owned(),
                description: item.description.to_owned(),
                status: item.status,
                fields: item.fields.clone(),
                created_by: match item.created_by_plugin {
                    Some(plugin) => Some(format!("plugin:{plugin}")),
                    None => item.creator_email.map(str::to_owned),
                },
                assignee: None,
                created_at: self.at.clone(),
                updated_at: self.at.clone(),
            })
            .collect()
    }
}

/// Takes `n` new work item ids, in increasing order. On SQLite the
/// transaction holds the write lock, so the ids after the table's
/// `AUTOINCREMENT` counter are free (inserting them moves the counter);
/// on PostgreSQL they come from the column's sequence.
async fn take_item_ids(
    conn: &mut AnyConnection,
    backend: Backend,
    n: usize,
) -> StoreResult<Vec<i64>> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    if backend == Backend::Postgres {
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('work_items', 'id')) FROM generate_series(1, $1)",
        )
        .bind(n)
        .fetch_all(&mut *conn)
        .await?;
        ids.sort_unstable();
        Ok(ids)
    } else {
        let last: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(last), 0) FROM (
                 SELECT seq AS last FROM sqlite_sequence WHERE name = 'work_items'
                 UNION ALL SELECT MAX(id) FROM work_items) known",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok((last + 1..=last + n).collect())
    }
}

/// A work item of `workspace_id`, inside a transaction.
pub async fn work_item_in(
    conn: &mut impl Reads,
    workspace_id: i64,
    id: i64,
) -> StoreResult<WorkItem> {
    let row = sqlx::query(&format!(
        "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM} WHERE i.workspace_id = $1 AND i.id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(reading(conn))
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::WorkItem(id)))?;
    item_from_row(&row)
}

/// Writes a work item's title, description, status and fields.
pub async fn update_work_item(
    tx: &mut WriteTx,
    workspace_id: i64,
    item: &WorkItem,
) -> StoreResult<WorkItem> {
    sqlx::query(
        "UPDATE work_items SET title = $1, description = $2, status = $3, fields = $4, updated_at = $5
         WHERE workspace_id = $6 AND id = $7",
    )
    .bind(&item.title)
    .bind(&item.description)
    .bind(item.status.as_str())
    .bind(Value::Object(item.fields.clone()).to_string())
    .bind(now())
    .bind(workspace_id)
    .bind(item.id)
    .execute(tx.conn())
    .await?;
    work_item_in(tx, workspace_id, item.id).await
}

/// Gives work item `id` to user `assignee` (None: to nobody).
pub async fn assign_work_item(
    tx: &mut WriteTx,
    workspace_id: i64,
    id: i64,
    assignee: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE work_items SET assignee_id = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4",
    )
    .bind(assignee)
    .bind(now())
    .bind(workspace_id)
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Counts of work items by kind, then by status.
pub type StatusCounts = BTreeMap<Kind, BTreeMap<Status, u64>>;

impl Store {
    /// A work item of `workspace_id`.
    pub async fn work_item(&self, workspace_id: i64, id: i64) -> StoreResult<WorkItem> {
        let mut conn = self.pool().acquire().await?;
        work_item_in(&mut conn, workspace_id, id).await
    }

    /// How many work items of `workspace_id` are in each status, by kind
    /// (from the counters the database keeps by trigger).
    pub async fn count_work_items_by_status(&self, workspace_id: i64) -> StoreResult<StatusCounts> {
        let rows = sqlx::query(
            "SELECT kind, status, n FROM work_item_counts WHERE workspace_id = $1 AND n > 0",
        )
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?;
        let mut counts = StatusCounts::new();
        for row in rows {
            let kind: Kind = word(&row, "kind", "work item count")?;
            let status: Status = word(&row, "status", "work item count")?;
            let n: i64 = row.try_get("n")?;
            counts
                .entry(kind)
                .or_default()
                .insert(status, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }
}
