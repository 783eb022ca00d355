//! Work items: changes, incidents and tasks, each moving along its kind's
//! workflow.
//!
//! This module owns the three workflows (their statuses, in order, and the
//! moves between them), which moves need `change.approve`, and the checks a
//! new or edited item passes (title, description, custom field values via
//! [`super::fields`]). Every change is audited as `<kind>.create`,
//! `<kind>.update`, `<kind>.transition`, or `change.approve` /
//! `change.reject`.

use serde_json::{json, Map, Value};

mod bulk;
mod listing;

pub use super::workflow::{check_kind, check_status, Kind, Status, Workflow};
use super::{fields, record, validate, DomainError, DomainResult, Reach};
use crate::domain::authz::{Access, Permission};
use crate::store::work_items::WorkItem;
use crate::store::{self, ItemCreate};
pub use bulk::{bulk_transition, BulkOutcome, MAX_BULK};
pub use listing::{assignable, assigned_to_me, list, order_named, ItemPage, ItemQuery};

/// The statuses `item` may move to next.
pub fn next_statuses(item: &WorkItem) -> Vec<Status> {
    item.kind.workflow().next(item.status)
}

/// The longest description.
pub const MAX_DESCRIPTION: usize = 20_000;
/// The longest title.
pub const MAX_TITLE: usize = 200;
/// The longest transition comment.
pub const MAX_COMMENT: usize = 2000;

fn description(value: &str) -> DomainResult<String> {
    if value.chars().count() > MAX_DESCRIPTION {
        return Err(DomainError::invalid(
            "description",
            format!("`description` is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(value.trim().to_owned())
}

/// The refusal of an assignee who is not a member of the workspace.
pub(crate) fn not_a_member(email: &str) -> DomainError {
    DomainError::invalid(
        "assignee",
        format!("{email} is not a member of this workspace"),
    )
}

/// Refuses a transition comment longer than [`MAX_COMMENT`].
pub(crate) fn check_comment(value: &str) -> DomainResult<()> {
    if value.chars().count() > MAX_COMMENT {
        return Err(DomainError::invalid(
            "comment",
            format!("`comment` is longer than {MAX_COMMENT} characters"),
        ));
    }
    Ok(())
}

/// What happens to a work item, as its audit action names it.
#[derive(Debug, Clone, Copy)]
enum Happening {
    /// It is created.
    Create,
    /// Its title, description, fields or assignee are edited.
    Update,
    /// It moves to a status.
    Move(Status),
}

/// The audit action of `what` happening to a `kind`.
fn action(kind: Kind, what: Happening) -> &'static str {
    use Happening::*;
    match (kind, what) {
        (Kind::Change, Create) => "change.create",
        (Kind::Change, Update) => "change.update",
        (Kind::Change, Move(Status::Approved)) => "change.approve",
        (Kind::Change, Move(Status::Rejected)) => "change.reject",
        (Kind::Change, Move(_)) => "change.transition",
        (Kind::Incident, Create) => "incident.create",
        (Kind::Incident, Update) => "incident.update",
        (Kind::Incident, Move(_)) => "incident.transition",
        (Kind::Task, Create) => "task.create",
        (Kind::Task, Update) => "task.update",
        (Kind::Task, Move(_)) => "task.transition",
    }
}

/// One item (needs `workspace.read`).
pub async fn get(state: &dyn Reach, access: &Access, id: i64) -> DomainResult<WorkItem> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state.store().work_item(access.workspace.id, id).await?)
}

/// The item's history, newest first: its creation, edits and moves as the
/// audit log recorded them (needs `workspace.read`: anyone who may see the
/// item may see how it got here).
pub async fn history(
    state: &dyn Reach,
    access: &Access,
    item: &WorkItem,
) -> DomainResult<Vec<crate::audit::AuditEvent>> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state
        .store()
        .audit_events_about(
            access.workspace.id,
            &item.id.to_string(),
            &format!("{}.", item.kind),
            200,
        )
        .await?)
}

/// A new work item.
#[derive(Debug, Clone, Default)]
pub struct NewItem {
    /// `change`, `incident` or `task`.
    pub kind: String,
    /// One line (1–200 characters).
    pub title: String,
    /// Free text (up to 20,000 characters).
    pub description: String,
    /// Custom field values by key.
    pub fields: Map<String, Value>,
}

/// What [`create`] would store, checked.
#[derive(Debug, Clone)]
pub struct CheckedItem {
    /// The workflow of its kind.
    pub workflow: &'static Workflow,
    /// The title, trimmed.
    pub title: String,
    /// The description, trimmed.
    pub description: String,
    /// Every custom field value, validated (by plugins where the type is theirs).
    pub fields: Map<String, Value>,
}

