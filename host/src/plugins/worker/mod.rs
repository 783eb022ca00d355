//! The worker tier: a plugin in a confined process of its own.
//!
//! The server starts `vigilo-server plugin-worker` (its own binary) with a
//! socket pair as the worker's standard input and output. The worker loads
//! the library with exactly the checks a server makes in process and reports
//! the manifest, the registrations and the frontend files, or the refusal
//! with the same reason code. Once the server knows the plugin's name it
//! tells the worker how much memory the plugin may use, and the worker
//! confines itself ([`sandbox`]): on Linux it drops root for `nobody`, can
//! gain no privileges, dies with the server, has its address space capped,
//! and a seccomp filter refuses opening files, creating sockets, executing
//! programs, starting processes or threads, and tracing. Then it serves
//! calls, several at once: each of its call threads owns one connection
//! the server handed it, and a call made on a connection is answered on it.
//!
//! A call is the in-process call relayed: a method name and JSON text go to
//! the worker, the plugin's host calls come back as a method name and JSON
//! text and are answered by the same [`vigilo_sdk::Host`] an in-process call
//! would get ([`vigilo_sdk::loader::HostBridge::answer`]), within the same
//! scope, and the answer comes back as JSON text.
//!
//! When a worker ends (a segfault, an abort, an exit, memory refused) or a
//! call outlives its time limit (the worker is killed), the calls it was
//! serving fail with `plugin_crashed` or `plugin_timeout`, and the next call
//! starts a fresh worker: at once if the last one had answered something,
//! after a growing pause (0.25 s, doubling, at most 10 s) while workers keep
//! ending before they answer anything. After `plugin_crash_limit` ends
//! within `plugin_crash_window_secs` the plugin is disabled
//! (`disabled_after_crashes`).

mod calls;
mod child;
mod ends;
mod launcher;
pub mod protocol;
mod sandbox;
mod supervisor;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigilo_sdk::loader::{
    Answer, CallError, HostBridge, Manifest, PluginCalls, PluginErrorKind, Registration,
};
use vigilo_sdk::Host;

pub use child::run as run_worker;
pub use supervisor::WORKER_SUBCOMMAND;

use super::{Reason, Skip};
use protocol::{Init, Refused};
use supervisor::{Broken, Hello, Unconfined, WorkerProcess};

pub use crate::config::DEFAULT_WORKER_MEMORY_MB as DEFAULT_MEMORY_LIMIT_MB;

/// Threads of a worker that run calls: this many calls to one plugin run at
/// once; more wait their turn (within their own time limit).
pub const WORKER_THREADS: usize = 8;

/// The first pause before a worker that ended without answering anything
/// is started again; it doubles each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How workers are started and confined.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The program to start (`vigilo-server`); None: this executable.
    pub program: Option<PathBuf>,
    /// Bytes of address space a plugin may use (beyond the worker's own).
    pub memory_limit_bytes: u64,
    /// The same, for single plugins by name.
    pub memory_by_name: BTreeMap<String, u64>,
    /// Worker ends within [`WorkerSettings::crash_window`] after which the
    /// plugin is disabled.
    pub crash_limit: u32,
    /// See [`WorkerSettings::crash_limit`].
    pub crash_window: Duration,
    /// Threads that run calls in each worker.
    pub threads: usize,
    /// The user and group workers run as (when the server runs as root).
    pub run_as: Option<(u32, u32)>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            program: None,
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_MB << 20,
            memory_by_name: BTreeMap::new(),
            crash_limit: 3,
            crash_window: Duration::from_secs(3600),
            threads: WORKER_THREADS,
            run_as: sandbox::unprivileged_user(),
        }
    }
}

impl WorkerSettings {
    /// The settings a server configuration gives.
    pub fn from_config(config: &crate::config::Config) -> Self {
        WorkerSettings {
            program: config.plugin_worker_program.clone(),
            memory_limit_bytes: config.plugin_worker_memory_mb << 20,
            memory_by_name: config
                .plugin_settings
                .iter()
                .filter_map(|(name, s)| s.memory_limit_mb.map(|mb| (name.clone(), mb << 20)))
                .collect(),
            crash_limit: config.plugin_crash_limit.max(1),
            crash_window: Duration::from_secs(config.plugin_crash_window_secs),
            ..WorkerSettings::default()
        }
    }

