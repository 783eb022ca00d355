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

use serde_json::{json, Value};
use time::OffsetDateTime;
use vigilo_sdk::{wire::RunTaskRequest, PluginKind, Registration, Schedule};

use crate::config::Config;
use crate::integrations::Integrations;
use crate::plugins::host_api::{HostCalls, Scope};
use crate::plugins::{PluginCallError, Plugins};
use crate::store::{format_time, parse_time, Store, StoreError, StoreResult, TaskRun};

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
        match self.store.other_running_runs(task, except).await {
            Ok(0) => None,
            Ok(_) => Some("the previous run was still running".into()),
            Err(e) => Some(format!("cannot check for a running run: {e}")),
        }
    }

    /// Marks runs left `running` by a server process that stopped (crashed,
    /// killed) as `abandoned`, once they are older than any run may take.
    async fn close_abandoned_runs(&self, now_t: OffsetDateTime) -> StoreResult<()> {
        let limit = time::Duration::seconds(self.task_timeout.as_secs() as i64 + 300);
        let at = format_time(now_t);
        let closed = self
            .store
            .close_abandoned_task_runs(&format_time(now_t - limit), &at)
            .await?;
        if closed > 0 {
            tracing::warn!(
                runs = closed,
                "scheduler: closed runs whose server process stopped"
            );
        }
        // Playbook runs are driven by the server process that started them;
        // one still `running` an hour on belongs to a process that stopped.
        let before = format_time(now_t - time::Duration::hours(1));
        let closed = self
            .store
            .close_abandoned_playbook_runs(&before, &at)
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
                &format!("{} (on demand)", self.runner),
            )
            .await?
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "task `{}` was just started; try again in a moment",
                    task.name
                ))
            })?;
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

    async fn execute(self: Arc<Self>, task: TaskDef, run_id: i64, scheduled_for: String) {
        let result = match &task.job {
            // Plugin tasks have their own limit, and stay in flight until
            // the plugin returns even after it.
            Job::Plugin(name) => self.run_plugin_task(name, &scheduled_for).await,
            core => {
                let _in_flight = InFlight::new(&task.name, &self.running);
                match tokio::time::timeout(self.task_timeout, self.run_core(core)).await {
                    Ok(result) => result,
                    Err(_) => Err(Failure {
                        outcome: "timed_out",
                        message: format!("did not finish within {}s", self.task_timeout.as_secs()),
                    }),
                }
            }
        };
        let (outcome, output, error) = match result {
            Ok(output) => ("ok", Some(output.to_string()), None),
            Err(Failure { outcome, message }) => {
                tracing::warn!(task = %task.name, outcome, "scheduled task did not succeed: {message}");
                (outcome, None, Some(message))
            }
        };
        self.finish(&task.name, run_id, outcome, output, error)
            .await;
    }

    async fn run_core(&self, job: &Job) -> Result<Value, Failure> {
        match job {
            Job::AuditCheckpoint => {
                let done = self.store.checkpoint_all(&self.signer).await?;
                Ok(json!({"chains": done.len()}))
            }
            Job::ExpireInvites => {
                let expired = crate::domain::invites::expire_everywhere(&self.store).await?;
                Ok(json!({"expired": expired}))
            }
            Job::PruneRecords => {
                let pruned = self.prune_records().await?;
                Ok(
                    json!({"task_runs": pruned.task_runs, "deliveries": pruned.deliveries, "mail": pruned.mail}),
                )
            }
            Job::Plugin(name) => Err(Failure::failed(format!("`{name}` is not a core task"))),
        }
    }

    async fn run_plugin_task(&self, name: &str, scheduled_for: &str) -> Result<Value, Failure> {
        let (entry, _) = self
            .plugins
            .registration(PluginKind::CeleryTask, name)
            .ok_or_else(|| {
                Failure::failed(format!("no loaded plugin provides the task `{name}`"))
            })?;
        let request = RunTaskRequest {
            name: name.to_owned(),
            config: self.task_config(name),
            now: scheduled_for.to_owned(),
        };
        let host = HostCalls::new(
            self.store.clone(),
            self.integrations.clone(),
            Scope::Installation {
                task: name.to_owned(),
            },
        );
        let in_flight = InFlight::new(name, &self.running);
        self.plugins
            .call_within(&entry, self.task_timeout, move |handle| {
                // Released when the plugin returns, not when the server
                // stops waiting for it.
                let _in_flight = in_flight;
                handle.run_task(&request, &host)
            })
            .await
            .map_err(|e| Failure {
                outcome: match &e {
                    PluginCallError::Panicked { .. } => "panicked",
                    PluginCallError::TimedOut { .. } => "timed_out",
                    _ => "failed",
                },
                message: e.to_string(),
            })
    }

    /// Deletes finished task runs, delivery records and outbox mail older
    /// than the retention period (unsent mail only once its invite link has
    /// expired too).
    async fn prune_records(&self) -> StoreResult<crate::store::Pruned> {
        let now_t = OffsetDateTime::now_utc();
        let before = format_time(now_t - time::Duration::days(i64::from(self.retention_days)));
        let links_dead =
            format_time(now_t - time::Duration::days(i64::from(self.invite_ttl_days) + 1));
        self.store
            .prune_records(&before, crate::store::MAIL_ATTEMPTS, &links_dead)
            .await
    }
}

/// Why a run did not succeed: its recorded outcome and the reason.
struct Failure {
    /// `failed`, `panicked` or `timed_out`.
    outcome: &'static str,
    /// Why.
    message: String,
}

impl Failure {
    fn failed(message: String) -> Self {
        Failure {
            outcome: "failed",
            message,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::failed(e.to_string())
    }
}

impl From<crate::domain::DomainError> for Failure {
    fn from(e: crate::domain::DomainError) -> Self {
        Failure::failed(e.to_string())
    }
}
