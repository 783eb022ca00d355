//! A connection's bytes: every error answer has the API's error body, and
//! the connection's deadlines are kept.
//!
//! Some requests never reach the router: the HTTP parser itself answers a
//! request line that is too long (414), headers that are too large or too
//! many (431) and a request it cannot parse (400), with an empty body.
//! [`Shaped`] wraps each connection and gives those answers the same
//! `{"error": {"code", "message"}}` body as every other error. It also
//! closes the connection when its header-read or idle deadline passes, or
//! when the server closes it (see [`super::connections`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::connection::Connection;

/// A connection that rewrites the parser's empty error answers and keeps
/// its deadlines.
pub struct Shaped<I> {
    inner: I,
    pending: Vec<u8>,
    sent: usize,
    conn: Option<Arc<Connection>>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> Shaped<I> {
    /// Wraps `inner`.
    pub fn new(inner: I) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            sent: 0,
            conn: None,
            timer: None,
        }
    }

    /// Wraps `inner`, the I/O of `conn`, keeping its deadlines.
    pub fn watched(inner: I, conn: Arc<Connection>) -> Self {
        Self {
            conn: Some(conn),
            ..Self::new(inner)
        }
    }

    /// Fails once the connection is closed or its deadline has passed;
    /// otherwise arranges to be woken at the deadline.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(conn) = &self.conn else {
            return Ok(());
        };
        conn.register(cx);
        if conn.closing() {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        if let Some(deadline) = conn.deadline() {
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        Ok(())
    }
}

/// The answer with a JSON body in place of `head`, when `head` is one of the
/// parser's own empty error answers.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let (code, message) = if head.starts_with(b"HTTP/1.1 414 ") {
        ("uri_too_long", "the request's URL is too long")
    } else if head.starts_with(b"HTTP/1.1 431 ") {
        (
            "headers_too_large",
            "the request's headers are too large or too many",
        )
    } else if head.starts_with(b"HTTP/1.1 400 ") {
        ("bad_request", "the request is not valid HTTP")
    } else {
        return None;
    };
    let text = std::str::from_utf8(head).ok()?;
    let text = text.strip_suffix("\r\n\r\n")?;
    if text.contains("\r\n\r\n") {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0") || lower.contains("\r\ncontent-type:") {
        return None;
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut out = String::new();
    for line in text.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("content-type: application/json\r\n");
    out.push_str(&crate::edge::security_header_lines());
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Some(out.into_bytes())
}

impl<I: AsyncWrite + Unpin> Shaped<I> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Shaped<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.conn.as_ref().is_some_and(|c| c.closing()) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    if let Some(conn) = &self.conn {
                        conn.bytes_arrived();
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                self.check(cx)?;
                Poll::Pending
            }
            failed => failed,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Shaped<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.conn.as_ref().is_some_and(|c| c.closing()) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        ready!(self.poll_pending(cx))?;
        if let Some(answer) = rewrite(buf) {
            self.pending = answer;
            self.sent = 0;
            // Written out by later calls (flush or shutdown) if not now.
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn only_the_parsers_empty_answers_are_rewritten() {
        let canned =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(canned).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("\"headers_too_large\""), "{out}");
        assert!(out.contains("content-type: application/json\r\n"), "{out}");
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n";
        assert!(rewrite(ours).is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
