//! The server's connections: accepting them, the limits on how slowly a
//! client may send and how many connections it may hold, and closing them
//! at shutdown.
//!
//! - **Header read** (`header_read_timeout_secs`): a request's line and
//!   headers must arrive within this time of their first byte; otherwise
//!   the connection is closed.
//! - **Body read** (`body_read_timeout_secs`): a request's body must arrive
//!   within this time of its headers; otherwise the request is answered
//!   `408 request_timeout` and the connection closed.
//! - **Idle** (`idle_timeout_secs`): a connection with no request in
//!   progress (kept alive after one, or opened ahead of time as browsers
//!   do, and silent) is closed after this time.
//! - **Connection cap** (`max_connections`): at the cap, a new connection
//!   takes the place of the connection that has been idle (or sending its
//!   headers) the longest, which is closed; when every connection is busy
//!   with a request, the new one is answered `503 too_many_connections`
//!   (with `Retry-After`) and closed. The server keeps accepting either way,
//!   so `/healthz` answers while a client holds many connections.
//!
//! At startup the process's open-file limit is raised to its hard limit,
//! and the cap is lowered (with a warning) if the limit cannot hold it.
//! When the server stops, it stops accepting, lets each connection finish
//! the request it is serving, closes idle ones at once, and closes whatever
//! is still open at the deadline it is given.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::header::{CONNECTION, RETRY_AFTER};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::connection::Connection;
pub use super::connection::Limits;
use super::wire::Shaped;
use crate::error::ApiError;

/// Descriptors kept for everything but client connections (the database
/// pool, plugin files, logs).
const RESERVED_FILES: u64 = 128;

/// Refused connections being answered at once, at most.
const REFUSING_AT_ONCE: usize = 64;

/// The largest request line and headers, together.
const HEAD_LIMIT: usize = 64 * 1024;

/// Raises the soft open-file limit to the hard one, and returns how many
/// connections fit under it with room for everything else.
pub fn fit_connections(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    let Some(files) = limit.current else {
        return wanted;
    };
    let room = usize::try_from(files.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
    if wanted > room {
        tracing::warn!(
            max_connections = wanted,
            open_file_limit = files,
            "the open-file limit cannot hold max_connections; at most {room} connections are served"
        );
        return room;
    }
    wanted
}

/// The open connections, oldest first.
#[derive(Debug, Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Connection>>>,
}

impl Registry {
    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Connection>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for one more connection under `cap`: closes the one idle
    /// the longest if needed. False when every connection is busy.
    fn make_room(&self, cap: usize) -> bool {
        let open = self.open();
        if open.len() < cap {
            return true;
        }
        let oldest_idle = open
            .values()
            .filter(|c| c.idle())
            .min_by_key(|c| c.quiet_since());
        match oldest_idle {
            Some(conn) => {
                conn.close();
                true
            }
            None => false,
        }
    }

    fn close_all(&self) {
        for conn in self.open().values() {
            conn.close();
        }
    }
}

/// Serves `app` on `listener` under `limits` until `stop` resolves, then
/// stops accepting and lets open connections finish until `deadline`
/// (resolved later), when whatever is still open is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
    deadline: impl std::future::Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let registry = Arc::new(Registry::default());
    let refusing = Arc::new(tokio::sync::Semaphore::new(REFUSING_AT_ONCE));
    let (graceful_tx, graceful_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    let next_id = AtomicU64::new(0);
    let mut accept_failures = 0u32;
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                accept_failures = 0;
                accepted
            }
            Err(e) => {
                // Out of descriptors (or another passing failure): free one
                // if a connection is idle, and try again shortly.
                if accept_failures == 0 {
                    tracing::warn!(error = %e, "cannot accept a connection");
                }
                accept_failures = accept_failures.saturating_add(1);
                registry.make_room(0);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if !registry.make_room(limits.max_connections) {
            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                tasks.spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        }
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Connection::new(limits.clone()));
        registry.open().insert(id, conn.clone());
        let (app, registry, graceful) = (app.clone(), registry.clone(), graceful_rx.clone());
        tasks.spawn(async move {
            serve_connection(stream, peer, app, conn, graceful).await;
            registry.open().remove(&id);
        });
    }
    drop(listener);
    let _ = graceful_tx.send(true);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { break },
            () = &mut deadline => {
                let open = registry.open().len();
                if open > 0 {
                    tracing::warn!(
                        connections = open,
                        "requests still open after the shutdown grace period were dropped"
                    );
                }
                registry.close_all();
                tasks.shutdown().await;
                break;
            }
        }
    }
}

