//! One worker process, seen from the server: starting it, the handshake,
//! its connections, and noticing (and explaining) its end.
//!
//! Every worker is started from one long-lived thread, the launcher: on
//! Linux a worker asks to be killed when the thread that started it ends
//! (`PR_SET_PDEATHSIG` follows the thread, not the process), so the thread
//! must live as long as the server. The control socket is a pair made
//! before the worker starts; the worker gets its end as standard input and
//! output, so it never creates a socket itself. Once the worker has loaded
//! its library, the server makes one more socket pair per call thread and
//! hands the worker their ends over the control socket (`SCM_RIGHTS`). A
//! call takes a free connection, and the thread that makes it writes the
//! call, answers the plugin's host calls and reads the answer on it: no
//! thread in between on either side, and a slow call holds one connection
//! while the others keep answering.
//!
//! The worker's standard error is read line by line into the server's log;
//! its end (the pipe closing) is how the server notices a worker that ended
//! between calls, and its last lines explain a crash ("memory allocation of
//! ... failed", "has overflowed its stack").

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::ends::describe_end;
use super::launcher::launch;
use super::protocol::{spin_for_message, FromWorker, Init, ToWorker, SPIN};

/// The longest a worker may take to load its library and say so (or to
/// confine itself): generous, since a server starting on a busy machine
/// starts many workers at once.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a write to a worker may block (a worker that stops reading
/// is stopped).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Lines of a worker's standard error kept to explain its end.
const TAIL_LINES: usize = 16;

/// Lines of a worker's standard error written to the server's log before
/// the rest is dropped (a plugin cannot flood the log).
const LOGGED_LINES: usize = 200;

/// The subcommand of `vigilo-server` that runs a worker.
pub const WORKER_SUBCOMMAND: &str = "plugin-worker";

/// What the worker's connections, its monitor and its callers share.
#[derive(Debug, Default)]
struct Shared {
    /// Why it ended, once it has (or was told to stop).
    ended: Mutex<Option<String>>,
    /// Whether the worker answered any call.
    served: AtomicBool,
    /// The plugin's name (the file's, until the worker says).
    label: Mutex<String>,
    /// Whether the server kept the worker to serve calls: the end of one it
    /// did not keep (a refused library) is told where it was refused.
    kept: AtomicBool,
}

/// The last lines a worker wrote to standard error, and whether it has
/// closed it.
#[derive(Debug, Default)]
struct Tail {
    state: Mutex<(VecDeque<String>, bool)>,
    closed: Condvar,
}

/// One connection to one of a worker's call threads.
#[derive(Debug)]
pub(super) struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// A running worker process.
#[derive(Debug)]
pub(super) struct WorkerProcess {
    pid: u32,
    child: Arc<Mutex<Child>>,
    /// Kept open: the worker ends when the server closes it.
    _control: UnixStream,
    free: Mutex<Vec<Conn>>,
    returned: Condvar,
    shared: Arc<Shared>,
    tail: Arc<Tail>,
}

