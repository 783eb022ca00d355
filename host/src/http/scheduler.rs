//! The scheduler's tasks and their runs (platform admins).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery, Principal};
use super::validate;
use crate::audit::{self, NewEvent};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::scheduler::{RunView, TaskView};
use crate::state::AppState;

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
    principal.require_platform_admin("see the scheduler's tasks")?;
    Ok(Json(TaskList {
        tasks: state.store.list_tasks(5).await?,
    }))
}

#[derive(Serialize, ToSchema)]
struct RunList {
    runs: Vec<RunView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    /// At most this many runs, newest first (1–1000, default 50).
    limit: Option<i64>,
}

/// A task's runs, newest first.
#[utoipa::path(get, path = "/api/v1/scheduler/tasks/{name}/runs", tag = "scheduler", security(("bearer" = [])),
    params(("name" = String, Path), RunQuery),
    responses((status = 200, body = RunList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> ApiResult<Json<RunList>> {
    principal.require_platform_admin("see the scheduler's task runs")?;
    let limit = validate::limit(query.limit, 50, 1000)?;
    let known = state
        .store
        .list_tasks(0)
        .await?
        .iter()
        .any(|t| t.name == name);
    if !known {
        return Err(ApiError::NotFound(format!(
            "no scheduled task named `{name}`"
        )));
    }
    Ok(Json(RunList {
        runs: state.store.task_runs(&name, limit).await?,
    }))
}

/// Runs a task now, outside its schedule, and answers with the finished
/// run (its next scheduled tick is unchanged). Audited as `task.run`.
#[utoipa::path(post, path = "/api/v1/scheduler/tasks/{name}/run", tag = "scheduler", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = RunView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn run_task_now(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<RunView>> {
    principal.require_platform_admin("run scheduled tasks")?;
    let actor = principal.actor();
    // Run and recorded in a task of its own, so both complete even if the
    // client gives up waiting.
    tokio::spawn(async move {
        let run = state
            .scheduler
            .run_now(&name)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no scheduled task named `{name}`")))?;
        let mut tx = state.store.begin_write().await?;
        audit::append(
            &mut tx,
            &actor,
            NewEvent::new(
                None,
                "task.run",
                &name,
                serde_json::json!({"run_id": run.id, "outcome": run.outcome}),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Json(run))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the task run did not complete: {e}")))?
}
