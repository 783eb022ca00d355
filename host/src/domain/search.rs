//! Finding work items: one kind's list searched, filtered, ordered and
//! paged ([`search`]), and the quick search across kinds by number or by
//! words in titles ([`find`]).

use super::authz::{Access, Permission};
use super::workflow::{check_status, Kind};
use super::{DomainError, DomainResult};
use crate::domain::Context;
use crate::store;
use crate::store::work_items::WorkItem;

/// A search of one kind's items, as the web app's lists make it.
#[derive(Debug, Clone)]
pub struct ItemSearch {
    /// The kind.
    pub kind: Kind,
    /// Only this status of the kind's workflow.
    pub status: Option<String>,
    /// Only items whose title holds this text.
    pub text: Option<String>,
    /// Only items the caller created.
    pub mine: bool,
    /// Only items assigned to the caller.
    pub assigned_to_me: bool,
    /// Only items whose custom field (by key) holds this value.
    pub field: Option<(String, serde_json::Value)>,
    /// The order.
    pub order: store::ItemOrder,
    /// Which page, from 1: the page read when there is no cursor, and
    /// the number shown.
    pub page: i64,
    /// Where the page starts: after or before an item of the list (keyset
    /// paging, as fast deep in the list as at its start).
    pub cursor: Option<store::ItemsAt>,
    /// Items on a page.
    pub page_size: i64,
}

/// One page of a search.
#[derive(Debug, Clone)]
pub struct ItemSearchPage {
    /// The items on the page.
    pub items: Vec<WorkItem>,
    /// How many items match in all.
    pub total: i64,
    /// The page shown, from 1.
    pub page: i64,
    /// How many pages there are (at least 1).
    pub pages: i64,
    /// Whether items come before the first one shown.
    pub more_before: bool,
    /// Whether items come after the last one shown.
    pub more_after: bool,
}

/// The longest text searched for in titles.
pub const MAX_SEARCH: usize = 200;

/// Refuses text to search for that is longer than [`MAX_SEARCH`]
/// characters (as the field `q`).
pub(crate) fn check_text(text: &str) -> DomainResult<()> {
    if text.chars().count() > MAX_SEARCH {
        return Err(DomainError::invalid(
            "q",
            format!("search for at most {MAX_SEARCH} characters"),
        ));
    }
    Ok(())
}

/// A page of the kind's items that `search` matches (needs
/// `workspace.read`). A page past the last shows the last.
pub async fn search(
    state: &Context,
    access: &Access,
    search: &ItemSearch,
) -> DomainResult<ItemSearchPage> {
    access.require(Permission::WorkspaceRead)?;
    let flow = search.kind.workflow();
    let status = search
        .status
        .as_deref()
        .map(|status| check_status(flow, status))
        .transpose()?;
    let text = search
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    check_text(text.unwrap_or_default())?;
    let page_size = search.page_size.clamp(1, 500);
    let filter = store::ItemFilter {
        kind: Some(search.kind),
        status,
        text,
        created_by: search.mine.then_some(access.caller.user.id),
        assignee: search.assigned_to_me.then_some(access.caller.user.id),
        field: search.field.as_ref().map(|(k, v)| (k.as_str(), v)),
        ..Default::default()
    };
    // A cursor is used when its item is one of the kind's in this
    // workspace; otherwise the page is read by its number.
    let cursor = match search.cursor {
        Some(store::ItemsAt::After(id) | store::ItemsAt::Before(id)) => {
            match state.store.work_item(access.workspace.id, id).await {
                Ok(item) if item.kind == search.kind => search.cursor,
                Ok(_) | Err(store::StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            }
        }
        _ => None,
    };
    let mut page = search.page.max(1);
    if let Some(at) = cursor {
        let (items, total, more) = state
            .store
            .search_work_items(access.workspace.id, &filter, &search.order, at, page_size)
            .await?;
        let pages = ((total + page_size - 1) / page_size).max(1);
        if !items.is_empty() {
            let (more_before, more_after) = match at {
                store::ItemsAt::Before(_) => (more, true),
                _ => (true, more),
            };
            // The number shown follows the ends of the list.
            page = if !more_before {
                1
            } else if !more_after {
                pages
            } else {
                page.clamp(2, (pages - 1).max(2))
            };
            return Ok(ItemSearchPage {
                items,
                total,
                page,
                pages,
                more_before,
                more_after,
            });
        }
    }
    loop {
        let offset = (page - 1).saturating_mul(page_size);
        let (items, total, more) = state
            .store
            .search_work_items(
                access.workspace.id,
                &filter,
                &search.order,
                store::ItemsAt::Offset(offset),
                page_size,
            )
            .await?;
        let pages = ((total + page_size - 1) / page_size).max(1);
        // A page past the end (the list shrank, or the address was edited)
        // shows the last one instead.
        if page > pages {
            page = pages;
            continue;
        }
        return Ok(ItemSearchPage {
            items,
            total,
            page,
            pages,
            more_before: offset > 0,
            more_after: more,
        });
    }
}

/// What a quick search found: the item whose number was given, or the
/// items of every kind whose title holds the text, newest first.
#[derive(Debug, Clone)]
pub enum Found {
    /// `#42` or `42`, and item 42 is in the workspace.
    Item(WorkItem),
    /// Titles that hold the text (at most `limit`), and how many in all.
    Titles(Vec<WorkItem>, i64),
}

/// Finds items in the workspace by number (`42`, `#42`) or by text in their
/// titles, across every kind (needs `workspace.read`).
pub async fn find(state: &Context, access: &Access, text: &str, limit: i64) -> DomainResult<Found> {
    access.require(Permission::WorkspaceRead)?;
    let text = text.trim();
    check_text(text)?;
    if let Ok(id) = text.trim_start_matches('#').parse::<i64>() {
        match state.store.work_item(access.workspace.id, id).await {
            Ok(item) => return Ok(Found::Item(item)),
            Err(store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let filter = store::ItemFilter {
        text: Some(text).filter(|t| !t.is_empty()),
        ..Default::default()
    };
    let (items, total, _) = state
        .store
        .search_work_items(
            access.workspace.id,
            &filter,
            &store::ItemOrder::Newest,
            store::ItemsAt::Offset(0),
            limit.clamp(1, 500),
        )
        .await?;
    Ok(Found::Titles(items, total))
}