/// A worker that loaded its library and has not confined itself yet.
pub(super) struct Unconfined {
    pid: u32,
    child: Arc<Mutex<Child>>,
    control: UnixStream,
    tail: Arc<Tail>,
    shared: Arc<Shared>,
    threads: usize,
    /// Whether it became a running worker (else it is killed when dropped).
    kept: bool,
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
        // The server's jemalloc purges through a background thread; a
        // confined worker may not start threads, so its jemalloc does not.
        .env("_RJEM_MALLOC_CONF", "background_thread:false")
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
    let shared = Arc::new(Shared {
        label: Mutex::new(label.to_owned()),
        ..Shared::default()
    });
    if let Some(stderr) = stderr {
        let (tail, shared, watched) = (tail.clone(), shared.clone(), child.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("worker-log-{pid}"))
            .spawn(move || watch(stderr, &tail, &shared, &watched, pid));
        if spawned.is_err() {
            // Nobody reads the pipe: the worker would block writing to it.
            let _ = child.lock().map(|mut c| c.kill());
            return Err("cannot start the thread that reads the worker's output".into());
        }
    }
    server_end
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .and_then(|()| server_end.set_read_timeout(Some(LOAD_TIMEOUT)))
        .map_err(|e| format!("cannot use the worker's socket: {e}"))?;
    let mut unconfined = Unconfined {
        pid,
        child,
        control: server_end,
        tail,
        shared,
        threads: init.threads,
        kept: false,
    };
    let init = serde_json::to_string(init).map_err(|e| e.to_string())?;
    ToWorker::Init(init)
        .send(&mut unconfined.control)
        .map_err(|e| format!("cannot write to the worker: {e}"))?;
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
        match FromWorker::read(&mut self.control) {
            Ok(Some(message)) => Ok(message),
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
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(format!("the worker's answer could not be read: {e}"))
            }
            Ok(None) | Err(_) => {
                let status = wait_briefly(&self.child);
                Err(format!(
                    "the worker ended before it could {doing}: {}",
                    describe_end(status, &self.tail.wait_closed())
                ))
            }
        }
    }

    /// Tells the worker to confine itself (allowing the plugin
    /// `memory_limit` bytes) and hands it a connection per call thread;
    /// waits until it has confined itself. Returns the running worker and
    /// what its confinement is.
    pub(super) fn confine(
        mut self,
        name: &str,
        memory_limit: u64,
    ) -> Result<(WorkerProcess, String), String> {
        name.clone_into(&mut self.shared.label.lock().unwrap_or_else(|e| e.into_inner()));
        let mut conns = Vec::with_capacity(self.threads);
        let mut theirs = Vec::with_capacity(self.threads);
        for _ in 0..self.threads {
            let (ours, their) = UnixStream::pair()
                .map_err(|e| format!("cannot create the worker's sockets: {e}"))?;
            ours.set_write_timeout(Some(WRITE_TIMEOUT))
                .map_err(|e| format!("cannot use the worker's sockets: {e}"))?;
            let reader = ours
                .try_clone()
                .map_err(|e| format!("cannot use the worker's sockets: {e}"))?;
            conns.push(Conn {
                reader: BufReader::new(reader),
                writer: ours,
            });
            theirs.push(their);
        }
        ToWorker::Confine(memory_limit)
            .send(&mut self.control)
            .map_err(|e| format!("cannot write to the worker: {e}"))?;
        send_fds(&self.control, &theirs)
            .map_err(|e| format!("cannot hand the worker its connections: {e}"))?;
        drop(theirs);
        let summary = match self.expect("confine itself")? {
            FromWorker::Confined(summary) => summary,
            FromWorker::Unconfined(why) => {
                return Err(format!("the worker could not confine itself: {why}"))
            }
            other => return Err(format!("the worker answered out of turn: {other:?}")),
        };
        let control = self
            .control
            .try_clone()
            .map_err(|e| format!("cannot use the worker's socket: {e}"))?;
        self.kept = true;
        self.shared.kept.store(true, Ordering::SeqCst);
        Ok((
            WorkerProcess {
                pid: self.pid,
                child: self.child.clone(),
                _control: control,
                free: Mutex::new(conns),
                returned: Condvar::new(),
                shared: self.shared.clone(),
                tail: self.tail.clone(),
            },
            summary,
        ))
    }
}

