//! Work items (changes, incidents, tasks): writing, reading, listing and
//! counting them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sqlx::any::AnyArguments;
use sqlx::any::AnyRow;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use super::{json_column, now, Backend, Store, StoreError, StoreResult};

/// A stored work item.
#[derive(Debug, Clone)]
pub struct WorkItem {
    /// Identifier (unique across the installation).
    pub id: i64,
    /// `change`, `incident` or `task`.
    pub kind: String,
    /// One line.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Where it is in its workflow.
    pub status: String,
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

const ITEM_COLUMNS: &str =
    "i.id, i.kind, i.title, i.description, i.status, i.fields, COALESCE(u.email, 'plugin:' || i.created_by_plugin) AS created_by, a.email AS assignee, i.created_at, i.updated_at";
const ITEM_FROM: &str =
    "work_items i LEFT JOIN users u ON u.id = i.created_by LEFT JOIN users a ON a.id = i.assignee_id";

fn item_from_row(row: &AnyRow) -> StoreResult<WorkItem> {
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
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        status: row.try_get("status")?,
        fields,
        created_by: row.try_get("created_by")?,
        assignee: row.try_get("assignee")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What a new work item holds.
pub struct NewWorkItem<'a> {
    /// `change`, `incident` or `task`.
    pub kind: &'a str,
    /// One line.
    pub title: &'a str,
    /// Free text.
    pub description: &'a str,
    /// Initial status.
    pub status: &'a str,
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
        conn: &mut AnyConnection,
        items: &'a [(i64, NewWorkItem<'a>)],
    ) -> StoreResult<Self> {
        let backend = if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let ids = if items.is_empty() {
            Vec::new()
        } else {
            take_item_ids(conn, backend, items.len()).await?
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
                .bind(item.kind)
                .bind(item.title)
                .bind(item.description)
                .bind(item.status)
                .bind(Value::Object(item.fields.clone()).to_string())
                .bind(item.created_by)
                .bind(item.created_by_plugin)
                .bind(&self.at)
                .bind(&self.at);
        }
        query
    }

    /// Inserts them with a statement of its own.
    pub async fn insert(&self, conn: &mut AnyConnection) -> StoreResult<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let sql = self.sql();
        self.bind(sqlx::query(&sql)).execute(&mut *conn).await?;
        Ok(())
    }

    /// The items as they are stored once inserted, in the order given.
    pub fn stored(&self) -> Vec<WorkItem> {
        self.items
            .iter()
            .zip(&self.ids)
            .map(|((_, item), &id)| WorkItem {
                id,
                kind: item.kind.to_owned(),
                title: item.title.to_owned(),
                description: item.description.to_owned(),
                status: item.status.to_owned(),
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
    conn: &mut AnyConnection,
    workspace_id: i64,
    id: i64,
) -> StoreResult<WorkItem> {
    let row = sqlx::query(&format!(
        "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM} WHERE i.workspace_id = $1 AND i.id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("no work item {id} in this workspace")))?;
    item_from_row(&row)
}

/// Writes a work item's title, description, status and fields.
pub async fn update_work_item(
    conn: &mut AnyConnection,
    workspace_id: i64,
    item: &WorkItem,
) -> StoreResult<WorkItem> {
    sqlx::query(
        "UPDATE work_items SET title = $1, description = $2, status = $3, fields = $4, updated_at = $5
         WHERE workspace_id = $6 AND id = $7",
    )
    .bind(&item.title)
    .bind(&item.description)
    .bind(&item.status)
    .bind(Value::Object(item.fields.clone()).to_string())
    .bind(now())
    .bind(workspace_id)
    .bind(item.id)
    .execute(&mut *conn)
    .await?;
    work_item_in(conn, workspace_id, item.id).await
}

/// Gives work item `id` to user `assignee` (None: to nobody).
pub async fn assign_work_item(
    conn: &mut AnyConnection,
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Counts of work items by kind, then by status.
pub type StatusCounts = BTreeMap<String, BTreeMap<String, u64>>;

/// Which work items a search matches: every filter given narrows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ItemFilter<'a> {
    /// Only this kind.
    pub kind: Option<&'a str>,
    /// Only this status.
    pub status: Option<&'a str>,
    /// Only items whose title holds this text (letters A–Z in either case).
    pub text: Option<&'a str>,
    /// Only items this user created.
    pub created_by: Option<i64>,
    /// Only items assigned to this user.
    pub assignee: Option<i64>,
    /// Only items created at or after this stored time.
    pub created_after: Option<&'a str>,
    /// Only items created before this stored time.
    pub created_before: Option<&'a str>,
    /// Only items changed at or after this stored time.
    pub updated_after: Option<&'a str>,
    /// Only items last changed before this stored time.
    pub updated_before: Option<&'a str>,
    /// Only items whose custom field (by key) holds this value exactly.
    pub field: Option<(&'a str, &'a Value)>,
    /// No items of these (kind, status) pairs.
    pub not_in: &'a [(&'a str, &'a str)],
}

/// The order of a search's results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ItemOrder {
    /// Newest first.
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// By title, A to Z.
    Title,
    /// Most recently changed first.
    Updated,
    /// By status, in the order given (the kind's workflow); a status not
    /// given comes last.
    Status(&'static [&'static str]),
    /// By the assignee's email, A to Z, items nobody has first.
    Assignee,
    /// By the creator's email (or plugin), A to Z.
    Creator,
    /// By a custom field's value (by key), smallest first, items without
    /// one first.
    Field(String),
}

/// Where a page of a search starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemsAt {
    /// After skipping this many rows (a page asked for by its number).
    Offset(i64),
    /// The rows after the item with this id, in list order.
    After(i64),
    /// The rows before the item with this id, in list order.
    Before(i64),
}

impl ItemOrder {
    /// The sort key besides the id (an SQL expression over `#`, the row
    /// being sorted: a `listed` row with its users joined, or the cursor
    /// row), whether it runs upwards, and whether the id does.
    fn key(&self, backend: Backend, listed: bool) -> (Option<String>, bool, bool) {
        let email = |column: &str| {
            format!("COALESCE((SELECT LOWER(p.email) FROM users p WHERE p.id = #.{column}), '')")
        };
        match self {
            ItemOrder::Newest => (None, false, false),
            ItemOrder::Oldest => (None, true, true),
            ItemOrder::Title => (Some("LOWER(#.title)".into()), true, false),
            ItemOrder::Updated => (Some("#.updated_at".into()), false, false),
            ItemOrder::Status(statuses) => {
                let mut case = String::from("CASE #.status");
                for (n, status) in statuses.iter().enumerate() {
                    // Statuses are the workflow's own words (letters and
                    // `_`); anything else would not be one of them.
                    if status
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        case.push_str(&format!(" WHEN '{status}' THEN {n}"));
                    }
                }
                case.push_str(&format!(" ELSE {} END", statuses.len()));
                (Some(case), true, false)
            }
            // The listed row has its users joined (`a`, `u`); the cursor
            // row looks its user up.
            ItemOrder::Assignee if listed => {
                (Some("COALESCE(LOWER(a.email), '')".into()), true, false)
            }
            ItemOrder::Assignee => (Some(email("assignee_id")), true, false),
            ItemOrder::Creator => (
                Some(format!(
                    "COALESCE({}, 'plugin:' || #.created_by_plugin, '')",
                    if listed {
                        "LOWER(u.email)".to_owned()
                    } else {
                        "(SELECT LOWER(p.email) FROM users p WHERE p.id = #.created_by)".to_owned()
                    }
                )),
                true,
                false,
            ),
            ItemOrder::Field(key) => {
                // Keys are identifiers (letters, digits, `_`, `-`, `.`);
                // anything else is dropped rather than put in the statement.
                let key: String = key
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    .collect();
                let value = match backend {
                    // A missing value sorts before every number and text.
                    Backend::Sqlite => {
                        format!("COALESCE(json_extract(#.fields, '$.\"{key}\"'), -1e308)")
                    }
                    // jsonb orders null before strings, numbers and booleans.
                    Backend::Postgres => {
                        format!("COALESCE(CAST(#.fields AS jsonb) -> '{key}', 'null'::jsonb)")
                    }
                };
                (Some(value), true, false)
            }
        }
    }

    /// The `ORDER BY` of the list, or of it read backwards.
    fn sql(&self, backwards: bool, backend: Backend) -> String {
        let (key, key_up, id_up) = self.key(backend, true);
        let dir = |up: bool| if up != backwards { "ASC" } else { "DESC" };
        let id = format!("i.id {}", dir(id_up));
        match key {
            Some(key) => format!("{} {}, {id}", key.replace('#', "i"), dir(key_up)),
            None => id,
        }
    }

    /// The condition that a row comes after (or, `backwards`, before) the
    /// cursor item, whose id is bound as `$param`: keyset paging, found
    /// through the order's sort key and the id that breaks its ties.
    fn beyond(&self, param: usize, backwards: bool, backend: Backend) -> String {
        let (key, key_up, id_up) = self.key(backend, true);
        let (cursor_key, _, _) = self.key(backend, false);
        let op = |up: bool| if up != backwards { ">" } else { "<" };
        let id = format!("i.id {} ${param}", op(id_up));
        match (key, cursor_key) {
            (Some(key), Some(cursor_key)) => {
                let mine = key.replace('#', "i");
                let theirs = format!(
                    "(SELECT {} FROM work_items c WHERE c.id = ${param})",
                    cursor_key.replace('#', "c")
                );
                format!(
                    "({mine} {} {theirs} OR ({mine} = {theirs} AND {id}))",
                    op(key_up)
                )
            }
            _ => id,
        }
    }
}

