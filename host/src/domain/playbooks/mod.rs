//! Playbooks: their definitions, runs and dry runs, and the run records.
//!
//! A definition's steps are checked by [`engine::check_steps`];
//! running one is orchestrated here (record the run, let the engine execute
//! the steps with the caller's access, record every step's outcome, audit
//! `playbook.run` or `playbook.dry_run`). A run is driven in a task of its
//! own, so it finishes and is recorded even if the caller stops waiting.
//! Definitions are audited as `playbook.create`, `playbook.update` and
//! `playbook.delete`.

pub mod engine;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use self::engine::{check_steps, RunContext, Step, StepResult};
use super::{detached, record, validate, DomainError, DomainResult};
use crate::domain::authz::{Access, Permission};
use crate::domain::Context;
use crate::store;
use crate::store::integrations::{Playbook, PlaybookRun};

/// A playbook definition (also the shape inside a workspace export).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookDefinition {
    /// Unique name in the workspace: letters, digits, `_`, `-`, `.`.
    #[schema(pattern = "^(?![0-9]+$)[A-Za-z0-9_.-]{1,64}$")]
    pub name: String,
    /// Free text (up to 2000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Ordered steps (1 to 50), with unique names.
    #[schema(min_items = 1, max_items = 50)]
    pub steps: Vec<Step>,
}

/// A definition as it is stored, checked.
#[derive(Debug, Clone)]
pub struct CheckedPlaybook {
    /// The name.
    pub name: String,
    /// The description, trimmed.
    pub description: String,
    /// The steps, with default names filled in, as JSON.
    pub steps: Value,
}

impl PlaybookDefinition {
    /// Checks the definition; errors name the field (`steps[2].url`).
    pub fn checked(&self) -> DomainResult<CheckedPlaybook> {
        let name = validate::name_not_number("name", &self.name)?;
        if self.description.chars().count() > 2000 {
            return Err(DomainError::invalid(
                "description",
                "`description` is longer than 2000 characters",
            ));
        }
        let mut steps = self.steps.clone();
        check_steps(&mut steps)?;
        let steps = serde_json::to_value(steps)
            .map_err(|e| DomainError::Internal(format!("cannot encode steps: {e}")))?;
        Ok(CheckedPlaybook {
            name,
            description: self.description.trim().to_owned(),
            steps,
        })
    }

    /// The definition of a stored playbook.
    pub fn from_stored(playbook: Playbook) -> DomainResult<Self> {
        Ok(PlaybookDefinition {
            steps: stored_steps(&playbook)?,
            name: playbook.name,
            description: playbook.description,
        })
    }
}

/// A stored playbook's steps.
pub fn stored_steps(playbook: &Playbook) -> DomainResult<Vec<Step>> {
    serde_json::from_value(playbook.steps.clone()).map_err(|e| {
        DomainError::Internal(format!(
            "stored steps of playbook `{}` are unreadable: {e}",
            playbook.name
        ))
    })
}

/// The workspace's playbooks (needs `workspace.read`).
pub async fn list(state: &Context, access: &Access) -> DomainResult<Vec<Playbook>> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state.store.list_playbooks(access.workspace.id).await?)
}

/// One playbook by id or name (needs `workspace.read`).
pub async fn get(state: &Context, access: &Access, id_or_name: &str) -> DomainResult<Playbook> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state
        .store
        .playbook(access.workspace.id, id_or_name)
        .await?)
}

/// Creates a playbook (needs `playbook.edit`).
pub async fn create(
    state: &Context,
    access: &Access,
    definition: &PlaybookDefinition,
) -> DomainResult<Playbook> {
    access.require(Permission::PlaybookEdit)?;
    let checked = definition.checked()?;
    let mut tx = state.store.begin_write().await?;
    let playbook = store::integrations::insert_playbook(
        &mut tx,
        access.workspace.id,
        &checked.name,
        &checked.description,
        &checked.steps,
        access.caller.user.id,
    )
    .await?;
    record(
        &mut tx,
        access,
        "playbook.create",
        &checked.name,
        json!({"id": playbook.id, "description": checked.description, "steps": checked.steps}),
    )
    .await?;
    tx.commit().await?;
    Ok(playbook)
}

