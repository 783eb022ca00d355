//! Work items in the browser: a list per kind (`/w/{slug}/changes`, with a
//! status filter and paging), the create and edit forms with the
//! workspace's custom fields (built-in types as HTML inputs, plugin types
//! through their plugin's editor element), and the item page with its
//! fields, its history and the moves its workflow allows the person.

mod form;
mod show;

pub use form::{create, edit_page, new_page, update, FieldInput, Input};
pub use show::{show, transition, Event, Move, MoveForm, ShowQuery};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::session::SignedIn;
use super::{render, Frame, PageError};
use crate::domain::authz::{Access, Permission};
use crate::domain::sessions::Current;
use crate::domain::work_items::{self, ItemQuery};
use crate::state::AppState;
use crate::store::WorkItem;

/// A kind of work item as its pages name it.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// `change`, `incident` or `task`.
    pub name: &'static str,
    /// `changes`, ... (the URL segment).
    pub plural: &'static str,
    /// `Change`.
    pub label: &'static str,
    /// `Changes`.
    pub plural_label: &'static str,
}

const KINDS: [Kind; 3] = [
    Kind {
        name: "change",
        plural: "changes",
        label: "Change",
        plural_label: "Changes",
    },
    Kind {
        name: "incident",
        plural: "incidents",
        label: "Incident",
        plural_label: "Incidents",
    },
    Kind {
        name: "task",
        plural: "tasks",
        label: "Task",
        plural_label: "Tasks",
    },
];

fn kind_of(segment: &str) -> Result<Kind, PageError> {
    KINDS
        .into_iter()
        .find(|k| k.plural == segment)
        .ok_or_else(|| PageError::NotFound("There is no page at this address.".into()))
}

/// A status in people's words: `pending_approval` → `Pending approval`.
pub fn humanise(status: &str) -> String {
    let text = status.replace('_', " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A stored time as people read it: `2026-12-01 20:32 UTC`.
pub fn when(time: &str) -> String {
    match (time.get(..10), time.get(11..16)) {
        (Some(date), Some(clock)) => format!("{date} {clock} UTC"),
        _ => time.to_owned(),
    }
}

/// A row of the list.
pub struct Row {
    id: i64,
    title: String,
    status: String,
    status_label: String,
    created_by: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "items/list.html")]
struct ListPage {
    frame: Frame,
    slug: String,
    kind: Kind,
    rows: Vec<Row>,
    statuses: Vec<(String, String)>,
    status: String,
    next_before: Option<i64>,
    can_write: bool,
}

/// `?status=&before=` of a list.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    before: Option<i64>,
}

async fn access(state: &AppState, current: &Current, slug: &str) -> Result<Access, PageError> {
    Ok(current
        .caller
        .workspace(&state.store, slug, Permission::WorkspaceRead)
        .await?)
}

/// How many items a list page shows.
const PAGE_SIZE: i64 = 50;

/// `GET /w/{slug}/{kind}`.
pub async fn list(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, segment)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = access(&state, &current, &slug).await?;
    let flow = work_items::check_kind("kind", kind.name)?;
    let status = flow
        .statuses
        .iter()
        .find(|s| **s == query.status)
        .map(|s| s.to_string());
    let page = work_items::list(
        &state,
        &access,
        &ItemQuery {
            kind: Some(kind.name.into()),
            status: status.clone(),
            before: query.before,
            limit: Some(PAGE_SIZE),
        },
    )
    .await?;
    let rows = page
        .items
        .into_iter()
        .map(|item| Row {
            id: item.id,
            status_label: humanise(&item.status),
            status: item.status,
            title: item.title,
            created_by: item.created_by.unwrap_or_else(|| "someone".into()),
            created_at: when(&item.created_at),
        })
        .collect();
    let frame = Frame::workspace(
        &state,
        &current,
        &access,
        kind.name,
        &format!("{} · {}", kind.plural_label, access.workspace.name),
    )
    .await?;
    Ok(render(&ListPage {
        frame,
        slug,
        kind,
        rows,
        statuses: flow
            .statuses
            .iter()
            .map(|s| (s.to_string(), humanise(s)))
            .collect(),
        status: status.unwrap_or_default(),
        next_before: page.next_before,
        can_write: access.can(Permission::ItemWrite),
    }))
}

/// Item `id` of the workspace, if it is of `kind`.
pub(super) async fn item_of_kind(
    state: &AppState,
    access: &Access,
    kind: Kind,
    id: i64,
) -> Result<WorkItem, PageError> {
    let item = work_items::get(state, access, id).await?;
    if item.kind != kind.name {
        return Err(PageError::NotFound(format!(
            "There is no {} {id} in this workspace.",
            kind.name
        )));
    }
    Ok(item)
}
