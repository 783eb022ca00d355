//! The work-item methods: list, get, create, update and move items, as the
//! plugin that calls them (audited as `plugin:NAME`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Host method `work_items.list`: a workspace's items, newest first, with
/// filters and keyset paging. Capability [`crate::host::Capability::WorkItemsRead`].
///
/// Request [`WorkItemsQuery`]; response [`WorkItemPage`].
pub const WORK_ITEMS_LIST: &str = "work_items.list";
/// Host method `work_items.get`: one item by id. Capability
/// [`crate::host::Capability::WorkItemsRead`].
///
/// Request [`WorkItemRef`]; response [`WorkItem`]. An id not in the
/// workspace is an error saying so.
pub const WORK_ITEMS_GET: &str = "work_items.get";
/// Host method `work_items.create`: a new item in its workflow's first
/// status, checked and audited as a person's would be. Capability
/// [`crate::host::Capability::WorkItemsWrite`].
///
/// Request [`NewWorkItem`]; response [`WorkItem`].
pub const WORK_ITEMS_CREATE: &str = "work_items.create";
/// Host method `work_items.update`: change an item's title, description or
/// custom field values. Capability [`crate::host::Capability::WorkItemsWrite`].
///
/// Request [`WorkItemUpdate`]; response [`WorkItem`].
pub const WORK_ITEMS_UPDATE: &str = "work_items.update";
/// Host method `work_items.transition`: move an item to another status of
/// its workflow. Capability [`crate::host::Capability::WorkItemsWrite`]. A
/// plugin may not approve or reject a change: that decision is a person's.
///
/// Request [`WorkItemMove`]; response [`WorkItem`].
pub const WORK_ITEMS_TRANSITION: &str = "work_items.transition";

/// A work item as the host hands it to a plugin.
///
/// ```json
/// {"id": 12, "kind": "incident", "title": "Disk full on db-2", "description": "",
///  "status": "open", "fields": {"severity": "high"}, "created_by": "ana@example.com",
///  "created_at": "2026-12-01T09:00:00.000000Z", "updated_at": "2026-12-01T09:00:00.000000Z"}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Its number, unique in the installation.
    pub id: i64,
    /// `change`, `incident` or `task`.
    pub kind: String,
    /// One line.
    pub title: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Where it is in its workflow.
    pub status: String,
    /// Custom field values by key.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Who created it: a person's email, `plugin:NAME`, or `None` once that
    /// person's account is gone.
    #[serde(default)]
    pub created_by: Option<String>,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// When it last changed (RFC 3339, UTC).
    pub updated_at: String,
}

/// One custom field's value to match in [`WorkItemsQuery::field`]:
/// `{"key": "severity", "value": "high"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldMatch {
    /// The custom field's key.
    pub key: String,
    /// The value it must hold, exactly (text, number or boolean).
    pub value: Value,
}

/// Request of [`WORK_ITEMS_LIST`]. Every filter is optional; they combine
/// with AND.
///
/// ```json
/// {"workspace": "ops", "kind": "incident", "status": "open",
///  "field": {"key": "severity", "value": "high"}, "limit": 50}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkItemsQuery {
    /// The workspace's slug.
    pub workspace: String,
    /// Only this kind: `change`, `incident` or `task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only this status (one of the kind's workflow when `kind` is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only items whose title holds this text, in any case (at most 200
    /// characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Only items created at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    /// Only items created before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
    /// Only items changed at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_after: Option<String>,
    /// Only items last changed before this time (RFC 3339): "stale" items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_before: Option<String>,
    /// Only items whose custom field holds this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<FieldMatch>,
    /// Only items with a smaller id: [`WorkItemPage::next_before`] of the
    /// page before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// At most this many items (1 to 500; 100 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl WorkItemsQuery {
    /// Every item of `workspace`, a page of 100 at a time.
    pub fn new(workspace: impl Into<String>) -> Self {
        WorkItemsQuery {
            workspace: workspace.into(),
            ..Self::default()
        }
    }
}

/// Response of [`WORK_ITEMS_LIST`]: one page, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkItemPage {
    /// The items.
    pub items: Vec<WorkItem>,
    /// Pass as [`WorkItemsQuery::before`] for the next page; `None` on the
    /// last page.
    #[serde(default)]
    pub next_before: Option<i64>,
}

/// Request of [`WORK_ITEMS_GET`]: `{"workspace": "ops", "id": 12}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItemRef {
    /// The workspace's slug.
    pub workspace: String,
    /// The item's number.
    pub id: i64,
}

/// Request of [`WORK_ITEMS_CREATE`]:
/// `{"workspace": "ops", "kind": "task", "title": "Rotate the keys", "fields": {}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewWorkItem {
    /// The workspace's slug.
    pub workspace: String,
    /// `change`, `incident` or `task`.
    pub kind: String,
    /// One line (1 to 200 characters).
    pub title: String,
    /// Free text (up to 20,000 characters).
    #[serde(default)]
    pub description: String,
    /// Custom field values by key, checked as the web app checks them.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// Request of [`WORK_ITEMS_UPDATE`]; members left out stay as they are.
///
/// ```json
/// {"workspace": "ops", "id": 12, "title": "Disk full on db-2 and db-3",
///  "fields": {"severity": "critical", "owner": null}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkItemUpdate {
    /// The workspace's slug.
    pub workspace: String,
    /// The item's number.
    pub id: i64,
    /// A new title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Custom field values to set; `null` removes one.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

/// Request of [`WORK_ITEMS_TRANSITION`]:
/// `{"workspace": "ops", "id": 12, "status": "done", "comment": "Closed after 30 days"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItemMove {
    /// The workspace's slug.
    pub workspace: String,
    /// The item's number.
    pub id: i64,
    /// The status to move to: one the workflow allows from where it is.
    pub status: String,
    /// Why, recorded in the audit log (up to 2,000 characters).
    #[serde(default)]
    pub comment: String,
}
