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
//! `abandoned` once it is older than any run may take.

pub mod cron;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use time::OffsetDateTime;
use vigilo_sdk::{wire::RunTaskRequest, Host, PluginKind, Registration, Schedule};

use crate::config::Config;
use crate::integrations::Integrations;
use crate::plugins::{PluginCallError, Plugins};
use crate::store::{
    format_time, is_unique_violation, now, parse_time, Store, StoreError, StoreResult,
};

/// When a task runs.
#[derive(Debug, Clone)]
pub enum When {
    /// Every so many seconds.
    Every(u64),
    /// On a cron expression (UTC).
    Cron(String, cron::Cron),
}

impl When {
    fn describe(&self) -> String {
        match self {
            When::Every(seconds) => format!("every {seconds}s"),
            When::Cron(text, _) => format!("cron {text}"),
        }
    }

    /// The next due time after `after`.
    fn next(&self, after: OffsetDateTime) -> OffsetDateTime {
        match self {
            When::Every(seconds) => {
                after + time::Duration::seconds((*seconds).clamp(1, MAX_INTERVAL_SECS) as i64)
            }
            When::Cron(_, cron) => cron
                .next_after(after)
                .unwrap_or(after + time::Duration::days(365)),
        }
    }
}

/// The longest interval a task may have (ten years).
const MAX_INTERVAL_SECS: u64 = 10 * 366 * 86_400;

/// Host method for periodic tasks: certificates expiring within
/// `within_days` days in every workspace.
///
/// Input `{"within_days": 30}`; output `{"workspaces": [{"workspace": "ops",
/// "certificates": [{"id", "name", "subject", "not_after", "days_left",
/// "expired"}]}]}`, soonest first, workspaces with none left out.
pub const CERTIFICATES_EXPIRING: &str = "certificates.expiring";

/// Host method for periodic tasks: deliver an event through a workspace's
/// integrations.
///
/// Input `{"workspace": "ops", "event": {...}, "integration": "ops-slack"}`
/// (`integration` optional: default every enabled integration); output
/// `{"deliveries": [{"integration", "adapter", "ok", "detail", "error",
/// "delivery_id"}]}`. Each attempt is recorded in the delivery log.
pub const INTEGRATIONS_NOTIFY: &str = "integrations.notify";

/// What a task does.
#[derive(Debug, Clone)]
enum Job {
    /// Sign the head of every audit chain.
    AuditCheckpoint,
    /// Close invites that expired without being accepted.
    ExpireInvites,
    /// Delete task runs and delivery records past their retention.
    PruneRecords,
    /// A plugin's task, by registration name.
    Plugin(String),
}

/// A task the scheduler knows.
#[derive(Debug, Clone)]
pub struct TaskDef {
    /// Unique name (`audit.checkpoint`, `invites.expire`, or the plugin
    /// task's registered name).
    pub name: String,
    /// `core` or the plugin's name.
    pub source: String,
    /// Its schedule.
    pub when: When,
    job: Job,
}

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
}

