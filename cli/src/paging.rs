//! Reading the API's paged lists (members, invites): one page, the first N
//! rows, or every row, walking the pages forwards or backwards from a key,
//! and telling the person how to get the rest.

use anyhow::Result;
use serde_json::Value;

use crate::client::{query, Client};
use crate::output::{field, list};

/// The largest page the server gives.
const MAX_PAGE: u32 = 500;

/// One paged list of the API.
pub struct PagedList<'a> {
    /// Its path, such as `/api/v1/workspaces/ops/members`.
    pub path: String,
    /// The array's name in the answer (`members`).
    pub rows: &'a str,
    /// What the rows are called in a message (`members`).
    pub noun: &'a str,
    /// The command that lists it (`vigilo member list`).
    pub command: &'a str,
    /// The parameter that leads to the next page (`after` for members).
    pub next_param: &'a str,
    /// The parameter that leads to the previous page.
    pub prev_param: &'a str,
    /// The answer's key for the next page (`next_after`).
    pub next_field: &'a str,
    /// The answer's key for the previous page (`prev_before`).
    pub prev_field: &'a str,
}

/// How many rows to read.
#[derive(Debug, Clone, Copy)]
pub enum Take {
    /// One page of the server's default size.
    Page,
    /// Up to this many rows, over as many pages as it takes.
    UpTo(u32),
    /// Every row.
    All,
}

/// Rows read, with where the list goes on.
pub struct Walked {
    /// The rows, in list order.
    pub rows: Vec<Value>,
    /// How many rows the whole list has.
    pub total: i64,
    /// The key for the page after the rows read, if any.
    pub next: Option<String>,
    /// The key for the page before them, if any.
    pub prev: Option<String>,
}

fn key(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl PagedList<'_> {
    /// Reads `take` rows starting after `after` or before `before` (keys in
    /// the API's sense; with both, the rows between them). Going from the
    /// key that leads to previous pages alone walks backwards.
    pub fn walk(
        &self,
        client: &Client,
        after: Option<String>,
        before: Option<String>,
        take: Take,
    ) -> Result<Walked> {
        let mut params: Vec<(&str, String)> = Vec::new();
        let (next_value, prev_value) = if self.next_param == "after" {
            (after, before)
        } else {
            (before, after)
        };
        let backwards = prev_value.is_some() && next_value.is_none();
        // With both keys, the far one bounds every page read.
        let bound = next_value
            .is_some()
            .then(|| prev_value.clone().map(|v| (self.prev_param, v)))
            .flatten();
        if let Some(v) = next_value {
            params.push((self.next_param, v));
        }
        if let Some(v) = prev_value {
            params.push((self.prev_param, v));
        }
        let mut rows: Vec<Value> = Vec::new();
        let mut total;
        let (mut next, mut prev) = (None, None);
        let mut first = true;
        loop {
            let wanted = match take {
                Take::Page => None,
                Take::UpTo(n) => Some(n.saturating_sub(rows.len() as u32).clamp(1, MAX_PAGE)),
                Take::All => Some(MAX_PAGE),
            };
            let mut page_params = params.clone();
            if let Some(limit) = wanted {
                page_params.push(("limit", limit.to_string()));
            }
            let answer = client.get(&format!("{}{}", self.path, query(&page_params)))?;
            let page = list(&answer, self.rows)?.clone();
            total = field(&answer, "total").as_i64().unwrap_or(0);
            let page_next = key(field(&answer, self.next_field));
            let page_prev = key(field(&answer, self.prev_field));
            let onward = if backwards {
                rows.splice(0..0, page);
                if first {
                    next = page_next;
                }
                prev = page_prev.clone();
                page_prev
            } else {
                rows.extend(page);
                if first {
                    prev = page_prev;
                }
                next = page_next.clone();
                page_next
            };
            first = false;
            let done = match take {
                Take::Page => true,
                Take::UpTo(n) => rows.len() as u32 >= n,
                Take::All => false,
            };
            match onward {
                Some(k) if !done => {
                    let param = if backwards {
                        self.prev_param
                    } else {
                        self.next_param
                    };
                    params = vec![(param, k)];
                    params.extend(bound.clone());
                }
                _ => break,
            }
        }
        Ok(Walked {
            rows,
            total,
            next,
            prev,
        })
    }

    /// A line for standard error saying how many rows were shown and how
    /// to see the others; None when every row was shown.
    pub fn hint(&self, walked: &Walked) -> Option<String> {
        if walked.next.is_none() && walked.prev.is_none() {
            return None;
        }
        let mut hint = format!(
            "Showing {} of {} {}.",
            walked.rows.len(),
            walked.total,
            self.noun
        );
        if let Some(next) = &walked.next {
            hint.push_str(&format!(
                " Next page: {} --{} {next}.",
                self.command, self.next_param
            ));
        }
        if let Some(prev) = &walked.prev {
            hint.push_str(&format!(
                " Previous page: {} --{} {prev}.",
                self.command, self.prev_param
            ));
        }
        hint.push_str(" Every one: --all.");
        Some(hint)
    }
}
