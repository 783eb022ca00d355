//! The scheduler's tasks and their runs (platform admins).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery, Principal};
use crate::domain::tasks;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::tasks::{TaskRun, TaskView};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks))
        .routes(routes!(list_runs))
        .routes(routes!(run_task_now))
}

#[derive(Serialize, ToSchema)]
struct TaskList {
    tasks: Vec<TaskView>,
}

/// Every scheduled task (the core's and the plugins'), with its schedule,
/// next due time and last five runs.
#[utoipa::path(get, path = "/api/v1/scheduler/tasks", tag = "scheduler", security(("bearer" = [])),
    responses((status = 200, body = TaskList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_tasks(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<TaskList>> {
    Ok(Json(TaskList {
        tasks: tasks::list(&state, &*state.scheduler, &principal.caller, 5).await?,
    }))
}

#[derive(Serialize, ToSchema)]
struct TaskRunList {
    runs: Vec<TaskRun>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    /// At most this many runs, newest first (1–1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A task's runs, newest first.
#[utoipa::path(get, path = "/api/v1/scheduler/tasks/{name}/runs", tag = "scheduler", security(("bearer" = [])),
    params(("name" = String, Path), RunQuery),
    responses((status = 200, body = TaskRunList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> ApiResult<Json<TaskRunList>> {
    Ok(Json(TaskRunList {
        runs: tasks::runs(&state, &principal.caller, &name, query.limit).await?,
    }))
}

/// Runs a task now, outside its schedule, and answers with the finished
/// run (its next scheduled tick is unchanged). Audited as `task.run`.
#[utoipa::path(post, path = "/api/v1/scheduler/tasks/{name}/run", tag = "scheduler", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = TaskRun), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn run_task_now(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<TaskRun>> {
    Ok(Json(
        tasks::run_now(&state, state.scheduler.clone(), &principal.caller, &name).await?,
    ))
}
