//! Pages of long lists (members, invites): a list is read a page at a time
//! from a key (keyset paging), never whole, so its size does not matter to
//! a request.
//!
//! A request may name a key `after` (the rows whose key sorts after it),
//! a key `before` (the rows whose key sorts before it), or both (the rows
//! between them), and a `limit` of 1 to [`MAX_LIMIT`] rows
//! ([`DEFAULT_LIMIT`] when absent). The answer says how many rows the whole
//! list has, and the key to pass for the next and the previous page (none
//! past either end).

use super::{validate, DomainResult};
use crate::store::{Page, PageAt};

/// Rows in a page when no `limit` is given.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most rows a page may have.
pub const MAX_LIMIT: i64 = 500;

/// Which page to read, as a caller asks for it.
#[derive(Debug, Clone, Default)]
pub struct PageQuery<K> {
    /// Rows whose key sorts after this one.
    pub after: Option<K>,
    /// Rows whose key sorts before this one.
    pub before: Option<K>,
    /// At most this many rows.
    pub limit: Option<i64>,
}

/// How a list is ordered by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Smallest key first (members by email).
    Ascending,
    /// Largest key first (invites, newest first).
    Descending,
}

impl<K> PageQuery<K> {
    /// Where the page starts in a list kept in `order`, and its size.
    pub fn resolve(self, order: Order) -> DomainResult<(PageAt<K>, i64)> {
        let limit = validate::limit(self.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        let at = match (self.after, self.before, order) {
            (Some(after), Some(before), Order::Ascending) => PageAt::Between(after, before),
            (Some(after), Some(before), Order::Descending) => PageAt::Between(before, after),
            (None, None, _) => PageAt::First,
            (Some(k), None, Order::Ascending) | (None, Some(k), Order::Descending) => {
                PageAt::After(k)
            }
            (Some(k), None, Order::Descending) | (None, Some(k), Order::Ascending) => {
                PageAt::Before(k)
            }
        };
        Ok((at, limit))
    }
}

/// A page of a list with the keys that lead on from it.
#[derive(Debug, Clone)]
pub struct Listed<T, K> {
    /// The rows, in list order.
    pub rows: Vec<T>,
    /// How many rows the whole list has.
    pub total: i64,
    /// The key to continue from for the next page (None on the last).
    pub next: Option<K>,
    /// The key to go back from for the previous page (None on the first).
    pub prev: Option<K>,
}

impl<T, K> Listed<T, K> {
    /// The page `page`, whose rows have keys given by `key`.
    pub fn new(page: Page<T>, key: impl Fn(&T) -> K) -> Self {
        let next = page
            .more_after
            .then(|| page.rows.last().map(&key))
            .flatten();
        let prev = page
            .more_before
            .then(|| page.rows.first().map(&key))
            .flatten();
        Listed {
            rows: page.rows,
            total: page.total,
            next,
            prev,
        }
    }
}
