//! A work item's page: its fields, its assignee, its comments, its
//! history, and the moves its workflow allows the person.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::form::{form_value, writer};
use super::{access, humanise, item_of_kind, kind_of, when, Kind, When};
use crate::domain::authz::Access;
use crate::domain::authz::Permission;
use crate::domain::comments;
use crate::domain::fields;
use crate::domain::sessions::Current;
use crate::domain::work_items::{self, ItemChanges, Status};
use crate::domain::DomainError;
use crate::state::AppState;
use crate::store::work_items::WorkItem;
use crate::web::extract::SignedForm;
use crate::web::session::SignedIn;
use crate::web::{render, see_other, Frame, PageError};

/// A move the item page offers.
pub struct Move {
    status: Status,
    label: String,
    /// Approve or reject: shown as a decision.
    decision: bool,
}

/// A line of the item's history.
pub struct Event {
    time: When,
    actor: String,
    what: String,
}

fn describe(event: &crate::audit::AuditEvent, labels: &HashMap<String, String>) -> String {
    let d = &event.details;
    let action = event.action.split_once('.').map(|(_, a)| a).unwrap_or("");
    match action {
        "create" => format!(
            "created it as {}",
            humanise(d["status"].as_str().unwrap_or("?")).to_lowercase()
        ),
        "update" => describe_update(d, labels),
        _ => {
            let from = humanise(d["from"].as_str().unwrap_or("?")).to_lowercase();
            let to = humanise(d["to"].as_str().unwrap_or("?")).to_lowercase();
            let verb = match action {
                "approve" => "approved it".to_owned(),
                "reject" => "rejected it".to_owned(),
                _ => format!("moved it from {from} to {to}"),
            };
            match d["comment"].as_str().filter(|c| !c.is_empty()) {
                Some(comment) => format!("{verb}: “{comment}”"),
                None => verb,
            }
        }
    }
}

/// An update as a sentence: "changed the title from “A” to “B” and set
/// Window to 2026-12-24", naming fields by their labels.
fn describe_update(d: &Value, labels: &HashMap<String, String>) -> String {
    let mut parts = Vec::new();
    if let Some(title) = d["title"].as_str() {
        parts.push(match d["previous"]["title"].as_str() {
            Some(old) => format!("changed the title from “{old}” to “{title}”"),
            None => format!("changed the title to “{title}”"),
        });
    }
    if d["description_changed"] == true {
        parts.push("edited the description".to_owned());
    }
    if let Some(assignee) = d.get("assignee") {
        parts.push(match assignee.as_str() {
            Some(email) => format!("assigned it to {email}"),
            None => "unassigned it".to_owned(),
        });
    }
    for (key, value) in d["fields"].as_object().into_iter().flatten() {
        let label = labels.get(key).cloned().unwrap_or_else(|| humanise(key));
        parts.push(match value {
            Value::Null => format!("cleared {label}"),
            Value::Bool(b) => format!("set {label} to {}", if *b { "yes" } else { "no" }),
            other => format!("set {label} to {}", form_value(other)),
        });
    }
    match parts.len() {
        0 => "saved it".into(),
        1 => parts.remove(0),
        n => {
            let last = parts.remove(n - 1);
            format!("{} and {last}", parts.join(", "))
        }
    }
}

#[derive(Template)]
#[template(path = "items/show.html")]
struct ShowPage {
    frame: Frame,
    slug: String,
    kind: Kind,
    item: WorkItem,
    status_label: String,
    created_at: When,
    values: Vec<(String, String)>,
    moves: Vec<Move>,
    history: Vec<Event>,
    can_write: bool,
    /// Members' emails, offered when assigning.
    members: Vec<String>,
    /// Whether "Assign to me" is offered: the person is a member, and the
    /// item is not theirs yet.
    offer_me: bool,
    comments: Vec<CommentView>,
    /// How many comments the item has (more than shown, past 500).
    comment_total: i64,
    /// The assign form, refused: what it held, and why.
    assignee_problem: Option<Problem>,
    /// The new comment, refused: what it said, and why.
    comment_problem: Option<Problem>,
}

/// A refused form on the item page: which one, what it held, and why.
#[derive(Clone)]
pub struct Problem {
    /// `assignee` or `body`.
    pub field: &'static str,
    /// What the person typed, shown again.
    pub value: String,
    /// Why it was refused, in words.
    pub message: String,
}

/// A comment as the item page shows it.
pub struct CommentView {
    id: i64,
    author: String,
    time: When,
    edited: bool,
    /// The text, HTML-escaped, with web addresses made links.
    html: String,
    /// The text as written, for the edit form.
    body: String,
    can_change: bool,
}

/// `?moved=` after a move, `?done=` after assigning or a comment.
#[derive(Deserialize, Default)]
pub struct ShowQuery {
    moved: Option<String>,
    done: Option<String>,
}

/// The notices `?done=` names.
const DONE: [(&str, &str); 7] = [
    ("created", "Created."),
    ("saved", "Changes saved."),
    ("assigned", "Assignee saved."),
    ("unassigned", "Nobody is assigned now."),
    ("commented", "Comment added."),
    ("comment_saved", "Comment saved."),
    ("comment_removed", "Comment removed."),
];

