//! Comments on work items: writing, changing, removing and listing them.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, Store, StoreError, StoreResult, WriteTx};

/// A stored comment.
#[derive(Debug, Clone)]
pub struct Comment {
    /// Identifier (unique across the installation).
    pub id: i64,
    /// The work item it is on.
    pub item_id: i64,
    /// Who wrote it (None once their account is gone).
    pub author_id: Option<i64>,
    /// Their email, when the account still exists.
    pub author: Option<String>,
    /// Plain text.
    pub body: String,
    /// When it was written.
    pub created_at: String,
    /// When it was last changed, if it was.
    pub edited_at: Option<String>,
}

const COLUMNS: &str =
    "c.id, c.item_id, c.author_id, u.email AS author, c.body, c.created_at, c.edited_at";
const FROM: &str = "item_comments c LEFT JOIN users u ON u.id = c.author_id";

fn from_row(row: &AnyRow) -> StoreResult<Comment> {
    Ok(Comment {
        id: row.try_get("id")?,
        item_id: row.try_get("item_id")?,
        author_id: row.try_get("author_id")?,
        author: row.try_get("author")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        edited_at: row.try_get("edited_at")?,
    })
}

/// Writes a comment by `author_id` on item `item_id` of `workspace_id`.
pub async fn insert(
    tx: &mut WriteTx,
    workspace_id: i64,
    item_id: i64,
    author_id: i64,
    body: &str,
) -> StoreResult<Comment> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO item_comments (workspace_id, item_id, author_id, body, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(workspace_id)
    .bind(item_id)
    .bind(author_id)
    .bind(body)
    .bind(now())
    .fetch_one(tx.conn())
    .await?;
    get_in(tx, workspace_id, item_id, id).await
}

/// Comment `id` on item `item_id` of `workspace_id`, inside a transaction.
pub async fn get_in(
    tx: &mut WriteTx,
    workspace_id: i64,
    item_id: i64,
    id: i64,
) -> StoreResult<Comment> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE c.workspace_id = $1 AND c.item_id = $2 AND c.id = $3"
    ))
    .bind(workspace_id)
    .bind(item_id)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::Comment { id, item: item_id }))?;
    from_row(&row)
}

/// Replaces the text of comment `id`, marking it edited.
pub async fn update(
    tx: &mut WriteTx,
    workspace_id: i64,
    item_id: i64,
    id: i64,
    body: &str,
) -> StoreResult<Comment> {
    sqlx::query(
        "UPDATE item_comments SET body = $1, edited_at = $2
         WHERE workspace_id = $3 AND item_id = $4 AND id = $5",
    )
    .bind(body)
    .bind(now())
    .bind(workspace_id)
    .bind(item_id)
    .bind(id)
    .execute(tx.conn())
    .await?;
    get_in(tx, workspace_id, item_id, id).await
}

/// Removes comment `id`.
pub async fn delete(tx: &mut WriteTx, workspace_id: i64, item_id: i64, id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM item_comments WHERE workspace_id = $1 AND item_id = $2 AND id = $3")
        .bind(workspace_id)
        .bind(item_id)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

impl Store {
    /// The comments on item `item_id` of `workspace_id`, oldest first, at
    /// most `limit` (the newest ones when there are more), and how many
    /// there are in all.
    pub async fn comments_on(
        &self,
        workspace_id: i64,
        item_id: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Comment>, i64)> {
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM item_comments WHERE workspace_id = $1 AND item_id = $2",
        )
        .bind(workspace_id)
        .bind(item_id)
        .fetch_one(self.pool())
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE c.workspace_id = $1 AND c.item_id = $2
             ORDER BY c.id DESC LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(item_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut comments = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
        comments.reverse();
        Ok((comments, total))
    }
}
