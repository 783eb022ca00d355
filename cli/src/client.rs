//! HTTP access to the Vigilo REST API and the mapping of failures to exit codes.
//!
//! Every request goes through [`Client`], which attaches the bearer token,
//! decodes JSON bodies and turns non-2xx answers into a [`Failure`] carrying
//! the process exit code the CLI should end with.
//!
//! Requests that create something the server can recognise a second time —
//! items, workspaces, invites, tokens, certificates and playbook runs — go
//! through [`Client::create`] (and its variants): each carries a fresh
//! random `Idempotency-Key` header and is sent once more, with the same key,
//! when the connection fails before any response arrives (connection
//! refused or reset, a timeout). An answer from the server, even an error
//! status, is never retried.

use std::fmt;
use std::thread;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

/// Process exit codes of the `vigilo` binary.
pub mod exit {
    /// The command succeeded.
    pub const OK: u8 = 0;
    /// Unexpected error: local I/O, a bad local file, an unreadable response.
    pub const UNEXPECTED: u8 = 1;
    /// Usage error: bad flags or arguments, missing URL or workspace.
    pub const USAGE: u8 = 2;
    /// Not authenticated: no token configured, or the server answered 401.
    pub const UNAUTHENTICATED: u8 = 3;
    /// Forbidden: the server answered 403.
    pub const FORBIDDEN: u8 = 4;
    /// Not found: the server answered 404.
    pub const NOT_FOUND: u8 = 5;
    /// Rejected input or conflict: 400, 409, 410, 413, 415 or 422.
    pub const REJECTED: u8 = 6;
    /// The server could not be reached or failed (5xx).
    pub const UNAVAILABLE: u8 = 7;
    /// Partial failure: a bulk operation where some rows failed.
    pub const PARTIAL: u8 = 8;
    /// `audit verify` found tampering.
    pub const TAMPERED: u8 = 9;
    /// `cert list --fail-if-any` listed at least one certificate.
    pub const CERTIFICATES_MATCHED: u8 = 10;
    /// A playbook run failed, a dry run found a step that would fail, a test
    /// message was not delivered, or `schedule run` did not succeed.
    pub const RUN_FAILED: u8 = 11;
}

/// An error that knows which exit code it should produce.
#[derive(Debug)]
pub struct Failure {
    /// Exit code for the process.
    pub code: u8,
    /// Human readable explanation (printed after `error: `).
    pub message: String,
    /// HTTP status, when the failure is an answer from the server.
    pub status: Option<u16>,
}

impl Failure {
    /// A failure that is not an answer from the server.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            status: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error should end the process with.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
        .map_or(exit::UNEXPECTED, |f| f.code)
}

/// The HTTP status carried by an error, if it came from the server.
pub fn http_status(err: &anyhow::Error) -> Option<u16> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
        .and_then(|f| f.status)
}

/// Exit code for an HTTP error status.
pub fn exit_for_status(status: u16) -> u8 {
    match status {
        401 => exit::UNAUTHENTICATED,
        403 => exit::FORBIDDEN,
        404 => exit::NOT_FOUND,
        400 | 409 | 410 | 413 | 415 | 422 => exit::REJECTED,
        500..=599 => exit::UNAVAILABLE,
        _ => exit::UNEXPECTED,
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    missing_permission: Option<String>,
}

/// Build the failure for a non-2xx answer from its status and raw body.
pub fn api_failure(status: u16, status_text: &str, body: &str) -> Failure {
    let parsed = serde_json::from_str::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let server_message = parsed
        .as_ref()
        .map(|e| e.message.trim().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("HTTP {status} {status_text}").trim().to_string());

    let message = match status {
        401 => format!(
            "the API token was rejected ({server_message}): it has expired or been revoked, \
             or is not valid. Run `vigilo configure` to set a new token."
        ),
        403 => match parsed
            .as_ref()
            .and_then(|e| e.missing_permission.as_deref())
        {
            Some("platform_admin") => format!(
                "{server_message}\nmissing permission: platform_admin \
                 (this token's holder is not a platform admin)"
            ),
            Some(permission) => format!("{server_message}\nmissing permission: {permission}"),
            None => server_message,
        },
        500..=599 if parsed.is_some() => {
            format!("server error (HTTP {status}): {server_message}")
        }
        500..=599 => format!("server error: {server_message}"),
        _ => match parsed.as_ref().and_then(|e| e.field.as_deref()) {
            Some(field) => format!("{server_message} (field: {field})"),
            None => server_message,
        },
    };
    Failure {
        code: exit_for_status(status),
        message,
        status: Some(status),
    }
}

/// The header that lets the server recognise a retried create request.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// How long to wait before sending a create request again after its
/// connection failed.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A fresh idempotency key: 128 random bits as 32 lower-case hex digits.
pub fn new_idempotency_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Whether a request failed before any response arrived — the connection
/// could not be made, was reset or closed, or timed out — so that sending
/// it again (with the same idempotency key) is safe. An HTTP status, and a
/// response the server sent but that could not be parsed, are not.
fn failed_before_response(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::Status(..) => false,
        ureq::Error::Transport(transport) => matches!(
            transport.kind(),
            ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io
        ),
    }
}

/// The body of a request.
#[derive(Clone, Copy)]
enum Body<'a> {
    /// A JSON document.
    Json(&'a Value),
    /// Raw bytes with their content type.
    Raw {
        /// The `Content-Type` header.
        content_type: &'a str,
        /// The bytes.
        bytes: &'a [u8],
    },
}