/// Checks a new item as [`create`] would (permission, kind, title,
/// description, custom field values) without storing anything. Playbook dry
/// runs use it.
pub async fn check_new(
    state: &dyn Reach,
    access: &Access,
    item: NewItem,
) -> DomainResult<CheckedItem> {
    access.require(Permission::ItemWrite)?;
    let workflow = check_kind("kind", &item.kind)?.workflow();
    let title = validate::text("title", &item.title, MAX_TITLE)?;
    let description = description(&item.description)?;
    let definitions = state.store().custom_fields(access.workspace.id).await?;
    let fields = fields::apply_values(
        state,
        &access.workspace,
        workflow.kind,
        &definitions,
        &Map::new(),
        item.fields,
        true,
    )
    .await?;
    Ok(CheckedItem {
        workflow,
        title,
        description,
        fields,
    })
}

/// Creates a work item in its workflow's first status (needs `item.write`),
/// audited as `<kind>.create`.
pub async fn create(state: &dyn Reach, access: &Access, item: NewItem) -> DomainResult<WorkItem> {
    let checked = check_new(state, access, item).await?;
    let actor = access.actor();
    let created_by_plugin = access.caller.plugin.as_deref();
    if actor.user_id.is_none() && created_by_plugin.is_none() {
        return Err(DomainError::Internal(
            "a work item must be created by a user or a plugin".into(),
        ));
    }
    let details = json!({"kind": checked.workflow.kind, "title": checked.title,
                         "status": checked.workflow.initial, "fields": checked.fields});
    let create = ItemCreate {
        workspace_id: access.workspace.id,
        kind: checked.workflow.kind,
        title: checked.title,
        description: checked.description,
        status: checked.workflow.initial,
        fields: checked.fields,
        created_by_plugin: created_by_plugin.map(str::to_owned),
        action: action(checked.workflow.kind, Happening::Create),
        actor,
        details,
    };
    // Written in a batch with the creates beside it (with the request's
    // Idempotency-Key, when it has one).
    Ok(state.store().create_work_item(create).await?)
}

/// Changes to an item; `None` members stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ItemChanges {
    /// A new title.
    pub title: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// Custom field values to set; `null` removes a value.
    pub fields: Map<String, Value>,
    /// A new assignee: a member's email, or None for nobody.
    pub assignee: Option<Option<String>>,
}

/// Edits an item's title, description, custom field values or assignee
/// (needs `item.write`), audited as `<kind>.update`. An assignee must be a
/// member of the workspace.
pub async fn update(
    state: &dyn Reach,
    access: &Access,
    id: i64,
    changes: ItemChanges,
) -> DomainResult<WorkItem> {
    access.require(Permission::ItemWrite)?;
    let current = state.store().work_item(access.workspace.id, id).await?;
    let title = changes
        .title
        .as_deref()
        .map(|t| validate::text("title", t, MAX_TITLE))
        .transpose()?;
    let new_description = changes
        .description
        .as_deref()
        .map(description)
        .transpose()?;
    let definitions = state.store().custom_fields(access.workspace.id).await?;
    let changed_keys: Vec<String> = changes.fields.keys().cloned().collect();
    let fields = fields::apply_values(
        state,
        &access.workspace,
        current.kind,
        &definitions,
        &current.fields,
        changes.fields,
        false,
    )
    .await?;
    let mut tx = state.store().begin_write().await?;
    // Re-read inside the transaction so a concurrent status move is kept.
    let before = store::work_items::work_item_in(&mut tx, access.workspace.id, id).await?;
    let mut item = before.clone();
    let assignee = match &changes.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(email)) => {
            let email = email.trim().to_lowercase();
            let member =
                store::workspaces::member_by_email_in(&mut tx, access.workspace.id, &email)
                    .await?
                    .ok_or_else(|| not_a_member(&email))?;
            Some(Some((member.user_id, member.email)))
        }
    };
    if let Some(assignee) = &assignee {
        item.assignee = assignee.as_ref().map(|(_, email)| email.clone());
    }
    if let Some(title) = title {
        item.title = title;
    }
    if let Some(description) = new_description {
        item.description = description;
    }
    for key in &changed_keys {
        match fields.get(key) {
            Some(v) => item.fields.insert(key.clone(), v.clone()),
            None => item.fields.remove(key),
        };
    }
    let Some(details) = what_changed(&before, &item, &changed_keys) else {
        // Nothing differs: nothing is stored and nothing is recorded.
        return Ok(before);
    };
    if before.assignee != item.assignee {
        let user = assignee.flatten().map(|(user_id, _)| user_id);
        store::work_items::assign_work_item(&mut tx, access.workspace.id, id, user).await?;
    }
    let item = store::work_items::update_work_item(&mut tx, access.workspace.id, &item).await?;
    record(
        &mut tx,
        access,
        action(item.kind, Happening::Update),
        item.id.to_string(),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(item)
}

