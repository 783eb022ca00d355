//! Periodic tasks as platform admins see them: the scheduler's tasks with
//! their recent runs, a task's run history, and running a task now
//! (audited as `task.run`).

use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use super::{detached, validate, DomainError, DomainResult};
use crate::audit::NewEvent;
use crate::domain::authz::Caller;
use crate::domain::Context;
use crate::store::tasks::{TaskRun, TaskView};
use crate::store::StoreResult;

/// What runs the periodic tasks: the scheduler, which sits above the
/// domain and is handed to the functions that need it.
pub trait TaskRunner: Send + Sync + 'static {
    /// Whether this server's configuration overrides `task`'s schedule.
    fn schedule_overridden(&self, task: &str) -> bool;

    /// Runs `task` now and returns the finished run; None when there is no
    /// such task.
    fn run_now(
        self: Arc<Self>,
        task: String,
    ) -> impl Future<Output = StoreResult<Option<TaskRun>>> + Send;
}

/// Every scheduled task with its last `runs` runs (platform admins), each
/// saying whether its schedule is the plugin's or this server's config's.
pub async fn list(
    state: &Context,
    runner: &impl TaskRunner,
    caller: &Caller,
    runs: i64,
) -> DomainResult<Vec<TaskView>> {
    caller.require_platform_admin("see the scheduler's tasks")?;
    let mut tasks = state.store.list_tasks(runs).await?;
    for task in &mut tasks {
        if task.schedule_from == "plugin" && runner.schedule_overridden(&task.name) {
            task.schedule_from = "config".into();
        }
    }
    Ok(tasks)
}

/// A task's runs, newest first (platform admins).
pub async fn runs(
    state: &Context,
    caller: &Caller,
    name: &str,
    limit: Option<i64>,
) -> DomainResult<Vec<TaskRun>> {
    caller.require_platform_admin("see the scheduler's task runs")?;
    let limit = validate::limit(limit, 50, 1000)?;
    if !state.store.task_exists(name).await? {
        return Err(DomainError::NotFound(format!(
            "no scheduled task named `{name}`"
        )));
    }
    Ok(state.store.task_runs(name, limit).await?)
}

/// Runs a task now, outside its schedule, and returns the finished run
/// (its next scheduled tick is unchanged). Run and recorded in a task of
/// its own, so both complete even if the caller stops waiting.
pub async fn run_now<R: TaskRunner>(
    state: &Context,
    runner: Arc<R>,
    caller: &Caller,
    name: &str,
) -> DomainResult<TaskRun> {
    caller.require_platform_admin("run scheduled tasks")?;
    let (state, actor, name) = (state.clone(), caller.actor(), name.to_owned());
    detached("the task run", async move {
        let run = runner
            .run_now(name.clone())
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("no scheduled task named `{name}`")))?;
        let mut tx = state.store.begin_write().await?;
        crate::store::audit::append(
            &mut tx,
            &actor,
            NewEvent::new(
                None,
                "task.run",
                &name,
                json!({"run_id": run.id, "outcome": run.outcome}),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(run)
    })
    .await
}
