//! Work items in the browser: a list per kind (`/w/{slug}/changes`: search
//! in titles, a status filter, "created by me", "assigned to me", four orders, a total and
//! pages both ways), the create and edit forms with the
//! workspace's custom fields (built-in types as HTML inputs, plugin types
//! through their plugin's editor element), and the item page with its
//! fields, its assignee, its comments, its history and the moves its
//! workflow allows the person.

mod bulk;
mod columns;
mod comments;
mod form;
mod list_page;
mod search;
mod show;

pub use form::{create, edit_page, new_page, update, FieldInput, Input};
pub use list_page::list;
pub use search::search;
pub use show::{show, transition, Event, Move, MoveForm, ShowQuery};

use askama::Template;
use serde::Deserialize;

use super::{Frame, PageError};
use crate::domain::authz::{Access, Permission};
use crate::domain::sessions::Current;
use crate::domain::work_items::{self, Kind as WorkKind, Status};
use crate::state::AppState;
use crate::store::work_items::WorkItem;
use crate::store::ItemsAt;

/// A kind of work item as its pages name it.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// `change`, `incident` or `task`.
    pub name: &'static str,
    /// The kind itself.
    pub kind: WorkKind,
    /// `changes`, ... (the URL segment).
    pub plural: &'static str,
    /// `Change`.
    pub label: &'static str,
    /// `Changes`.
    pub plural_label: &'static str,
}

const KINDS: [Kind; 3] = [
    Kind {
        kind: WorkKind::Change,
        name: WorkKind::Change.as_str(),
        plural: "changes",
        label: "Change",
        plural_label: "Changes",
    },
    Kind {
        kind: WorkKind::Incident,
        name: WorkKind::Incident.as_str(),
        plural: "incidents",
        label: "Incident",
        plural_label: "Incidents",
    },
    Kind {
        kind: WorkKind::Task,
        name: WorkKind::Task.as_str(),
        plural: "tasks",
        label: "Task",
        plural_label: "Tasks",
    },
];

impl Kind {
    /// The address of this kind's list in workspace `slug`.
    pub fn list_url(&self, slug: &str) -> String {
        format!("/w/{slug}/{}", self.plural)
    }

    /// The address of item `id`'s page, or of a page below it (`sub`:
    /// `""`, `"/edit"`; with a query or fragment after it if need be).
    pub fn item_url(&self, slug: &str, id: i64, sub: &str) -> String {
        format!("/w/{slug}/{}/{id}{sub}", self.plural)
    }
}

/// The pages' names of kind `name` (`change`, `incident`, `task`).
pub fn pages_of(kind: WorkKind) -> Kind {
    match kind {
        WorkKind::Change => KINDS[0],
        WorkKind::Incident => KINDS[1],
        WorkKind::Task => KINDS[2],
    }
}

fn kind_of(segment: &str) -> Result<Kind, PageError> {
    KINDS
        .into_iter()
        .find(|k| k.plural == segment)
        .ok_or_else(|| PageError::NotFound("There is no page at this address.".into()))
}

/// A status in people's words: `pending_approval` → `Pending approval`.
pub fn humanise(status: impl AsRef<str>) -> String {
    let text = status.as_ref().replace('_', " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A stored time as people read it: `2026-12-01 20:32 UTC`.
pub fn when_text(time: &str) -> String {
    match (time.get(..10), time.get(11..16)) {
        (Some(date), Some(clock)) => format!("{date} {clock} UTC"),
        _ => time.to_owned(),
    }
}

/// A stored time on a page: `<time datetime="2026-12-01T20:32:05Z">2026-12-01
/// 20:32 UTC</time>`. The page's script shows it in the reader's time zone,
/// and a recent or near one as "5 minutes ago" or "in 3 hours" (the full
/// time in its tooltip); without the script it reads as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct When {
    stored: String,
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = when_text(&self.stored);
        let machine = self
            .stored
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'+' | b'.'));
        let text =
            askama::filters::escape(&text, askama::filters::Html).map_err(|_| std::fmt::Error)?;
        if machine && !self.stored.is_empty() {
            write!(f, "<time datetime=\"{}\">{text}</time>", self.stored)
        } else {
            write!(f, "{text}")
        }
    }
}

impl askama::filters::HtmlSafe for When {}

impl When {
    /// Whether there is no time (nothing is shown).
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }
}

/// `time` (as stored) for a page; see [`When`].
pub fn when(time: &str) -> When {
    When {
        stored: time.to_owned(),
    }
}

/// A row of the list.
pub struct Row {
    id: i64,
    title: String,
    status: Status,
    status_label: String,
    created_by: String,
    /// Empty when nobody is assigned.
    assignee: String,
    /// The cells of the custom field columns.
    extra: Vec<String>,
    created_at: When,
}

#[derive(Template)]
#[template(path = "items/list.html")]
struct ListPage {
    frame: Frame,
    slug: String,
    kind: Kind,
    rows: Vec<Row>,
    statuses: Vec<(String, String)>,
    sorts: Vec<(String, String)>,
    search: Search,
    /// The list's own address, without a query.
    base: String,
    /// Whether any filter narrows the list.
    filtered: bool,
    /// "Showing 51–100 of 2,003 changes".
    summary: String,
    /// "Page 2 of 41".
    page_of: String,
    prev: Option<String>,
    next: Option<String>,
    can_write: bool,
    /// This list's address, where a bulk move comes back to.
    back: String,
    /// The items a bulk move just refused.
    refused: Vec<bulk::RefusedRow>,
    /// The custom fields shown as columns: their order's value
    /// (`field:KEY`) and label.
    columns: Vec<(String, String)>,
    /// The kind's custom fields, to filter on or show.
    field_choices: Vec<columns::FieldChoice>,
}

