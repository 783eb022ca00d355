//! Finding work items: a page of the workspace's items by filters (the
//! API's list), the members an item may be assigned to, and the caller's
//! unfinished items.

use super::{check_kind, check_status, Kind, Status};
use crate::domain::authz::{Access, Permission};
use crate::domain::{validate, DomainError, DomainResult, Reach};
use crate::store;
use crate::store::work_items::WorkItem;
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
    /// Only items with a smaller id (paging newest first).
    pub before: Option<i64>,
    /// The order: `newest` (the default), `oldest`, `title`, `updated`,
    /// `status` (in workflow order), `assignee`, `creator`, or
    /// `field:KEY` (a custom field's value).
    pub sort: Option<String>,
    /// Only the items after this one in the order (paging any order).
    pub after: Option<i64>,
    /// At most this many (1–500, default 100).
    pub limit: Option<i64>,
}

/// A page of items, newest first.
#[derive(Debug, Clone)]
pub struct ItemPage {
    /// The items.
    pub items: Vec<WorkItem>,
    /// Pass as `before` for the next page (None on the last page, or
    /// when the list was sorted or paged with `after`).
    pub next_before: Option<i64>,
    /// Pass as `after` for the next page in the same order (None on the
    /// last page).
    pub next_after: Option<i64>,
}

/// The orders a list can be sorted in, besides `field:KEY`.
pub const SORTS: [&str; 7] = [
    "newest", "oldest", "title", "updated", "status", "assignee", "creator",
];

/// The order named `sort`, for a list of `kind` (every kind when None),
/// in a workspace with custom fields `definitions`: a 422 naming `sort`
/// for a name that is no order, or a field the workspace does not have.
pub fn order_named(
    sort: &str,
    kind: Option<Kind>,
    definitions: &[store::custom_fields::CustomField],
) -> DomainResult<store::ItemOrder> {
    Ok(match sort {
        "newest" => store::ItemOrder::Newest,
        "oldest" => store::ItemOrder::Oldest,
        "title" => store::ItemOrder::Title,
        "updated" => store::ItemOrder::Updated,
        "status" => store::ItemOrder::Status(kind.map_or(Status::ALL, |k| k.workflow().statuses)),
        "assignee" => store::ItemOrder::Assignee,
        "creator" => store::ItemOrder::Creator,
        other => match other.strip_prefix("field:") {
            Some(key) if definitions.iter().any(|d| d.key == key) => {
                store::ItemOrder::Field(key.to_owned())
            }
            Some(key) => {
                return Err(DomainError::invalid(
                    "sort",
                    format!("this workspace has no custom field `{key}` to sort by"),
                ))
            }
            None => {
                return Err(DomainError::invalid(
                    "sort",
                    format!(
                        "`{other}` is not an order; use {}, or field:KEY",
                        SORTS.join(", ")
                    ),
                ))
            }
        },
    })
}

/// The workspace's items, newest first (needs `workspace.read`).
pub async fn list(state: &dyn Reach, access: &Access, query: &ItemQuery) -> DomainResult<ItemPage> {
    access.require(Permission::WorkspaceRead)?;
    let (kind, status) = kind_and_status(query)?;
    let limit = validate::limit(query.limit, 100, 500)?;
    crate::domain::search::check_text(query.text.as_deref().unwrap_or_default())?;
    let text = query
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let created_after = time("created_after", &query.created_after)?;
    let created_before = time("created_before", &query.created_before)?;
    let updated_after = time("updated_after", &query.updated_after)?;
    let updated_before = time("updated_before", &query.updated_before)?;
    // Only a field filter or a field's order needs the definitions.
    let by_field = query
        .sort
        .as_deref()
        .is_some_and(|sort| sort.starts_with("field:"));
    let definitions = if query.field.is_some() || by_field {
        state.store().custom_fields(access.workspace.id).await?
    } else {
        Vec::new()
    };
    let field = field_filter(&definitions, query.field.as_ref())?;
    let order = query
        .sort
        .as_deref()
        .map(|sort| order_named(sort, kind, &definitions))
        .transpose()?;
    let assignee = assignee_named(state, access, query.assignee.as_deref()).await?;
    let filter = store::ItemFilter {
        kind,
        assignee,
        status,
        text,
        created_by: query.mine.then_some(access.caller.user.id),
        created_after: created_after.as_deref(),
        created_before: created_before.as_deref(),
        updated_after: updated_after.as_deref(),
        updated_before: updated_before.as_deref(),
        field: field.as_ref().map(|(k, v)| (k.as_str(), v)),
        not_in: &[],
    };
    if order.is_none() && query.after.is_none() {
        let items = state
            .store()
            .list_work_items(access.workspace.id, &filter, query.before, limit)
            .await?;
        let next_before = (items.len() as i64 == limit)
            .then(|| items.last().map(|i| i.id))
            .flatten();
        return Ok(ItemPage {
            items,
            next_before,
            next_after: None,
        });
    }
    if query.before.is_some() {
        return Err(DomainError::invalid(
            "before",
            "`before` pages the newest-first list; with `sort` or `after`, page with `after`",
        ));
    }
    let at = start_after(state, access, kind, query.after).await?;
    let order = order.unwrap_or_default();
    let (items, _, more) = state
        .store()
        .search_work_items(access.workspace.id, &filter, &order, at, limit)
        .await?;
    let next_after = more.then(|| items.last().map(|i| i.id)).flatten();
    Ok(ItemPage {
        items,
        next_before: None,
        next_after,
    })
}

