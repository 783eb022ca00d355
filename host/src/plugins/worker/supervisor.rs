//! One worker process, seen from the server: starting it, the handshake,
//! routing its messages to the calls waiting for them, and noticing (and
//! explaining) its end.
//!
//! Every worker is started from one long-lived thread, the launcher: on
//! Linux a worker asks to be killed when the thread that started it ends
//! (`PR_SET_PDEATHSIG` follows the thread, not the process), so the thread
//! must live as long as the server. The socket is a pair made before the
//! worker starts; the worker gets its end as standard input and output, so
//! it never creates a socket itself. Its standard error is read line by
//! line into the server's log, and the last lines explain a crash ("memory
//! allocation of ... failed", "has overflowed its stack").

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use vigilo_sdk::loader::PluginErrorKind;

use super::protocol::{FromWorker, Init, ToWorker};

/// The longest a worker may take to load its library and say so.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a write to a worker may block (a worker that stops reading
/// is stopped).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Lines of a worker's standard error kept to explain its end.
const TAIL_LINES: usize = 4;

/// Lines of a worker's standard error written to the server's log before
/// the rest is dropped (a plugin cannot flood the log).
const LOGGED_LINES: usize = 200;

/// The subcommand of `vigilo-server` that runs a worker.
pub const WORKER_SUBCOMMAND: &str = "plugin-worker";

/// What a waiting call receives.
#[derive(Debug)]
pub(super) enum Incoming {
    /// The plugin calls the host.
    HostCall { method: String, input: String },
    /// The call's answer.
    Reply(Result<String, (PluginErrorKind, String)>),
    /// The worker ended; why.
    Ended(String),
}

/// The state a worker's reader thread and its callers share.
#[derive(Debug, Default)]
struct Shared {
    /// Calls waiting for an answer, by id; once the worker has ended, why.
    pending: Mutex<Pending>,
    /// Why the server stopped the worker, when it did.
    stopped_because: Mutex<Option<String>>,
    /// Whether the worker answered any call.
    served: AtomicBool,
}

#[derive(Debug, Default)]
struct Pending {
    calls: HashMap<u64, Sender<Incoming>>,
    ended: Option<String>,
}

/// The last lines a worker wrote to standard error, and whether it has
/// closed it.
#[derive(Debug, Default)]
struct Tail {
    state: Mutex<(VecDeque<String>, bool)>,
    closed: Condvar,
}

/// A running worker process.
#[derive(Debug)]
pub(super) struct WorkerProcess {
    pid: u32,
    child: Arc<Mutex<Child>>,
    writer: Mutex<UnixStream>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
}

/// A worker that loaded its library and has not confined itself yet.
pub(super) struct Unconfined {
    process: WorkerProcess,
    reader: UnixStream,
    tail: Arc<Tail>,
    label: String,
}

/// What a freshly started worker reports about its library.
pub(super) enum Hello {
    /// Loaded and checked.
    Loaded {
        manifest: String,
        registrations: String,
        assets: Vec<(String, Vec<u8>)>,
    },
    /// Refused, as JSON ([`super::protocol::Refused`]).
    Refused(String),
}

