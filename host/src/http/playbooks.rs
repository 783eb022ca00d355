//! Playbooks: CRUD, runs, dry runs and run records.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Access, ApiJson, ApiPath, ApiQuery, Principal};
use super::validate;
use crate::audit::{self, NewEvent};
use crate::authz::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::playbooks::{self, check_steps, RunContext, Step, StepResult};
use crate::state::AppState;
use crate::store::{self, Playbook, PlaybookRun};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_playbooks, create_playbook))
        .routes(routes!(get_playbook, replace_playbook, delete_playbook))
        .routes(routes!(run_playbook))
        .routes(routes!(dry_run_playbook))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
}

/// A playbook.
#[derive(Serialize, ToSchema)]
struct PlaybookView {
    id: i64,
    name: String,
    description: String,
    steps: Vec<Step>,
    created_by: Option<String>,
    created_at: String,
    updated_at: String,
}

fn stored_steps(playbook: &Playbook) -> ApiResult<Vec<Step>> {
    serde_json::from_value(playbook.steps.clone()).map_err(|e| {
        ApiError::Internal(format!(
            "stored steps of playbook `{}` are unreadable: {e}",
            playbook.name
        ))
    })
}

fn view(playbook: Playbook) -> ApiResult<PlaybookView> {
    Ok(PlaybookView {
        steps: stored_steps(&playbook)?,
        id: playbook.id,
        name: playbook.name,
        description: playbook.description,
        created_by: playbook.created_by,
        created_at: playbook.created_at,
        updated_at: playbook.updated_at,
    })
}

#[derive(Serialize, ToSchema)]
struct PlaybookList {
    playbooks: Vec<PlaybookView>,
}

/// The workspace's playbooks.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/playbooks", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = PlaybookList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_playbooks(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<PlaybookList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let playbooks = state
        .store
        .list_playbooks(access.workspace.id)
        .await?
        .into_iter()
        .map(view)
        .collect::<ApiResult<_>>()?;
    Ok(Json(PlaybookList { playbooks }))
}

/// A playbook definition (also the shape inside `workspace export`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookDefinition {
    /// Unique name in the workspace: letters, digits, `_`, `-`, `.`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Ordered steps.
    pub steps: Vec<Step>,
}

impl PlaybookDefinition {
    /// Checks the definition; returns the name, description and steps as
    /// stored.
    pub fn checked(&self) -> ApiResult<(String, String, Value)> {
        let name = validate::name_not_number("name", &self.name)?;
        if self.description.chars().count() > 2000 {
            return Err(ApiError::invalid(
                "description",
                "`description` is longer than 2000 characters",
            ));
        }
        let mut steps = self.steps.clone();
        check_steps(&mut steps)?;
        let steps = serde_json::to_value(steps)
            .map_err(|e| ApiError::Internal(format!("cannot encode steps: {e}")))?;
        Ok((name, self.description.trim().to_owned(), steps))
    }

    /// The definition of a stored playbook.
    pub fn from_stored(playbook: Playbook) -> ApiResult<Self> {
        Ok(PlaybookDefinition {
            steps: stored_steps(&playbook)?,
            name: playbook.name,
            description: playbook.description,
        })
    }
}

/// Creates a playbook.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/playbooks", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = PlaybookDefinition,
    responses((status = 201, body = PlaybookView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_playbook(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<PlaybookDefinition>, ApiError>,
) -> ApiResult<(StatusCode, Json<PlaybookView>)> {
    let access = principal
        .workspace(&state, &slug, Permission::PlaybookEdit)
        .await?;
    let ApiJson(body) = body?;
    let (name, description, steps) = body.checked()?;
    let mut tx = state.store.begin_write().await?;
    let playbook = store::insert_playbook(
        &mut tx,
        access.workspace.id,
        &name,
        &description,
        &steps,
        principal.user.id,
    )
    .await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "playbook.create",
            &name,
            json!({"id": playbook.id, "description": description, "steps": steps}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(playbook)?)))
}

