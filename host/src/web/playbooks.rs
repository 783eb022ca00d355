//! `/w/{slug}/playbooks`: the workspace's playbooks and their runs.
//!
//! A playbook is shown with its steps; it is created and edited as JSON
//! (the same definition `vigilo playbook create` reads), and the server's
//! checks answer next to the editor naming the step and field
//! (`steps[2].url`). **Run** and **Dry run** take the inputs the steps'
//! `{{input.<name>}}` placeholders ask for, one field each, and lead to the
//! run record: every step's status, output and error (a dry run marks the
//! steps it cannot simulate).

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::items::{when, When};
use super::{render, render_status, see_other, Done, Frame, PageError};
use crate::domain::authz::{Access, Permission};
use crate::domain::playbooks::engine::StepStatus;
use crate::domain::playbooks::{self};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;
use crate::store::integrations::{Playbook, PlaybookRun, RunStatus};

mod editor;

use editor::{create, edit_page, new_page, update};

/// A playbook in the list.
pub struct PlaybookRow {
    id: i64,
    name: String,
    description: String,
    steps: usize,
    updated: When,
}

/// A run in a list.
pub struct RunRow {
    id: i64,
    playbook: String,
    dry_run: bool,
    status: RunStatus,
    started_by: String,
    started: When,
}

fn run_row(r: PlaybookRun) -> RunRow {
    RunRow {
        id: r.id,
        playbook: r.playbook,
        dry_run: r.dry_run,
        status: r.status,
        started_by: r.started_by.unwrap_or_else(|| "someone removed".into()),
        started: when(&r.started_at),
    }
}

#[derive(Template)]
#[template(path = "playbooks/list.html")]
struct ListPage {
    frame: Frame,
    slug: String,
    rows: Vec<PlaybookRow>,
    runs: Vec<RunRow>,
    can_edit: bool,
}

/// `GET /w/{slug}/playbooks`.
pub async fn list(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::WorkspaceRead>,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let rows = playbooks::list(&state, &access)
        .await?
        .into_iter()
        .map(|p| PlaybookRow {
            id: p.id,
            steps: p.steps.as_array().map_or(0, Vec::len),
            updated: when(&p.updated_at),
            name: p.name,
            description: p.description,
        })
        .collect();
    let runs = playbooks::runs(&state, &access, None, Some(20))
        .await?
        .into_iter()
        .map(run_row)
        .collect();
    let frame = Frame::workspace(&state, &current, &access, "playbooks", "Playbooks")
        .await?
        .with_notice(done.notice(&[("deleted", "The playbook was deleted; its runs stay.")]));
    Ok(render(&ListPage {
        frame,
        slug,
        rows,
        runs,
        can_edit: access.can(Permission::PlaybookEdit),
    }))
}

/// A step as the playbook page shows it.
pub struct StepView {
    index: usize,
    name: String,
    step_type: String,
    settings: Vec<(String, String)>,
    continue_on_error: bool,
}