/// Starts `program` as a worker for `library` and reads what it made of
/// the library. `label` names the plugin (or the file) in log lines.
pub(super) fn start(
    program: &Path,
    init: &Init,
    label: &str,
) -> Result<(Unconfined, Hello), String> {
    let (server_end, worker_end) =
        UnixStream::pair().map_err(|e| format!("cannot create the worker's socket: {e}"))?;
    let worker_in = worker_end
        .try_clone()
        .map_err(|e| format!("cannot create the worker's socket: {e}"))?;
    let mut command = Command::new(program);
    command
        .arg(WORKER_SUBCOMMAND)
        .env_clear()
        // glibc reserves 64 MB of address space per thread arena; a worker
        // runs under an address-space limit, so keep them few.
        .env("MALLOC_ARENA_MAX", "2")
        .current_dir("/")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(worker_in)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(worker_end)))
        .stderr(Stdio::piped());
    let mut child = launch(command)
        .map_err(|e| format!("cannot start the worker {}: {e}", program.display()))?;
    let pid = child.id();
    let stderr = child.stderr.take();
    let child = Arc::new(Mutex::new(child));
    let tail = Arc::new(Tail::default());
    if let Some(stderr) = stderr {
        let tail = tail.clone();
        let label = label.to_owned();
        let spawned = std::thread::Builder::new()
            .name(format!("worker-log-{pid}"))
            .spawn(move || read_stderr(stderr, &tail, &label, pid));
        if spawned.is_err() {
            // Nobody reads the pipe: the worker would block writing to it.
            let _ = child.lock().map(|mut c| c.kill());
            return Err("cannot start the thread that reads the worker's output".into());
        }
    }
    let configure = |s: &UnixStream| {
        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
        s.set_read_timeout(Some(LOAD_TIMEOUT))
    };
    let reader = server_end
        .try_clone()
        .and_then(|reader| configure(&reader).map(|()| reader))
        .map_err(|e| format!("cannot use the worker's socket: {e}"))?;
    let process = WorkerProcess {
        pid,
        child,
        writer: Mutex::new(server_end),
        shared: Arc::default(),
        next_id: AtomicU64::new(1),
    };
    let mut unconfined = Unconfined {
        process,
        reader,
        tail,
        label: label.to_owned(),
    };
    let init = serde_json::to_string(init).map_err(|e| e.to_string())?;
    unconfined.process.send(&ToWorker::Init(init))?;
    let hello = match unconfined.expect("load its library")? {
        FromWorker::Loaded {
            manifest,
            registrations,
            assets,
        } => Hello::Loaded {
            manifest,
            registrations,
            assets,
        },
        FromWorker::Refused(json) => Hello::Refused(json),
        other => return Err(format!("the worker answered out of turn: {other:?}")),
    };
    Ok((unconfined, hello))
}

impl Unconfined {
    /// Reads the next message of the handshake; `doing` says what the
    /// worker was doing, for the error.
    fn expect(&mut self, doing: &str) -> Result<FromWorker, String> {
        match FromWorker::read(&mut self.reader) {
            Ok(Some(message)) => Ok(message),
            Ok(None) => {
                let status = self.process.wait_briefly();
                Err(format!(
                    "the worker ended before it could {doing}: {}",
                    describe_end(status, &self.tail.wait_closed())
                ))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(format!(
                    "the worker did not {doing} within {} s",
                    LOAD_TIMEOUT.as_secs()
                ))
            }
            Err(e) => Err(format!("the worker's answer could not be read: {e}")),
        }
    }

    /// Tells the worker of plugin `name` to confine itself (allowing the
    /// plugin `memory_limit` bytes), waits until it has, and starts routing
    /// its messages. Returns the running worker and what its confinement is.
    pub(super) fn confine(
        mut self,
        name: &str,
        memory_limit: u64,
    ) -> Result<(WorkerProcess, String), String> {
        name.clone_into(&mut self.label);
        self.process.send(&ToWorker::Confine(memory_limit))?;
        let summary = match self.expect("confine itself")? {
            FromWorker::Confined(summary) => summary,
            FromWorker::Unconfined(why) => {
                return Err(format!("the worker could not confine itself: {why}"))
            }
            other => return Err(format!("the worker answered out of turn: {other:?}")),
        };
        self.reader
            .set_read_timeout(None)
            .map_err(|e| format!("cannot use the worker's socket: {e}"))?;
        let Unconfined {
            process,
            reader,
            tail,
            label,
        } = self;
        let (shared, child) = (process.shared.clone(), process.child.clone());
        let pid = process.pid;
        std::thread::Builder::new()
            .name(format!("worker-{pid}"))
            .spawn(move || route(reader, &shared, &child, &tail, &label))
            .map_err(|e| format!("cannot start the thread that reads the worker: {e}"))?;
        Ok((process, summary))
    }
}

impl WorkerProcess {
    /// The worker's process id.
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it answered any call.
    pub(super) fn served(&self) -> bool {
        self.shared.served.load(Ordering::Relaxed)
    }

    /// Why it ended (or was told to stop), once it has.
    pub(super) fn ended(&self) -> Option<String> {
        let stopped = self
            .shared
            .stopped_because
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        stopped.or_else(|| {
            self.shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .ended
                .clone()
        })
    }

