//! Finding work items: a page of the workspace's items by filters (the
//! API's list), the members an item may be assigned to, and the caller's
//! unfinished items.

use super::{check_kind, workflow, KINDS};
use crate::domain::authz::{Access, Permission};
use crate::domain::{validate, DomainError, DomainResult, Reach};
use crate::store::{self, WorkItem};
use serde_json::Value;

/// Which items to list.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this status (checked against `kind`'s workflow when given).
    pub status: Option<String>,
    /// Only items whose title holds this text (any case).
    pub text: Option<String>,
    /// Only items the caller created.
    pub mine: bool,
    /// Only items assigned to this member: `me` (the caller) or an email.
    pub assignee: Option<String>,
    /// Only items created at or after this time (RFC 3339).
    pub created_after: Option<String>,
    /// Only items created before this time (RFC 3339).
    pub created_before: Option<String>,
    /// Only items changed at or after this time (RFC 3339).
    pub updated_after: Option<String>,
    /// Only items last changed before this time (RFC 3339).
    pub updated_before: Option<String>,
    /// Only items whose custom field (by key) holds this value.
    pub field: Option<(String, Value)>,
    /// Only items with a smaller id (paging).
    pub before: Option<i64>,
    /// At most this many (1–500, default 100).
    pub limit: Option<i64>,
}

/// A page of items, newest first.
#[derive(Debug, Clone)]
pub struct ItemPage {
    /// The items.
    pub items: Vec<WorkItem>,
    /// Pass as `before` for the next page (None on the last page).
    pub next_before: Option<i64>,
}

/// The workspace's items, newest first (needs `workspace.read`).
pub async fn list(state: &dyn Reach, access: &Access, query: &ItemQuery) -> DomainResult<ItemPage> {
    access.require(Permission::WorkspaceRead)?;
    if let Some(kind) = &query.kind {
        let flow = check_kind("kind", kind)?;
        if let Some(status) = &query.status {
            if !flow.statuses.contains(&status.as_str()) {
                return Err(DomainError::invalid(
                    "status",
                    format!(
                        "a {kind} has no status `{status}`; its statuses are {}",
                        flow.statuses.join(", ")
                    ),
                ));
            }
        }
    } else if let Some(status) = &query.status {
        let known = KINDS
            .iter()
            .filter_map(|k| workflow(k))
            .any(|flow| flow.statuses.contains(&status.as_str()));
        if !known {
            return Err(DomainError::invalid(
                "status",
                format!("no kind of work item has a status `{status}`"),
            ));
        }
    }
    let limit = validate::limit(query.limit, 100, 500)?;
    crate::domain::search::check_text(query.text.as_deref().unwrap_or_default())?;
    let text = query
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let time = |name: &str, given: &Option<String>| -> DomainResult<Option<String>> {
        given
            .as_deref()
            .map(|text| {
                store::parse_time(text)
                    .map(store::format_time)
                    .ok_or_else(|| {
                        DomainError::invalid(
                            name,
                            format!("`{text}` is not a time like 2026-12-01T09:00:00Z"),
                        )
                    })
            })
            .transpose()
    };
    let created_after = time("created_after", &query.created_after)?;
    let created_before = time("created_before", &query.created_before)?;
    let updated_after = time("updated_after", &query.updated_after)?;
    let updated_before = time("updated_before", &query.updated_before)?;
    if let Some((key, value)) = &query.field {
        let definitions = state.store().custom_fields(access.workspace.id).await?;
        if !definitions.iter().any(|d| &d.key == key) {
            return Err(DomainError::invalid(
                "field",
                format!("this workspace has no custom field `{key}`"),
            ));
        }
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            return Err(DomainError::invalid(
                "field",
                format!(
                    "a custom field is matched against text, a number or true/false, not {value}"
                ),
            ));
        }
    }
    let assignee = match query.assignee.as_deref().map(str::trim) {
        None => None,
        Some("me") => Some(access.caller.user.id),
        Some(email) => {
            let email = email.to_lowercase();
            let member = state
                .store()
                .member_by_email(access.workspace.id, &email)
                .await?
                .ok_or_else(|| super::not_a_member(&email))?;
            Some(member.user_id)
        }
    };
    let filter = store::ItemFilter {
        kind: query.kind.as_deref(),
        assignee,
        status: query.status.as_deref(),
        text,
        created_by: query.mine.then_some(access.caller.user.id),
        created_after: created_after.as_deref(),
        created_before: created_before.as_deref(),
        updated_after: updated_after.as_deref(),
        updated_before: updated_before.as_deref(),
        field: query.field.as_ref().map(|(k, v)| (k.as_str(), v)),
    };
    let items = state
        .store()
        .list_work_items(access.workspace.id, &filter, query.before, limit)
        .await?;
    let next_before = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i.id))
        .flatten();
    Ok(ItemPage { items, next_before })
}

/// The emails of the members an item may be assigned to (needs
/// `item.write`): the first 500 by email; any other member can be named by
/// their email.
pub async fn assignable(state: &dyn Reach, access: &Access) -> DomainResult<Vec<String>> {
    access.require(Permission::ItemWrite)?;
    let page = state
        .store()
        .members_page(access.workspace.id, &store::PageAt::First, 500)
        .await?;
    Ok(page.rows.into_iter().map(|m| m.email).collect())
}

/// The caller's unfinished items (assigned to them, in a status their
/// workflow does not count as finished), most recently changed first, at
/// most `limit` (needs `workspace.read`).
pub async fn assigned_to_me(
    state: &dyn Reach,
    access: &Access,
    limit: usize,
) -> DomainResult<Vec<WorkItem>> {
    access.require(Permission::WorkspaceRead)?;
    let filter = store::ItemFilter {
        assignee: Some(access.caller.user.id),
        ..Default::default()
    };
    let (items, _, _) = state
        .store()
        .search_work_items(
            access.workspace.id,
            &filter,
            store::ItemOrder::Updated,
            store::ItemsAt::Offset(0),
            200,
        )
        .await?;
    Ok(items
        .into_iter()
        .filter(|item| {
            workflow(&item.kind).is_none_or(|w| !w.finished.contains(&item.status.as_str()))
        })
        .take(limit)
        .collect())
}
