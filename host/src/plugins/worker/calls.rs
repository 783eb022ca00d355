//! Calling a worker-tier plugin: the caller's closure gets a [`WorkerCall`]
//! where an in-process call gets the library, and a worker that ended or
//! ran past the limit becomes `plugin_crashed` or `plugin_timeout` for the
//! calls it was serving, counted towards the plugin's crash limit.

use std::sync::Arc;
use std::time::Duration;

use vigilo_sdk::loader::{CallError, PluginCalls};

use super::{Fault, WorkerCall, WorkerPlugin};
use crate::plugins::{PluginCallError, PluginEntry, Plugins, Reason};

/// Time given, past a call's own limit, to a call whose worker was told to
/// stop (the server may be answering one of its host calls).
const GRACE: Duration = Duration::from_secs(2);

impl Plugins {
    /// [`Plugins::call_scrubbed`] for a plugin in a worker.
    pub(in crate::plugins) async fn call_worker<T, F>(
        &self,
        entry: &Arc<PluginEntry>,
        worker: &Arc<WorkerPlugin>,
        limit: Duration,
        secrets: &[String],
        f: F,
    ) -> Result<T, PluginCallError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn PluginCalls) -> Result<T, CallError> + Send + 'static,
    {
        let plugin = entry.label();
        let task = {
            let worker = worker.clone();
            tokio::task::spawn_blocking(move || {
                let call = WorkerCall::new(&worker, limit);
                let outcome = f(&call);
                (outcome, call.into_fault())
            })
        };
        let (outcome, fault) = match tokio::time::timeout(limit + GRACE, task).await {
            Ok(Ok(done)) => done,
            Ok(Err(join)) => {
                return Err(PluginCallError::Failed {
                    plugin,
                    message: format!("the call could not complete: {join}"),
                })
            }
            Err(_) => {
                // Only a host call the server is still answering holds a
                // call this long; the worker has been told to stop.
                return Err(PluginCallError::TimedOut {
                    plugin,
                    after: limit,
                });
            }
        };
        let Some(fault) = fault else {
            return self.settle(entry, secrets, outcome);
        };
        let (pid, served, error) = match fault {
            Fault::Unavailable(Some(retry_in)) => {
                return Err(PluginCallError::Restarting { plugin, retry_in })
            }
            Fault::Unavailable(None) => return Err(PluginCallError::Unavailable { plugin }),
            Fault::TimedOut { pid, served } => {
                tracing::warn!(plugin = %plugin, pid, timeout_ms = limit.as_millis() as u64, "plugin call timed out; its worker was stopped");
                (
                    Some(pid),
                    served,
                    PluginCallError::TimedOut {
                        plugin: plugin.clone(),
                        after: limit,
                    },
                )
            }
            Fault::Ended { pid, cause, served } => (
                pid,
                served,
                PluginCallError::Crashed {
                    plugin: plugin.clone(),
                    cause: crate::plugins::redact_text(cause, secrets),
                    disabled: false,
                },
            ),
        };
        let ends = worker.record_end(pid, served);
        let (crash_limit, window) = worker.crash_limit();
        if ends < crash_limit {
            return Err(error);
        }
        let what = match &error {
            PluginCallError::Crashed { cause, .. } => cause.clone(),
            _ => format!("a call ran past the {} ms limit", limit.as_millis()),
        };
        let disabled = self.disable(
            entry,
            Reason::DisabledAfterCrashes,
            format!(
                "its worker stopped {ends} times within {}; last: {what}",
                window_words(window)
            ),
        );
        Err(match error {
            PluginCallError::Crashed { plugin, cause, .. } => PluginCallError::Crashed {
                plugin,
                cause,
                disabled,
            },
            other => other,
        })
    }
}

/// "60 minutes", "90 seconds".
fn window_words(window: Duration) -> String {
    let secs = window.as_secs();
    if secs >= 120 && secs % 60 == 0 {
        format!("{} minutes", secs / 60)
    } else {
        format!("{secs} seconds")
    }
}
