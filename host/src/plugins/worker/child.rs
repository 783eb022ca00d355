//! The worker process itself: `vigilo-server plugin-worker`, started by a
//! server, never by hand.
//!
//! Its standard input and output are its end of the server's socket. It
//! reads what to load, loads it with the very checks the server makes in
//! process, reports the manifest (or the refusal), confines itself when the
//! server says so, and then serves calls until the server closes the socket
//! (or ends, which ends the worker too).
//!
//! Each call thread owns one connection the server handed over, started
//! before confinement (afterwards no thread can be started): it reads a
//! call, runs it, sends the plugin's host calls on the same connection and
//! reads their answers there, and writes the answer. So a slow call holds
//! one thread and the others keep answering, and no message passes from
//! one thread to another.

use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use serde_json::Value;
use vigilo_sdk::loader::{CallError, PluginCalls, PluginErrorKind, PluginHandle};
use vigilo_sdk::Host;

use super::protocol::{spin_for_message, FromWorker, Init, Refused, ToWorker, SPIN};
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

fn serve() -> Result<(), String> {
    // The control socket is read without a buffer: the message that hands
    // over the call connections must be read with its file descriptors.
    let mut control = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| format!("standard input is not the server's socket: {e}"))?;
    let read = |control: &mut UnixStream| {
        ToWorker::read(control).map_err(|e| format!("cannot read from the server: {e}"))
    };
    let send = |control: &mut UnixStream, message: &FromWorker| {
        message
            .send(control)
            .map_err(|e| format!("cannot write to the server: {e}"))
    };
    let init: Init = match read(&mut control)? {
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
            send(&mut control, &report)?;
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
            return send(&mut control, &FromWorker::Refused(json));
        }
    };
    let memory = match read(&mut control)? {
        Some(ToWorker::Confine(bytes)) => bytes,
        Some(_) => return Err("the server did not say to confine".into()),
        // The server runs this plugin elsewhere.
        None => return Ok(()),
    };
    let conns = receive_fds(&control, init.threads)
        .map_err(|e| format!("cannot receive the call connections: {e}"))?;
    match confine(&init, memory, handle, conns) {
        Ok(summary) => send(&mut control, &FromWorker::Confined(summary))?,
        Err(why) => {
            let _ = send(&mut control, &FromWorker::Unconfined(why.clone()));
            return Err(why);
        }
    }
    // The server says nothing more here; it closes the socket when it is
    // done with this worker (or ends). Call threads still running are
    // ended with the process.
    let _ = read(&mut control);
    std::process::exit(0)
}

/// Receives the `expected` call connections the server sends with one byte.
fn receive_fds(control: &UnixStream, expected: usize) -> std::io::Result<Vec<UnixStream>> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space =
        vec![std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(expected))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    recvmsg(
        control,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut ancillary,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut conns = Vec::new();
    for message in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            conns.extend(fds.map(UnixStream::from));
        }
    }
    if conns.len() != expected {
        return Err(std::io::Error::other(format!(
            "{} connections came, {expected} were expected",
            conns.len()
        )));
    }
    Ok(conns)
}

/// Confines the process and starts a call thread per connection (in
/// between, see [`sandbox`]); returns what confines it.
fn confine(
    init: &Init,
    memory: u64,
    handle: PluginHandle,
    conns: Vec<UnixStream>,
) -> Result<String, String> {
    // Nothing a plugin prints may reach a socket: standard output goes to
    // the server's log with standard error, and there is no input.
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| format!("cannot close standard input: {e}"))?;
    rustix::stdio::dup2_stdout(std::io::stderr())
        .map_err(|e| format!("cannot redirect standard output: {e}"))?;
    let user = sandbox::drop_privileges(init.run_as)
        .map_err(|e| format!("cannot drop privileges: {e}"))?;
    sandbox::stay_with_parent(init.server_pid)
        .map_err(|e| format!("cannot tie the worker to the server: {e}"))?;
    let threads = conns.len();
    // Every call thread sets itself up (its buffers, and the allocator's
    // state for a new thread, which can reserve a lot of address space)
    // before the cap is measured and set: on a busy machine a thread may
    // not have run yet when it is spawned, and its first allocation would
    // come out of the plugin's allowance, or fail under a small one.
    let ready = std::sync::Arc::new(std::sync::Barrier::new(threads + 1));
    for (n, conn) in conns.into_iter().enumerate() {
        let ready = ready.clone();
        std::thread::Builder::new()
            .name(format!("plugin-call-{n}"))
            .spawn(move || serve_calls(handle, conn, &ready))
            .map_err(|e| format!("cannot start the call threads: {e}"))?;
    }
    ready.wait();
    let cap = sandbox::limit_memory(memory).map_err(|e| format!("cannot limit memory: {e}"))?;
    let filter = sandbox::forbid_system_calls()?;
    let memory = if cap > 0 {
        format!("address space capped at {} MiB", cap >> 20)
    } else {
        "no memory cap (Linux only)".to_owned()
    };
    Ok(format!(
        "{user}, no new privileges, {memory}, {filter}, {threads} call threads"
    ))
}

/// A call thread: reads calls from its connection, runs them, and writes
/// the answers, until the server closes it.
fn serve_calls(handle: PluginHandle, conn: UnixStream, ready: &std::sync::Barrier) {
    let writer = conn.try_clone();
    let conn = writer.map(|writer| {
        Mutex::new(Conn {
            reader: BufReader::new(conn),
            writer,
        })
    });
    ready.wait();
    let Ok(conn) = conn else { return };
    loop {
        let next = {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            // Calls often come in quick succession.
            spin_for_message(&conn.reader, SPIN);
            ToWorker::read(&mut conn.reader)
        };
        let (id, method, input) = match next {
            Ok(Some(ToWorker::Call { id, method, input })) => (id, method, input),
            // Closed, or nonsense: this connection is done.
            _ => return,
        };
        let host = RelayHost { id, conn: &conn };
        let outcome = match handle.call_text(&method, &input, &host) {
            Ok(text) => Ok(text.to_string()),
            Err(CallError::Plugin { kind, message }) => Err((kind, message)),
            Err(other) => Err((PluginErrorKind::Failed, other.to_string())),
        };
        let reply = FromWorker::Reply { id, outcome };
        let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        if reply.send(&mut conn.writer).is_err() {
            return;
        }
    }
}

/// One call connection, as a call thread uses it.
struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// The host a plugin in a worker calls: each call goes to the server on the
/// connection of the call it is made in, and the server's answer comes
/// back on it.
struct RelayHost<'a> {
    id: u64,
    conn: &'a Mutex<Conn>,
}

impl Host for RelayHost<'_> {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        FromWorker::HostCall {
            id: self.id,
            method: method.to_owned(),
            input: input.to_string(),
        }
        .send(&mut conn.writer)
        .map_err(|e| format!("cannot reach the server: {e}"))?;
        let text = match ToWorker::read(&mut conn.reader) {
            Ok(Some(ToWorker::HostAnswer { answer, .. })) => answer?,
            _ => return Err("the server did not answer".into()),
        };
        serde_json::from_str(&text).map_err(|e| format!("the server's answer is not JSON: {e}"))
    }
}
