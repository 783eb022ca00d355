//! Every worker is started from one long-lived thread, the launcher: on
//! Linux a worker asks to be killed when the thread that started it ends
//! (`PR_SET_PDEATHSIG` follows the thread, not the process), so the thread
//! must live as long as the server.

use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

/// A worker to start, and where to send the started process.
type Launch = (Command, Sender<std::io::Result<Child>>);

/// Starts `command` from the launcher thread.
pub(super) fn launch(command: Command) -> std::io::Result<Child> {
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