/// Serves one connection with HTTP/1.1 until it ends, or gracefully once
/// `graceful` turns true.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    conn: Arc<Connection>,
    mut graceful: tokio::sync::watch::Receiver<bool>,
) {
    let io = TokioIo::new(Shaped::watched(stream, conn.clone()));
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(conn.clone());
        let app = app.clone();
        async move { tower::ServiceExt::oneshot(app, request).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).max_buf_size(HEAD_LIMIT);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let stopping = async {
        let _ = graceful.wait_for(|g| *g).await;
    };
    tokio::select! {
        result = served.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended");
            }
            return;
        }
        () = stopping => served.as_mut().graceful_shutdown(),
    }
    if let Err(e) = served.await {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": "the server holds as many connections as it may; try again in a moment",
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n{}\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        crate::edge::security_header_lines(),
        body.len()
    );
    let answered = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent (briefly), so closing does not reset
        // the connection before it reads the answer.
        let mut sink = [0u8; 4096];
        let mut read = 0usize;
        while read < 64 * 1024 {
            match tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    if let Ok(Err(e)) = answered {
        tracing::debug!(error = %e, "a refused connection ended");
    }
}

/// The request half of the connection limits, as a router layer: marks the
/// connection busy while a request (and its answer) is in progress, holds
/// the body to the body-read timeout, and answers a body that arrived too
/// slowly with 408: the API's error body under the API, else
/// `timed_out_page()`.
pub async fn request_limits(
    request: Request,
    next: Next,
    timed_out_page: fn() -> Response,
) -> Response {
    let Some(conn) = request.extensions().get::<Arc<Connection>>().cloned() else {
        return next.run(request).await;
    };
    conn.request_started();
    let in_progress = InProgress(conn.clone());
    let is_api = super::api_side(request.uri().path());
    let timed_out = Arc::new(AtomicBool::new(false));
    let read_to_end = Arc::new(AtomicBool::new(request.body().is_end_stream()));
    let deadline = Instant::now() + conn.body_read_limit();
    let request = request.map(|body| {
        Body::new(TimedBody {
            inner: body,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            timed_out: timed_out.clone(),
            read_to_end: read_to_end.clone(),
        })
    });
    let mut response = next.run(request).await;
    // An answer given before the request's body was read (a refused token,
    // a bad header, a body over its limit) closes the connection, and says
    // so: the rest of the body is still on its way, and a client that sent
    // its next request on this connection would find it closed under it.
    if !read_to_end.load(Ordering::SeqCst) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if timed_out.load(Ordering::SeqCst) {
        response = if is_api {
            ApiError::RequestTimeout(format!(
                "the request body did not arrive within {} s",
                conn.body_read_limit().as_secs()
            ))
            .into_response()
        } else {
            timed_out_page()
        };
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if response.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(RETRY_AFTER)
            .or_insert(HeaderValue::from_static("2"));
    }
    response.map(|body| {
        Body::new(Tracked {
            inner: body,
            _in_progress: in_progress,
        })
    })
}

/// Ends the connection's request when dropped (with the answer's body).
struct InProgress(Arc<Connection>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The error of a body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body that fails once its deadline passes with data still to
/// come.
struct TimedBody {
    inner: Body,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
    /// Set once the whole body was read.
    read_to_end: Arc<AtomicBool>,
}

impl HttpBody for TimedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                if this.sleep.as_mut().poll(cx).is_ready() {
                    this.timed_out.store(true, Ordering::SeqCst);
                    return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
                }
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.read_to_end.store(true, Ordering::SeqCst);
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => {
                if this.inner.is_end_stream() {
                    this.read_to_end.store(true, Ordering::SeqCst);
                }
                Poll::Ready(Some(frame))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.read_to_end.store(true, Ordering::SeqCst);
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that keeps its request in progress until it is sent
/// (or dropped).
struct Tracked {
    inner: Body,
    _in_progress: InProgress,
}

impl HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