/// Sends `fds` over `socket` with one byte of data.
fn send_fds(socket: &UnixStream, fds: &[UnixStream]) -> std::io::Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::os::fd::AsFd;
    let borrowed: Vec<_> = fds.iter().map(|s| s.as_fd()).collect();
    let mut space =
        vec![std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(std::io::Error::other(
            "too many connections for one message",
        ));
    }
    sendmsg(
        socket,
        &[std::io::IoSlice::new(&[1])],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// What a call to a worker came to, short of the plugin's answer.
pub(super) enum Broken {
    /// The worker ended; why.
    Ended(String),
    /// No answer before the deadline.
    TimedOut,
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
        self.shared
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Why it ended, waiting a moment for it to have ended and said why.
    fn end(&self) -> String {
        if let Some(why) = self.ended() {
            return why;
        }
        let status = wait_briefly(&self.child);
        let why = describe_end(status, &self.tail.wait_closed());
        self.shared
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(why)
            .clone()
    }

    /// A free connection, waiting for one until `deadline`.
    fn take(&self, deadline: Instant) -> Result<Conn, Broken> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(why) = self.ended() {
                return Err(Broken::Ended(why));
            }
            if let Some(conn) = free.pop() {
                return Ok(conn);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Broken::TimedOut);
            }
            free = self
                .returned
                .wait_timeout(free, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn give_back(&self, conn: Conn) {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        self.returned.notify_one();
    }

    /// Calls `method` with `input` on a free connection before `deadline`,
    /// answering the plugin's host calls with `answer`: the plugin's
    /// outcome, or what broke.
    pub(super) fn call(
        &self,
        method: &str,
        input: &str,
        deadline: Instant,
        answer: &dyn Fn(&str, &str) -> Result<String, String>,
    ) -> Result<Result<String, (vigilo_sdk::loader::PluginErrorKind, String)>, Broken> {
        let mut conn = self.take(deadline)?;
        let sent = ToWorker::Call {
            id: 1,
            method: method.to_owned(),
            input: input.to_owned(),
        }
        .send(&mut conn.writer);
        if sent.is_err() {
            return Err(Broken::Ended(self.end()));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timed = conn
                .reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_micros(1))));
            if timed.is_err() {
                return Err(Broken::Ended(self.end()));
            }
            spin_for_message(&conn.reader, SPIN.min(left));
            match FromWorker::read(&mut conn.reader) {
                Ok(Some(FromWorker::HostCall { id, method, input })) => {
                    let reply = ToWorker::HostAnswer {
                        id,
                        answer: answer(&method, &input),
                    };
                    if reply.send(&mut conn.writer).is_err() {
                        return Err(Broken::Ended(self.end()));
                    }
                }
                Ok(Some(FromWorker::Reply { outcome, .. })) => {
                    self.shared.served.store(true, Ordering::Relaxed);
                    self.give_back(conn);
                    return Ok(outcome);
                }
                Ok(Some(other)) => {
                    let why = format!(
                        "the worker was stopped: it sent a message out of turn ({other:?})"
                    );
                    self.stop(&why);
                    return Err(Broken::Ended(why));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Broken::TimedOut)
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    let why = format!(
                        "the worker was stopped: it sent something that is not a message ({e})"
                    );
                    self.stop(&why);
                    return Err(Broken::Ended(why));
                }
                // The end of the stream, or of the process (a reset when it
                // died with a message of the server's unread).
                Ok(None) | Err(_) => return Err(Broken::Ended(self.end())),
            }
        }
    }

    /// Kills the worker; `because` is what calls still waiting are told.
    pub(super) fn stop(&self, because: &str) {
        {
            let mut ended = self.shared.ended.lock().unwrap_or_else(|e| e.into_inner());
            ended.get_or_insert_with(|| because.to_owned());
        }
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        drop(child);
        self.returned.notify_all();
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

impl Drop for Unconfined {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // Not kept (the library was refused, or its plugin runs in process):
        // its end is no news for the log.
        self.shared
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| "the worker was not needed".to_owned());
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

/// The monitor thread: logs what the worker writes to standard error, and
/// once the worker closes it (it ended), records why it ended.
fn watch(
    stderr: std::process::ChildStderr,
    tail: &Tail,
    shared: &Shared,
    child: &Mutex<Child>,
    pid: u32,
) {
    let label = || shared.label.lock().map(|l| l.clone()).unwrap_or_default();
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
            tracing::warn!(plugin = %label(), pid, "plugin worker says: {line}");
        } else if logged == LOGGED_LINES {
            tracing::warn!(plugin = %label(), pid, "plugin worker says more; the rest is not logged");
        }
        logged += 1;
        let mut state = tail.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0.len() == TAIL_LINES {
            state.0.pop_front();
        }
        state.0.push_back(line);
    }
    let lines = {
        let mut state = tail.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 = true;
        tail.closed.notify_all();
        state.0.iter().cloned().collect::<Vec<_>>()
    };
    let status = wait_briefly(child);
    let mut ended = shared.ended.lock().unwrap_or_else(|e| e.into_inner());
    if ended.is_none() {
        let why = describe_end(status, &lines);
        if shared.kept.load(Ordering::SeqCst) {
            tracing::warn!(plugin = %label(), pid, "a plugin worker ended: {why}");
        }
        *ended = Some(why);
    }
}

impl Tail {
    /// The last lines, once the worker closed its standard error (or after
    /// a moment, if a process it left behind holds it open).
    fn wait_closed(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (state, _) = self
            .closed
            .wait_timeout_while(state, Duration::from_secs(2), |s| !s.1)
            .unwrap_or_else(|e| e.into_inner());
        state.0.iter().cloned().collect()
    }
}