fn step_views(playbook: &Playbook) -> Vec<StepView> {
    playbook
        .steps
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .enumerate()
                .map(|(i, step)| {
                    let object = step.as_object().cloned().unwrap_or_default();
                    let text = |v: &Value| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    StepView {
                        index: i + 1,
                        name: object
                            .get("name")
                            .map(text)
                            .unwrap_or_else(|| format!("step{}", i + 1)),
                        step_type: object.get("type").map(text).unwrap_or_default(),
                        continue_on_error: object
                            .get("continue_on_error")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        settings: object
                            .iter()
                            .filter(|(k, _)| {
                                !matches!(k.as_str(), "name" | "type" | "continue_on_error")
                            })
                            .map(|(k, v)| (k.clone(), text(v)))
                            .collect(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The names of the `{{input.<name>}}` placeholders in `steps`, sorted.
fn input_names(steps: &Value) -> Vec<String> {
    let mut names = BTreeSet::new();
    let mut strings = Vec::new();
    collect_strings(steps, &mut strings);
    for text in strings {
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{{") {
            rest = &rest[start + 2..];
            let Some(end) = rest.find("}}") else { break };
            if let Some(path) = rest[..end].trim().strip_prefix("input.") {
                let name = path.split('.').next().unwrap_or("");
                if !name.is_empty() {
                    names.insert(name.to_owned());
                }
            }
            rest = &rest[end + 2..];
        }
    }
    names.into_iter().collect()
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[derive(Template)]
#[template(path = "playbooks/show.html")]
struct ShowPage {
    frame: Frame,
    slug: String,
    playbook: Playbook,
    steps: Vec<StepView>,
    inputs: Vec<(String, String)>,
    runs: Vec<RunRow>,
    can_edit: bool,
    can_run: bool,
    can_dry_run: bool,
    error: Option<String>,
}

async fn show_with(
    state: &AppState,
    current: &Current,
    access: &Access,
    id: &str,
    typed: Option<Map<String, Value>>,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let playbook = playbooks::get(state, access, id).await?;
    let runs = playbooks::runs(state, access, Some(&playbook.id.to_string()), Some(20))
        .await?
        .into_iter()
        .map(run_row)
        .collect();
    let inputs = input_names(&playbook.steps)
        .into_iter()
        .map(|name| {
            let value = typed
                .as_ref()
                .and_then(|t| t.get(&name))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            (name, value)
        })
        .collect();
    let frame = Frame::workspace(state, current, access, "playbooks", &playbook.name)
        .await?
        .with_notice(notice);
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(render_status(
        status,
        &ShowPage {
            frame,
            slug: access.workspace.slug.clone(),
            steps: step_views(&playbook),
            playbook,
            inputs,
            runs,
            can_edit: access.can(Permission::PlaybookEdit),
            can_run: access.can(Permission::PlaybookRun),
            can_dry_run: access.can(Permission::PlaybookDryRun),
            error,
        },
    ))
}

/// `GET /w/{slug}/playbooks/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::WorkspaceRead>,
    Path((_slug, id)): Path<(String, i64)>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let notice = done.notice(&[
        ("created", "The playbook was created."),
        ("saved", "The playbook was saved."),
    ]);
    show_with(
        &state,
        &current,
        &access,
        &id.to_string(),
        None,
        None,
        notice,
    )
    .await
}

/// `POST /w/{slug}/playbooks/{id}/run`: `mode=dry` or `mode=run`, and an
/// `input.<name>` field per placeholder.
pub async fn run(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
    MemberForm {
        current,
        access,
        form: pairs,
        ..
    }: MemberForm<need::WorkspaceRead, Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut dry_run = true;
    let mut input = Map::new();
    for (key, value) in pairs {
        match key.as_str() {
            "mode" => dry_run = value != "run",
            _ => {
                if let Some(name) = key.strip_prefix("input.") {
                    input.insert(name.to_owned(), Value::String(value));
                }
            }
        }
    }
    match playbooks::run(&state, &access, &id.to_string(), input.clone(), dry_run).await {
        Ok(run) => Ok(see_other(&Workspace(&slug).playbook_run(run.id))),
        Err(DomainError::Invalid { message, .. }) => {
            show_with(
                &state,
                &current,
                &access,
                &id.to_string(),
                Some(input),
                Some(message),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// A step's result as the run page shows it.
pub struct StepOutcome {
    index: usize,
    name: String,
    step_type: String,
    status: StepStatus,
    output: String,
    error: String,
}

#[derive(Template)]
#[template(path = "playbooks/run.html")]
struct RunPage {
    frame: Frame,
    slug: String,
    run: RunRow,
    playbook_id: Option<i64>,
    input: String,
    finished: When,
    steps: Vec<StepOutcome>,
}

/// `GET /w/{slug}/playbooks/runs/{id}`.
pub async fn run_page(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::WorkspaceRead>,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    let run = playbooks::get_run(&state, &access, id).await?;
    let steps = playbooks::run_steps(&run)
        .into_iter()
        .map(|s| StepOutcome {
            index: s.index,
            step_type: serde_json::to_value(s.step_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            name: s.name,
            status: s.status,
            output: s
                .output
                .map(|o| serde_json::to_string_pretty(&o).unwrap_or_default())
                .unwrap_or_default(),
            error: s.error.unwrap_or_default(),
        })
        .collect();
    let frame = Frame::workspace(
        &state,
        &current,
        &access,
        "playbooks",
        &format!("Run {} of {}", run.id, run.playbook),
    )
    .await?;
    let input = match &run.input {
        Value::Object(m) if m.is_empty() => String::new(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    Ok(render(&RunPage {
        frame,
        slug,
        playbook_id: run.playbook_id,
        finished: run.finished_at.as_deref().map(when).unwrap_or_default(),
        input,
        run: run_row(run),
        steps,
    }))
}

/// `POST /w/{slug}/playbooks/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
    MemberForm { access, .. }: MemberForm<need::PlaybookEdit>,
) -> Result<Response, PageError> {
    playbooks::delete(&state, &access, &id.to_string()).await?;
    Ok(see_other(&Workspace(&slug).playbooks().done("deleted")))
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/w/{slug}/playbooks", get(list).post(create))
        .route("/w/{slug}/playbooks/new", get(new_page))
        .route("/w/{slug}/playbooks/runs/{id}", get(run_page))
        .route("/w/{slug}/playbooks/{id}", get(show))
        .route("/w/{slug}/playbooks/{id}/edit", get(edit_page).post(update))
        .route("/w/{slug}/playbooks/{id}/run", post(run))
        .route("/w/{slug}/playbooks/{id}/delete", post(delete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_are_the_placeholders_of_the_steps() {
        let steps = serde_json::json!([
            {"type": "notify", "message": "{{input.summary}} on {{ input.x }} {{input.incident}}"},
            {"type": "set_status", "item": "{{input.incident}}", "status": "resolved"},
            {"type": "webhook", "url": "https://x/{{steps.step1.output}}"}
        ]);
        assert_eq!(input_names(&steps), ["incident", "summary", "x"]);
    }
}
