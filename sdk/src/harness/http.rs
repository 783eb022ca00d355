//! [`HttpHost`]: a host for tests that really makes the `http.request`
//! calls a plugin asks for (feature `harness-http`).

use std::{
    fmt,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::host::{Host, HttpRequest, HttpResponse, HTTP_REQUEST};

/// A [`Host`] that answers [`HTTP_REQUEST`] by making the request, with a
/// small blocking HTTP client, and records each exchange.
///
/// It stands in for the server in a plugin's own tests, so an adapter can
/// post to a test server on `127.0.0.1` exactly as it will post through a
/// real server. Like the server it never follows redirects (a 3xx comes
/// back as the response), applies a time limit (the request's `timeout_ms`,
/// at most [`HttpHost::max_timeout`]; [`HttpHost::DEFAULT_TIMEOUT`] when it
/// has none) and cuts bodies at [`HttpHost::max_body_bytes`]. Unlike the
/// server it applies **no egress policy**: it calls loopback and private
/// addresses, which a server refuses unless its operator allowed them. Test
/// your plugin's handling of a refusal with
/// [`MockHost::respond_http`](crate::harness::MockHost::respond_http).
///
/// Its error messages never contain the URL (which may carry a secret):
/// `connection failed: Connection refused (os error 111)`.
///
/// Any other host method is answered by the fallback host
/// ([`HttpHost::fallback`]), or refused.
///
/// Enable it in your plugin's dev-dependencies only:
///
/// ```toml
/// [dev-dependencies]
/// vigilo-sdk = { path = "/path/to/vigilo/sdk", features = ["harness-http"] }
/// ```
pub struct HttpHost {
    agent: ureq::Agent,
    max_timeout: Duration,
    max_body_bytes: usize,
    exchanges: Mutex<Vec<HttpExchange>>,
    fallback: Option<Box<dyn Host + Send + Sync>>,
}

/// One request an [`HttpHost`] made, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExchange {
    /// What the plugin asked for.
    pub request: HttpRequest,
    /// The response, or the error the plugin was given.
    pub outcome: Result<HttpResponse, String>,
}

impl Default for HttpHost {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HttpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpHost")
            .field("max_timeout", &self.max_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("has_fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpHost {
    /// The time limit of a request that sets no `timeout_ms`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A host with the default limits: requests take at most 30 s and
    /// bodies are cut at 1 MiB.
    pub fn new() -> Self {
        HttpHost {
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .max_idle_connections(0)
                .user_agent(concat!("vigilo-sdk-harness/", env!("CARGO_PKG_VERSION")))
                .build(),
            max_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            exchanges: Mutex::new(Vec::new()),
            fallback: None,
        }
    }

    /// The longest a request may take, whatever its `timeout_ms` says.
    pub fn max_timeout(mut self, limit: Duration) -> Self {
        self.max_timeout = limit;
        self
    }

    /// The most bytes of a response body kept; the rest is cut and the
    /// response marked `truncated`.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Answers every other host method with `host` (for example a
    /// [`MockHost`](crate::harness::MockHost)).
    pub fn fallback(mut self, host: impl Host + Send + Sync + 'static) -> Self {
        self.fallback = Some(Box::new(host));
        self
    }

    /// Every request made so far, with its outcome, oldest first.
    pub fn exchanges(&self) -> Vec<HttpExchange> {
        self.exchanges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every request made so far, oldest first.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.exchanges().into_iter().map(|e| e.request).collect()
    }

    /// Makes `request`.
    pub fn perform(&self, request: &HttpRequest) -> Result<HttpResponse, String> {
        let outcome = self.make(request);
        self.exchanges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(HttpExchange {
                request: request.clone(),
                outcome: outcome.clone(),
            });
        outcome
    }

    fn make(&self, request: &HttpRequest) -> Result<HttpResponse, String> {
        if crate::host::http_url_host(&request.url).is_none() {
            return Err(
                "the URL is not an absolute http:// or https:// URL with a host".to_owned(),
            );
        }
        let timeout = request
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(Self::DEFAULT_TIMEOUT)
            .min(self.max_timeout);
        let started = Instant::now();
        let mut call = self
            .agent
            .request(request.method.as_str(), &request.url)
            .timeout(timeout);
        for header in &request.headers {
            call = call.set(&header.name, &header.value);
        }
        let result = match &request.body {
            Some(body) => call.send_string(body),
            None => call.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(transport)) => {
                return Err(describe_transport(&transport, started.elapsed(), timeout))
            }
        };
        HttpResponse::from_ureq(response, self.max_body_bytes)
            .map_err(|e| format!("the connection failed while reading the response: {e}"))
    }
}

impl Host for HttpHost {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        if method != HTTP_REQUEST {
            return match &self.fallback {
                Some(host) => host.call(method, input),
                None => Err(format!(
                    "HttpHost answers only {HTTP_REQUEST}, not `{method}`; give it a fallback \
                     host (HttpHost::fallback) for the other methods"
                )),
            };
        }
        let request: HttpRequest = serde_json::from_value(input.clone())
            .map_err(|e| format!("invalid {HTTP_REQUEST} request: {e}"))?;
        let response = self.perform(&request)?;
        serde_json::to_value(response).map_err(|e| format!("cannot encode the response: {e}"))
    }
}

