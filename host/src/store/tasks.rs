//! The scheduler's tables: registered tasks with their next due time, and
//! every run (`task_runs`), whose `UNIQUE (task, scheduled_for)` lets
//! exactly one server process claim each tick.
//!
//! Every write here goes through [`Store::begin_write`], like every other
//! write.

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{is_unique_violation, now, Store, StoreResult};

/// A task as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    /// Unique name.
    pub name: String,
    /// `core` or the plugin's name.
    pub source: String,
    /// `every 3600s` or `cron 0 7 * * *`.
    pub schedule: String,
    /// Where the schedule comes from: `core` (a task of the server's own),
    /// `plugin` (as the plugin declares it) or `config` (the operator's
    /// `task_settings.<task>.schedule`, which replaces the plugin's).
    pub schedule_from: String,
    /// When it is next due (RFC 3339).
    pub next_run_at: String,
    /// Its most recent runs, newest first.
    pub last_runs: Vec<TaskRun>,
}

/// One run of a task.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskRun {
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

const RUN_COLUMNS: &str =
    "r.id, r.scheduled_for, r.runner, r.started_at, r.finished_at, r.outcome, r.output, r.error";

fn run_from_row(row: &AnyRow) -> StoreResult<TaskRun> {
    let output: Option<String> = row.try_get("output")?;
    Ok(TaskRun {
        id: row.try_get("id")?,
        scheduled_for: row.try_get("scheduled_for")?,
        runner: row.try_get("runner")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        outcome: row.try_get("outcome")?,
        output: output.and_then(|o| serde_json::from_str(&o).ok()),
        error: row.try_get("error")?,
    })
}

/// What [`Store::prune_records`] deleted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pruned {
    /// Finished task runs.
    pub task_runs: u64,
    /// Delivery records.
    pub deliveries: u64,
    /// Outbox mail.
    pub mail: u64,
    /// Browser sessions that ended or expired.
    pub sessions: u64,
    /// Plugins' stored entries that expired.
    pub plugin_entries: u64,
}

