//! The worker process itself: `vigilo-server plugin-worker`, started by a
//! server, never by hand.
//!
//! Its standard input and output are its end of the server's socket. It
//! reads what to load, loads it with the very checks the server makes in
//! process, reports the manifest (or the refusal), confines itself when the
//! server says so, and then serves calls until the server closes the socket
//! (or ends, which ends the worker too).
//!
//! The main thread reads the socket and hands each call to one of a fixed
//! set of call threads, started before confinement (afterwards no thread
//! can be started); a host call a plugin makes inside a call goes to the
//! server and the thread waits for its answer, which the main thread hands
//! back. So a slow call holds one thread and the others keep answering.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use vigilo_sdk::loader::{CallError, PluginCalls, PluginErrorKind, PluginHandle};
use vigilo_sdk::Host;

use super::protocol::{FromWorker, Init, Refused, ToWorker};
use super::sandbox;

/// Runs a worker on the socket it was given; returns when the server
/// closes it.
pub fn run() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "vigilo plugin worker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A call for a call thread: its id, method and input.
type Job = (u64, String, String);

/// What the call threads share: the socket's writing side, and where the
/// answers to their host calls are to be handed.
struct Relay {
    writer: Mutex<UnixStream>,
    waiting: Mutex<HashMap<u64, Sender<Result<String, String>>>>,
}

impl Relay {
    fn send(&self, message: &FromWorker) -> std::io::Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        message.send(&mut *writer)
    }
}

fn serve() -> Result<(), String> {
    let socket = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| format!("standard input is not the server's socket: {e}"))?;
    let writer = socket
        .try_clone()
        .map_err(|e| format!("cannot use the socket: {e}"))?;
    let mut reader = BufReader::new(socket);
    let relay = Arc::new(Relay {
        writer: Mutex::new(writer),
        waiting: Mutex::new(HashMap::new()),
    });
    let read = |reader: &mut BufReader<UnixStream>| {
        ToWorker::read(reader).map_err(|e| format!("cannot read from the server: {e}"))
    };
    let init: Init = match read(&mut reader)? {
        Some(ToWorker::Init(json)) => {
            serde_json::from_str(&json).map_err(|e| format!("unreadable instructions: {e}"))?
        }
        Some(_) => return Err("the server did not say what to load".into()),
        None => return Ok(()),
    };
    let library = Path::new(&init.library);
    let handle = match crate::plugins::load::open_in_process(library, library, &init.vigilo_version)
    {
        Ok((handle, manifest, registrations)) => {
            let assets = manifest
                .frontend
                .iter()
                .filter_map(|a| handle.asset(&a.path).map(|bytes| (a.path.clone(), bytes)))
                .collect();
            let report = FromWorker::Loaded {
                manifest: serde_json::to_string(&manifest).map_err(|e| e.to_string())?,
                registrations: serde_json::to_string(&registrations).map_err(|e| e.to_string())?,
                assets,
            };
            relay.send(&report).map_err(|e| e.to_string())?;
            handle
        }
        Err(skip) => {
            let refused = Refused {
                reason: skip.reason,
                message: skip.message,
                detail: skip.detail,
                manifest: skip.manifest,
            };
            let json = serde_json::to_string(&refused).map_err(|e| e.to_string())?;
            return relay
                .send(&FromWorker::Refused(json))
                .map_err(|e| e.to_string());
        }
    };
    let memory = match read(&mut reader)? {
        Some(ToWorker::Confine(bytes)) => bytes,
        Some(_) => return Err("the server did not say to confine".into()),
        // The server runs this plugin elsewhere.
        None => return Ok(()),
    };
    let jobs = match confine(&init, memory, handle, &relay) {
        Ok((summary, jobs)) => {
            relay
                .send(&FromWorker::Confined(summary))
                .map_err(|e| e.to_string())?;
            jobs
        }
        Err(why) => {
            let _ = relay.send(&FromWorker::Unconfined(why.clone()));
            return Err(why);
        }
    };
    loop {
        match read(&mut reader)? {
            Some(ToWorker::Call { id, method, input }) => {
                if jobs.send((id, method, input)).is_err() {
                    return Err("the call threads are gone".into());
                }
            }
            Some(ToWorker::HostAnswer { id, answer }) => {
                let waiting = relay.waiting.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(waiting) = waiting.get(&id) {
                    let _ = waiting.send(answer);
                }
            }
            Some(_) => return Err("the server sent a message out of turn".into()),
            // The server is done with this worker (or gone). Call threads
            // still running are ended with the process.
            None => std::process::exit(0),
        }
    }
}

