//! `/admin/tasks`: the scheduler's periodic tasks with their schedule, last
//! and next run and outcome; running one now; a task's run history.

use crate::web::extract::SignedForm;
use crate::web::urls::admin;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use crate::domain::tasks;
use crate::state::AppState;
use crate::store::tasks::TaskRun;
use crate::web::items::{when, When};
use crate::web::session::SignedIn;
use crate::web::{render, see_other, Frame, PageError};

/// A run of a task, as listed.
pub struct RunRow {
    id: i64,
    scheduled_for: When,
    started: When,
    took: String,
    outcome: String,
    runner: String,
    output: String,
    error: String,
}

fn run_row(r: TaskRun) -> RunRow {
    let took = match (
        crate::store::parse_time(&r.started_at),
        r.finished_at.as_deref().and_then(crate::store::parse_time),
    ) {
        (Some(a), Some(b)) => {
            let ms = (b - a).whole_milliseconds();
            if ms < 1000 {
                format!("{ms} ms")
            } else {
                format!("{:.1} s", ms as f64 / 1000.0)
            }
        }
        _ => String::new(),
    };
    RunRow {
        id: r.id,
        scheduled_for: when(&r.scheduled_for),
        started: when(&r.started_at),
        took,
        outcome: r.outcome,
        runner: r.runner,
        output: r.output.map(|o| o.to_string()).unwrap_or_default(),
        error: r.error.unwrap_or_default(),
    }
}

/// A task in the list.
pub struct TaskRow {
    name: String,
    source: String,
    schedule: String,
    next: When,
    last: Option<RunRow>,
}

#[derive(Template)]
#[template(path = "admin/tasks.html")]
struct TasksPage {
    frame: Frame,
    rows: Vec<TaskRow>,
}

/// A task's schedule, marked when the server's configuration replaces the
/// one its plugin declares.
fn schedule_text(task: &crate::store::tasks::TaskView) -> String {
    if task.schedule_from == "config" {
        format!("{} (set in config)", task.schedule)
    } else {
        task.schedule.clone()
    }
}

/// `GET /admin/tasks`.
pub async fn tasks_list(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
) -> Result<Response, PageError> {
    let rows = tasks::list(&state, &*state.scheduler, &current.caller, 1)
        .await?
        .into_iter()
        .map(|t| TaskRow {
            next: when(&t.next_run_at),
            schedule: schedule_text(&t),
            last: t.last_runs.into_iter().next().map(run_row),
            name: t.name,
            source: t.source,
        })
        .collect();
    let frame = Frame::admin(&state, &current, "tasks", "Periodic tasks").await?;
    Ok(render(&TasksPage { frame, rows }))
}

#[derive(Template)]
#[template(path = "admin/task.html")]
struct TaskPage {
    frame: Frame,
    name: String,
    source: String,
    schedule: String,
    next: When,
    runs: Vec<RunRow>,
    just_ran: Option<i64>,
}

impl TaskPage {
    fn fresh(&self, id: &i64) -> bool {
        self.just_ran == Some(*id)
    }
}

/// `?ran=<run id>` after "Run now".
#[derive(Debug, Default, Deserialize)]
pub struct Ran {
    ran: Option<i64>,
}

/// `GET /admin/tasks/{name}`: a task's run history.
pub async fn task(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(name): Path<String>,
    Query(ran): Query<Ran>,
) -> Result<Response, PageError> {
    let listed = tasks::list(&state, &*state.scheduler, &current.caller, 0).await?;
    let Some(view) = listed.into_iter().find(|t| t.name == name) else {
        return Err(PageError::NotFound(format!(
            "There is no scheduled task named `{name}`."
        )));
    };
    let runs = tasks::runs(&state, &current.caller, &name, Some(100))
        .await?
        .into_iter()
        .map(run_row)
        .collect();
    let notice = ran
        .ran
        .map(|id| format!("The task ran now (run #{id}); its outcome is below."));
    let frame = Frame::admin(&state, &current, "tasks", &name)
        .await?
        .with_notice(notice);
    Ok(render(&TaskPage {
        frame,
        next: when(&view.next_run_at),
        schedule: schedule_text(&view),
        name: view.name,
        source: view.source,
        runs,
        just_ran: ran.ran,
    }))
}

/// `POST /admin/tasks/{name}/run`: runs it now and shows its history.
pub async fn run_task(
    State(state): State<AppState>,
    Path(name): Path<String>,
    SignedForm { current, .. }: SignedForm,
) -> Result<Response, PageError> {
    let run = tasks::run_now(&state, state.scheduler.clone(), &current.caller, &name).await?;
    Ok(see_other(
        &admin::task(&name).with("ran", &run.id.to_string()),
    ))
}