impl Store {
    /// Every registered task with its last `runs` runs, in one query.
    pub async fn list_tasks(&self, runs: i64) -> StoreResult<Vec<TaskView>> {
        let rows = sqlx::query(&format!(
            "SELECT t.name AS task_name, t.source, t.schedule, t.next_run_at, {RUN_COLUMNS}
             FROM scheduled_tasks t
             LEFT JOIN (SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.task ORDER BY x.id DESC) AS rn
                        FROM task_runs x) r
               ON r.task = t.name AND r.rn <= $1
             ORDER BY t.name, r.id DESC"
        ))
        .bind(runs)
        .fetch_all(self.pool())
        .await?;
        let mut tasks: Vec<TaskView> = Vec::new();
        for row in &rows {
            let name: String = row.try_get("task_name")?;
            if tasks.last().is_none_or(|t| t.name != name) {
                tasks.push(TaskView {
                    name,
                    source: row.try_get("source")?,
                    schedule: row.try_get("schedule")?,
                    schedule_from: if row.try_get::<String, _>("source")? == "core" {
                        "core".into()
                    } else {
                        "plugin".into()
                    },
                    next_run_at: row.try_get("next_run_at")?,
                    last_runs: Vec::new(),
                });
            }
            if row.try_get::<Option<i64>, _>("id")?.is_some() {
                let run = run_from_row(row)?;
                if let Some(task) = tasks.last_mut() {
                    task.last_runs.push(run);
                }
            }
        }
        Ok(tasks)
    }

    /// Whether a task called `name` is registered.
    pub async fn task_exists(&self, name: &str) -> StoreResult<bool> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT name FROM scheduled_tasks WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        Ok(found.is_some())
    }

    /// The last `limit` runs of `task`, newest first.
    pub async fn task_runs(&self, task: &str, limit: i64) -> StoreResult<Vec<TaskRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM task_runs r WHERE r.task = $1 ORDER BY r.id DESC LIMIT $2"
        ))
        .bind(task)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Registers `task` (or keeps its schedule current) and returns its
    /// stored due time. An existing task whose schedule is unchanged keeps
    /// its due time, which other servers may share; one whose schedule
    /// changed (in config, or in a new version of its plugin) is due at
    /// `first_due`, computed from the new schedule, at once.
    pub async fn register_task(
        &self,
        task: &str,
        source: &str,
        schedule: &str,
        first_due: &str,
    ) -> StoreResult<String> {
        let mut tx = self.begin_write().await?;
        let due: String = sqlx::query_scalar(
            "INSERT INTO scheduled_tasks (name, source, schedule, next_run_at, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET source = excluded.source, schedule = excluded.schedule,
                 next_run_at = CASE WHEN scheduled_tasks.schedule = excluded.schedule
                     THEN scheduled_tasks.next_run_at ELSE excluded.next_run_at END,
                 updated_at = CASE WHEN scheduled_tasks.schedule = excluded.schedule
                     THEN scheduled_tasks.updated_at ELSE excluded.updated_at END
             RETURNING next_run_at",
        )
        .bind(task)
        .bind(source)
        .bind(schedule)
        .bind(first_due)
        .bind(now())
        .fetch_one(tx.conn())
        .await?;
        // Bookkeeping, not what a request to run a task was sent to do.
        tx.commit_unclaimed().await?;
        Ok(due)
    }

    /// The stored due time of `task`, if it is registered.
    pub async fn task_due(&self, task: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT next_run_at FROM scheduled_tasks WHERE name = $1")
                .bind(task)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Inserts a `running` run of `task` for the tick `scheduled_for`.
    /// Returns None when another process already holds that tick (the
    /// claim: exactly one process inserts each tick's run).
    pub async fn claim_task_run(
        &self,
        task: &str,
        scheduled_for: &str,
        runner: &str,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query_scalar::<_, i64>(
            "INSERT INTO task_runs (task, scheduled_for, runner, started_at, outcome)
             VALUES ($1, $2, $3, $4, 'running') RETURNING id",
        )
        .bind(task)
        .bind(scheduled_for)
        .bind(runner)
        .bind(now())
        .fetch_one(tx.conn())
        .await;
        match claimed {
            Ok(id) => {
                tx.commit().await?;
                Ok(Some(id))
            }
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves `task`'s due time from `was` to `next` (only if it is still
    /// `was`: another process may have moved it already).
    pub async fn advance_task(&self, task: &str, was: &str, next: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE scheduled_tasks SET next_run_at = $1, updated_at = $2 WHERE name = $3 AND next_run_at = $4",
        )
        .bind(next)
        .bind(now())
        .bind(task)
        .bind(was)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes `task` due at `at`, unless it is due earlier already.
    pub async fn reschedule_task(&self, task: &str, at: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE scheduled_tasks SET next_run_at = $1, updated_at = $1
             WHERE name = $2 AND next_run_at > $1",
        )
        .bind(at)
        .bind(task)
        .execute(tx.conn())
        .await?;
        tx.commit_unclaimed().await?;
        Ok(())
    }

    /// How many runs of `task` other than `except` are still running.
    pub async fn other_running_runs(&self, task: &str, except: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM task_runs WHERE task = $1 AND outcome = 'running' AND id <> $2",
        )
        .bind(task)
        .bind(except)
        .fetch_one(self.pool())
        .await?)
    }

    /// The runners (server processes, see [`super::process_name`]) of the
    /// task runs still `running`.
    pub async fn running_task_runners(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT runner FROM task_runs WHERE outcome = 'running'")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Closes the task runs `runner` left `running` as `abandoned` at `at`;
    /// returns how many.
    pub async fn close_task_runs_of(&self, runner: &str, at: &str) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let closed = sqlx::query(
            "UPDATE task_runs SET outcome = 'abandoned', finished_at = $1,
                 error = 'the server process running it stopped before it finished'
             WHERE outcome = 'running' AND runner = $2",
        )
        .bind(at)
        .bind(runner)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit_unclaimed().await?;
        Ok(closed)
    }

    /// Closes task runs still `running` that started before `before` as
    /// `abandoned` at `at`; returns how many.
    pub async fn close_abandoned_task_runs(&self, before: &str, at: &str) -> StoreResult<u64> {
        self.close_stale(
            "SELECT COUNT(*) FROM task_runs WHERE outcome = 'running' AND started_at < $1",
            "UPDATE task_runs SET outcome = 'abandoned', finished_at = $1,
                 error = 'the server process running it stopped before it finished'
             WHERE outcome = 'running' AND started_at < $2",
            before,
            at,
        )
        .await
    }

    /// Closes playbook runs still `running` that started before `before` as
    /// `abandoned` at `at`; returns how many.
    pub async fn close_abandoned_playbook_runs(&self, before: &str, at: &str) -> StoreResult<u64> {
        self.close_stale(
            "SELECT COUNT(*) FROM playbook_runs WHERE status = 'running' AND started_at < $1",
            "UPDATE playbook_runs SET status = 'abandoned', finished_at = $1
             WHERE status = 'running' AND started_at < $2",
            before,
            at,
        )
        .await
    }

    /// Runs `close` (`$1` = `at`, `$2` = `before`) if `count` (`$1` =
    /// `before`) finds anything: most looks find nothing and take no write
    /// lock.
    async fn close_stale(
        &self,
        count: &str,
        close: &str,
        before: &str,
        at: &str,
    ) -> StoreResult<u64> {
        let stale: i64 = sqlx::query_scalar(count)
            .bind(before)
            .fetch_one(self.pool())
            .await?;
        if stale == 0 {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let closed = sqlx::query(close)
            .bind(at)
            .bind(before)
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(closed)
    }

    /// Records a run's end; only a run still marked running (one closed as
    /// abandoned stays so).
    pub async fn finish_task_run(
        &self,
        run_id: i64,
        outcome: &str,
        output: Option<String>,
        error: Option<String>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE task_runs SET finished_at = $1, outcome = $2, output = $3, error = $4
             WHERE id = $5 AND outcome = 'running'",
        )
        .bind(now())
        .bind(outcome)
        .bind(output)
        .bind(error)
        .bind(run_id)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes finished task runs and delivery records that started before
    /// `before`, and outbox mail created before it that was sent, given up
    /// (`attempts` tries), or whose invite link died before `links_dead`.
    pub async fn prune_records(
        &self,
        before: &str,
        attempts: i64,
        links_dead: &str,
    ) -> StoreResult<Pruned> {
        let mut tx = self.begin_write().await?;
        let task_runs =
            sqlx::query("DELETE FROM task_runs WHERE outcome <> 'running' AND started_at < $1")
                .bind(before)
                .execute(tx.conn())
                .await?
                .rows_affected();
        let deliveries = sqlx::query("DELETE FROM deliveries WHERE created_at < $1")
            .bind(before)
            .execute(tx.conn())
            .await?
            .rows_affected();
        let mail = sqlx::query(
            "DELETE FROM outbox WHERE created_at < $1
             AND (sent_at IS NOT NULL OR attempts >= $2 OR created_at < $3)",
        )
        .bind(before)
        .bind(attempts)
        .bind(links_dead)
        .execute(tx.conn())
        .await?
        .rows_affected();
        let sessions = sqlx::query(
            "DELETE FROM sessions WHERE expires_at < $1 OR (ended_at IS NOT NULL AND ended_at < $1)",
        )
        .bind(before)
        .execute(tx.conn())
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM sign_in_failures WHERE last_failed_at < $1")
            .bind(before)
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(tx.conn())
            .await?;
        let plugin_entries =
            sqlx::query("DELETE FROM plugin_kv WHERE expires_at IS NOT NULL AND expires_at <= $1")
                .bind(super::now())
                .execute(tx.conn())
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(Pruned {
            task_runs,
            deliveries,
            mail,
            sessions,
            plugin_entries,
        })
    }
}