/// One playbook, by id or name.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/playbooks/{playbook}", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("playbook" = String, Path, description = "id or name")),
    responses((status = 200, body = PlaybookView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_playbook(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, playbook)): ApiPath<(String, String)>,
) -> ApiResult<Json<PlaybookView>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    Ok(Json(view(
        state.store.playbook(access.workspace.id, &playbook).await?,
    )?))
}

/// Replaces a playbook's name, description and steps.
#[utoipa::path(put, path = "/api/v1/workspaces/{slug}/playbooks/{playbook}", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("playbook" = String, Path, description = "id or name")), request_body = PlaybookDefinition,
    responses((status = 200, body = PlaybookView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace_playbook(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, playbook)): ApiPath<(String, String)>,
    body: Result<ApiJson<PlaybookDefinition>, ApiError>,
) -> ApiResult<Json<PlaybookView>> {
    let access = principal
        .workspace(&state, &slug, Permission::PlaybookEdit)
        .await?;
    let ApiJson(body) = body?;
    let (name, description, steps) = body.checked()?;
    let mut tx = state.store.begin_write().await?;
    let mut stored = store::playbook_in(&mut tx, access.workspace.id, &playbook).await?;
    let old_name = std::mem::replace(&mut stored.name, name);
    stored.description = description;
    stored.steps = steps;
    let updated = store::update_playbook(&mut tx, access.workspace.id, &stored).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "playbook.update",
            &updated.name,
            json!({"id": updated.id, "previous_name": old_name, "description": updated.description, "steps": updated.steps}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(view(updated)?))
}

/// Deletes a playbook (its run records stay).
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/playbooks/{playbook}", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("playbook" = String, Path, description = "id or name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_playbook(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, playbook)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::PlaybookEdit)
        .await?;
    let mut tx = state.store.begin_write().await?;
    let stored = store::playbook_in(&mut tx, access.workspace.id, &playbook).await?;
    store::delete_playbook(&mut tx, access.workspace.id, stored.id).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "playbook.delete",
            &stored.name,
            json!({"id": stored.id}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a run is given.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    /// Variables for `{{input.<key>}}` placeholders.
    #[serde(default)]
    #[schema(value_type = Object)]
    input: Map<String, Value>,
}

/// A run record.
#[derive(Serialize, ToSchema)]
struct RunView {
    id: i64,
    playbook_id: Option<i64>,
    playbook: String,
    dry_run: bool,
    /// `succeeded` or `failed`; for a dry run `ok` or `would_fail`;
    /// `running` while it runs; `abandoned` if its server stopped first.
    status: String,
    #[schema(value_type = Object)]
    input: Value,
    steps: Vec<StepResult>,
    started_by: Option<String>,
    started_at: String,
    finished_at: Option<String>,
}

fn run_view(run: PlaybookRun) -> RunView {
    RunView {
        steps: serde_json::from_value(run.steps).unwrap_or_default(),
        id: run.id,
        playbook_id: run.playbook_id,
        playbook: run.playbook,
        dry_run: run.dry_run,
        status: run.status,
        input: run.input,
        started_by: run.started_by,
        started_at: run.started_at,
        finished_at: run.finished_at,
    }
}

/// Starts a run in its own task, so it finishes (and is recorded and
/// audited) even if the client goes away, and answers with its record.
async fn start_run(
    state: &AppState,
    principal: &Principal,
    access: Access,
    playbook: &str,
    input: Map<String, Value>,
    dry_run: bool,
) -> ApiResult<RunView> {
    if Value::Object(input.clone()).to_string().len() > playbooks::MAX_INPUT {
        return Err(ApiError::invalid(
            "input",
            format!(
                "the run's input is larger than {} bytes",
                playbooks::MAX_INPUT
            ),
        ));
    }
    let (state, principal) = (state.clone(), principal.clone());
    let playbook = playbook.to_owned();
    tokio::spawn(
        async move { run_to_end(&state, &principal, &access, &playbook, input, dry_run).await },
    )
    .await
    .map_err(|e| ApiError::Internal(format!("the playbook run did not complete: {e}")))?
}