/// Marks a task as running in this process until dropped.
struct InFlight {
    task: String,
    running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl InFlight {
    fn new(task: &str, running: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>) -> Self {
        running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task.to_owned());
        InFlight {
            task: task.to_owned(),
            running: running.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.task);
    }
}

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
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "server".into());
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
            runner: format!("{host}:{}", std::process::id()),
            registered: Default::default(),
            warned: Default::default(),
            running: Default::default(),
        }
    }

    /// The operator's settings for `task` (from `task_settings`), without
    /// the `schedule` key.
    fn task_config(&self, task: &str) -> Value {
        match self.settings.get(task) {
            Some(Value::Object(map)) => {
                let mut map = map.clone();
                map.remove("schedule");
                Value::Object(map)
            }
            _ => json!({}),
        }
    }

    /// The schedule the operator set for `task`, if any.
    fn schedule_override(&self, task: &str) -> Option<Result<Schedule, String>> {
        let schedule = self.settings.get(task)?.get("schedule")?;
        Some(serde_json::from_value(schedule.clone()).map_err(|e| {
            format!("task_settings.{task}.schedule is not {{every_seconds = N}} or {{cron = \"...\"}}: {e}")
        }))
    }

    /// The core tasks plus every loaded plugin's tasks, now.
    pub fn tasks(&self) -> Vec<TaskDef> {
        let mut tasks = vec![TaskDef {
            name: "invites.expire".into(),
            source: "core".into(),
            when: When::Every(3600),
            job: Job::ExpireInvites,
        }];
        if self.retention_days > 0 {
            tasks.push(TaskDef {
                name: "records.prune".into(),
                source: "core".into(),
                when: When::Every(86_400),
                job: Job::PruneRecords,
            });
        }
        if self.checkpoint_every > 0 {
            tasks.push(TaskDef {
                name: "audit.checkpoint".into(),
                source: "core".into(),
                when: When::Every(self.checkpoint_every),
                job: Job::AuditCheckpoint,
            });
        }
        for (entry, registration) in self.plugins.registrations(PluginKind::CeleryTask) {
            if let Registration::CeleryTask { name, schedule, .. } = registration {
                let schedule = match self.schedule_override(&name) {
                    None => schedule,
                    Some(Ok(schedule)) => schedule,
                    Some(Err(e)) => {
                        self.warn_once(&name, e);
                        continue;
                    }
                };
                let when = match schedule {
                    Schedule::Every(every) if every.as_secs() <= MAX_INTERVAL_SECS => {
                        When::Every(every.as_secs().max(1))
                    }
                    Schedule::Every(every) => {
                        self.warn_once(
                            &name,
                            format!(
                                "an interval of {}s is longer than ten years",
                                every.as_secs()
                            ),
                        );
                        continue;
                    }
                    Schedule::Cron(text) => match cron::Cron::parse(&text) {
                        Ok(cron) if cron.next_after(OffsetDateTime::now_utc()).is_some() => {
                            When::Cron(text, cron)
                        }
                        Ok(_) => {
                            self.warn_once(
                                &name,
                                format!("the cron expression `{text}` never matches"),
                            );
                            continue;
                        }
                        Err(e) => {
                            self.warn_once(&name, e);
                            continue;
                        }
                    },
                };
                tasks.push(TaskDef {
                    source: entry.label(),
                    job: Job::Plugin(name.clone()),
                    name,
                    when,
                });
            }
        }
        tasks
    }

    /// Logs why `task` is not scheduled, once per process and reason.
    fn warn_once(&self, task: &str, reason: String) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((task.to_owned(), reason.clone()));
        if first {
            tracing::warn!(task = %task, "task not scheduled: {reason}");
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

    /// Runs until `shutdown` changes, looking for due tasks every `tick`.
    pub async fn run(
        self: Arc<Self>,
        tick: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.run_due().await {
                tracing::warn!(error = %e, "scheduler: cannot check for due tasks");
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Registers new tasks, then claims and starts every due one.
    pub async fn run_due(self: &Arc<Self>) -> StoreResult<()> {
        let now_t = OffsetDateTime::now_utc();
        self.close_abandoned_runs(now_t).await?;
        for task in self.tasks() {
            let due = self.due_time(&task, now_t).await?;
            let Some(due) = due else { continue };
            if due > now_t {
                continue;
            }
            let scheduled_for = format_time(due);
            // The claim: exactly one process inserts this tick's run row.
            let claimed = sqlx::query(
                "INSERT INTO task_runs (task, scheduled_for, runner, started_at, outcome)
                 VALUES ($1, $2, $3, $4, 'running') RETURNING id",
            )
            .bind(&task.name)
            .bind(&scheduled_for)
            .bind(&self.runner)
            .bind(now())
            .fetch_one(self.store.pool())
            .await;
            let claim = match claimed {
                Ok(row) => Some(row.try_get::<i64, _>(0)?),
                // Another process won this tick; it moves the due time on.
                // Doing so here as well is harmless (the update is
                // conditional) and keeps the task going if the winner died
                // between its claim and its update.
                Err(e) if is_unique_violation(&e) => None,
                Err(e) => return Err(e.into()),
            };
            // Missed ticks are not run late: the next one is after now.
            let mut next = task.when.next(due);
            if next <= now_t {
                next = task.when.next(now_t);
            }
            sqlx::query(
                "UPDATE scheduled_tasks SET next_run_at = $1, updated_at = $2 WHERE name = $3 AND next_run_at = $4",
            )
            .bind(format_time(next))
            .bind(now())
            .bind(&task.name)
            .bind(&scheduled_for)
            .execute(self.store.pool())
            .await?;
            let Some(run_id) = claim else { continue };
            // Runs of one task never overlap: a run still going, here or on
            // another server, makes this tick a skipped one.
            if let Some(reason) = self.busy(&task.name, run_id).await {
                self.finish(&task.name, run_id, "skipped", None, Some(reason))
                    .await;
                continue;
            }
            let this = self.clone();
            tokio::spawn(async move { this.execute(task, run_id, scheduled_for).await });
        }
        Ok(())
    }

    /// Why `task` cannot start a new run now (another run, `except` aside,
    /// is still going), if it cannot.
    async fn busy(&self, task: &str, except: i64) -> Option<String> {
        if self.in_flight(task) {
            return Some("the previous run is still running on this server".into());
        }
        let others: Result<i64, _> = sqlx::query_scalar(
            "SELECT COUNT(*) FROM task_runs WHERE task = $1 AND outcome = 'running' AND id <> $2",
        )
        .bind(task)
        .bind(except)
        .fetch_one(self.store.pool())
        .await;
        match others {
            Ok(0) => None,
            Ok(_) => Some("the previous run was still running".into()),
            Err(e) => Some(format!("cannot check for a running run: {e}")),
        }
    }

    /// Marks runs left `running` by a server process that stopped (crashed,
    /// killed) as `abandoned`, once they are older than any run may take.
    async fn close_abandoned_runs(&self, now_t: OffsetDateTime) -> StoreResult<()> {
        let limit = time::Duration::seconds(self.task_timeout.as_secs() as i64 + 300);
        // A read first: most looks find nothing, and take no write lock.
        let stale: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM task_runs WHERE outcome = 'running' AND started_at < $1",
        )
        .bind(format_time(now_t - limit))
        .fetch_one(self.store.pool())
        .await?;
        self.close_abandoned_playbook_runs(now_t).await?;
        if stale == 0 {
            return Ok(());
        }
        let closed = sqlx::query(
            "UPDATE task_runs SET outcome = 'abandoned', finished_at = $1,
                 error = 'the server process running it stopped before it finished'
             WHERE outcome = 'running' AND started_at < $2",
        )
        .bind(format_time(now_t))
        .bind(format_time(now_t - limit))
        .execute(self.store.pool())
        .await?;
        if closed.rows_affected() > 0 {
            tracing::warn!(
                runs = closed.rows_affected(),
                "scheduler: closed runs whose server process stopped"
            );
        }
        Ok(())
    }

    /// Playbook runs are driven by the server process that started them; one
    /// still `running` an hour on belongs to a process that stopped.
    async fn close_abandoned_playbook_runs(&self, now_t: OffsetDateTime) -> StoreResult<()> {
        let before = format_time(now_t - time::Duration::hours(1));
        let stale: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM playbook_runs WHERE status = 'running' AND started_at < $1",
        )
        .bind(&before)
        .fetch_one(self.store.pool())
        .await?;
        if stale > 0 {
            sqlx::query(
                "UPDATE playbook_runs SET status = 'abandoned', finished_at = $1
                 WHERE status = 'running' AND started_at < $2",
            )
            .bind(format_time(now_t))
            .bind(&before)
            .execute(self.store.pool())
            .await?;
            tracing::warn!(
                runs = stale,
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
        // Only a run still marked running: one closed as abandoned stays so.
        let recorded = sqlx::query(
            "UPDATE task_runs SET finished_at = $1, outcome = $2, output = $3, error = $4
             WHERE id = $5 AND outcome = 'running'",
        )
        .bind(now())
        .bind(outcome)
        .bind(output)
        .bind(error)
        .bind(run_id)
        .execute(self.store.pool())
        .await;
        if let Err(e) = recorded {
            tracing::error!(task = %task, error = %e, "cannot record a task run");
        }
    }

    /// Runs task `name` now, outside its schedule (the next scheduled tick
    /// stays as it is), and returns the finished run's record; `None` if no
    /// task has that name.
    pub async fn run_now(self: &Arc<Self>, name: &str) -> StoreResult<Option<RunView>> {
        let Some(task) = self.tasks().into_iter().find(|t| t.name == name) else {
            return Ok(None);
        };
        // Registers it if this process has not yet.
        self.due_time(&task, OffsetDateTime::now_utc()).await?;
        let scheduled_for = format_time(OffsetDateTime::now_utc());
        let run_id: i64 = sqlx::query(
            "INSERT INTO task_runs (task, scheduled_for, runner, started_at, outcome)
             VALUES ($1, $2, $3, $4, 'running') RETURNING id",
        )
        .bind(&task.name)
        .bind(&scheduled_for)
        .bind(format!("{} (on demand)", self.runner))
        .bind(now())
        .fetch_one(self.store.pool())
        .await?
        .try_get(0)?;
        if let Some(reason) = self.busy(&task.name, run_id).await {
            self.finish(&task.name, run_id, "skipped", None, Some(reason.clone()))
                .await;
            return Err(StoreError::Conflict(format!(
                "task `{}` is already running ({reason}); try again when it has finished",
                task.name
            )));
        }
        // Spawned, so the run completes and is recorded even if the caller
        // goes away.
        let this = self.clone();
        let _ = tokio::spawn(async move { this.execute(task, run_id, scheduled_for).await }).await;
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
        let row = if known {
            sqlx::query("SELECT next_run_at FROM scheduled_tasks WHERE name = $1")
                .bind(&task.name)
                .fetch_optional(self.store.pool())
                .await?
        } else {
            // Registers the task and keeps its schedule current; an existing
            // task keeps its due time (another server may share it).
            let row = sqlx::query(
                "INSERT INTO scheduled_tasks (name, source, schedule, next_run_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET source = excluded.source, schedule = excluded.schedule
                 RETURNING next_run_at",
            )
            .bind(&task.name)
            .bind(&task.source)
            .bind(&schedule)
            .bind(format_time(task.when.next(now_t)))
            .bind(now())
            .fetch_one(self.store.pool())
            .await?;
            self.registered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(task.name.clone(), schedule);
            Some(row)
        };
        let Some(row) = row else { return Ok(None) };
        let due: String = row.try_get(0)?;
        Ok(parse_time(&due))
    }

    async fn execute(self: Arc<Self>, task: TaskDef, run_id: i64, scheduled_for: String) {
        let result = match &task.job {
            // Plugin tasks have their own limit, and stay in flight until
            // the plugin returns even after it.
            Job::Plugin(name) => self.run_plugin_task(name, &scheduled_for).await,
            core => {
                let _in_flight = InFlight::new(&task.name, &self.running);
                match tokio::time::timeout(self.task_timeout, self.run_core(core)).await {
                    Ok(result) => result,
                    Err(_) => Err((
                        "timed_out",
                        format!("did not finish within {}s", self.task_timeout.as_secs()),
                    )),
                }
            }
        };
        let (outcome, output, error) = match result {
            Ok(output) => ("ok", Some(output.to_string()), None),
            Err((outcome, error)) => {
                tracing::warn!(task = %task.name, outcome, "scheduled task did not succeed: {error}");
                (outcome, None, Some(error))
            }
        };
        self.finish(&task.name, run_id, outcome, output, error)
            .await;
    }

    async fn run_core(&self, job: &Job) -> Result<Value, (&'static str, String)> {
        match job {
            Job::AuditCheckpoint => self
                .store
                .checkpoint_all(&self.signer)
                .await
                .map(|done| json!({"chains": done.len()}))
                .map_err(|e| ("failed", e.to_string())),
            Job::ExpireInvites => self
                .expire_invites()
                .await
                .map(|n| json!({"expired": n}))
                .map_err(|e| ("failed", e.to_string())),
            Job::PruneRecords => self
                .prune_records()
                .await
                .map(|(runs, deliveries, mail)| {
                    json!({"task_runs": runs, "deliveries": deliveries, "mail": mail})
                })
                .map_err(|e| ("failed", e.to_string())),
            Job::Plugin(name) => Err(("failed", format!("`{name}` is not a core task"))),
        }
    }

    async fn run_plugin_task(
        &self,
        name: &str,
        scheduled_for: &str,
    ) -> Result<Value, (&'static str, String)> {
        let (entry, _) = self
            .plugins
            .registration(PluginKind::CeleryTask, name)
            .ok_or((
                "failed",
                format!("no loaded plugin provides the task `{name}`"),
            ))?;
        let request = RunTaskRequest {
            name: name.to_owned(),
            config: self.task_config(name),
            now: scheduled_for.to_owned(),
        };
        let host = InstallationHost {
            store: self.store.clone(),
            integrations: self.integrations.clone(),
            task: name.to_owned(),
            runtime: tokio::runtime::Handle::current(),
        };
        let in_flight = InFlight::new(name, &self.running);
        self.plugins
            .call_within(&entry, self.task_timeout, move |handle| {
                // Released when the plugin returns, not when the server
                // stops waiting for it.
                let _in_flight = in_flight;
                handle.run_task(&request, &host)
            })
            .await
            .map_err(|e| {
                let outcome = match &e {
                    PluginCallError::Panicked { .. } => "panicked",
                    PluginCallError::TimedOut { .. } => "timed_out",
                    _ => "failed",
                };
                (outcome, e.to_string())
            })
    }

    /// Deletes finished task runs, delivery records and outbox mail older
    /// than the retention period (unsent mail only once its invite link has
    /// expired too); returns how many of each.
    async fn prune_records(&self) -> StoreResult<(u64, u64, u64)> {
        let before = format_time(
            OffsetDateTime::now_utc() - time::Duration::days(i64::from(self.retention_days)),
        );
        let runs =
            sqlx::query("DELETE FROM task_runs WHERE outcome <> 'running' AND started_at < $1")
                .bind(&before)
                .execute(self.store.pool())
                .await?
                .rows_affected();
        let deliveries = sqlx::query("DELETE FROM deliveries WHERE created_at < $1")
            .bind(&before)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        let links_dead = format_time(
            OffsetDateTime::now_utc() - time::Duration::days(i64::from(self.invite_ttl_days) + 1),
        );
        let mail = sqlx::query(
            "DELETE FROM outbox WHERE created_at < $1
             AND (sent_at IS NOT NULL OR attempts >= $2 OR created_at < $3)",
        )
        .bind(&before)
        .bind(crate::store::MAIL_ATTEMPTS)
        .bind(&links_dead)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok((runs, deliveries, mail))
    }

    /// Closes open invites past their expiry, each audited.
    async fn expire_invites(&self) -> StoreResult<usize> {
        let mut tx = self.store.begin_write().await?;
        let expired = crate::store::expire_invites(&mut tx, None).await?;
        tx.commit().await?;
        Ok(expired)
    }
}

/// The host API a periodic task gets: installation-wide reads, and
/// delivery through a workspace's integrations.
struct InstallationHost {
    store: Store,
    integrations: Integrations,
    task: String,
    runtime: tokio::runtime::Handle,
}

impl Host for InstallationHost {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        match method {
            vigilo_sdk::WORK_ITEMS_COUNT_BY_STATUS => {
                let slug = input.get("workspace").and_then(Value::as_str).unwrap_or("");
                // Called on the blocking pool, where waiting is allowed.
                let counts = self.runtime.block_on(async {
                    let workspace = self
                        .store
                        .workspace_by_slug(slug)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("no workspace `{slug}`"))?;
                    self.store
                        .count_work_items_by_status(workspace.id)
                        .await
                        .map_err(|e| e.to_string())
                })?;
                let get = |kind: &str| json!(counts.get(kind).cloned().unwrap_or_default());
                Ok(
                    json!({"changes": get("change"), "incidents": get("incident"), "tasks": get("task")}),
                )
            }
            CERTIFICATES_EXPIRING => {
                let days = input
                    .get("within_days")
                    .and_then(Value::as_i64)
                    .filter(|d| (0..=36_500).contains(d))
                    .ok_or("`within_days` must be a number of days between 0 and 36500")?;
                let workspaces = self
                    .runtime
                    .block_on(self.store.certificates_expiring_everywhere(days))
                    .map_err(|e| e.to_string())?;
                Ok(json!({ "workspaces": workspaces }))
            }
            INTEGRATIONS_NOTIFY => {
                let slug = input.get("workspace").and_then(Value::as_str).unwrap_or("");
                let mut event: vigilo_sdk::Event = input
                    .get("event")
                    .cloned()
                    .ok_or_else(|| "`event` is missing".to_owned())
                    .and_then(|e| {
                        serde_json::from_value(e)
                            .map_err(|e| format!("`event` is not an event: {e}"))
                    })?;
                // An event always belongs to the workspace it is sent in.
                event.workspace = slug.to_owned();
                let only = input.get("integration").and_then(Value::as_str);
                let source = format!("task:{}", self.task);
                let deliveries = self.runtime.block_on(async {
                    let workspace = self
                        .store
                        .workspace_by_slug(slug)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("no workspace `{slug}`"))?;
                    self.integrations
                        .notify(workspace.id, only, &event, &source)
                        .await
                })?;
                Ok(json!({ "deliveries": deliveries }))
            }
            other => Err(format!("the server has no host method `{other}`")),
        }
    }
}