/// `text` as a `LIKE` pattern that matches it anywhere, its own `%`, `_`
/// and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The conditions of `filter` (each ` AND ...`), numbered from `$first`,
/// and the number of the next placeholder.
fn filter_sql(filter: &ItemFilter<'_>, first: usize, backend: Backend) -> (String, usize) {
    let mut conditions = String::new();
    let mut next = first;
    let field = match backend {
        Backend::Sqlite => "json_extract(i.fields, ?) = ?",
        Backend::Postgres => "(CAST(i.fields AS jsonb) -> ?) = CAST(? AS jsonb)",
    };
    for (given, sql) in [
        (filter.kind.is_some(), "i.kind = ?"),
        (filter.status.is_some(), "i.status = ?"),
        (filter.text.is_some(), "LOWER(i.title) LIKE ? ESCAPE '\\'"),
        (filter.created_by.is_some(), "i.created_by = ?"),
        (filter.assignee.is_some(), "i.assignee_id = ?"),
        (filter.created_after.is_some(), "i.created_at >= ?"),
        (filter.created_before.is_some(), "i.created_at < ?"),
        (filter.updated_after.is_some(), "i.updated_at >= ?"),
        (filter.updated_before.is_some(), "i.updated_at < ?"),
        (filter.field.is_some(), field),
    ] {
        if given {
            let mut numbered = String::new();
            for (n, part) in sql.split('?').enumerate() {
                if n > 0 {
                    numbered.push_str(&format!("${next}"));
                    next += 1;
                }
                numbered.push_str(part);
            }
            conditions.push_str(&format!(" AND {numbered}"));
        }
    }
    if !filter.not_in.is_empty() {
        let pairs: Vec<String> = filter
            .not_in
            .iter()
            .map(|_| {
                next += 2;
                format!("(i.kind = ${} AND i.status = ${})", next - 2, next - 1)
            })
            .collect();
        conditions.push_str(&format!(" AND NOT ({})", pairs.join(" OR ")));
    }
    (conditions, next)
}

