//! Lists read a page at a time: where a page starts ([`PageAt`]), what it
//! holds ([`Page`]), and the keyset reading that finds any page through an
//! index, however deep it lies.

use sqlx::{Any, AnyConnection};

use super::StoreResult;

/// Where a page of a list starts, in the list's own order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAt<K> {
    /// The first page.
    First,
    /// The rows that come after the row with this key.
    After(K),
    /// The rows that come before the row with this key.
    Before(K),
    /// The rows that come after the first key and before the second.
    Between(K, K),
}

/// One page of a list, in the list's order, and whether there are rows
/// beyond each end of it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// How many rows the whole list has.
    pub total: i64,
    /// Whether rows come before the first one.
    pub more_before: bool,
    /// Whether rows come after the last one.
    pub more_after: bool,
}

/// A list read a page at a time, ordered by one unique column (keyset
/// paging: each page is found through an index, wherever it lies).
pub(super) struct Keyset<'a> {
    /// `SELECT ... FROM ... WHERE <the list's rows, by $1>`.
    pub select: &'a str,
    /// `SELECT 1 FROM ... WHERE <the same rows>`.
    pub exists: &'a str,
    /// The ordering column.
    pub column: &'a str,
    /// Whether the list runs from the largest key down.
    pub descending: bool,
}

impl Keyset<'_> {
    /// `column` compared with `param`: the rows after it in list order (or
    /// at it, when `inclusive`).
    fn after(&self, param: &str, inclusive: bool) -> String {
        let op = match (self.descending, inclusive) {
            (false, false) => ">",
            (false, true) => ">=",
            (true, false) => "<",
            (true, true) => "<=",
        };
        format!("{} {op} {param}", self.column)
    }

    /// `column` compared with `param`: the rows before it in list order (or
    /// at it, when `inclusive`).
    fn before(&self, param: &str, inclusive: bool) -> String {
        Keyset {
            descending: !self.descending,
            ..*self
        }
        .after(param, inclusive)
    }

    /// Reads the page at `at`, of at most `limit` rows, of the list whose
    /// `$1` is `scope`; `total` is the list's length.
    pub(super) async fn read<T, K>(
        &self,
        conn: &mut AnyConnection,
        scope: i64,
        at: &PageAt<K>,
        limit: i64,
        total: i64,
        row: impl Fn(&sqlx::any::AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Page<T>>
    where
        K: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Clone + Send,
    {
        let (forward, backward) = if self.descending {
            ("DESC", "ASC")
        } else {
            ("ASC", "DESC")
        };
        let (filter, order, keys) = match at {
            PageAt::First => (String::new(), forward, vec![]),
            PageAt::After(k) => (
                format!("AND {}", self.after("$3", false)),
                forward,
                vec![k.clone()],
            ),
            PageAt::Before(k) => (
                format!("AND {}", self.before("$3", false)),
                backward,
                vec![k.clone()],
            ),
            PageAt::Between(a, b) => (
                format!(
                    "AND {} AND {}",
                    self.after("$3", false),
                    self.before("$4", false)
                ),
                forward,
                vec![a.clone(), b.clone()],
            ),
        };
        let sql = format!(
            "{} {filter} ORDER BY {} {order} LIMIT $2",
            self.select, self.column
        );
        let mut query = sqlx::query(&sql).bind(scope).bind(limit + 1);
        for key in keys {
            query = query.bind(key);
        }
        let mut rows = query
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(row)
            .collect::<StoreResult<Vec<T>>>()?;
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let at_or_before = format!("{} AND {}", self.exists, self.before("$2", true));
        let at_or_after = format!("{} AND {}", self.exists, self.after("$2", true));
        let (more_before, more_after) = match at {
            PageAt::First => (false, more),
            PageAt::After(k) => (any_row(conn, &at_or_before, scope, k.clone()).await?, more),
            PageAt::Before(k) => {
                rows.reverse();
                (more, any_row(conn, &at_or_after, scope, k.clone()).await?)
            }
            PageAt::Between(a, b) => (
                any_row(conn, &at_or_before, scope, a.clone()).await?,
                more || any_row(conn, &at_or_after, scope, b.clone()).await?,
            ),
        };
        Ok(Page {
            rows,
            total,
            more_before,
            more_after,
        })
    }
}

/// Whether `select` (a statement over `$1` and `$2`) finds any row.
async fn any_row<K>(
    conn: &mut AnyConnection,
    select: &str,
    first: i64,
    second: K,
) -> StoreResult<bool>
where
    K: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any> + Send,
{
    let found: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ({select} LIMIT 1) found"))
        .bind(first)
        .bind(second)
        .fetch_one(&mut *conn)
        .await?;
    Ok(found > 0)
}