/// A blocking client for one Vigilo server.
pub struct Client {
    agent: ureq::Agent,
    /// For requests that wait for work to finish on the server (a playbook
    /// or task run): a longer read timeout.
    patient: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    /// `base` is the server URL without a trailing slash.
    pub fn new(base: &str, token: Option<&str>) -> Self {
        let agent = |read: Duration| {
            ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout_read(read)
                .timeout_write(Duration::from_secs(60))
                .user_agent(concat!("vigilo-cli/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Client {
            agent: agent(Duration::from_secs(60)),
            patient: agent(Duration::from_secs(30 * 60)),
            base: base.to_string(),
            token: token.map(str::to_string),
        }
    }

    /// The server URL this client talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request on the ordinary agent.
    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.request_with(&self.agent, method, path)
    }

    /// A request on `agent` with the `Accept` and `Authorization` headers.
    fn request_with(&self, agent: &ureq::Agent, method: &str, path: &str) -> ureq::Request {
        let mut request = agent
            .request(method, &format!("{}{}", self.base, path))
            .set("Accept", "application/json");
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        request
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.finish(self.request("GET", path).call())
    }

    /// DELETE `path`.
    pub fn delete(&self, path: &str) -> Result<Value> {
        self.finish(self.request("DELETE", path).call())
    }

    /// POST a JSON body to an endpoint that does not create something
    /// (see [`Client::create`] for those that do); never retried.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.finish(self.request("POST", path).send_json(body))
    }

    /// POST to an endpoint that answers when work it starts is done (a task
    /// run): waits up to 30 minutes instead of one; never retried.
    pub fn post_and_wait(&self, path: &str, body: &Value) -> Result<Value> {
        self.finish(
            self.request_with(&self.patient, "POST", path)
                .send_json(body),
        )
    }

    /// PUT a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.finish(self.request("PUT", path).send_json(body))
    }

    /// PATCH with a JSON body.
    pub fn patch(&self, path: &str, body: &Value) -> Result<Value> {
        self.finish(self.request("PATCH", path).send_json(body))
    }

    /// POST a JSON body that creates something (an item, a workspace, an
    /// invite, a token, a certificate), with a fresh idempotency key; sent
    /// once more with the same key if the connection fails before a response.
    pub fn create(&self, path: &str, body: &Value) -> Result<Value> {
        self.create_with(&self.agent, path, Body::Json(body))
    }

    /// [`Client::create`] with a raw body of the given content type (a bulk
    /// invite's CSV file).
    pub fn create_raw(&self, path: &str, content_type: &str, bytes: &[u8]) -> Result<Value> {
        self.create_with(
            &self.agent,
            path,
            Body::Raw {
                content_type,
                bytes,
            },
        )
    }

    /// [`Client::create`] for an endpoint that answers when the work it
    /// starts is done (a playbook run): waits up to 30 minutes.
    pub fn create_and_wait(&self, path: &str, body: &Value) -> Result<Value> {
        self.create_with(&self.patient, path, Body::Json(body))
    }

    /// POST `body` with one idempotency key, at most twice.
    fn create_with(&self, agent: &ureq::Agent, path: &str, body: Body<'_>) -> Result<Value> {
        let key = new_idempotency_key();
        // The error is boxed while it is passed around: ureq's is large.
        let send = || -> Result<ureq::Response, Box<ureq::Error>> {
            let request = self
                .request_with(agent, "POST", path)
                .set(IDEMPOTENCY_KEY, &key);
            match body {
                Body::Json(value) => request.send_json(value),
                Body::Raw {
                    content_type,
                    bytes,
                } => request.set("Content-Type", content_type).send_bytes(bytes),
            }
            .map_err(Box::new)
        };
        let result = match send() {
            Err(err) if failed_before_response(&err) => {
                thread::sleep(RETRY_PAUSE);
                send()
            }
            other => other,
        };
        self.finish(result.map_err(|err| *err))
    }

    /// Decode a response, or turn a failure into a [`Failure`].
    fn finish(&self, result: Result<ureq::Response, ureq::Error>) -> Result<Value> {
        match result {
            Ok(response) => {
                // Read whole: `into_string` stops at 10 MB, and the report
                // of a 50,000-row bulk invite is larger.
                let mut body = String::new();
                std::io::Read::read_to_string(&mut response.into_reader(), &mut body).map_err(
                    |e| {
                        Failure::new(
                            exit::UNAVAILABLE,
                            format!("could not read the response from {}: {e}", self.base),
                        )
                    },
                )?;
                if body.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(&body).map_err(|e| {
                    Failure::new(
                        exit::UNEXPECTED,
                        format!("the server sent a response that is not valid JSON: {e}"),
                    )
                    .into()
                })
            }
            Err(ureq::Error::Status(status, response)) => {
                let status_text = response.status_text().to_string();
                let body = response.into_string().unwrap_or_default();
                Err(api_failure(status, &status_text, &body).into())
            }
            Err(ureq::Error::Transport(transport)) => {
                let mut reason = transport.kind().to_string();
                if let Some(message) = transport.message() {
                    reason = format!("{reason}: {message}");
                }
                if let Some(source) = std::error::Error::source(&transport) {
                    reason = format!("{reason}: {source}");
                }
                Err(Failure::new(
                    exit::UNAVAILABLE,
                    format!("could not reach the server at {}: {reason}", self.base),
                )
                .into())
            }
        }
    }
}

/// Percent-encode one URL path segment (or query component): every byte
/// outside the RFC 3986 unreserved set becomes `%XX`.
pub fn seg(raw: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// A query string (`?a=1&b=2`, or empty) from name/value pairs.
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{}={}", seg(name), seg(value)))
        .collect();
    format!("?{}", joined.join("&"))
}

/// The API path of a workspace.
pub fn workspace_path(slug: &str) -> String {
    format!("/api/v1/workspaces/{}", seg(slug))
}

#[cfg(test)]
mod tests;
