//! Calling into plugins: off the async executor, within a time limit, with
//! panics counted and secrets scrubbed from what a plugin reports.
//!
//! In process, a call that runs past its limit keeps its blocking thread
//! until the plugin returns (Rust cannot stop a thread), so each plugin may
//! hold at most [`MAX_STUCK_CALLS`] such threads; further calls are refused
//! as busy. In a worker, such a call has its worker killed
//! (`super::worker`), so no thread is left behind.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigilo_sdk::loader::{Answer, CallError, PluginCalls, PluginErrorKind};
use vigilo_sdk::Host;

use super::forensics::CallLog;
use super::metrics::{self, Ending, SeenKind};
use super::{PluginEntry, PluginLink, Plugins, Reason};

/// How many calls past their time limit one plugin may hold before further
/// calls are refused as [`PluginCallError::Busy`].
pub const MAX_STUCK_CALLS: usize = 4;

/// Why a call into a plugin produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginCallError {
    /// The plugin rejected the input (`BadInput`): for a field type, the
    /// reason the value is invalid.
    Rejected {
        /// The plugin.
        plugin: String,
        /// Its reason.
        message: String,
    },
    /// The plugin does not offer the call (built before it existed).
    Unsupported {
        /// The plugin.
        plugin: String,
        /// Its answer.
        message: String,
    },
    /// The plugin failed or answered nonsense.
    Failed {
        /// The plugin.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// The plugin panicked (the SDK caught it).
    Panicked {
        /// The plugin.
        plugin: String,
        /// The panic message.
        message: String,
        /// Whether this panic got the plugin disabled.
        disabled: bool,
    },
    /// The plugin did not answer in time.
    TimedOut {
        /// The plugin.
        plugin: String,
        /// The limit.
        after: Duration,
    },
    /// The plugin is no longer loaded.
    Unavailable {
        /// The plugin.
        plugin: String,
    },
    /// The plugin's worker process ended while serving the call (a crash,
    /// an exit, memory refused, or stopped because another call to it ran
    /// past its limit), or could not be started again.
    Crashed {
        /// The plugin.
        plugin: String,
        /// How the worker ended ("the worker was killed by SIGSEGV ...").
        cause: String,
        /// Whether this end got the plugin disabled.
        disabled: bool,
    },
    /// The plugin's worker ended before it answered anything, and the next
    /// one starts after a pause that has not passed yet.
    Restarting {
        /// The plugin.
        plugin: String,
        /// When a worker may start again.
        retry_in: Duration,
    },
    /// Too many earlier calls to the plugin ran past their time limit and
    /// have not returned: no more threads are handed to it until they do.
    Busy {
        /// The plugin.
        plugin: String,
        /// How many calls are still running.
        stuck: usize,
    },
}

impl std::fmt::Display for PluginCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rejected { plugin, message } => {
                write!(f, "plugin `{plugin}` rejected the input: {message}")
            }
            Self::Failed { plugin, message } => write!(f, "plugin `{plugin}` failed: {message}"),
            Self::Unsupported { plugin, message } => {
                write!(f, "plugin `{plugin}` does not offer this call: {message}")
            }
            Self::Panicked {
                plugin,
                message,
                disabled,
            } => {
                write!(f, "plugin `{plugin}` panicked: {message}")?;
                if *disabled {
                    write!(f, "; it panicked too often and has been disabled")?;
                }
                Ok(())
            }
            Self::TimedOut { plugin, after } => write!(
                f,
                "plugin `{plugin}` did not answer within {} ms",
                after.as_millis()
            ),
            Self::Unavailable { plugin } => write!(f, "plugin `{plugin}` is not loaded"),
            Self::Crashed {
                plugin,
                cause,
                disabled,
            } => {
                write!(f, "plugin `{plugin}` crashed: {cause}")?;
                if *disabled {
                    write!(
                        f,
                        "; its worker stopped too often and the plugin has been disabled"
                    )?;
                }
                Ok(())
            }
            Self::Restarting { plugin, retry_in } => write!(
                f,
                "plugin `{plugin}` is restarting after its worker ended; try again in {} ms",
                retry_in.as_millis().max(1)
            ),
            Self::Busy { plugin, stuck } => write!(
                f,
                "plugin `{plugin}` is busy: {stuck} earlier calls ran past their time limit and \
                 have not returned yet; try again later"
            ),
        }
    }
}

impl std::error::Error for PluginCallError {}

/// Where a call handed to the blocking pool stands, shared by the thread
/// that runs it and the task that waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum CallState {
    /// The plugin is still working.
    Running = 0,
    /// The plugin returned.
    Returned = 1,
    /// The waiting side gave up (time limit); the call is counted as stuck
    /// until the plugin returns.
    Abandoned = 2,
}

