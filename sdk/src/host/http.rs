//! The types of [`HTTP_REQUEST`](super::HTTP_REQUEST), the one way a plugin
//! reaches another service, and the helpers that keep a URL's secrets out
//! of messages.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The methods [`HTTP_REQUEST`](super::HTTP_REQUEST) accepts; on the wire, upper case (`"POST"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl HttpMethod {
    /// The method's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// One HTTP header: `{"name": "Content-Type", "value": "application/json"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpHeader {
    /// The header's name, as given (HTTP names are case-insensitive).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Request of [`HTTP_REQUEST`](super::HTTP_REQUEST):
///
/// ```json
/// {"method": "POST", "url": "https://hooks.example.com/in",
///  "headers": [{"name": "Content-Type", "value": "application/json"}],
///  "body": "{\"text\":\"hello\"}", "timeout_ms": 4000}
/// ```
///
/// Build one with [`HttpRequest::new`] (or [`HttpRequest::get`],
/// [`HttpRequest::post`]) and the builder methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The method.
    pub method: HttpMethod,
    /// An absolute `http://` or `https://` URL. It may carry secrets (tokens
    /// in the path or query), so the server does not log it.
    pub url: String,
    /// Request headers, in order; a name may repeat.
    #[serde(default)]
    pub headers: Vec<HttpHeader>,
    /// The request body, as text; `None` sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The total time the request may take, in milliseconds. The server uses
    /// the smaller of this and its own limit, and its own limit when `None`.
    /// Keep it below the server's limit on a plugin call (5 s by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl HttpRequest {
    /// A `method` request to `url`, with no headers, no body and the
    /// server's time limit.
    pub fn new(method: HttpMethod, url: impl Into<String>) -> Self {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A `GET` request to `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(HttpMethod::Get, url)
    }

    /// A `POST` request to `url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(HttpMethod::Post, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(HttpHeader {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the time limit (whole milliseconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// The value of header `name` (case-insensitive), if set once or more
    /// (the first).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// Response of [`HTTP_REQUEST`](super::HTTP_REQUEST):
/// `{"status": 200, "headers": [{"name": "content-type", "value": "text/plain"}], "body": "ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The HTTP status code. Redirects the server did not follow come back
    /// as they are (3xx).
    pub status: u16,
    /// Response headers, in order.
    #[serde(default)]
    pub headers: Vec<HttpHeader>,
    /// The body as text (bytes that are not UTF-8 are replaced with `�`),
    /// cut at the server's size limit.
    #[serde(default)]
    pub body: String,
    /// Whether the server cut the body at its size limit. Optional: older
    /// servers leave it out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// How much of an error answer's body [`HttpResponse::error_message`] quotes,
/// in characters.
pub const ERROR_BODY_EXCERPT_CHARS: usize = 200;

#[cfg(feature = "ureq")]
impl HttpResponse {
    /// The response `ureq` received (an error status too), with its body
    /// read up to `max_body` bytes and cut there (`truncated`). Fails only
    /// when reading the body fails.
    pub fn from_ureq(response: ureq::Response, max_body: usize) -> std::io::Result<HttpResponse> {
        use std::io::Read;
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .flat_map(|name| {
                response
                    .all(&name)
                    .into_iter()
                    .map(|value| HttpHeader {
                        name: name.clone(),
                        value: value.to_owned(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut bytes = Vec::new();
        let limit = u64::try_from(max_body).unwrap_or(u64::MAX);
        response
            .into_reader()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)?;
        let truncated = bytes.len() > max_body;
        bytes.truncate(max_body);
        Ok(HttpResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            truncated,
        })
    }
}

impl HttpResponse {
    /// A response with `status` and `body` and no headers.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
            truncated: false,
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The value of header `name` (case-insensitive), if present (the
    /// first).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The start of the body for an error message: trimmed, at most
    /// `max_chars` characters (then ending in `…`), control characters
    /// replaced by spaces so it stays on one line.
    pub fn body_excerpt(&self, max_chars: usize) -> String {
        let body = self.body.trim();
        let mut excerpt: String = body
            .chars()
            .take(max_chars)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if body.chars().count() > max_chars {
            excerpt.push('…');
        }
        excerpt
    }

    /// What an adapter reports for an answer it did not expect:
    /// `"<target> answered HTTP 500: <first 200 characters of the body>"`, or
    /// `"<target> answered HTTP 500 with an empty body"`. `target` names the
    /// far end without secrets, for example `"the Slack webhook"`.
    pub fn error_message(&self, target: &str) -> String {
        let excerpt = self.body_excerpt(ERROR_BODY_EXCERPT_CHARS);
        if excerpt.is_empty() {
            format!("{target} answered HTTP {} with an empty body", self.status)
        } else {
            format!("{target} answered HTTP {}: {excerpt}", self.status)
        }
    }
}

fn find_header<'a>(headers: &'a [HttpHeader], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The host (and port) of an `http://` or `https://` URL, for messages that
/// must not show the rest (its path and query may carry tokens); `None` when
/// `url` is not such a URL (another scheme, no host, whitespace or control
/// characters). User information (`user:password@`) is dropped.
///
/// ```
/// use vigilo_sdk::http_url_host;
///
/// assert_eq!(http_url_host("https://hooks.example.com/in?token=x"), Some("hooks.example.com"));
/// assert_eq!(http_url_host("http://user:pw@relay:8080/hook"), Some("relay:8080"));
/// assert_eq!(http_url_host("ftp://files.example.com/"), None);
/// ```
pub fn http_url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    (clean && !host.is_empty()).then_some(host)
}

/// `message` with `url` taken out, for an error that must not show a URL
/// that carries secrets (an adapter passing on the server's reason for a
/// failed [`HTTP_REQUEST`](super::HTTP_REQUEST)): every occurrence of the URL, with or without its
/// scheme, becomes `replacement`, and any remaining occurrence of its path
/// and query becomes `/…`.
///
/// ```
/// use vigilo_sdk::redact_url;
///
/// let url = "https://hooks.example.com/in?token=SECRET";
/// assert_eq!(
///     redact_url("cannot reach https://hooks.example.com/in?token=SECRET: timed out", url, "the webhook"),
///     "cannot reach the webhook: timed out"
/// );
/// assert_eq!(
///     redact_url("GET /in?token=SECRET answered 404", url, "the webhook"),
///     "GET /… answered 404"
/// );
/// ```
pub fn redact_url(message: &str, url: &str, replacement: &str) -> String {
    if url.is_empty() {
        return message.to_owned();
    }
    let mut redacted = message.replace(url, replacement);
    if let Some((_, without_scheme)) = url.split_once("://") {
        if !without_scheme.is_empty() {
            redacted = redacted.replace(without_scheme, replacement);
        }
        let path = without_scheme
            .find(['/', '?', '#'])
            .map(|start| &without_scheme[start..])
            .unwrap_or_default();
        if path.len() > 1 {
            redacted = redacted.replace(path, "/…");
        }
    }
    redacted
}
