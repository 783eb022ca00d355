//! # webhook: signed JSON webhooks for Vigilo events
//!
//! An `integration_adapter` plugin. It registers the adapter **`webhook`**
//! ("Webhook"), which POSTs each event as JSON to a URL of your choice and
//! signs it with HMAC-SHA256, so the receiver can check that the request
//! came from your Vigilo server and was not replayed.
//!
//! ## Configuration
//!
//! ```json
//! {"url": "https://hooks.example.com/vigilo", "secret": "a-long-random-shared-secret", "headers": {"Authorization": "Bearer abc"}}
//! ```
//!
//! | key | required | meaning |
//! | --- | --- | --- |
//! | `url` | yes | Where to POST. Must start with `https://` or `http://`. **Secret** (it may carry a token): stored encrypted, never shown again. |
//! | `secret` | yes | The shared signing secret, at least 16 characters. **Secret**: the server stores it encrypted and never shows it again; it never appears in an error message. |
//! | `headers` | no | Extra request headers, an object of header name → string value. They may not override `Content-Type`, any `X-Vigilo-*` header, or the framing headers `Content-Length`, `Transfer-Encoding` and `Host`. **Secret** (they usually carry credentials). |
//!
//! `validate_config` checks all of this and returns the configuration with
//! surrounding whitespace trimmed from `url` (the secret is kept exactly as
//! given).
//!
//! ## The request
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Vigilo-Event: incident.opened
//! X-Vigilo-Timestamp: 1798099200
//! X-Vigilo-Signature: sha256=<64 lowercase hex digits>
//! User-Agent: vigilo-webhook/0.1.0
//! <your extra headers>
//!
//! {"type":"incident.opened","workspace":"ops","title":"DB down","text":"Primary is unreachable","data":{...}}
//! ```
//!
//! * The body is the event exactly as the server handed it over, as compact
//!   JSON: `type`, `workspace`, `title`, `text` and `data`.
//! * `X-Vigilo-Timestamp` is the time of sending, in Unix seconds.
//! * `X-Vigilo-Signature` is `sha256=` followed by the lowercase hex
//!   HMAC-SHA256, keyed with the secret (its UTF-8 bytes), of the string
//!   `"<timestamp>.<body>"`: the timestamp header's value, a dot, and the
//!   raw body bytes. Signing the timestamp with the body stops an old
//!   request from being replayed with a fresh timestamp.
//!
//! ## Verifying a request (receiver side)
//!
//! 1. Read the **raw** body bytes, before any JSON parsing (re-serialised
//!    JSON will not match).
//! 2. Read `X-Vigilo-Timestamp`; reject the request if it is not a number or
//!    is more than 5 minutes (300 s) away from your clock, in either
//!    direction.
//! 3. Compute `"sha256=" + hex(HMAC_SHA256(secret, timestamp + "." + body))`.
//! 4. Compare it with `X-Vigilo-Signature` in constant time; reject on a
//!    mismatch. Only then parse the body.
//!
//! In Python:
//!
//! ```python
//! import hashlib, hmac, time
//!
//! def verify(secret: bytes, headers, body: bytes) -> bool:
//!     timestamp = headers["X-Vigilo-Timestamp"]
//!     if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
//!         return False
//!     digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
//!     return hmac.compare_digest("sha256=" + digest, headers["X-Vigilo-Signature"])
//! ```
//!
//! A Rust receiver can call [`verify_signature`].
//!
//! ## Result and errors
//!
//! The adapter does not open a connection itself: it asks the server to make
//! the request ([`vigilo_sdk::HTTP_REQUEST`]), so the server's egress policy,
//! time limits and size limits apply.
//!
//! A 2xx answer returns `{"status": <HTTP status>}`. Anything else is an
//! `Err` for the delivery log:
//!
//! * a non-2xx answer: `the webhook at hooks.example.com answered HTTP 500:
//!   <first 200 characters of the body>` (a redirect counts as non-2xx);
//! * no answer: `could not reach the webhook at hooks.example.com: <the
//!   server's reason>`, for example a destination the server's egress policy
//!   refuses (loopback, private and link-local addresses, unless the
//!   operator allowed them), or a connection refused, DNS, TLS or timeout
//!   failure.
//!
//! Messages name only the URL's host (and port), never its path or query,
//! which may carry tokens, nor the secret or the extra headers' values. Each
//! request asks for a total time limit of 4 seconds, below the server's 5 s
//! limit on a plugin call. The adapter does not retry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use vigilo_sdk::{
    check_config_against_schema, http_url_host, json, redact_url, Adapter, Event, Host,
    HttpRequest, Plugin, PluginKind, PluginRegistry, Value,
};