async fn run_to_end(
    state: &AppState,
    principal: &Principal,
    access: &Access,
    playbook: &str,
    input: Map<String, Value>,
    dry_run: bool,
) -> ApiResult<RunView> {
    let stored = state.store.playbook(access.workspace.id, playbook).await?;
    let steps = stored_steps(&stored)?;
    let input_value = Value::Object(input.clone());
    let actor = principal.actor();
    let action = if dry_run {
        "playbook.dry_run"
    } else {
        "playbook.run"
    };
    let mut tx = state.store.begin_write().await?;
    let run_id = store::insert_playbook_run(
        &mut tx,
        access.workspace.id,
        &stored,
        dry_run,
        &input_value,
        principal.user.id,
    )
    .await?;
    tx.commit().await?;
    let cx = RunContext {
        state,
        access,
        actor: &actor,
    };
    let (status, results) =
        playbooks::execute(&cx, run_id, &stored.name, &steps, &input, dry_run).await;
    let results_value = serde_json::to_value(&results)
        .map_err(|e| ApiError::Internal(format!("cannot encode step results: {e}")))?;
    let mut tx = state.store.begin_write().await?;
    store::finish_playbook_run(&mut tx, run_id, &status, &results_value).await?;
    audit::append(
        &mut tx,
        &actor,
        NewEvent::new(
            Some(access.workspace.id),
            action,
            &stored.name,
            json!({
                "run_id": run_id,
                "status": status,
                "steps": results.iter().map(|r| json!({"name": r.name, "status": r.status})).collect::<Vec<_>>(),
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(run_view(
        state
            .store
            .playbook_run(access.workspace.id, run_id)
            .await?,
    ))
}

/// Runs a playbook and answers with the run record: each step's status,
/// output and error. A failed step stops the run unless it says
/// `continue_on_error`. Each step also needs its own permission
/// (`item.write` to create tasks or move items, `change.approve` to approve).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/playbooks/{playbook}/run", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("playbook" = String, Path, description = "id or name")), request_body = RunRequest,
    responses((status = 200, body = RunView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn run_playbook(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, playbook)): ApiPath<(String, String)>,
    body: Result<ApiJson<RunRequest>, ApiError>,
) -> ApiResult<Json<RunView>> {
    let access = principal
        .workspace(&state, &slug, Permission::PlaybookRun)
        .await?;
    let ApiJson(body) = body?;
    Ok(Json(
        start_run(&state, &principal, access, &playbook, body.input, false).await?,
    ))
}

/// Evaluates every step without side effects: fills templates, checks that
/// integrations exist and can deliver, that items can make their moves, and
/// that the caller holds each step's permissions; reports what each step
/// would do. Recorded as a dry run.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/playbooks/{playbook}/dry-run", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("playbook" = String, Path, description = "id or name")), request_body = RunRequest,
    responses((status = 200, body = RunView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dry_run_playbook(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, playbook)): ApiPath<(String, String)>,
    body: Result<ApiJson<RunRequest>, ApiError>,
) -> ApiResult<Json<RunView>> {
    let access = principal
        .workspace(&state, &slug, Permission::PlaybookDryRun)
        .await?;
    let ApiJson(body) = body?;
    Ok(Json(
        start_run(&state, &principal, access, &playbook, body.input, true).await?,
    ))
}

#[derive(Serialize, ToSchema)]
struct RunList {
    runs: Vec<RunView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    /// Only runs of this playbook (id or name).
    playbook: Option<String>,
    /// At most this many, newest first (1–1000, default 50).
    limit: Option<i64>,
}

/// The workspace's playbook runs, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/playbook-runs", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), RunQuery),
    responses((status = 200, body = RunList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> ApiResult<Json<RunList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let limit = validate::limit(query.limit, 50, 1000)?;
    let playbook_id = match &query.playbook {
        Some(p) => Some(state.store.playbook(access.workspace.id, p).await?.id),
        None => None,
    };
    let runs = state
        .store
        .list_playbook_runs(access.workspace.id, playbook_id, limit)
        .await?
        .into_iter()
        .map(run_view)
        .collect();
    Ok(Json(RunList { runs }))
}

/// One run record.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/playbook-runs/{id}", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = RunView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<RunView>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    Ok(Json(run_view(
        state.store.playbook_run(access.workspace.id, id).await?,
    )))
}