    fn program(&self) -> Result<PathBuf, String> {
        match &self.program {
            Some(program) => Ok(program.clone()),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find the server's own program to start: {e}")),
        }
    }

    /// The memory the plugin `name` may use.
    pub fn memory_for(&self, name: &str) -> u64 {
        self.memory_by_name
            .get(name)
            .copied()
            .unwrap_or(self.memory_limit_bytes)
    }
}

/// A worker that loaded a library and has not been confined yet: the
/// server decides from the manifest whether it keeps it.
pub(super) struct Started {
    library: PathBuf,
    unconfined: Unconfined,
    /// The plugin's manifest.
    pub manifest: Manifest,
    /// What it registered.
    pub registrations: Vec<Registration>,
    assets: BTreeMap<String, Vec<u8>>,
    hello: (String, String),
}

/// Starts a worker for the library at `loaded_from` (the private copy of
/// `path`) and reads what it made of it: a refusal carries the reason a
/// server loading it in process gives.
pub(super) fn start(
    path: &Path,
    loaded_from: &Path,
    vigilo_version: &str,
    settings: &WorkerSettings,
) -> Result<Started, Box<Skip>> {
    let label = super::label::file_label(path);
    let failed = |message: String| {
        Box::new(Skip {
            path: path.to_owned(),
            plugin: None,
            manifest: None,
            sha256: None,
            reason: Reason::WorkerFailed,
            message,
            detail: None,
        })
    };
    let program = settings.program().map_err(failed)?;
    // The worker runs in `/`: it gets the library's absolute path.
    let library = std::path::absolute(loaded_from)
        .map_err(|e| failed(format!("cannot resolve {}: {e}", loaded_from.display())))?;
    let init = init_for(&library, vigilo_version, settings);
    let (unconfined, hello) = supervisor::start(&program, &init, &label).map_err(failed)?;
    match hello {
        Hello::Refused(json) => {
            let refused: Refused = serde_json::from_str(&json)
                .map_err(|e| failed(format!("the worker's refusal is unreadable: {e}")))?;
            Err(Box::new(Skip {
                path: path.to_owned(),
                plugin: refused.manifest.as_ref().map(|m| m.name.clone()),
                manifest: refused.manifest,
                sha256: None,
                reason: refused.reason,
                message: refused.message,
                detail: refused.detail,
            }))
        }
        Hello::Loaded {
            manifest,
            registrations,
            assets,
        } => {
            let parsed: Result<(Manifest, Vec<Registration>), String> =
                serde_json::from_str(&manifest)
                    .and_then(|m| Ok((m, serde_json::from_str(&registrations)?)))
                    .map_err(|e| format!("the worker's report is unreadable: {e}"));
            let (m, r) = parsed.map_err(failed)?;
            Ok(Started {
                library,
                unconfined,
                manifest: m,
                registrations: r,
                assets: assets.into_iter().collect(),
                hello: (manifest, registrations),
            })
        }
    }
}

fn init_for(library: &Path, vigilo_version: &str, settings: &WorkerSettings) -> Init {
    Init {
        library: library.display().to_string(),
        vigilo_version: vigilo_version.to_owned(),
        run_as: settings.run_as,
        server_pid: std::process::id(),
        threads: settings.threads.max(1),
    }
}

impl Started {
    /// Confines the worker and keeps it as the plugin's first worker.
    pub(super) fn confine(
        self,
        path: &Path,
        vigilo_version: &str,
        settings: Arc<WorkerSettings>,
    ) -> Result<Arc<WorkerPlugin>, Box<Skip>> {
        let name = self.manifest.name.clone();
        let (process, confinement) = self
            .unconfined
            .confine(&name, settings.memory_for(&name))
            .map_err(|message| {
                Box::new(Skip {
                    path: path.to_owned(),
                    plugin: Some(name.clone()),
                    manifest: Some(self.manifest.clone()),
                    sha256: None,
                    reason: Reason::WorkerFailed,
                    message,
                    detail: None,
                })
            })?;
        tracing::info!(plugin = %name, pid = process.pid(), "plugin worker started: {confinement}");
        Ok(Arc::new(WorkerPlugin {
            name,
            library: self.library,
            vigilo_version: vigilo_version.to_owned(),
            settings,
            hello: self.hello,
            assets: self.assets,
            confinement,
            state: Mutex::new(Supervision {
                current: Some(Arc::new(process)),
                ..Supervision::default()
            }),
        }))
    }
}