/// The audit details of an update from `before` to `after`: only what
/// differs, each with its value before (`previous`) and after; None when
/// nothing does. `title` and `fields` hold the new values (null for a
/// value removed), `description_changed` says whether the description did,
/// `assignee` (only when it changed) is the new assignee's email or null.
fn what_changed(before: &WorkItem, after: &WorkItem, keys: &[String]) -> Option<Value> {
    let mut previous = Map::new();
    let title = (before.title != after.title).then(|| {
        previous.insert("title".into(), Value::from(before.title.clone()));
        after.title.clone()
    });
    let description_changed = before.description != after.description;
    if description_changed {
        previous.insert(
            "description".into(),
            Value::from(before.description.clone()),
        );
    }
    let mut fields = Map::new();
    let mut previous_fields = Map::new();
    for key in keys {
        let (old, new) = (before.fields.get(key), after.fields.get(key));
        if old != new && !(old.is_none_or(Value::is_null) && new.is_none_or(Value::is_null)) {
            fields.insert(key.clone(), new.cloned().unwrap_or(Value::Null));
            previous_fields.insert(key.clone(), old.cloned().unwrap_or(Value::Null));
        }
    }
    let assignee_changed = before.assignee != after.assignee;
    if assignee_changed {
        previous.insert("assignee".into(), Value::from(before.assignee.clone()));
    }
    if title.is_none() && !description_changed && fields.is_empty() && !assignee_changed {
        return None;
    }
    if !previous_fields.is_empty() {
        previous.insert("fields".into(), Value::Object(previous_fields));
    }
    let mut details = json!({
        "title": title,
        "description_changed": description_changed,
        "fields": fields,
        "previous": previous,
    });
    if description_changed {
        details["description"] = Value::from(after.description.clone());
    }
    if assignee_changed {
        details["assignee"] = Value::from(after.assignee.clone());
    }
    Some(details)
}

/// The status named `status`, when `access` may move `item` to it; else
/// why not: an unknown status (invalid), a move the workflow does not
/// allow (conflict), or a missing permission (forbidden). Playbook dry runs
/// use it to check a step.
pub fn check_transition(access: &Access, item: &WorkItem, status: &str) -> DomainResult<Status> {
    access.require(Permission::ItemWrite)?;
    let flow = item.kind.workflow();
    let status = check_status(flow, status)?;
    let next = flow.next(item.status);
    if !next.contains(&status) {
        let next: Vec<&str> = next.iter().map(|s| s.as_str()).collect();
        return Err(DomainError::Conflict(format!(
            "{} {} is {} and cannot move to {status}; from {} it can move to: {}",
            item.kind,
            item.id,
            item.status,
            item.status,
            if next.is_empty() {
                "nothing".to_owned()
            } else {
                next.join(", ")
            }
        )));
    }
    if flow.is_decision(status) {
        access.require(Permission::ChangeApprove)?;
        let four_eyes = access.workspace.settings[super::workspaces::FOUR_EYES] == true;
        let own = item.created_by.as_deref() == Some(access.caller.user.email.as_str());
        if status == Status::Approved && four_eyes && own {
            return Err(DomainError::Conflict(format!(
                "{} {} was created by you, and in this workspace a change is approved by \
                 someone other than its author (the `four_eyes` setting)",
                item.kind, item.id
            )));
        }
    }
    Ok(status)
}

/// The moves `access` may make from `item`'s status: what a page offers.
pub fn allowed_moves(access: &Access, item: &WorkItem) -> Vec<Status> {
    next_statuses(item)
        .into_iter()
        .filter(|status| check_transition(access, item, status.as_str()).is_ok())
        .collect()
}

/// Moves item `id` to `status` (needs `item.write`, and `change.approve` to
/// approve or reject a change), audited with the comment.
pub async fn transition(
    state: &dyn Reach,
    access: &Access,
    id: i64,
    status: &str,
    comment_text: &str,
) -> DomainResult<WorkItem> {
    access.require(Permission::ItemWrite)?;
    check_comment(comment_text)?;
    let mut tx = state.store().begin_write().await?;
    let mut item = store::work_items::work_item_in(&mut tx, access.workspace.id, id).await?;
    let status = check_transition(access, &item, status)?;
    let from = std::mem::replace(&mut item.status, status);
    let item = store::work_items::update_work_item(&mut tx, access.workspace.id, &item).await?;
    record(
        &mut tx,
        access,
        action(item.kind, Happening::Move(item.status)),
        item.id.to_string(),
        json!({"kind": item.kind, "from": from, "to": item.status, "comment": comment_text}),
    )
    .await?;
    tx.commit().await?;
    Ok(item)
}
