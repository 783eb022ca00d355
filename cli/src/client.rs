//! HTTP access to the Vigilo REST API and the mapping of failures to exit codes.
//!
//! Every request goes through [`Client`], which attaches the bearer token,
//! decodes JSON bodies and turns non-2xx answers into a [`Failure`] carrying
//! the process exit code the CLI should end with.

use std::fmt;
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

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.request_with(&self.agent, method, path)
    }

    fn request_with(&self, agent: &ureq::Agent, method: &str, path: &str) -> ureq::Request {
        let mut request = agent
            .request(method, &format!("{}{}", self.base, path))
            .set("Accept", "application/json");
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        request
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.finish(self.request("GET", path).call())
    }

    pub fn delete(&self, path: &str) -> Result<Value> {
        self.finish(self.request("DELETE", path).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.finish(self.request("POST", path).send_json(body))
    }

    /// POST to an endpoint that answers when work it starts is done (a
    /// playbook run, a task run): waits up to 30 minutes instead of one.
    pub fn post_and_wait(&self, path: &str, body: &Value) -> Result<Value> {
        self.finish(
            self.request_with(&self.patient, "POST", path)
                .send_json(body),
        )
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.finish(self.request("PUT", path).send_json(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Result<Value> {
        self.finish(self.request("PATCH", path).send_json(body))
    }

    /// POST a raw body with the given content type.
    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value> {
        self.finish(
            self.request("POST", path)
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
    }

    fn finish(&self, result: Result<ureq::Response, ureq::Error>) -> Result<Value> {
        match result {
            Ok(response) => {
                let body = response.into_string().map_err(|e| {
                    Failure::new(
                        exit::UNAVAILABLE,
                        format!("could not read the response from {}: {e}", self.base),
                    )
                })?;
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
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_bytes() {
        assert_eq!(seg("alice@acme.com"), "alice%40acme.com");
        assert_eq!(seg("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(seg("Az09-._~"), "Az09-._~");
        assert_eq!(seg("é"), "%C3%A9");
    }

    #[test]
    fn builds_queries() {
        assert_eq!(query(&[]), "");
        assert_eq!(
            query(&[("after", "5".into()), ("limit", "10".into())]),
            "?after=5&limit=10"
        );
    }

    #[test]
    fn maps_statuses() {
        assert_eq!(exit_for_status(401), exit::UNAUTHENTICATED);
        assert_eq!(exit_for_status(403), exit::FORBIDDEN);
        assert_eq!(exit_for_status(404), exit::NOT_FOUND);
        for status in [400, 409, 413, 415, 422] {
            assert_eq!(exit_for_status(status), exit::REJECTED);
        }
        assert_eq!(exit_for_status(502), exit::UNAVAILABLE);
    }

    #[test]
    fn formats_forbidden() {
        let body = r#"{"error":{"code":"forbidden","message":"nope","missing_permission":"member.invite"}}"#;
        let failure = api_failure(403, "Forbidden", body);
        assert_eq!(failure.code, exit::FORBIDDEN);
        assert_eq!(failure.message, "nope\nmissing permission: member.invite");
    }

    #[test]
    fn formats_validation_field() {
        let body = r#"{"error":{"code":"validation_failed","message":"bad slug","field":"slug"}}"#;
        let failure = api_failure(422, "Unprocessable Entity", body);
        assert_eq!(failure.code, exit::REJECTED);
        assert_eq!(failure.message, "bad slug (field: slug)");
    }
}