/// What went wrong, without the URL (which ureq's `Display` starts with):
/// `connection failed: Connection refused (os error 111)`.
fn describe_transport(transport: &ureq::Transport, elapsed: Duration, limit: Duration) -> String {
    let mut text = transport.kind().to_string().to_lowercase();
    if let Some(message) = transport.message() {
        text.push_str(": ");
        text.push_str(message);
    }
    if let Some(source) = std::error::Error::source(transport) {
        text.push_str(": ");
        text.push_str(&source.to_string());
    }
    if elapsed >= limit {
        text.push_str(&format!(" (the time limit is {} ms)", limit.as_millis()));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::TcpListener,
        thread,
    };

    use serde_json::json;

    use super::*;
    use crate::harness::MockHost;

    /// Answers one request with `response` (raw HTTP); yields the request's
    /// head and body as text.
    fn serve_once(response: &'static str) -> (String, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut data = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).unwrap();
                data.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&data);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            stream.write_all(response.as_bytes()).unwrap();
            String::from_utf8_lossy(&data).into_owned()
        });
        (base, handle)
    }

    #[test]
    fn makes_the_request_and_records_it() {
        let (base, server) = serve_once(
            "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Id: 7\r\nContent-Length: 5\r\nConnection: close\r\n\r\nmade!",
        );
        let host = HttpHost::new();
        let request = HttpRequest::new(crate::host::HttpMethod::Put, format!("{base}/things/1"))
            .header("X-Team", "ops")
            .body("{\"a\":1}");
        let response = host.http_request(&request).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, "made!");
        assert_eq!(response.header("x-id"), Some("7"));
        assert!(!response.truncated);
        let received = server.join().unwrap();
        assert!(
            received.starts_with("PUT /things/1 HTTP/1.1\r\n"),
            "{received}"
        );
        assert!(received.contains("X-Team: ops\r\n"), "{received}");
        assert!(received.ends_with("\r\n\r\n{\"a\":1}"), "{received}");
        assert_eq!(
            host.exchanges(),
            vec![HttpExchange {
                request,
                outcome: Ok(response)
            }]
        );
    }

    #[test]
    fn redirects_come_back_and_bodies_are_cut() {
        let (base, server) = serve_once(
            "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789",
        );
        let host = HttpHost::new().max_body_bytes(4);
        let response = host
            .http_request(&HttpRequest::get(format!("{base}/")))
            .unwrap();
        server.join().unwrap();
        assert_eq!(response.status, 302);
        assert_eq!(response.header("location"), Some("http://169.254.169.254/"));
        assert_eq!(response.body, "0123");
        assert!(response.truncated);
    }

    #[test]
    fn failures_say_why_without_the_url() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hook?token=SECRET",
            listener.local_addr().unwrap()
        );
        drop(listener);
        let host = HttpHost::new();
        let error = host.http_request(&HttpRequest::post(&url)).unwrap_err();
        assert!(error.starts_with("connection failed"), "{error}");
        assert!(!error.contains("SECRET"), "{error}");
        let error = host
            .http_request(&HttpRequest::get("file:///etc/passwd"))
            .unwrap_err();
        assert_eq!(
            error,
            "the URL is not an absolute http:// or https:// URL with a host"
        );
        assert_eq!(host.requests().len(), 2);
    }

    #[test]
    fn other_methods_go_to_the_fallback() {
        let host = HttpHost::new();
        assert!(host
            .call("work_items.count_by_status", &json!({"workspace": "ops"}))
            .unwrap_err()
            .contains("HttpHost answers only http.request"));
        let host = HttpHost::new().fallback(
            MockHost::new().respond("work_items.count_by_status", json!({"tasks": {"todo": 1}})),
        );
        assert_eq!(
            host.work_items_count_by_status("ops").unwrap().tasks["todo"],
            1
        );
    }
}