/// `GET /w/{slug}/{kind}/{id}`.
pub async fn show(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, segment, id)): Path<(String, String, i64)>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = access(&state, &current, &slug).await?;
    let item = item_of_kind(&state, &access, kind, id).await?;
    let notice = match query.moved {
        Some(moved) => (item.status == moved.as_str())
            .then(|| format!("Moved to {}.", humanise(&moved).to_lowercase())),
        None => query.done.and_then(|done| {
            DONE.iter()
                .find(|(code, _)| *code == done)
                .map(|(_, text)| (*text).to_owned())
        }),
    };
    page(&state, &current, &access, kind, item, notice, None).await
}

/// The moves `access` may make from `item`'s status, as buttons.
fn moves(access: &Access, item: &WorkItem) -> Vec<Move> {
    let flow = item.kind.workflow();
    work_items::allowed_moves(access, item)
        .into_iter()
        .map(|status| Move {
            decision: flow.is_decision(status),
            label: match status {
                Status::Approved => "Approve".to_owned(),
                Status::Rejected => "Reject".to_owned(),
                other => format!("Move to {}", humanise(other).to_lowercase()),
            },
            status,
        })
        .collect()
}

impl CommentView {
    /// How comment `c` shows to `access`.
    fn of(access: &Access, c: crate::store::comments::Comment) -> CommentView {
        CommentView {
            id: c.id,
            author: c.author.clone().unwrap_or_else(|| "a former member".into()),
            time: when(&c.created_at),
            edited: c.edited_at.is_some(),
            html: super::super::text::linked(&c.body),
            can_change: comments::may_change(access, &c),
            body: c.body,
        }
    }
}

/// The item page, with a notice or a refused form.
pub(super) async fn page(
    state: &AppState,
    current: &Current,
    access: &Access,
    kind: Kind,
    item: WorkItem,
    notice: Option<String>,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let definitions = fields::list(state, access).await?;
    let values = definitions
        .iter()
        .filter(|d| d.applies_to.contains(&item.kind))
        .map(|d| {
            let value = match item.fields.get(&d.key) {
                None | Some(Value::Null) => "—".to_owned(),
                Some(Value::Bool(b)) => if *b { "Yes" } else { "No" }.to_owned(),
                Some(v) => form_value(v),
            };
            (d.label.clone(), value)
        })
        .collect();
    let moves = moves(access, &item);
    let labels: HashMap<String, String> = definitions
        .iter()
        .map(|d| (d.key.clone(), d.label.clone()))
        .collect();
    let history = work_items::history(state, access, &item)
        .await?
        .iter()
        .map(|e| Event {
            time: when(&e.time),
            actor: e.actor.label.clone(),
            what: describe(e, &labels),
        })
        .collect();
    let can_write = access.can(Permission::ItemWrite);
    let members = if can_write {
        work_items::assignable(state, access).await?
    } else {
        Vec::new()
    };
    let (comments, comment_total) = comments::list(state, access, item.id).await?;
    let comments = comments
        .into_iter()
        .map(|c| CommentView::of(access, c))
        .collect();
    let frame = Frame::workspace(
        state,
        current,
        access,
        kind.name,
        &format!("{} {}: {}", kind.label, item.id, item.title),
    )
    .await?
    .with_notice(notice);
    let refused = problem.is_some();
    let mut page = render(&ShowPage {
        frame,
        slug: access.workspace.slug.clone(),
        kind,
        status_label: humanise(item.status),
        created_at: when(&item.created_at),
        values,
        moves,
        history,
        can_write,
        members,
        offer_me: access.membership.is_some()
            && item.assignee.as_deref() != Some(access.caller.user.email.as_str()),
        comments,
        comment_total,
        item,
        assignee_problem: problem.as_ref().filter(|p| p.field == "assignee").cloned(),
        comment_problem: problem.filter(|p| p.field == "body"),
    });
    if refused {
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

/// The assign form: an email (empty: nobody), or "Assign to me".
#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    me: String,
}

/// `POST /w/{slug}/{kind}/{id}/assign`.
pub async fn assign(
    State(state): State<AppState>,
    Path((slug, segment, id)): Path<(String, String, i64)>,
    SignedForm { current, form }: SignedForm<AssignForm>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = writer(&state, &current, &slug).await?;
    let item = item_of_kind(&state, &access, kind, id).await?;
    let assignee = if form.me.is_empty() {
        Some(form.assignee.trim().to_owned()).filter(|a| !a.is_empty())
    } else {
        Some(access.caller.user.email.clone())
    };
    let changes = ItemChanges {
        assignee: Some(assignee.clone()),
        ..Default::default()
    };
    match work_items::update(&state, &access, id, changes).await {
        Ok(_) => Ok(see_other(&kind.item_url(
            &slug,
            id,
            if assignee.is_some() {
                "?done=assigned"
            } else {
                "?done=unassigned"
            },
        ))),
        Err(DomainError::Invalid { message, .. }) => {
            let problem = Problem {
                field: "assignee",
                value: form.assignee,
                message,
            };
            page(&state, &current, &access, kind, item, None, Some(problem)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A move's form.
#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    comment: String,
}

/// `POST /w/{slug}/{kind}/{id}/move`.
pub async fn transition(
    State(state): State<AppState>,
    Path((slug, segment, id)): Path<(String, String, i64)>,
    SignedForm { current, form }: SignedForm<MoveForm>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = writer(&state, &current, &slug).await?;
    item_of_kind(&state, &access, kind, id).await?;
    let item = work_items::transition(&state, &access, id, &form.status, &form.comment).await?;
    Ok(see_other(&kind.item_url(
        &slug,
        item.id,
        &format!("?moved={}", item.status),
    )))
}