/// A plugin that runs in worker processes: the current one, and the
/// record of those that ended.
#[derive(Debug)]
pub struct WorkerPlugin {
    name: String,
    library: PathBuf,
    vigilo_version: String,
    settings: Arc<WorkerSettings>,
    /// The manifest and registrations the first worker reported: a
    /// restarted worker must report the same.
    hello: (String, String),
    assets: BTreeMap<String, Vec<u8>>,
    confinement: String,
    state: Mutex<Supervision>,
}

#[derive(Debug, Default)]
struct Supervision {
    current: Option<Arc<WorkerProcess>>,
    /// When workers ended (or were stopped) within the crash window.
    ends: VecDeque<Instant>,
    /// Workers in a row that ended before answering anything.
    ended_unserved: u32,
    /// No new worker before this.
    not_before: Option<Instant>,
    /// Workers started after the first.
    restarts: u64,
    /// The last worker whose end was recorded (calls it was serving all
    /// report its end; it counts once).
    last_recorded: Option<u32>,
    /// Taken out of use: no new worker until it is enabled again.
    retired: bool,
}

impl WorkerPlugin {
    /// The embedded frontend file at `path`, fetched when the plugin loaded.
    pub fn asset(&self, path: &str) -> Option<Vec<u8>> {
        self.assets.get(path).cloned()
    }

    /// What confines its workers, in words.
    pub fn confinement(&self) -> &str {
        &self.confinement
    }

    /// The running worker's process id.
    pub fn pid(&self) -> Option<u32> {
        let state = self.lock();
        state
            .current
            .as_ref()
            .filter(|p| p.ended().is_none())
            .map(|p| p.pid())
    }

    /// Workers started after the first.
    pub fn restarts(&self) -> u64 {
        self.lock().restarts
    }

    /// The time limit of workers ending before the plugin is disabled.
    pub fn crash_limit(&self) -> (u32, Duration) {
        (self.settings.crash_limit, self.settings.crash_window)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Supervision> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the worker and starts no other until [`WorkerPlugin::reset`]
    /// (the plugin was disabled or replaced).
    pub(crate) fn retire(&self, because: &str) {
        let mut state = self.lock();
        state.retired = true;
        if let Some(process) = state.current.take() {
            process.stop(because);
        }
    }

    /// Forgets earlier ends and lets workers start again (the plugin was
    /// enabled).
    pub(crate) fn reset(&self) {
        let mut state = self.lock();
        *state = Supervision {
            restarts: state.restarts,
            current: state.current.take(),
            ..Supervision::default()
        };
    }

    /// Records that worker `pid` ended (or was stopped); returns how many
    /// did within the crash window.
    pub(crate) fn record_end(&self, pid: Option<u32>, served: bool) -> u32 {
        let now = Instant::now();
        let mut state = self.lock();
        if pid.is_some() && state.last_recorded == pid {
            return state.ends.len() as u32;
        }
        state.last_recorded = pid;
        state.ends.push_back(now);
        while state
            .ends
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.settings.crash_window)
        {
            state.ends.pop_front();
        }
        if served {
            state.ended_unserved = 0;
            state.not_before = None;
        } else {
            state.ended_unserved += 1;
            let pause = FIRST_BACKOFF
                .saturating_mul(1 << (state.ended_unserved - 1).min(10))
                .min(MAX_BACKOFF);
            state.not_before = Some(now + pause);
        }
        state.ends.len() as u32
    }

    /// The running worker, starting a new one if the last ended (after
    /// the pause a crash loop calls for, if it fits before `deadline`).
    fn process(&self, deadline: Instant) -> Result<Arc<WorkerProcess>, Fault> {
        loop {
            let mut state = self.lock();
            if let Some(process) = &state.current {
                if process.ended().is_none() {
                    return Ok(process.clone());
                }
            }
            state.current = None;
            if state.retired {
                return Err(Fault::Unavailable(None));
            }
            let now = Instant::now();
            match state.not_before {
                Some(at) if at > now && at >= deadline => {
                    return Err(Fault::Unavailable(Some(at - now)))
                }
                Some(at) if at > now => {
                    // Waited out without the lock: the listing reads it.
                    drop(state);
                    std::thread::sleep(at - now);
                }
                _ => return self.start_next(&mut state),
            }
        }
    }