/// Confines the process and starts the call threads (in between, see
/// [`sandbox`]); returns what confines it and where calls go.
fn confine(
    init: &Init,
    memory: u64,
    handle: PluginHandle,
    relay: &Arc<Relay>,
) -> Result<(String, Sender<Job>), String> {
    // Nothing a plugin prints may reach the socket: standard output goes
    // to the server's log with standard error, and there is no input.
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| format!("cannot close standard input: {e}"))?;
    rustix::stdio::dup2_stdout(std::io::stderr())
        .map_err(|e| format!("cannot redirect standard output: {e}"))?;
    let user = sandbox::drop_privileges(init.run_as)
        .map_err(|e| format!("cannot drop privileges: {e}"))?;
    sandbox::stay_with_parent(init.server_pid)
        .map_err(|e| format!("cannot tie the worker to the server: {e}"))?;
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..init.threads {
        let (queue, relay) = (queue.clone(), relay.clone());
        std::thread::Builder::new()
            .name(format!("plugin-call-{n}"))
            .spawn(move || run_calls(handle, &queue, &relay))
            .map_err(|e| format!("cannot start the call threads: {e}"))?;
    }
    let cap = sandbox::limit_memory(memory).map_err(|e| format!("cannot limit memory: {e}"))?;
    let filter = sandbox::forbid_system_calls()?;
    let memory = if cap > 0 {
        format!("address space capped at {} MiB", cap >> 20)
    } else {
        "no memory cap (Linux only)".to_owned()
    };
    Ok((
        format!(
            "{user}, no new privileges, {memory}, {filter}, {} call threads",
            init.threads
        ),
        jobs,
    ))
}

/// A call thread: takes calls from the queue, runs them, sends the answers.
fn run_calls(handle: PluginHandle, queue: &Mutex<Receiver<Job>>, relay: &Arc<Relay>) {
    loop {
        let Ok((id, method, input)) = next_job(queue) else {
            return;
        };
        let host = RelayHost {
            id,
            relay: relay.clone(),
        };
        let outcome = match handle.call_text(&method, &input, &host) {
            Ok(text) => Ok(text.to_string()),
            Err(CallError::Plugin { kind, message }) => Err((kind, message)),
            Err(other) => Err((PluginErrorKind::Failed, other.to_string())),
        };
        if relay.send(&FromWorker::Reply { id, outcome }).is_err() {
            // The server is gone; the main thread notices too.
            return;
        }
    }
}

/// How long an idle call thread looks for the next call before it sleeps:
/// calls that come in quick succession are picked up without the cost of
/// being woken.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// The next call from the queue.
fn next_job(queue: &Mutex<Receiver<Job>>) -> Result<Job, mpsc::RecvError> {
    let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
    let spin_until = std::time::Instant::now() + SPIN;
    while std::time::Instant::now() < spin_until {
        match queue.try_recv() {
            Ok(job) => return Ok(job),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    queue.recv()
}

/// The host a plugin in a worker calls: each call goes to the server, tagged
/// with the call it is made in, and the server's answer comes back.
struct RelayHost {
    id: u64,
    relay: Arc<Relay>,
}

impl Host for RelayHost {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        let (tx, rx) = mpsc::channel();
        self.relay
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.id, tx);
        let sent = self.relay.send(&FromWorker::HostCall {
            id: self.id,
            method: method.to_owned(),
            input: input.to_string(),
        });
        let answer = match sent {
            Ok(()) => rx
                .recv()
                .unwrap_or_else(|_| Err("the server did not answer".into())),
            Err(e) => Err(format!("cannot reach the server: {e}")),
        };
        self.relay
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        let text = answer?;
        serde_json::from_str(&text).map_err(|e| format!("the server's answer is not JSON: {e}"))
    }
}