impl ListPage {
    /// The address of this list sorted by a column's order (`sort`'s
    /// value; `newest` for the default), from its first page. A column
    /// that sorts by creation turns newest first into oldest first and back.
    fn sort_href(&self, value: &str) -> String {
        let mut search = self.search.clone();
        search.sort = match value {
            "newest" if self.search.sort.is_empty() => "oldest".into(),
            "newest" => String::new(),
            other => other.to_owned(),
        };
        search.link(&self.base, 1, None)
    }

    /// The `aria-sort` of a column whose order is `value`.
    fn aria_sort(&self, value: &str) -> &'static str {
        match (value, self.search.sort.as_str()) {
            ("newest", "") => "descending",
            ("newest", "oldest") => "ascending",
            (v, s) if v == s => "ascending",
            _ => "none",
        }
    }
}

/// A list's search, as its form and links carry it:
/// `?q=&status=&sort=&mine=1&assigned=1&field=&value=&col=&page=`. Values that mean nothing (an unknown
/// status or order, a page that is not a number) are left out rather than
/// refused, so an edited or stale link still shows a list.
#[derive(Deserialize, Default, Clone, Debug)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    mine: String,
    #[serde(default)]
    assigned: String,
    /// A custom field's key, to filter on its value.
    #[serde(default)]
    field: String,
    /// The value `field` must hold.
    #[serde(default)]
    value: String,
    #[serde(default)]
    page: String,
    /// The page after this item (its id).
    #[serde(default)]
    after: String,
    /// The page before this item (its id).
    #[serde(default)]
    before: String,
    /// The custom fields shown as columns (`col`, repeated; read from the
    /// raw query).
    #[serde(skip)]
    cols: Vec<String>,
}

/// The orders every list offers, besides one per custom field
/// (`field:KEY`): (value, label). The first is the default, and its value
/// is left out of addresses.
const SORTS: [(&str, &str); 7] = [
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("updated", "Recently changed"),
    ("title", "Title A–Z"),
    ("status", "Status"),
    ("assignee", "Assignee"),
    ("creator", "Created by"),
];

impl Search {
    fn mine(&self) -> bool {
        !self.mine.is_empty()
    }

    fn assigned_to_me(&self) -> bool {
        !self.assigned.is_empty()
    }

    /// Where the page asked for starts, when the address says.
    fn cursor(&self) -> Option<ItemsAt> {
        if let Ok(id) = self.after.trim().parse() {
            Some(ItemsAt::After(id))
        } else {
            self.before.trim().parse().ok().map(ItemsAt::Before)
        }
    }

    /// This search's address at `page`, starting at `cursor` (the page's
    /// number alone when None), with only what differs from the defaults.
    fn link(&self, base: &str, page: i64, cursor: Option<ItemsAt>) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.q.trim().is_empty() {
            pairs.push(("q", self.q.trim().to_owned()));
        }
        if !self.status.is_empty() {
            pairs.push(("status", self.status.clone()));
        }
        if !self.sort.is_empty() {
            pairs.push(("sort", self.sort.clone()));
        }
        if self.mine() {
            pairs.push(("mine", "1".into()));
        }
        if self.assigned_to_me() {
            pairs.push(("assigned", "1".into()));
        }
        if !self.field.is_empty() {
            pairs.push(("field", self.field.clone()));
            pairs.push(("value", self.value.trim().to_owned()));
        }
        for col in &self.cols {
            pairs.push(("col", col.clone()));
        }
        match cursor {
            Some(ItemsAt::After(id)) if page > 1 => pairs.push(("after", id.to_string())),
            Some(ItemsAt::Before(id)) if page > 1 => pairs.push(("before", id.to_string())),
            _ => {}
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        match serde_urlencoded::to_string(&pairs) {
            Ok(query) if !query.is_empty() => format!("{base}?{query}"),
            _ => base.to_owned(),
        }
    }
}

async fn access(state: &AppState, current: &Current, slug: &str) -> Result<Access, PageError> {
    Ok(current
        .caller
        .workspace(&state.store, slug, Permission::WorkspaceRead)
        .await?)
}

/// How many items a list page shows.
const PAGE_SIZE: i64 = 50;

/// 2003 → "2,003".
fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Item `id` of the workspace, if it is of `kind`.
pub(super) async fn item_of_kind(
    state: &AppState,
    access: &Access,
    kind: Kind,
    id: i64,
) -> Result<WorkItem, PageError> {
    let item = work_items::get(state, access, id).await?;
    if item.kind != kind.kind {
        return Err(PageError::NotFound(format!(
            "There is no {} {id} in this workspace.",
            kind.name
        )));
    }
    Ok(item)
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/w/{slug}/search", get(search))
        .route("/w/{slug}/{kind}", get(list))
        .route("/w/{slug}/{kind}/new", get(new_page).post(create))
        .route("/w/{slug}/{kind}/bulk-move", post(bulk::bulk_move))
        .route("/w/{slug}/{kind}/{id}", get(show))
        .route("/w/{slug}/{kind}/{id}/edit", get(edit_page).post(update))
        .route("/w/{slug}/{kind}/{id}/move", post(transition))
        .route("/w/{slug}/{kind}/{id}/assign", post(show::assign))
        .route("/w/{slug}/{kind}/{id}/comments", post(comments::add))
        .route(
            "/w/{slug}/{kind}/{id}/comments/{comment}/edit",
            post(comments::edit),
        )
        .route(
            "/w/{slug}/{kind}/{id}/comments/{comment}/delete",
            post(comments::remove),
        )
}