    /// Starts the worker that replaces the one that ended (the caller holds
    /// the lock, so only one starts).
    fn start_next(&self, state: &mut Supervision) -> Result<Arc<WorkerProcess>, Fault> {
        let started = self.restart();
        state.restarts += 1;
        match started {
            Ok(process) => {
                let process = Arc::new(process);
                state.current = Some(process.clone());
                Ok(process)
            }
            Err(why) => Err(Fault::Ended {
                pid: None,
                cause: format!("its worker could not be started again: {why}"),
                served: false,
            }),
        }
    }

    fn restart(&self) -> Result<WorkerProcess, String> {
        let program = self.settings.program()?;
        let init = init_for(&self.library, &self.vigilo_version, &self.settings);
        let (unconfined, hello) = supervisor::start(&program, &init, &self.name)?;
        match hello {
            Hello::Loaded {
                manifest,
                registrations,
                ..
            } if (manifest.as_str(), registrations.as_str())
                == (self.hello.0.as_str(), self.hello.1.as_str()) =>
            {
                let (process, _) =
                    unconfined.confine(&self.name, self.settings.memory_for(&self.name))?;
                tracing::info!(plugin = %self.name, pid = process.pid(), "plugin worker restarted");
                Ok(process)
            }
            Hello::Loaded { .. } => {
                Err("the library reported another manifest than when it was loaded".into())
            }
            Hello::Refused(json) => Err(format!("the library was refused: {json}")),
        }
    }
}

/// Why a call to a worker got no answer from the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The worker `pid` ended (or none could be started); whether it had
    /// answered any call before.
    Ended {
        pid: Option<u32>,
        cause: String,
        served: bool,
    },
    /// The call ran past its limit; the worker `pid` was stopped.
    TimedOut { pid: u32, served: bool },
    /// No worker may start now (the plugin is being taken out of use, or a
    /// worker may start only after the given pause).
    Unavailable(Option<Duration>),
}

/// One call to a worker-tier plugin, within its time limit: what
/// [`super::Plugins::call`] hands the caller's closure in place of a
/// library handle. A fault (the worker ended, the limit passed) is kept for
/// the caller to report.
pub(crate) struct WorkerCall<'a> {
    worker: &'a WorkerPlugin,
    limit: Duration,
    deadline: Instant,
    fault: Mutex<Option<Fault>>,
}

impl<'a> WorkerCall<'a> {
    pub(crate) fn new(worker: &'a WorkerPlugin, limit: Duration) -> Self {
        WorkerCall {
            worker,
            limit,
            deadline: Instant::now() + limit,
            fault: Mutex::new(None),
        }
    }

    /// The fault that ended the call, if one did.
    pub(crate) fn into_fault(self) -> Option<Fault> {
        self.fault.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, fault: Fault, message: String) -> CallError {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(fault);
        CallError::Plugin {
            kind: PluginErrorKind::Failed,
            message,
        }
    }
}

impl PluginCalls for WorkerCall<'_> {
    fn call_text(&self, method: &str, input: &str, host: &dyn Host) -> Result<Answer, CallError> {
        let process = self
            .worker
            .process(self.deadline)
            .map_err(|fault| self.fail(fault, "no worker".into()))?;
        let bridge = HostBridge::new(host);
        let answer = |method: &str, input: &str| bridge.answer(method, input);
        match process.call(method, input, self.deadline, &answer) {
            Ok(Ok(text)) => Ok(Answer::from(text)),
            Ok(Err((kind, message))) => Err(CallError::Plugin { kind, message }),
            Err(Broken::Ended(cause)) => {
                let fault = Fault::Ended {
                    pid: Some(process.pid()),
                    cause: cause.clone(),
                    served: process.served(),
                };
                Err(self.fail(fault, cause))
            }
            Err(Broken::TimedOut) => {
                let served = process.served();
                process.stop(&format!(
                    "the worker was stopped: a call to `{method}` ran past the {} ms limit",
                    self.limit.as_millis()
                ));
                let fault = Fault::TimedOut {
                    pid: process.pid(),
                    served,
                };
                Err(self.fail(fault, "timed out".into()))
            }
        }
    }
}
