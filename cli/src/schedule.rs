//! `vigilo schedule ...`: the scheduler's periodic tasks and their runs.

use anyhow::Result;
use clap::Subcommand;

use crate::client::{exit, seg};
use crate::context::Ctx;
use crate::output::{self, field, list, text, when, Table};

/// `vigilo schedule ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum ScheduleCmd {
    /// List the periodic tasks with their schedule, next run and last outcome
    List,
    /// Run a task now, outside its schedule, and show the outcome
    Run {
        /// The task's name
        name: String,
    },
    /// Show a task's runs, newest first
    Runs {
        /// The task's name
        name: String,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// A task's schedule, marked `(set in config)` when the server's configuration
/// replaces the one its plugin declares.
fn schedule_text(task: &serde_json::Value) -> String {
    let schedule = text(task, "schedule");
    if field(task, "schedule_from").as_str() == Some("config") {
        format!("{schedule} (set in config)")
    } else {
        schedule
    }
}

/// Run one `vigilo schedule` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: ScheduleCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        ScheduleCmd::List => {
            let response = client.get("/api/v1/scheduler/tasks")?;
            let tasks = list(&response, "tasks")?;
            let mut table = Table::new(&[
                "name", "source", "schedule", "next run", "last run", "outcome",
            ]);
            for t in tasks {
                let last = field(t, "last_runs").get(0).cloned().unwrap_or_default();
                table.row(vec![
                    text(t, "name"),
                    text(t, "source"),
                    schedule_text(t),
                    when(t, "next_run_at"),
                    when(&last, "scheduled_for"),
                    text(&last, "outcome"),
                ]);
            }
            output::list_or_table(ctx.json, tasks, &table)?;
        }
        ScheduleCmd::Run { name } => {
            let spinner = ctx.spinner(format!("Running task {name}"));
            let run = client.post_and_wait(
                &format!("/api/v1/scheduler/tasks/{}/run", seg(&name)),
                &serde_json::json!({}),
            )?;
            drop(spinner);
            if ctx.json {
                output::json(&run)?;
            } else {
                let detail = match field(&run, "error").as_str() {
                    Some(error) => error.to_owned(),
                    None => text(&run, "output"),
                };
                output::line(format!(
                    "{name}: run {} {} — {detail}",
                    text(&run, "id"),
                    text(&run, "outcome")
                ))?;
            }
            if text(&run, "outcome") != "ok" {
                return Ok(exit::RUN_FAILED);
            }
        }
        ScheduleCmd::Runs { name, limit } => {
            let response = client.get(&format!(
                "/api/v1/scheduler/tasks/{}/runs?limit={limit}",
                seg(&name)
            ))?;
            let runs = list(&response, "runs")?;
            let mut table = Table::new(&[
                "id",
                "tick",
                "runner",
                "outcome",
                "finished",
                "output / error",
            ]);
            for r in runs {
                let detail = match field(r, "error").as_str() {
                    Some(error) => error.to_owned(),
                    None => text(r, "output"),
                };
                table.row(vec![
                    text(r, "id"),
                    when(r, "scheduled_for"),
                    text(r, "runner"),
                    text(r, "outcome"),
                    when(r, "finished_at"),
                    detail,
                ]);
            }
            output::list_or_table(ctx.json, runs, &table)?;
        }
    }
    Ok(exit::OK)
}
