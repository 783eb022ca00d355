//! A kind's list page: the search the address asks for, tidied, and a
//! page of its items with their columns, a summary and the links on.

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::Response;

use super::{
    access, bulk, columns, humanise, kind_of, thousands, when, Kind, ListPage, Row, Search,
    PAGE_SIZE, SORTS,
};
use crate::domain::authz::Permission;
use crate::domain::fields;
use crate::domain::search::{self as item_search, ItemSearch, ItemSearchPage};
use crate::domain::work_items::{self, Kind as WorkKind};
use crate::state::AppState;
use crate::store::custom_fields::CustomField;
use crate::store::work_items::WorkItem;
use crate::store::{ItemOrder, ItemsAt};
use crate::web::session::SignedIn;
use crate::web::{render, Frame, PageError};

/// `GET /w/{slug}/{kind}`.
pub async fn list(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, segment)): Path<(String, String)>,
    Query(mut search): Query<Search>,
    Query(bulk_done): Query<bulk::BulkDone>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = access(&state, &current, &slug).await?;
    let (notice, refused) = bulk_done.report(&state, &access, kind).await;
    let flow = kind.kind.workflow();
    // The kind's custom fields: unknown keys and values that cannot be the
    // field's are left out, as other stale values are.
    let definitions: Vec<_> = fields::list(&state, &access)
        .await?
        .into_iter()
        .filter(|d| d.applies_to.contains(&kind.kind))
        .collect();
    let (field_filter, order) = search.tidy(kind.kind, &definitions, raw.as_deref());
    let found = item_search::search(
        &state,
        &access,
        &ItemSearch {
            kind: kind.kind,
            status: Some(search.status.clone()).filter(|s| !s.is_empty()),
            text: Some(search.q.clone()),
            mine: search.mine(),
            assigned_to_me: search.assigned_to_me(),
            field: field_filter,
            order,
            page: search.page.trim().parse().unwrap_or(1),
            cursor: search.cursor(),
            page_size: PAGE_SIZE,
        },
    )
    .await?;
    // Pages on from the first and last item shown (keyset paging); back
    // to the first page, its plain address.
    let base = kind.list_url(&slug);
    let prev = found
        .more_before
        .then(|| found.items.first())
        .flatten()
        .map(|first| search.link(&base, found.page - 1, Some(ItemsAt::Before(first.id))));
    let next = found
        .more_after
        .then(|| found.items.last())
        .flatten()
        .map(|last| search.link(&base, found.page + 1, Some(ItemsAt::After(last.id))));
    let summary = summary(kind, &found);
    let rows: Vec<Row> = found
        .items
        .into_iter()
        .map(|item| Row::of(item, &search.cols))
        .collect();
    let filtered = search.filtered();
    let frame = Frame::workspace(
        &state,
        &current,
        &access,
        kind.name,
        &format!("{} · {}", kind.plural_label, access.workspace.name),
    )
    .await?
    .with_notice(notice);
    Ok(render(&ListPage {
        frame,
        kind,
        rows,
        statuses: flow
            .statuses
            .iter()
            .map(|s| (s.to_string(), humanise(s)))
            .collect(),
        sorts: sort_choices(&definitions),
        base: base.clone(),
        filtered,
        summary,
        page_of: format!("Page {} of {}", found.page, found.pages),
        back: search.link(&base, found.page, search.cursor()),
        columns: search.columns(&definitions),
        field_choices: search.field_choices(&definitions),
        refused,
        prev,
        next,
        search,
        slug,
        can_write: access.can(Permission::ItemWrite),
    }))
}

impl Row {
    /// The row of `item`, with the custom field columns `cols`.
    fn of(item: WorkItem, cols: &[String]) -> Row {
        Row {
            extra: cols.iter().map(|key| columns::cell(&item, key)).collect(),
            id: item.id,
            status_label: humanise(item.status),
            status: item.status,
            title: item.title,
            created_by: item.created_by.unwrap_or_else(|| "someone".into()),
            assignee: item.assignee.unwrap_or_default(),
            created_at: when(&item.created_at),
        }
    }
}

/// How many of the kind's items the page shows, in words ("Showing 51–100
/// of 1,204 changes"); nothing for an empty page.
fn summary(kind: Kind, found: &ItemSearchPage) -> String {
    let first = (found.page - 1) * PAGE_SIZE + 1;
    let noun = if found.total == 1 {
        kind.label.to_lowercase()
    } else {
        kind.plural_label.to_lowercase()
    };
    let shown = found.items.len() as i64;
    if shown == 0 {
        String::new()
    } else if found.pages == 1 {
        format!("{} {noun}", thousands(found.total))
    } else {
        format!(
            "Showing {}–{} of {} {noun}",
            thousands(first),
            thousands(first + shown - 1),
            thousands(found.total)
        )
    }
}

/// The orders the list offers: the built-in ones, then one per custom
/// field.
fn sort_choices(definitions: &[CustomField]) -> Vec<(String, String)> {
    SORTS
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .chain(
            definitions
                .iter()
                .map(|d| (format!("field:{}", d.key), d.label.clone())),
        )
        .collect()
}

impl Search {
    /// Whether the list is narrowed by anything (a search, a field, a
    /// status, "mine", "assigned to me").
    fn filtered(&self) -> bool {
        !self.q.trim().is_empty()
            || !self.field.is_empty()
            || !self.status.is_empty()
            || self.mine()
            || self.assigned_to_me()
    }

    /// The custom field columns shown, as their order's name and label.
    fn columns(&self, definitions: &[CustomField]) -> Vec<(String, String)> {
        self.cols
            .iter()
            .filter_map(|key| definitions.iter().find(|d| d.key == *key))
            .map(|d| (format!("field:{}", d.key), d.label.clone()))
            .collect()
    }

    /// Every custom field of the kind, and whether its column is shown.
    fn field_choices(&self, definitions: &[CustomField]) -> Vec<columns::FieldChoice> {
        definitions
            .iter()
            .map(|d| columns::FieldChoice {
                key: d.key.clone(),
                label: d.label.clone(),
                shown: self.cols.contains(&d.key),
            })
            .collect()
    }

    /// Leaves out what the address asks for that cannot be: a field the
    /// kind does not have or a value it cannot hold, a column of no field,
    /// a status of another kind, an order that is not one (or a field's
    /// since removed: the default list shows). Returns the field filter
    /// and the order.
    fn tidy(
        &mut self,
        kind: WorkKind,
        definitions: &[CustomField],
        raw: Option<&str>,
    ) -> (Option<(String, serde_json::Value)>, ItemOrder) {
        let field_filter = definitions
            .iter()
            .find(|d| d.key == self.field)
            .and_then(|d| Some((d.key.clone(), fields::value_from_text(d, &self.value)?)));
        if field_filter.is_none() {
            self.field.clear();
            self.value.clear();
        }
        self.cols = columns::asked_columns(raw)
            .into_iter()
            .filter(|key| definitions.iter().any(|d| d.key == *key))
            .collect();
        if kind.workflow().status(&self.status).is_none() {
            self.status.clear();
        }
        self.q = self.q.chars().take(item_search::MAX_SEARCH).collect();
        // The domain names the orders.
        let order =
            work_items::order_named(&self.sort, Some(kind), definitions).unwrap_or_default();
        if order == ItemOrder::Newest {
            self.sort.clear();
        }
        (field_filter, order)
    }
}