/// Binds `filter`'s values, in the order of [`filter_sql`].
fn bind_filter<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    filter: &ItemFilter<'_>,
    backend: Backend,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for value in [filter.kind, filter.status].into_iter().flatten() {
        query = query.bind(value.to_owned());
    }
    if let Some(text) = filter.text {
        query = query.bind(contains_pattern(text));
    }
    for user in [filter.created_by, filter.assignee].into_iter().flatten() {
        query = query.bind(user);
    }
    for time in [
        filter.created_after,
        filter.created_before,
        filter.updated_after,
        filter.updated_before,
    ]
    .into_iter()
    .flatten()
    {
        query = query.bind(time.to_owned());
    }
    if let Some((key, value)) = filter.field {
        query = match backend {
            // SQLite's json_extract answers text, a number, or 1/0 for a
            // boolean: the value is bound as the same.
            Backend::Sqlite => {
                let query = query.bind(format!("$.\"{key}\""));
                match value {
                    Value::String(text) => query.bind(text.clone()),
                    Value::Bool(b) => query.bind(i64::from(*b)),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => query.bind(i),
                        None => query.bind(n.as_f64().unwrap_or(f64::NAN)),
                    },
                    other => query.bind(other.to_string()),
                }
            }
            Backend::Postgres => query.bind(key.to_owned()).bind(value.to_string()),
        };
    }
    for (kind, status) in filter.not_in {
        query = query.bind((*kind).to_owned()).bind((*status).to_owned());
    }
    query
}

