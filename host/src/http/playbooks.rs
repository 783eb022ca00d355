//! Playbooks: CRUD, runs, dry runs and run records.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Principal};
use crate::domain::authz::Permission;
use crate::domain::playbooks::engine::{Step, StepResult};
use crate::domain::playbooks::{self, PlaybookDefinition};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::integrations::{Playbook, PlaybookRun, RunStatus};

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

fn view(playbook: Playbook) -> ApiResult<PlaybookView> {
    Ok(PlaybookView {
        steps: playbooks::stored_steps(&playbook)?,
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
    let list = playbooks::list(&state, &access)
        .await?
        .into_iter()
        .map(view)
        .collect::<ApiResult<_>>()?;
    Ok(Json(PlaybookList { playbooks: list }))
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
    let playbook = playbooks::create(&state, &access, &body).await?;
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
        playbooks::get(&state, &access, &playbook).await?,
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
    let updated = playbooks::replace(&state, &access, &playbook, &body).await?;
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
    playbooks::delete(&state, &access, &playbook).await?;
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

/// A playbook run record.
#[derive(Serialize, ToSchema)]
struct PlaybookRunView {
    id: i64,
    playbook_id: Option<i64>,
    playbook: String,
    dry_run: bool,
    /// `succeeded` or `failed`; for a dry run `ok` or `would_fail`;
    /// `running` while it runs; `abandoned` if its server stopped first.
    #[schema(value_type = String)]
    status: RunStatus,
    #[schema(value_type = Object)]
    input: Value,
    steps: Vec<StepResult>,
    started_by: Option<String>,
    started_at: String,
    finished_at: Option<String>,
}

fn run_view(run: PlaybookRun) -> PlaybookRunView {
    PlaybookRunView {
        steps: playbooks::run_steps(&run),
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

/// Runs a playbook and answers with the run record: each step's status,
/// output and error. A failed step stops the run unless it says
/// `continue_on_error`. Each step also needs its own permission
/// (`item.write` to create tasks or move items, `change.approve` to approve).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/playbooks/{playbook}/run", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("playbook" = String, Path, description = "id or name")), request_body = RunRequest,
    responses((status = 200, body = PlaybookRunView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn run_playbook(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, playbook)): ApiPath<(String, String)>,
    body: Result<ApiJson<RunRequest>, ApiError>,
) -> ApiResult<Json<PlaybookRunView>> {
    let access = principal
        .workspace(&state, &slug, Permission::PlaybookRun)
        .await?;
    let ApiJson(body) = body?;
    let run = playbooks::run(&state, &access, &playbook, body.input, false).await?;
    Ok(Json(run_view(run)))
}

/// Evaluates every step without side effects: fills templates, checks that
/// integrations exist and can deliver, that items can make their moves, and
/// that the caller holds each step's permissions; reports what each step
/// would do. Recorded as a dry run.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/playbooks/{playbook}/dry-run", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("playbook" = String, Path, description = "id or name")), request_body = RunRequest,
    responses((status = 200, body = PlaybookRunView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn dry_run_playbook(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, playbook)): ApiPath<(String, String)>,
    body: Result<ApiJson<RunRequest>, ApiError>,
) -> ApiResult<Json<PlaybookRunView>> {
    let access = principal
        .workspace(&state, &slug, Permission::PlaybookDryRun)
        .await?;
    let ApiJson(body) = body?;
    let run = playbooks::run(&state, &access, &playbook, body.input, true).await?;
    Ok(Json(run_view(run)))
}

#[derive(Serialize, ToSchema)]
struct PlaybookRunList {
    runs: Vec<PlaybookRunView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    /// Only runs of this playbook (id or name).
    playbook: Option<String>,
    /// At most this many, newest first (1–1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The workspace's playbook runs, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/playbook-runs", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), RunQuery),
    responses((status = 200, body = PlaybookRunList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> ApiResult<Json<PlaybookRunList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let runs = playbooks::runs(&state, &access, query.playbook.as_deref(), query.limit)
        .await?
        .into_iter()
        .map(run_view)
        .collect();
    Ok(Json(PlaybookRunList { runs }))
}

/// One run record.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/playbook-runs/{id}", tag = "playbooks", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = PlaybookRunView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<PlaybookRunView>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    Ok(Json(run_view(
        playbooks::get_run(&state, &access, id).await?,
    )))
}