/// The plugin: registers [`Webhook`].
pub struct WebhookPlugin;

impl Plugin for WebhookPlugin {
    fn capabilities(&self) -> Option<vigilo_sdk::Capabilities> {
        // It posts to the URL each integration is configured with.
        Some(vigilo_sdk::Capabilities::none().with_http_host("*"))
    }

    fn name(&self) -> &str {
        "webhook"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::IntegrationAdapter
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn compatible_with(&self) -> &str {
        ">=0.1, <0.2"
    }

    fn description(&self) -> &str {
        "POSTs events as HMAC-SHA256-signed JSON to any HTTP endpoint."
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_adapter(Webhook);
    }
}

vigilo_sdk::export_plugin!(WebhookPlugin);

/// Total time limit of one request.
pub const TIMEOUT: Duration = Duration::from_secs(4);

/// The shortest secret `validate_config` accepts, in characters.
pub const MIN_SECRET_CHARS: usize = 16;

/// How far a receiver should let `X-Vigilo-Timestamp` be from its clock.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// Request header: the event type.
pub const EVENT_HEADER: &str = "X-Vigilo-Event";
/// Request header: the time of sending, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Vigilo-Timestamp";
/// Request header: `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Vigilo-Signature";

/// Headers the configuration may not set.
const RESERVED_HEADERS: [&str; 4] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
];

/// The `webhook` adapter.
pub struct Webhook;

impl Adapter for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }

    fn label(&self) -> &str {
        "Webhook"
    }

    fn description(&self) -> &str {
        "POSTs each event as JSON, signed with HMAC-SHA256 (X-Vigilo-Signature)."
    }

    fn config_schema(&self) -> Value {
        config_schema()
    }

    fn secret_fields(&self) -> Vec<String> {
        // The URL may carry a token in its path or query, and headers carry
        // credentials: all three are sealed and never shown again.
        vec!["url".to_owned(), "secret".to_owned(), "headers".to_owned()]
    }

    fn validate_config(&self, config: &Value) -> Result<Value, String> {
        let parsed = Config::parse(config)?;
        let mut normalised = config.as_object().cloned().unwrap_or_default();
        normalised.insert("url".into(), json!(parsed.url));
        Ok(Value::Object(normalised))
    }

    fn send(&self, config: &Value, event: &Event, host: &dyn Host) -> Result<Value, String> {
        let config = Config::parse(config)?;
        let body = serde_json::to_string(event)
            .map_err(|e| format!("could not serialise the event: {e}"))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970".to_owned())?
            .as_secs();
        let status = post(host, &config, &event.event_type, timestamp, &body)?;
        Ok(json!({ "status": status }))
    }
}

/// JSON Schema of the adapter's configuration.
pub fn config_schema() -> Value {
    json!({
        "type": "object",
        "required": ["url", "secret"],
        "properties": {
            "url": {
                "type": "string",
                "description": "The http:// or https:// URL to POST events to."
            },
            "secret": {
                "type": "string",
                "minLength": MIN_SECRET_CHARS,
                "description": "Shared secret for the X-Vigilo-Signature HMAC (at least 16 characters). Stored encrypted."
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Extra request headers (not Content-Type or X-Vigilo-*)."
            }
        }
    })
}

/// A checked configuration.
struct Config {
    url: String,
    secret: String,
    headers: Vec<(String, String)>,
}

impl Config {
    /// Checks `config` against the schema and the adapter's rules. Error
    /// messages never contain the secret.
    fn parse(config: &Value) -> Result<Config, String> {
        check_config_against_schema(config, &config_schema())?;
        let url = config["url"].as_str().unwrap_or_default().trim();
        if url_host(url).is_none() {
            return Err(
                "`url` must be an http:// or https:// URL, like https://hooks.example.com/vigilo"
                    .into(),
            );
        }
        let secret = config["secret"].as_str().unwrap_or_default();
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "`secret` must be at least {MIN_SECRET_CHARS} characters long"
            ));
        }
        let mut headers = Vec::new();
        let extra = config.get("headers").and_then(Value::as_object);
        for (name, value) in extra.into_iter().flatten() {
            headers.push(check_header(name, value)?);
        }
        Ok(Config {
            url: url.to_owned(),
            secret: secret.to_owned(),
            headers,
        })
    }
}

/// One configured extra header, checked.
fn check_header(name: &str, value: &Value) -> Result<(String, String), String> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("x-vigilo-") || RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(format!(
            "`headers` may not set {name}: the adapter sets Content-Type, the X-Vigilo-* headers \
             and the request framing itself"
        ));
    }
    // RFC 9110 token characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("`headers` has an invalid header name {name:?}"));
    }
    let Some(text) = value.as_str() else {
        return Err(format!("`headers`: the value of {name} must be a string"));
    };
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "`headers`: the value of {name} may not contain line breaks or control characters"
        ));
    }
    Ok((name.to_owned(), text.trim().to_owned()))
}

