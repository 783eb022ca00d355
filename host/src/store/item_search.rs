//! Finding work items: the filters, orders and pages of a search, as
//! statements (keyset paging through each order's sort key and the id).

use serde_json::Value;
use sqlx::Row;

use super::work_items::WorkItem;
use super::work_items::{item_from_row, ITEM_COLUMNS, ITEM_FROM};
use super::{Backend, Store, StoreResult};
use crate::model::workflow::{Kind, Status};

/// Which work items a search matches: every filter given narrows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ItemFilter<'a> {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this status.
    pub status: Option<Status>,
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
    pub not_in: &'a [(Kind, Status)],
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
    Status(&'static [Status]),
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
                    // `_`), so they may stand in the statement.
                    case.push_str(&format!(" WHEN '{status}' THEN {n}"));
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
    let words = [
        filter.kind.map(Kind::as_str),
        filter.status.map(Status::as_str),
    ];
    for value in words.into_iter().flatten() {
        query = query.bind(value);
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
        query = query.bind(kind.as_str()).bind(status.as_str());
    }
    query
}

impl Store {
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
}
