//! The scheduler: the core's own periodic tasks and every `celery_task`
//! plugin's tasks, each on its schedule (an interval or a cron expression).
//!
//! Every server process runs the same loop. A task's next due time lives in
//! `scheduled_tasks`; when it comes, each process tries to insert the run's
//! row into `task_runs`, whose `UNIQUE (task, scheduled_for)` lets exactly
//! one of them win the tick, on SQLite or on PostgreSQL with several server
//! processes. The winner moves the due time on, runs the task, and records
//! the outcome (`ok`, `failed`, `panicked`, `timed_out`) with its output or
//! error. A task that fails is simply tried again at its next tick; nothing
//! else is affected. A tick that comes while the task's previous run is
//! still going is recorded as `skipped` (runs of one task never overlap),
//! and a run left `running` by a server process that died is closed as
//! `abandoned`: at once on SQLite (whose one server is this one), once it is
//! older than any run may take on PostgreSQL (another server may still be
//! running it).
//!
//! When the server stops, no run starts after the signal: a run in
//! progress is stopped and recorded as `interrupted` with the reason, a
//! plugin task's host calls are refused from then on (so it starts no
//! delivery), and the task is due again at once, so it runs once more as
//! soon as a server is back (another server takes it right away). A tick
//! that fell while no server was running runs once, late, when one is
//! back; several missed ticks run once, not once each.
//!
//! A task whose schedule changed (in `task_settings`, or in a new version of
//! its plugin) is due at the next time its new schedule gives, at once; an
//! unchanged schedule keeps the due time the server processes share.

pub mod cron;
mod runs;
mod tasks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Config;
use crate::integrations::Integrations;
use crate::plugins::Plugins;
use crate::store::tasks::TaskRun;
use crate::store::{
    format_time, parse_time, Clash, IdempotencyClaim, Store, StoreError, StoreResult,
};

pub use tasks::{TaskDef, When};

/// The scheduler's view of the world.
pub struct Scheduler {
    store: Store,
    plugins: Arc<Plugins>,
    signer: Arc<crate::audit::checkpoint::Signer>,
    integrations: Integrations,
    checkpoint_every: u64,
    task_timeout: Duration,
    retention_days: u32,
    invite_ttl_days: u32,
    settings: BTreeMap<String, Value>,
    runner: String,
    /// Tasks this process has registered (with their schedule text).
    registered: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Schedules already reported as unusable.
    warned: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// Tasks whose run is still going in this process.
    running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Runs this process started and has not recorded the end of, by id.
    runs: std::sync::Mutex<std::collections::HashMap<i64, StartedRun>>,
    /// Turns true when the server begins to stop: no run starts, and plugin
    /// tasks' host calls are refused.
    halted: tokio::sync::watch::Sender<bool>,
}

/// A run in progress in this process.
#[derive(Debug)]
struct StartedRun {
    task: String,
    on_demand: bool,
    handle: tokio::task::AbortHandle,
}

/// What the runner of a run on demand ends with.
const ON_DEMAND: &str = " (on demand)";