/// A [`CallState`] both sides can change atomically.
struct SharedCallState(AtomicU8);

impl SharedCallState {
    fn new() -> Self {
        SharedCallState(AtomicU8::new(CallState::Running as u8))
    }

    /// Marks the call returned; true if the waiting side had abandoned it.
    fn mark_returned(&self) -> bool {
        self.0.swap(CallState::Returned as u8, Ordering::SeqCst) == CallState::Abandoned as u8
    }

    /// Marks a running call abandoned; false if it returned just now.
    fn abandon(&self) -> bool {
        self.0
            .compare_exchange(
                CallState::Running as u8,
                CallState::Abandoned as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }
}

impl Plugins {
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Calls into `entry` off the async executor, within the time limit.
    ///
    /// `f` gets the plugin's handle; its `CallError` is classified into a
    /// [`PluginCallError`]. A panic counts towards the plugin's limit; any
    /// other outcome resets the count.
    pub async fn call<T, F>(
        self: &Arc<Self>,
        entry: &Arc<PluginEntry>,
        f: F,
    ) -> Result<T, PluginCallError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn PluginCalls) -> Result<T, CallError> + Send + 'static,
    {
        self.call_within(entry, self.call_timeout, f).await
    }

    /// [`Plugins::call`] with another time limit (periodic tasks get a
    /// longer one than request-time calls).
    pub async fn call_within<T, F>(
        self: &Arc<Self>,
        entry: &Arc<PluginEntry>,
        limit: Duration,
        f: F,
    ) -> Result<T, PluginCallError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn PluginCalls) -> Result<T, CallError> + Send + 'static,
    {
        self.call_scrubbed(entry, limit, &[], f).await
    }

    /// [`Plugins::call_within`] for a call handed secrets: every value in
    /// `secrets` is replaced by `[redacted]` in what the plugin reports
    /// (error and panic messages) before it is logged, kept as the reason
    /// for a disable, audited or returned.
    pub async fn call_scrubbed<T, F>(
        self: &Arc<Self>,
        entry: &Arc<PluginEntry>,
        limit: Duration,
        secrets: &[String],
        f: F,
    ) -> Result<T, PluginCallError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn PluginCalls) -> Result<T, CallError> + Send + 'static,
    {
        let started = Instant::now();
        let seen = Arc::new(SeenKind::new());
        let outcome = self
            .call_metered(entry, limit, secrets, seen.clone(), f)
            .await;
        let kind = match seen.get() {
            metrics::NO_KIND => metrics::primary_kind(entry.manifest.as_ref().map(|m| m.kind)),
            kind => kind,
        };
        let ending = match &outcome {
            Ok(_) => Ending::Answered,
            Err(PluginCallError::Rejected { .. }) => Ending::Rejected,
            Err(PluginCallError::Panicked { .. }) => Ending::Panicked,
            Err(PluginCallError::Crashed { .. }) => Ending::Crashed,
            Err(PluginCallError::TimedOut { .. }) => Ending::TimedOut,
            Err(_) => Ending::Failed,
        };
        entry.metrics.record(kind, ending, started.elapsed());
        outcome
    }

    /// [`Plugins::call_scrubbed`] without the counting: the closure gets
    /// the plugin wrapped so that `seen` learns the call's kind (and, in
    /// process, the call is recorded in the call log while it runs).
    async fn call_metered<T, F>(
        self: &Arc<Self>,
        entry: &Arc<PluginEntry>,
        limit: Duration,
        secrets: &[String],
        seen: Arc<SeenKind>,
        f: F,
    ) -> Result<T, PluginCallError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn PluginCalls) -> Result<T, CallError> + Send + 'static,
    {
        let plugin = entry.label();
        let handle = match (&entry.link, entry.is_loaded()) {
            (Some(PluginLink::InProcess(handle)), true) => *handle,
            (Some(PluginLink::Worker(worker)), true) => {
                let worker = worker.clone();
                let f = move |inner: &dyn PluginCalls| {
                    f(&Metered {
                        inner,
                        seen: &seen,
                        log: None,
                    })
                };
                return self.call_worker(entry, &worker, limit, secrets, f).await;
            }
            _ => return Err(PluginCallError::Unavailable { plugin }),
        };
        let log = self.call_log.clone();
        // A call past its limit keeps its thread until the plugin returns;
        // cap how many one plugin may hold, so a plugin that hangs cannot
        // use up the server's blocking threads.
        let stuck = entry.stuck_calls.load(Ordering::SeqCst);
        if stuck >= MAX_STUCK_CALLS {
            return Err(PluginCallError::Busy { plugin, stuck });
        }
        let state = Arc::new(SharedCallState::new());
        let (returned, stuck_calls) = (state.clone(), entry.stuck_calls.clone());
        let name = plugin.clone();
        let task = tokio::task::spawn_blocking(move || {
            let outcome = f(&Metered {
                inner: &handle,
                seen: &seen,
                log: log.as_deref().map(|log| (log, name.as_str())),
            });
            if returned.mark_returned() {
                stuck_calls.fetch_sub(1, Ordering::SeqCst);
            }
            outcome
        });
        let outcome = match tokio::time::timeout(limit, task).await {
            Err(_) => {
                entry.stuck_calls.fetch_add(1, Ordering::SeqCst);
                if !state.abandon() {
                    // It returned just now after all.
                    entry.stuck_calls.fetch_sub(1, Ordering::SeqCst);
                }
                tracing::warn!(plugin = %plugin, timeout_ms = limit.as_millis() as u64, "plugin call timed out");
                return Err(PluginCallError::TimedOut {
                    plugin,
                    after: limit,
                });
            }
            Ok(Err(join)) => Err(CallError::Plugin {
                kind: PluginErrorKind::Panicked,
                message: format!("the call could not complete: {join}"),
            }),
            Ok(Ok(outcome)) => outcome,
        };
        let settled = self.settle(entry, secrets, outcome);
        if let Err(PluginCallError::Panicked { message, .. }) = &settled {
            let count = entry.panics_in_a_row.load(Ordering::Relaxed);
            if count >= self.panic_limit && self.moves_on_panics(entry) {
                self.move_to_worker(entry, count, message);
            }
        }
        settled
    }

    /// The plugin's answer, classified: secrets scrubbed from what it
    /// reports, a panic counted towards its limit, any other outcome
    /// resetting the count.
    pub(super) fn settle<T>(
        &self,
        entry: &Arc<PluginEntry>,
        secrets: &[String],
        outcome: Result<T, CallError>,
    ) -> Result<T, PluginCallError> {
        let plugin = entry.label();
        let outcome = outcome.map_err(|e| match e {
            CallError::Plugin { kind, message } if !secrets.is_empty() => CallError::Plugin {
                kind,
                message: redact_text(message, secrets),
            },
            other => other,
        });
        match outcome {
            Ok(value) => {
                entry.panics_in_a_row.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(CallError::Plugin {
                kind: PluginErrorKind::Panicked,
                message,
            }) => {
                let count = entry.panics_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(plugin = %plugin, panics_in_a_row = count, "plugin panicked in a call: {message}");
                let disabled = count >= self.panic_limit
                    && !self.moves_on_panics(entry)
                    && self.disable(
                        entry,
                        Reason::DisabledAfterPanics,
                        format!("panicked in {count} calls in a row; last: {message}"),
                    );
                Err(PluginCallError::Panicked {
                    plugin,
                    message,
                    disabled,
                })
            }
            Err(CallError::Plugin {
                kind: PluginErrorKind::BadInput,
                message,
            }) => {
                entry.panics_in_a_row.store(0, Ordering::Relaxed);
                Err(PluginCallError::Rejected { plugin, message })
            }
            Err(CallError::Plugin {
                kind: PluginErrorKind::UnknownMethod,
                message,
            }) => {
                entry.panics_in_a_row.store(0, Ordering::Relaxed);
                Err(PluginCallError::Unsupported { plugin, message })
            }
            Err(other) => {
                entry.panics_in_a_row.store(0, Ordering::Relaxed);
                Err(PluginCallError::Failed {
                    plugin,
                    message: other.message(),
                })
            }
        }
    }
}

/// The plugin as the caller's closure sees it: each call tells `seen` its
/// kind and, in process, is recorded in the call log while it runs.
struct Metered<'a> {
    inner: &'a dyn PluginCalls,
    seen: &'a SeenKind,
    /// The call log and the plugin's name.
    log: Option<(&'a CallLog, &'a str)>,
}

impl PluginCalls for Metered<'_> {
    fn call_text(&self, method: &str, input: &str, host: &dyn Host) -> Result<Answer, CallError> {
        self.seen.set(metrics::kind_index(method));
        let Some((log, plugin)) = self.log else {
            return self.inner.call_text(method, input, host);
        };
        // Cleared when the call returns or unwinds; left written only if
        // the process ends inside it.
        let _running = log.begin(plugin, method).map(|slot| Running { log, slot });
        self.inner.call_text(method, input, host)
    }
}

/// A call recorded in the call log while it runs.
struct Running<'a> {
    log: &'a CallLog,
    slot: usize,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.log.end(self.slot);
    }
}

/// `text` with every secret (four characters or longer) replaced by
/// `[redacted]`.
pub fn redact_text(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        if secret.len() >= 4 {
            text = text.replace(secret.as_str(), "[redacted]");
        }
    }
    text
}