/// The host (and port) of an `http://` or `https://` URL with no whitespace
/// or control characters; `None` for anything else. Userinfo is dropped.
fn url_host(url: &str) -> Option<&str> {
    http_url_host(url)
}

/// HMAC-SHA256 (RFC 2104) of `message` keyed with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// The `X-Vigilo-Signature` value for a request sent at `timestamp` with
/// `body`: `sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    )
}

/// Checks a received request, as a receiver should: the timestamp header is
/// a number of Unix seconds within [`MAX_CLOCK_SKEW_SECS`] of `now`, and the
/// signature header matches (compared in constant time). `body` is the raw
/// request body.
pub fn verify_signature(
    secret: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: u64,
) -> Result<(), String> {
    let timestamp: u64 = timestamp_header
        .parse()
        .map_err(|_| format!("{TIMESTAMP_HEADER} is not a number of seconds"))?;
    if timestamp.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
        return Err(format!(
            "{TIMESTAMP_HEADER} is more than {MAX_CLOCK_SKEW_SECS} s away from the current time"
        ));
    }
    let expected = signature(secret, timestamp_header, body);
    let received = signature_header.as_bytes();
    let same = expected.len() == received.len()
        && expected
            .bytes()
            .zip(received)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(format!("{SIGNATURE_HEADER} does not match"))
    }
}

/// POSTs the signed `body` through the server; the status of a 2xx answer,
/// or an error message naming the status and the start of the body (and
/// only the URL's host).
fn post(
    host: &dyn Host,
    config: &Config,
    event_type: &str,
    timestamp: u64,
    body: &str,
) -> Result<u16, String> {
    let host_name = url_host(&config.url).unwrap_or("the configured URL");
    let target = format!("the webhook at {host_name}");
    let timestamp = timestamp.to_string();
    let mut request = HttpRequest::post(&config.url)
        .header("Content-Type", "application/json")
        .header(EVENT_HEADER, event_type)
        .header(TIMESTAMP_HEADER, &timestamp)
        .header(
            SIGNATURE_HEADER,
            signature(&config.secret, &timestamp, body.as_bytes()),
        )
        .header(
            "User-Agent",
            concat!("vigilo-webhook/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &config.headers {
        request = request.header(name, value);
    }
    let request = request.body(body).timeout(TIMEOUT);
    let response = host.http_request(&request).map_err(|reason| {
        // The server's reason may quote what it was given; none of the
        // secrets reaches the delivery log.
        let mut reason =
            redact_url(&reason, &config.url, host_name).replace(&config.secret, "<secret>");
        for (name, value) in &config.headers {
            if !value.is_empty() {
                reason = reason.replace(value, &format!("<{name}>"));
            }
        }
        format!("could not reach {target}: {reason}")
    })?;
    if !response.is_success() {
        return Err(response.error_message(&target));
    }
    Ok(response.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_rfc_4231_test_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_rfc_4231_test_case_6_key_longer_than_a_block() {
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signature_covers_timestamp_and_body() {
        let secret = "0123456789abcdef";
        let signed = signature(secret, "1700000000", b"{}");
        assert_eq!(
            signed,
            format!(
                "sha256={}",
                hex::encode(hmac_sha256(secret.as_bytes(), b"1700000000.{}"))
            )
        );
        assert_eq!(
            verify_signature(secret, "1700000000", &signed, b"{}", 1_700_000_100),
            Ok(())
        );
        assert!(verify_signature(secret, "1700000000", &signed, b"{ }", 1_700_000_100).is_err());
        assert!(verify_signature(secret, "1700000001", &signed, b"{}", 1_700_000_100).is_err());
        assert!(verify_signature(
            "fedcba9876543210",
            "1700000000",
            &signed,
            b"{}",
            1_700_000_000
        )
        .is_err());
        assert_eq!(
            verify_signature(secret, "1700000000", &signed, b"{}", 1_700_000_301),
            Err("X-Vigilo-Timestamp is more than 300 s away from the current time".into())
        );
        assert!(verify_signature(secret, "soon", &signed, b"{}", 1_700_000_000).is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(url_host("https://a.example.com/x?y"), Some("a.example.com"));
        assert_eq!(url_host("http://user:pw@h:8080/p"), Some("h:8080"));
        assert_eq!(url_host("https://"), None);
        assert_eq!(url_host("ftp://h/x"), None);
        assert_eq!(url_host("https://h/a b"), None);
    }
}
