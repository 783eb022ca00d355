//! One client connection's state: its [`Limits`], where it is in its life
//! (reading a request's head, serving, idle) and whether it is being
//! closed. Shared by the connection's I/O ([`super::wire`]) and the
//! registry that enforces the limits ([`super::connections`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Context;
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::time::Instant;

use crate::config::Config;

/// The connection limits (see the module documentation).
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long a request's line and headers may take to arrive.
    pub header_read: Duration,
    /// How long a request's body may take to arrive.
    pub body_read: Duration,
    /// How long a connection may stay open with no request in progress.
    pub idle: Duration,
    /// How many connections may be open at once.
    pub max_connections: usize,
}

impl Limits {
    /// The limits `config` sets.
    pub fn from_config(config: &Config) -> Self {
        Limits {
            header_read: Duration::from_secs(config.header_read_timeout_secs),
            body_read: Duration::from_secs(config.body_read_timeout_secs),
            idle: Duration::from_secs(config.idle_timeout_secs),
            max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
        }
    }
}

/// Where a connection is in its life, for its deadlines.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for (or reading) a request's line and headers since then.
    Head(Instant),
    /// No request in progress since then.
    Idle(Instant),
    /// A request is being served.
    Busy,
}

/// One open connection, shared by its I/O and the requests it carries.
#[derive(Debug)]
pub struct Connection {
    limits: Arc<Limits>,
    phase: Mutex<Phase>,
    requests: AtomicUsize,
    closing: AtomicBool,
    waker: AtomicWaker,
}

impl Connection {
    pub(super) fn new(limits: Arc<Limits>) -> Self {
        Connection {
            limits,
            // Browsers open connections ahead of need: silent, a new one is
            // idle, not a slow request.
            phase: Mutex::new(Phase::Idle(Instant::now())),
            requests: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the connection is to be closed if nothing changes.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Head(since) => Some(since + self.limits.header_read),
            Phase::Idle(since) => Some(since + self.limits.idle),
            Phase::Busy => None,
        }
    }

    /// Since when the connection has been without a request being served
    /// (now, while one is).
    pub(super) fn quiet_since(&self) -> Instant {
        match *self.phase() {
            Phase::Head(since) | Phase::Idle(since) => since,
            Phase::Busy => Instant::now(),
        }
    }

    /// How long a request's body may take to arrive.
    pub(super) fn body_read_limit(&self) -> Duration {
        self.limits.body_read
    }

    /// Bytes arrived: an idle connection starts reading a request's head.
    pub(super) fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// Whether the connection is to be closed now.
    pub(super) fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Registers the task to wake when the connection is closed.
    pub(super) fn register(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
    }

    /// Whether no request is in progress.
    pub(super) fn idle(&self) -> bool {
        self.requests.load(Ordering::SeqCst) == 0 && !self.closing()
    }

    /// Closes the connection (its I/O fails from now on).
    pub(super) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    pub(super) fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        *self.phase() = Phase::Busy;
    }

    pub(super) fn request_ended(&self) {
        if self.requests.fetch_sub(1, Ordering::SeqCst) == 1 {
            *self.phase() = Phase::Idle(Instant::now());
        }
    }
}
