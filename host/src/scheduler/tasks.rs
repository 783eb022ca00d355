//! What the scheduler runs: the core's tasks (audit checkpoints, invite
//! expiry, record pruning) and every loaded plugin's tasks, each with its
//! schedule, which an operator may replace in `task_settings`.

use serde_json::{json, Value};
use time::OffsetDateTime;
use vigilo_sdk::loader::Registration;
use vigilo_sdk::{PluginKind, Schedule};

use super::{cron, Scheduler};

/// When a task runs.
#[derive(Debug, Clone)]
pub enum When {
    /// Every so many seconds.
    Every(u64),
    /// On a cron expression (UTC).
    Cron(String, cron::Cron),
}

impl When {
    pub(super) fn describe(&self) -> String {
        match self {
            When::Every(seconds) => format!("every {seconds}s"),
            When::Cron(text, _) => format!("cron {text}"),
        }
    }

    /// The next due time after `after`.
    pub(super) fn next(&self, after: OffsetDateTime) -> OffsetDateTime {
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
pub(super) enum Job {
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
    pub(super) job: Job,
}

impl Scheduler {
    /// The operator's settings for `task` (from `task_settings`), without
    /// the `schedule` and `workspaces` keys, which are the server's.
    pub(super) fn task_config(&self, task: &str) -> Value {
        match self.settings.get(task) {
            Some(Value::Object(map)) => {
                let mut map = map.clone();
                map.remove("schedule");
                map.remove("workspaces");
                Value::Object(map)
            }
            _ => json!({}),
        }
    }

    /// The workspaces the operator enabled `task` for
    /// (`task_settings.NAME.workspaces`, a list of slugs); None for every
    /// workspace.
    pub(super) fn task_workspaces(&self, task: &str) -> Option<Vec<String>> {
        let listed = self.settings.get(task)?.get("workspaces")?.as_array()?;
        Some(
            listed
                .iter()
                .filter_map(|slug| slug.as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// The schedule the operator set for `task`, if any.
    fn schedule_override(&self, task: &str) -> Option<Result<Schedule, String>> {
        let schedule = self.settings.get(task)?.get("schedule")?;
        Some(serde_json::from_value(schedule.clone()).map_err(|e| {
            format!("task_settings.{task}.schedule is not {{every_seconds = N}} or {{cron = \"...\"}}: {e}")
        }))
    }

    /// Whether the operator's `task_settings` replace the schedule of the
    /// plugin task `task` (with a schedule that can be used).
    pub fn schedule_overridden(&self, task: &str) -> bool {
        matches!(self.schedule_override(task), Some(Ok(_)))
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
}