/// The kind and the status a list asks for: a kind Vigilo has, and a
/// status of that kind (of any kind, when no kind is given).
fn kind_and_status(query: &ItemQuery) -> DomainResult<(Option<Kind>, Option<Status>)> {
    let kind = query
        .kind
        .as_deref()
        .map(|kind| check_kind("kind", kind))
        .transpose()?;
    let status = match (kind, query.status.as_deref()) {
        (_, None) => None,
        (Some(kind), Some(status)) => Some(check_status(kind.workflow(), status)?),
        (None, Some(status)) => Some(Status::parse(status).ok_or_else(|| {
            DomainError::invalid(
                "status",
                format!("no kind of work item has a status `{status}`"),
            )
        })?),
    };
    Ok((kind, status))
}

/// The time a list parameter `name` gives, as the store keeps times.
fn time(name: &str, given: &Option<String>) -> DomainResult<Option<String>> {
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
}

/// A custom field filter, its value typed as the field stores it.
fn field_filter(
    definitions: &[store::custom_fields::CustomField],
    field: Option<&(String, Value)>,
) -> DomainResult<Option<(String, Value)>> {
    let Some((key, value)) = field else {
        return Ok(None);
    };
    let Some(definition) = definitions.iter().find(|d| &d.key == key) else {
        return Err(DomainError::invalid(
            "field",
            format!("this workspace has no custom field `{key}`"),
        ));
    };
    // Text given for a number or yes/no field is read as one.
    let value = match value {
        Value::String(text) => {
            super::super::fields::value_from_text(definition, text).ok_or_else(|| {
                DomainError::invalid(
                    "value",
                    format!("`{text}` cannot be a value of {}", definition.label),
                )
            })?
        }
        Value::Number(_) | Value::Bool(_) => value.clone(),
        other => {
            return Err(DomainError::invalid(
                "field",
                format!(
                    "a custom field is matched against text, a number or true/false, not {other}"
                ),
            ))
        }
    };
    Ok(Some((key.clone(), value)))
}

/// The member an `assignee` parameter names: `me`, or a member's email.
async fn assignee_named(
    state: &dyn Reach,
    access: &Access,
    assignee: Option<&str>,
) -> DomainResult<Option<i64>> {
    Ok(match assignee.map(str::trim) {
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
    })
}

/// Where a page asked for with `after` starts. The item it starts after
/// must be one of this workspace's (and of the kind listed), or its place
/// says nothing.
async fn start_after(
    state: &dyn Reach,
    access: &Access,
    kind: Option<Kind>,
    after: Option<i64>,
) -> DomainResult<store::ItemsAt> {
    let Some(id) = after else {
        return Ok(store::ItemsAt::Offset(0));
    };
    match state.store().work_item(access.workspace.id, id).await {
        Ok(item) if kind.is_none_or(|k| k == item.kind) => Ok(store::ItemsAt::After(id)),
        Ok(_) | Err(store::StoreError::NotFound(_)) => Err(DomainError::invalid(
            "after",
            format!("there is no item {id} in this list"),
        )),
        Err(e) => Err(e.into()),
    }
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
/// most `limit` (needs `workspace.read`). The store leaves the finished
/// ones out, however many there are.
pub async fn assigned_to_me(
    state: &dyn Reach,
    access: &Access,
    limit: usize,
) -> DomainResult<Vec<WorkItem>> {
    access.require(Permission::WorkspaceRead)?;
    let finished: Vec<(Kind, Status)> = Kind::ALL
        .iter()
        .map(|kind| kind.workflow())
        .flat_map(|w| w.finished.iter().map(move |status| (w.kind, *status)))
        .collect();
    let filter = store::ItemFilter {
        assignee: Some(access.caller.user.id),
        not_in: &finished,
        ..Default::default()
    };
    let (items, _, _) = state
        .store()
        .search_work_items(
            access.workspace.id,
            &filter,
            &store::ItemOrder::Updated,
            store::ItemsAt::Offset(0),
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
        .await?;
    Ok(items)
}