/// Replaces a playbook's name, description and steps (needs `playbook.edit`).
pub async fn replace(
    state: &Context,
    access: &Access,
    id_or_name: &str,
    definition: &PlaybookDefinition,
) -> DomainResult<Playbook> {
    access.require(Permission::PlaybookEdit)?;
    let checked = definition.checked()?;
    let mut tx = state.store.begin_write().await?;
    let mut stored =
        store::integrations::playbook_in(&mut tx, access.workspace.id, id_or_name).await?;
    let old_name = std::mem::replace(&mut stored.name, checked.name);
    stored.description = checked.description;
    stored.steps = checked.steps;
    let updated =
        store::integrations::update_playbook(&mut tx, access.workspace.id, &stored).await?;
    record(
        &mut tx,
        access,
        "playbook.update",
        &updated.name,
        json!({"id": updated.id, "previous_name": old_name,
               "description": updated.description, "steps": updated.steps}),
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes a playbook (needs `playbook.edit`); its run records stay.
pub async fn delete(state: &Context, access: &Access, id_or_name: &str) -> DomainResult<Playbook> {
    access.require(Permission::PlaybookEdit)?;
    let mut tx = state.store.begin_write().await?;
    let stored = store::integrations::playbook_in(&mut tx, access.workspace.id, id_or_name).await?;
    store::integrations::delete_playbook(&mut tx, access.workspace.id, stored.id).await?;
    record(
        &mut tx,
        access,
        "playbook.delete",
        &stored.name,
        json!({"id": stored.id}),
    )
    .await?;
    tx.commit().await?;
    Ok(stored)
}

/// Runs (or, with `dry_run`, evaluates without side effects) a playbook
/// with `input` for its `{{input.<key>}}` placeholders, and returns the
/// finished run record. Needs `playbook.run` (or `playbook.dry_run`); each
/// step also needs its own permission.
pub async fn run(
    state: &Context,
    access: &Access,
    id_or_name: &str,
    input: Map<String, Value>,
    dry_run: bool,
) -> DomainResult<PlaybookRun> {
    access.require(if dry_run {
        Permission::PlaybookDryRun
    } else {
        Permission::PlaybookRun
    })?;
    if Value::Object(input.clone()).to_string().len() > engine::MAX_INPUT {
        return Err(DomainError::invalid(
            "input",
            format!("the run's input is larger than {} bytes", engine::MAX_INPUT),
        ));
    }
    let (state, access) = (state.clone(), access.clone());
    let playbook = id_or_name.to_owned();
    detached("the playbook run", async move {
        run_to_end(&state, &access, &playbook, input, dry_run).await
    })
    .await
}

async fn run_to_end(
    state: &Context,
    access: &Access,
    playbook: &str,
    input: Map<String, Value>,
    dry_run: bool,
) -> DomainResult<PlaybookRun> {
    let stored = state.store.playbook(access.workspace.id, playbook).await?;
    let steps = stored_steps(&stored)?;
    let input_value = Value::Object(input.clone());
    let action = if dry_run {
        "playbook.dry_run"
    } else {
        "playbook.run"
    };
    let mut tx = state.store.begin_write().await?;
    let run_id = store::integrations::insert_playbook_run(
        &mut tx,
        access.workspace.id,
        &stored,
        dry_run,
        &input_value,
        access.caller.user.id,
    )
    .await?;
    tx.commit().await?;
    let cx = RunContext { state, access };
    let (status, results) =
        engine::execute(&cx, run_id, &stored.name, &steps, &input, dry_run).await;
    let results_value = serde_json::to_value(&results)
        .map_err(|e| DomainError::Internal(format!("cannot encode step results: {e}")))?;
    let mut tx = state.store.begin_write().await?;
    store::integrations::finish_playbook_run(&mut tx, run_id, status, &results_value).await?;
    let steps: Vec<_> = results
        .iter()
        .map(|r| json!({"name": r.name, "status": r.status}))
        .collect();
    record(
        &mut tx,
        access,
        action,
        &stored.name,
        json!({"run_id": run_id, "status": status, "steps": steps}),
    )
    .await?;
    tx.commit().await?;
    Ok(state
        .store
        .playbook_run(access.workspace.id, run_id)
        .await?)
}

/// A run record's step results.
pub fn run_steps(run: &PlaybookRun) -> Vec<StepResult> {
    serde_json::from_value(run.steps.clone()).unwrap_or_default()
}

/// The workspace's runs, newest first, optionally of one playbook (needs
/// `workspace.read`).
pub async fn runs(
    state: &Context,
    access: &Access,
    playbook: Option<&str>,
    limit: Option<i64>,
) -> DomainResult<Vec<PlaybookRun>> {
    access.require(Permission::WorkspaceRead)?;
    let limit = validate::limit(limit, 50, 1000)?;
    let playbook_id = match playbook {
        Some(p) => Some(state.store.playbook(access.workspace.id, p).await?.id),
        None => None,
    };
    Ok(state
        .store
        .list_playbook_runs(access.workspace.id, playbook_id, limit)
        .await?)
}

/// One run record (needs `workspace.read`).
pub async fn get_run(state: &Context, access: &Access, id: i64) -> DomainResult<PlaybookRun> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state.store.playbook_run(access.workspace.id, id).await?)
}