    fn send(&self, message: &ToWorker) -> Result<(), String> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        message
            .send(&mut *writer)
            .map_err(|e| format!("cannot write to the worker: {e}"))
    }

    /// Sends call `method` with `input`; what arrives for it comes on the
    /// returned receiver. Err(why) when the worker has ended.
    pub(super) fn call(
        &self,
        method: &str,
        input: &str,
    ) -> Result<(u64, Receiver<Incoming>), String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(why) = &pending.ended {
                return Err(why.clone());
            }
            pending.calls.insert(id, tx);
        }
        let sent = self.send(&ToWorker::Call {
            id,
            method: method.to_owned(),
            input: input.to_owned(),
        });
        if let Err(e) = sent {
            self.forget(id);
            self.stop(&e);
            return Err(e);
        }
        Ok((id, rx))
    }

    /// Answers the plugin's host call made within call `id`.
    pub(super) fn answer(&self, id: u64, answer: Result<String, String>) -> Result<(), String> {
        self.send(&ToWorker::HostAnswer { id, answer })
    }

    /// Stops waiting for call `id`.
    pub(super) fn forget(&self, id: u64) {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pending.calls.remove(&id);
    }

    /// Kills the worker; `because` is what calls still waiting are told.
    pub(super) fn stop(&self, because: &str) {
        {
            let mut stopped = self
                .shared
                .stopped_because
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            stopped.get_or_insert_with(|| because.to_owned());
        }
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
    }

    /// Waits a moment for the process to end (it closed its socket), then
    /// kills it; its exit status.
    fn wait_briefly(&self) -> Option<ExitStatus> {
        wait_briefly(&self.child)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_briefly(child: &Mutex<Child>) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        {
            let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    return child.wait().ok();
                }
                Ok(None) => {}
                Err(_) => return None,
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The reader thread: hands each message to the call it belongs to, until
/// the worker ends; then tells every waiting call why.
fn route(mut reader: UnixStream, shared: &Shared, child: &Mutex<Child>, tail: &Tail, label: &str) {
    let broken = loop {
        let message = match FromWorker::read(&mut reader) {
            Ok(Some(message)) => message,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                break Some(format!("it sent something that is not a message ({e})"))
            }
            // The end of the stream, or of the process (a reset when it died
            // with a message of the server's unread).
            Ok(None) | Err(_) => break None,
        };
        let (id, incoming) = match message {
            FromWorker::HostCall { id, method, input } => {
                (id, Incoming::HostCall { method, input })
            }
            FromWorker::Reply { id, outcome } => {
                shared.served.store(true, Ordering::Relaxed);
                (id, Incoming::Reply(outcome))
            }
            other => break Some(format!("it sent a message out of turn ({other:?})")),
        };
        let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        let done = matches!(incoming, Incoming::Reply(_));
        let waiting = if done {
            pending.calls.remove(&id)
        } else {
            pending.calls.get(&id).cloned()
        };
        if let Some(waiting) = waiting {
            let _ = waiting.send(incoming);
        }
    };
    if let Some(why) = &broken {
        tracing::warn!(plugin = %label, "stopping a plugin worker: {why}");
        let mut stopped = shared
            .stopped_because
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        stopped.get_or_insert_with(|| format!("the worker was stopped: {why}"));
        drop(stopped);
        let _ = child.lock().map(|mut c| c.kill());
    }
    let status = wait_briefly(child);
    let stopped = shared
        .stopped_because
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let why = match stopped {
        Some(why) => why,
        None => {
            let why = describe_end(status, &tail.wait_closed());
            tracing::warn!(plugin = %label, "a plugin worker ended: {why}");
            why
        }
    };
    let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
    pending.ended = Some(why.clone());
    for (_, waiting) in pending.calls.drain() {
        let _ = waiting.send(Incoming::Ended(why.clone()));
    }
}