impl Store {
    /// A work item of `workspace_id`.
    pub async fn work_item(&self, workspace_id: i64, id: i64) -> StoreResult<WorkItem> {
        let mut conn = self.pool().acquire().await?;
        work_item_in(&mut conn, workspace_id, id).await
    }

    /// Items of `workspace_id` that `filter` matches, newest first, with an
    /// id below `before`, at most `limit`. Only the filters given are in the
    /// statement, so the planner can walk an index newest first and stop
    /// after `limit` rows.
    pub async fn list_work_items(
        &self,
        workspace_id: i64,
        filter: &ItemFilter<'_>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<WorkItem>> {
        let (conditions, next) = filter_sql(filter, 3, self.backend());
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM}
             WHERE i.workspace_id = $1 AND i.id < $2{conditions}
             ORDER BY i.id DESC LIMIT ${next}"
        );
        let query = sqlx::query(&sql)
            .bind(workspace_id)
            .bind(before.unwrap_or(i64::MAX));
        let rows = bind_filter(query, filter, self.backend())
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// The work items of `workspace_id` that `filter` matches, in `order`,
    /// from `at`, at most `limit`, with how many match in all and whether
    /// more come beyond the last one read (in the reading direction: before
    /// the first row for [`ItemsAt::Before`]). The rows are in list order.
    pub async fn search_work_items(
        &self,
        workspace_id: i64,
        filter: &ItemFilter<'_>,
        order: &ItemOrder,
        at: ItemsAt,
        limit: i64,
    ) -> StoreResult<(Vec<WorkItem>, i64, bool)> {
        let backend = self.backend();
        let (conditions, next) = filter_sql(filter, 2, backend);
        let count_sql =
            format!("SELECT COUNT(*) AS n FROM work_items i WHERE i.workspace_id = $1{conditions}");
        let total: i64 = bind_filter(sqlx::query(&count_sql).bind(workspace_id), filter, backend)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let (cursor, backwards, offset) = match at {
            ItemsAt::Offset(offset) => (None, false, offset),
            ItemsAt::After(id) => (Some(id), false, 0),
            ItemsAt::Before(id) => (Some(id), true, 0),
        };
        let (keyset, after_cursor) = match cursor {
            Some(_) => (
                format!(" AND {}", order.beyond(next, backwards, backend)),
                next + 1,
            ),
            None => (String::new(), next),
        };
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM}
             WHERE i.workspace_id = $1{conditions}{keyset}
             ORDER BY {} LIMIT ${after_cursor} OFFSET ${}",
            order.sql(backwards, backend),
            after_cursor + 1
        );
        let mut query = bind_filter(sqlx::query(&sql).bind(workspace_id), filter, backend);
        if let Some(id) = cursor {
            query = query.bind(id);
        }
        let rows = query
            .bind(limit + 1)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        let more = rows.len() as i64 > limit;
        let mut items = rows
            .iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(item_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if backwards {
            items.reverse();
        }
        Ok((items, total, more))
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
            let kind: String = row.try_get("kind")?;
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            counts
                .entry(kind)
                .or_default()
                .insert(status, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }
}
