//! A work item's page: its fields, its history, and the moves its workflow
//! allows the person.

use crate::web::Form;
use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::form::{form_value, writer};
use super::{access, humanise, item_of_kind, kind_of, when, Kind, When};
use crate::domain::authz::Permission;
use crate::domain::fields;
use crate::domain::work_items::{self};
use crate::state::AppState;
use crate::store::WorkItem;
use crate::web::session::{check_csrf, SignedIn};
use crate::web::{render, see_other, Frame, PageError};

/// A move the item page offers.
pub struct Move {
    status: String,
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
}

/// `?moved=` after a move.
#[derive(Deserialize, Default)]
pub struct ShowQuery {
    moved: Option<String>,
}

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
    let definitions = fields::list(&state, &access).await?;
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
    let flow = work_items::check_kind("kind", &item.kind)?;
    let moves = work_items::allowed_moves(&access, &item)
        .into_iter()
        .map(|status| Move {
            decision: flow.is_decision(status),
            label: match status {
                "approved" => "Approve".to_owned(),
                "rejected" => "Reject".to_owned(),
                other => format!("Move to {}", humanise(other).to_lowercase()),
            },
            status: status.to_owned(),
        })
        .collect();
    let labels: HashMap<String, String> = definitions
        .iter()
        .map(|d| (d.key.clone(), d.label.clone()))
        .collect();
    let history = work_items::history(&state, &access, &item)
        .await?
        .iter()
        .map(|e| Event {
            time: when(&e.time),
            actor: e.actor.label.clone(),
            what: describe(e, &labels),
        })
        .collect();
    let frame = Frame::workspace(
        &state,
        &current,
        &access,
        kind.name,
        &format!("{} {}: {}", kind.label, item.id, item.title),
    )
    .await?
    .with_notice(
        query
            .moved
            .filter(|m| *m == item.status)
            .map(|m| format!("Moved to {}.", humanise(&m).to_lowercase())),
    );
    Ok(render(&ShowPage {
        frame,
        slug,
        kind,
        status_label: humanise(&item.status),
        created_at: when(&item.created_at),
        values,
        moves,
        history,
        can_write: access.can(Permission::ItemWrite),
        item,
    }))
}

/// A move's form.
#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    comment: String,
}

/// `POST /w/{slug}/{kind}/{id}/move`.
pub async fn transition(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, segment, id)): Path<(String, String, i64)>,
    Form(form): Form<MoveForm>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    check_csrf(&current, &form.csrf)?;
    let access = writer(&state, &current, &slug).await?;
    item_of_kind(&state, &access, kind, id).await?;
    let item = work_items::transition(&state, &access, id, &form.status, &form.comment).await?;
    Ok(see_other(&format!(
        "/w/{slug}/{}/{}?moved={}",
        kind.plural, item.id, item.status
    )))
}