fn read_stderr(stderr: std::process::ChildStderr, tail: &Tail, label: &str, pid: u32) {
    let mut logged = 0;
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        let mut line = String::from_utf8_lossy(&line).trim_end().to_owned();
        if line.is_empty() {
            continue;
        }
        if line.len() > 500 {
            let mut cut = 500;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        if logged < LOGGED_LINES {
            tracing::warn!(plugin = %label, pid, "plugin worker says: {line}");
        } else if logged == LOGGED_LINES {
            tracing::warn!(plugin = %label, pid, "plugin worker says more; the rest is not logged");
        }
        logged += 1;
        let mut state = tail.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0.len() == TAIL_LINES {
            state.0.pop_front();
        }
        state.0.push_back(line);
    }
    let mut state = tail.state.lock().unwrap_or_else(|e| e.into_inner());
    state.1 = true;
    tail.closed.notify_all();
}

impl Tail {
    /// The last lines, once the worker closed its standard error (or after
    /// a moment, if a process it left behind holds it open).
    fn wait_closed(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (state, _) = self
            .closed
            .wait_timeout_while(state, Duration::from_millis(500), |s| !s.1)
            .unwrap_or_else(|e| e.into_inner());
        state.0.iter().cloned().collect()
    }
}

/// "killed by SIGSEGV (invalid memory access)" or "exited with status 0",
/// with the worker's last words when they explain it.
pub(super) fn describe_end(status: Option<ExitStatus>, last_lines: &[String]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let mut text = match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("the worker exited with status {code}"),
            (None, Some(signal)) => format!("the worker was killed by {}", signal_name(signal)),
            (None, None) => format!("the worker ended ({status})"),
        },
        None => "the worker ended".to_owned(),
    };
    // The lines Rust's runtime writes before it aborts say what happened.
    let telling: Vec<&str> = last_lines
        .iter()
        .map(String::as_str)
        .filter(|l| {
            l.contains("memory allocation of")
                || l.contains("overflowed its stack")
                || l.contains("panicked at")
                || l.contains("fatal runtime error")
        })
        .collect();
    if let Some(last) = telling.first() {
        text.push_str(&format!(" after: {last}"));
    }
    text
}

/// A signal's name and what it usually means.
fn signal_name(signal: i32) -> String {
    let (name, meaning) = match signal {
        1 => ("SIGHUP", "hang-up"),
        2 => ("SIGINT", "interrupted"),
        3 => ("SIGQUIT", "quit"),
        4 => ("SIGILL", "illegal instruction"),
        5 => ("SIGTRAP", "trap"),
        6 => ("SIGABRT", "aborted"),
        7 => ("SIGBUS", "bus error"),
        8 => ("SIGFPE", "arithmetic error"),
        9 => ("SIGKILL", "killed"),
        11 => ("SIGSEGV", "invalid memory access"),
        13 => ("SIGPIPE", "broken pipe"),
        15 => ("SIGTERM", "terminated"),
        31 => ("SIGSYS", "forbidden system call"),
        24 => ("SIGXCPU", "CPU time limit"),
        _ => return format!("signal {signal}"),
    };
    format!("{name} ({meaning})")
}

/// A worker to start, and where to send the started process.
type Launch = (Command, Sender<std::io::Result<Child>>);

/// Starts `command` from the launcher thread.
fn launch(command: Command) -> std::io::Result<Child> {
    static LAUNCHER: OnceLock<Mutex<Sender<Launch>>> = OnceLock::new();
    let launcher = LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Launch>();
        let started = std::thread::Builder::new()
            .name("worker-launcher".into())
            .spawn(move || {
                for (mut command, answer) in rx {
                    let _ = answer.send(command.spawn());
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the thread that starts plugin workers");
        }
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    launcher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, tx))
        .map_err(|_| std::io::Error::other("the worker launcher is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the worker launcher is gone"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_is_described_in_words() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_end(Some(ExitStatus::from_raw(11)), &[]),
            "the worker was killed by SIGSEGV (invalid memory access)"
        );
        assert_eq!(
            describe_end(Some(ExitStatus::from_raw(0)), &[]),
            "the worker exited with status 0"
        );
        assert_eq!(
            describe_end(
                Some(ExitStatus::from_raw(6)),
                &[
                    "noise".into(),
                    "memory allocation of 1073741824 bytes failed".into()
                ]
            ),
            "the worker was killed by SIGABRT (aborted) after: memory allocation of 1073741824 bytes failed"
        );
    }
}
