//! Running one task: the core's jobs in the server, plugin tasks through
//! their plugin (with installation-wide host callbacks and their own time
//! limit), and the outcome recorded.

use std::sync::Arc;

use serde_json::{json, Value};
use time::OffsetDateTime;
use vigilo_sdk::{wire::RunTaskRequest, PluginKind};

use super::tasks::{Job, TaskDef};
use super::Scheduler;
use crate::plugins::host_api::{HostCalls, Scope};
use crate::plugins::PluginCallError;
use crate::store::{format_time, StoreError, StoreResult};

/// Marks a task as running in this process until dropped.
pub(super) struct InFlight {
    task: String,
    running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl InFlight {
    pub(super) fn new(
        task: &str,
        running: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    ) -> Self {
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

impl Scheduler {
    /// Runs `task` and records how the run ended; answers false when the
    /// server began stopping while it ran, in which case nothing is
    /// recorded here: the shutdown records the run as interrupted (and
    /// makes the task due again), whatever the plugin answered once its
    /// host calls were refused.
    pub(super) async fn execute(
        self: Arc<Self>,
        task: TaskDef,
        run_id: i64,
        scheduled_for: String,
    ) -> bool {
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
        if *self.halted.borrow() {
            return false;
        }
        let (outcome, output, error) = match result {
            Ok(output) => ("ok", Some(output.to_string()), None),
            Err(Failure { outcome, message }) => {
                tracing::warn!(task = %task.name, outcome, "scheduled task did not succeed: {message}");
                (outcome, None, Some(message))
            }
        };
        self.finish(&task.name, run_id, outcome, output, error)
            .await;
        true
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
                workspaces: self.task_workspaces(name),
            },
            entry.clone(),
        )
        .halted_by(self.halted.subscribe());
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
    async fn prune_records(&self) -> StoreResult<crate::store::tasks::Pruned> {
        let now_t = OffsetDateTime::now_utc();
        let before = format_time(now_t - time::Duration::days(i64::from(self.retention_days)));
        let links_dead =
            format_time(now_t - time::Duration::days(i64::from(self.invite_ttl_days) + 1));
        self.store
            .prune_records(&before, crate::store::invites::MAIL_ATTEMPTS, &links_dead)
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