/// Why a run was interrupted.
const INTERRUPTED: &str =
    "the server was stopped while the task ran; it runs again as soon as a server is back";

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler for this process, configured from `config`
    /// (`audit_checkpoint_interval_secs`, `task_timeout_secs`,
    /// `task_settings`).
    pub fn new(
        store: Store,
        plugins: Arc<Plugins>,
        signer: Arc<crate::audit::checkpoint::Signer>,
        integrations: Integrations,
        config: &Config,
    ) -> Self {
        Scheduler {
            store,
            plugins,
            signer,
            integrations,
            checkpoint_every: config.audit_checkpoint_interval_secs,
            task_timeout: Duration::from_secs(config.task_timeout_secs.max(1)),
            retention_days: config.record_retention_days,
            invite_ttl_days: config.invite_ttl_days,
            settings: config.task_settings.clone(),
            runner: crate::store::process_name(),
            registered: Default::default(),
            warned: Default::default(),
            running: Default::default(),
            runs: Default::default(),
            halted: tokio::sync::watch::channel(false).0,
        }
    }

    /// Whether this process is still running `task` (a plugin task that
    /// timed out keeps its thread until the plugin returns).
    fn in_flight(&self, task: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(task)
    }

    /// Runs until `shutdown` turns true, looking for due tasks every
    /// `tick`; then stops the runs in progress (see the module docs).
    pub async fn run(
        self: Arc<Self>,
        tick: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.store.backend() == crate::store::Backend::Sqlite {
            // This is the only server on the file: a run still marked
            // running was left by a process that stopped.
            let now_t = OffsetDateTime::now_utc();
            if let Err(e) = self.close_runs_older_than(now_t, now_t).await {
                tracing::warn!(error = %e, "scheduler: cannot close runs left running");
            }
        }
        let stopped = async {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopped);
        loop {
            if let Err(e) = self.run_due().await {
                tracing::warn!(error = %e, "scheduler: cannot check for due tasks");
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                () = &mut stopped => break,
            }
        }
        self.interrupt().await;
    }

    /// Stops every run in progress in this process and records it as
    /// `interrupted`; a scheduled task is due again at once.
    async fn interrupt(&self) {
        self.halted.send_replace(true);
        let runs: Vec<(i64, StartedRun)> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let now_t = format_time(OffsetDateTime::now_utc());
        for (run_id, run) in runs {
            run.handle.abort();
            tracing::warn!(task = %run.task, run_id, "scheduler: a run was interrupted by the shutdown");
            self.finish(
                &run.task,
                run_id,
                "interrupted",
                None,
                Some(INTERRUPTED.into()),
            )
            .await;
            if !run.on_demand {
                if let Err(e) = self.store.reschedule_task(&run.task, &now_t).await {
                    tracing::warn!(task = %run.task, error = %e, "scheduler: cannot make an interrupted task due again");
                }
            }
        }
    }

    /// Starts run `run_id` of `task` in a task of its own (with the
    /// caller's idempotency claim, for a run on demand), kept track of
    /// until it ends.
    fn start(
        self: &Arc<Self>,
        task: TaskDef,
        run_id: i64,
        scheduled_for: String,
        on_demand: bool,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let name = task.name.clone();
        let claim = IdempotencyClaim::current();
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let handle = tokio::spawn(IdempotencyClaim::carry(claim, async move {
            // A run that ended while the server was stopping stays listed:
            // the shutdown, which lists it, records it as interrupted.
            if this.clone().execute(task, run_id, scheduled_for).await {
                this.runs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&run_id);
            }
        }));
        runs.insert(
            run_id,
            StartedRun {
                task: name,
                on_demand,
                handle: handle.abort_handle(),
            },
        );
        handle
    }

    /// Registers new tasks, then claims and starts every due one.
    pub async fn run_due(self: &Arc<Self>) -> StoreResult<()> {
        let now_t = OffsetDateTime::now_utc();
        self.close_abandoned_runs(now_t).await?;
        for task in self.tasks() {
            if *self.halted.borrow() {
                return Ok(());
            }
            let due = self.due_time(&task, now_t).await?;
            let Some(due) = due else { continue };
            if due > now_t {
                continue;
            }
            let scheduled_for = format_time(due);
            // The claim: exactly one process inserts this tick's run row.
            // Another process that won this tick moves the due time on;
            // doing so here as well is harmless (the update is conditional)
            // and keeps the task going if the winner died between its
            // claim and its update.
            let claim = self
                .store
                .claim_task_run(&task.name, &scheduled_for, &self.runner)
                .await?;
            // Missed ticks are not run late: the next one is after now.
            let mut next = task.when.next(due);
            if next <= now_t {
                next = task.when.next(now_t);
            }
            self.store
                .advance_task(&task.name, &scheduled_for, &format_time(next))
                .await?;
            let Some(run_id) = claim else { continue };
            // Runs of one task never overlap: a run still going, here or on
            // another server, makes this tick a skipped one.
            if let Some(reason) = self.busy(&task.name, run_id).await {
                self.finish(&task.name, run_id, "skipped", None, Some(reason))
                    .await;
                continue;
            }
            self.start(task, run_id, scheduled_for, false);
        }
        Ok(())
    }

    /// Why `task` cannot start a new run now (another run, `except` aside,
    /// is still going), if it cannot.
    async fn busy(&self, task: &str, except: i64) -> Option<String> {
        if self.in_flight(task) {
            return Some("the previous run is still running on this server".into());
        }
        match self.store.other_running_runs(task, except).await {
            Ok(0) => None,
            Ok(_) => Some("the previous run was still running".into()),
            Err(e) => Some(format!("cannot check for a running run: {e}")),
        }
    }

    /// Marks runs left `running` by a server process that stopped (crashed,
    /// killed) as `abandoned`: at once when that process is known to be gone
    /// (PostgreSQL tells whether it still has a connection), and in any case
    /// once they are older than any run may take.
    async fn close_abandoned_runs(&self, now_t: OffsetDateTime) -> StoreResult<()> {
        if self.store.backend() == crate::store::Backend::Postgres {
            let at = format_time(now_t);
            for runner in self.store.running_task_runners().await? {
                let process = runner.trim_end_matches(ON_DEMAND);
                if process == self.runner || self.store.process_alive(process).await? {
                    continue;
                }
                let closed = self.store.close_task_runs_of(&runner, &at).await?;
                tracing::warn!(
                    runs = closed,
                    runner = %runner,
                    "scheduler: closed runs whose server process stopped"
                );
            }
        }
        let limit = time::Duration::seconds(self.task_timeout.as_secs() as i64 + 300);
        // Playbook runs are driven by the server process that started them;
        // one still `running` an hour on belongs to a process that stopped.
        self.close_runs_older_than(now_t - limit, now_t - time::Duration::hours(1))
            .await
    }

    /// Marks task runs started before `tasks` and playbook runs started
    /// before `playbooks`, still `running`, as `abandoned`.
    async fn close_runs_older_than(
        &self,
        tasks: OffsetDateTime,
        playbooks: OffsetDateTime,
    ) -> StoreResult<()> {
        let at = format_time(OffsetDateTime::now_utc());
        let closed = self
            .store
            .close_abandoned_task_runs(&format_time(tasks), &at)
            .await?;
        if closed > 0 {
            tracing::warn!(
                runs = closed,
                "scheduler: closed runs whose server process stopped"
            );
        }
        let closed = self
            .store
            .close_abandoned_playbook_runs(&format_time(playbooks), &at)
            .await?;
        if closed > 0 {
            tracing::warn!(
                runs = closed,
                "closed playbook runs whose server process stopped"
            );
        }
        Ok(())
    }

    /// Records a run's end.
    async fn finish(
        &self,
        task: &str,
        run_id: i64,
        outcome: &str,
        output: Option<String>,
        error: Option<String>,
    ) {
        if let Err(e) = self
            .store
            .finish_task_run(run_id, outcome, output, error)
            .await
        {
            tracing::error!(task = %task, error = %e, "cannot record a task run");
        }
    }

    /// Runs task `name` now, outside its schedule (the next scheduled tick
    /// stays as it is), and returns the finished run's record; `None` if no
    /// task has that name.
    pub async fn run_now(self: &Arc<Self>, name: &str) -> StoreResult<Option<TaskRun>> {
        let Some(task) = self.tasks().into_iter().find(|t| t.name == name) else {
            return Ok(None);
        };
        // Registers it if this process has not yet.
        self.due_time(&task, OffsetDateTime::now_utc()).await?;
        let scheduled_for = format_time(OffsetDateTime::now_utc());
        let run_id = self
            .store
            .claim_task_run(
                &task.name,
                &scheduled_for,
                &format!("{}{ON_DEMAND}", self.runner),
            )
            .await?
            .ok_or_else(|| StoreError::Conflict(Clash::TaskJustStarted(task.name.clone())))?;
        if let Some(reason) = self.busy(&task.name, run_id).await {
            self.finish(&task.name, run_id, "skipped", None, Some(reason.clone()))
                .await;
            return Err(StoreError::Conflict(Clash::TaskRunning {
                task: task.name.clone(),
                reason,
            }));
        }
        // The run's row is committed before the task starts: a plugin task
        // writes through host calls made from its own thread.
        IdempotencyClaim::flush_current().await?;
        // Spawned, so the run completes and is recorded even if the caller
        // goes away.
        let _ = self.start(task, run_id, scheduled_for, true).await;
        Ok(self
            .store
            .task_runs(name, 20)
            .await?
            .into_iter()
            .find(|run| run.id == run_id))
    }

    /// The task's stored due time, registering the task first if it is new.
    async fn due_time(
        &self,
        task: &TaskDef,
        now_t: OffsetDateTime,
    ) -> StoreResult<Option<OffsetDateTime>> {
        let schedule = task.when.describe();
        let known = self
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&task.name)
            == Some(&schedule);
        let due = if known {
            self.store.task_due(&task.name).await?
        } else {
            let due = self
                .store
                .register_task(
                    &task.name,
                    &task.source,
                    &schedule,
                    &format_time(task.when.next(now_t)),
                )
                .await?;
            self.registered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(task.name.clone(), schedule);
            Some(due)
        };
        Ok(due.as_deref().and_then(parse_time))
    }
}

impl crate::domain::tasks::TaskRunner for Scheduler {
    fn schedule_overridden(&self, task: &str) -> bool {
        Scheduler::schedule_overridden(self, task)
    }

    async fn run_now(self: Arc<Self>, task: String) -> StoreResult<Option<TaskRun>> {
        Scheduler::run_now(&self, &task).await
    }
}