/// A task as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    /// Unique name.
    pub name: String,
    /// `core` or the plugin's name.
    pub source: String,
    /// `every 3600s` or `cron 0 7 * * *`.
    pub schedule: String,
    /// When it is next due (RFC 3339).
    pub next_run_at: String,
    /// Its most recent runs, newest first.
    pub last_runs: Vec<RunView>,
}

/// One run of a task.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunView {
    /// Identifier.
    pub id: i64,
    /// The tick it ran for (RFC 3339).
    pub scheduled_for: String,
    /// The server process that ran it.
    pub runner: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End, once finished.
    pub finished_at: Option<String>,
    /// `running`, `ok`, `failed`, `panicked`, `timed_out`, `skipped` (the
    /// previous run was still going) or `abandoned` (its server stopped).
    pub outcome: String,
    /// The task's JSON summary, when it succeeded.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// Why it did not succeed.
    pub error: Option<String>,
}

impl Store {
    /// Every registered task with its last `runs` runs.
    pub async fn list_tasks(&self, runs: i64) -> StoreResult<Vec<TaskView>> {
        let rows = sqlx::query(
            "SELECT name, source, schedule, next_run_at FROM scheduled_tasks ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        let mut tasks = Vec::new();
        for row in rows {
            let name: String = row.try_get(0)?;
            let last_runs = self.task_runs(&name, runs).await?;
            tasks.push(TaskView {
                name,
                source: row.try_get(1)?,
                schedule: row.try_get(2)?,
                next_run_at: row.try_get(3)?,
                last_runs,
            });
        }
        Ok(tasks)
    }

    /// The last `limit` runs of `task`, newest first.
    pub async fn task_runs(&self, task: &str, limit: i64) -> StoreResult<Vec<RunView>> {
        let rows = sqlx::query(
            "SELECT id, scheduled_for, runner, started_at, finished_at, outcome, output, error
             FROM task_runs WHERE task = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(task)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let output: Option<String> = row.try_get(6)?;
                Ok(RunView {
                    id: row.try_get(0)?,
                    scheduled_for: row.try_get(1)?,
                    runner: row.try_get(2)?,
                    started_at: row.try_get(3)?,
                    finished_at: row.try_get(4)?,
                    outcome: row.try_get(5)?,
                    output: output.and_then(|o| serde_json::from_str(&o).ok()),
                    error: row.try_get(7)?,
                })
            })
            .collect()
    }
}
