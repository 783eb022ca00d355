//! The server's callback API: every host method's name and its request and
//! response types, and the [`Host`] trait plugins call them through.
//!
//! Widgets, adapters and tasks receive a `&dyn Host`. [`Host::call`] takes a
//! method name and JSON; the typed helpers ([`Host::work_items_count_by_status`],
//! [`Host::certificates_expiring`], [`Host::integrations_notify`],
//! [`Host::http_request`]) build the request and check the answer for you.
//!
//! | method | request | response | who may call it |
//! | --- | --- | --- | --- |
//! | [`WORK_ITEMS_COUNT_BY_STATUS`] | [`WorkItemCountsRequest`] | [`WorkItemCounts`] | widgets (their own workspace only), tasks (any workspace) |
//! | [`CERTIFICATES_EXPIRING`] | [`CertificatesExpiringRequest`] | [`CertificatesExpiring`] | tasks |
//! | [`INTEGRATIONS_NOTIFY`] | [`NotifyRequest`] | [`NotifyResponse`] | tasks |
//! | [`HTTP_REQUEST`] | [`HttpRequest`] | [`HttpResponse`] | adapters (`send`) and tasks |
//!
//! The server decides which methods exist and which calls may use them: a
//! method it does not offer there is an `Err` naming it, never a crash.
//!
//! # Evolution
//!
//! These shapes are part of the contract between a plugin and every server
//! it may run on, so they change in one way only: a request or response may
//! gain an *optional* field (`#[serde(default)]`, `Option`), which old
//! servers leave out and old plugins ignore. Readers ignore unknown fields.
//! Anything else is a new method name.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use abi_stable::{
    sabi_types::RRef,
    std_types::{RResult, RStr},
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::{abi::HostApi_TO, plugin::Event};

/// Host method `work_items.count_by_status`: work item counts by status for
/// one workspace.
///
/// Request [`WorkItemCountsRequest`], `{"workspace": "ops"}`; response
/// [`WorkItemCounts`], for example `{"changes": {"draft": 2, "approved": 1},
/// "incidents": {"open": 1}, "tasks": {"todo": 4}, "statuses": {...}}`.
/// Typed helper: [`Host::work_items_count_by_status`].
pub const WORK_ITEMS_COUNT_BY_STATUS: &str = "work_items.count_by_status";

/// Host method `certificates.expiring` (periodic tasks only): the
/// certificates expiring within a number of days, in every workspace.
///
/// Request [`CertificatesExpiringRequest`], `{"within_days": 30}`; response
/// [`CertificatesExpiring`]. Typed helper: [`Host::certificates_expiring`].
pub const CERTIFICATES_EXPIRING: &str = "certificates.expiring";

/// Host method `integrations.notify` (periodic tasks only): deliver an event
/// through a workspace's integrations.
///
/// Request [`NotifyRequest`]; response [`NotifyResponse`]. Each attempt is
/// recorded in the integration's delivery log. Typed helper:
/// [`Host::integrations_notify`].
pub const INTEGRATIONS_NOTIFY: &str = "integrations.notify";

/// Host method `http.request`: the server makes an outbound HTTP request on
/// the plugin's behalf, under its egress policy.
///
/// This is *the* way a plugin calls out: adapters do not open connections
/// of their own. The server refuses destinations on loopback, private and
/// link-local networks unless its operator allowed them, never follows a
/// redirect to a destination it would refuse, and applies its own time and
/// size limits.
///
/// Request [`HttpRequest`]; response [`HttpResponse`], whatever the status
/// (a 500 answer is a response, not an error). A refused destination or a
/// transport failure (DNS, connection, TLS, timeout) is an `Err` whose
/// message says why. Typed helper: [`Host::http_request`].
pub const HTTP_REQUEST: &str = "http.request";

/// The server's callback API, as a plugin calls it.
///
/// The host decides which methods exist; calling one it does not know is an
/// error (not a panic). Calls are synchronous and run on the thread that
/// called the plugin.
///
/// Every typed helper returns the host's own error message unchanged when
/// the host refuses or fails the call, and `"host answered <method> with an
/// unexpected shape: ..."` when its answer is not the documented shape.
pub trait Host {
    /// Calls host method `method` with `input`; returns its JSON output or
    /// an error message.
    fn call(&self, method: &str, input: &Value) -> Result<Value, String>;

    /// Work item counts by status in `workspace`
    /// ([`WORK_ITEMS_COUNT_BY_STATUS`]).
    fn work_items_count_by_status(&self, workspace: &str) -> Result<WorkItemCounts, String> {
        typed_call(
            self,
            WORK_ITEMS_COUNT_BY_STATUS,
            &WorkItemCountsRequest {
                workspace: workspace.to_owned(),
            },
        )
    }

    /// Certificates expiring within `within_days` days (expired ones
    /// included), by workspace ([`CERTIFICATES_EXPIRING`]).
    fn certificates_expiring(&self, within_days: u32) -> Result<CertificatesExpiring, String> {
        typed_call(
            self,
            CERTIFICATES_EXPIRING,
            &CertificatesExpiringRequest { within_days },
        )
    }

    /// Delivers an event through a workspace's integrations
    /// ([`INTEGRATIONS_NOTIFY`]).
    fn integrations_notify(&self, request: &NotifyRequest) -> Result<NotifyResponse, String> {
        typed_call(self, INTEGRATIONS_NOTIFY, request)
    }

    /// Makes an outbound HTTP request through the server ([`HTTP_REQUEST`]).
    ///
    /// `Ok` is the answer, whatever its status; `Err` is the server's reason
    /// for not making the request (a refused destination) or for not getting
    /// an answer (DNS, connection, TLS, timeout).
    fn http_request(&self, request: &HttpRequest) -> Result<HttpResponse, String> {
        typed_call(self, HTTP_REQUEST, request)
    }
}

/// A shared host is a host (the test harness keeps its host this way).
impl<H: Host + ?Sized> Host for Arc<H> {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        (**self).call(method, input)
    }
}

/// Serialises `request`, calls `method`, and parses the answer as `Resp`.
fn typed_call<H: Host + ?Sized, Req: Serialize, Resp: DeserializeOwned>(
    host: &H,
    method: &str,
    request: &Req,
) -> Result<Resp, String> {
    let input = serde_json::to_value(request)
        .map_err(|e| format!("could not encode the input of host method {method}: {e}"))?;
    let output = host.call(method, &input)?;
    serde_json::from_value(output)
        .map_err(|e| format!("host answered {method} with an unexpected shape: {e}"))
}

/// Request of [`WORK_ITEMS_COUNT_BY_STATUS`]: `{"workspace": "ops"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItemCountsRequest {
    /// The workspace's slug. A widget may only ask about the workspace it is
    /// rendered in.
    pub workspace: String,
}

/// Response of [`WORK_ITEMS_COUNT_BY_STATUS`]: for each kind of work item,
/// the number of items in each status, and (from servers that send it) each
/// kind's whole workflow.
///
/// ```json
/// {"changes": {"draft": 2, "approved": 1}, "incidents": {"open": 1}, "tasks": {"todo": 4},
///  "statuses": {"changes": ["draft", "pending_approval", "approved", "rejected", "in_progress", "done"],
///               "incidents": ["open", "investigating", "mitigated", "resolved"],
///               "tasks": ["todo", "doing", "done"]}}
/// ```
///
/// A status with no items, and a kind with no items, may be absent from the
/// counts (or `{}`). Use [`WorkItemCounts::in_workflow_order`] to get every
/// status of a workflow with zeros, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItemCounts {
    /// Change requests by status.
    #[serde(default)]
    pub changes: BTreeMap<String, u64>,
    /// Incidents by status.
    #[serde(default)]
    pub incidents: BTreeMap<String, u64>,
    /// Tasks by status.
    #[serde(default)]
    pub tasks: BTreeMap<String, u64>,
    /// Every status of each kind's workflow, in workflow order, including
    /// the ones no item is in.
    ///
    /// Optional: servers released before this field existed leave it out
    /// (`None`); then only the counted statuses are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<WorkflowStatuses>,
}

/// The kinds of work item, as [`WorkItemCounts`] names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkItemKind {
    /// Change requests (`changes`).
    Change,
    /// Incidents (`incidents`).
    Incident,
    /// Tasks (`tasks`).
    Task,
}

impl WorkItemKind {
    /// Every kind, in the order Vigilo lists them.
    pub const ALL: [WorkItemKind; 3] = [
        WorkItemKind::Change,
        WorkItemKind::Incident,
        WorkItemKind::Task,
    ];

    /// The key of this kind in [`WorkItemCounts`]: `changes`, `incidents` or
    /// `tasks`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkItemKind::Change => "changes",
            WorkItemKind::Incident => "incidents",
            WorkItemKind::Task => "tasks",
        }
    }
}

/// Each kind's workflow: its statuses, in workflow order (the `statuses`
/// field of [`WorkItemCounts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowStatuses {
    /// Change requests, for example `draft`, `pending_approval`, `approved`,
    /// `rejected`, `in_progress`, `done`.
    #[serde(default)]
    pub changes: Vec<String>,
    /// Incidents, for example `open`, `investigating`, `mitigated`,
    /// `resolved`.
    #[serde(default)]
    pub incidents: Vec<String>,
    /// Tasks, for example `todo`, `doing`, `done`.
    #[serde(default)]
    pub tasks: Vec<String>,
}

impl WorkflowStatuses {
    /// The workflow of `kind`.
    pub fn of(&self, kind: WorkItemKind) -> &[String] {
        match kind {
            WorkItemKind::Change => &self.changes,
            WorkItemKind::Incident => &self.incidents,
            WorkItemKind::Task => &self.tasks,
        }
    }
}

impl WorkItemCounts {
    /// The counts of `kind`, by status.
    pub fn of(&self, kind: WorkItemKind) -> &BTreeMap<String, u64> {
        match kind {
            WorkItemKind::Change => &self.changes,
            WorkItemKind::Incident => &self.incidents,
            WorkItemKind::Task => &self.tasks,
        }
    }

    /// The counts of `kind` as `(status, count)` pairs: every status of the
    /// workflow in workflow order, zero for the empty ones, when the server
    /// sent [`WorkItemCounts::statuses`]; then any counted status the
    /// workflow does not list, alphabetically. From a server that did not
    /// send the workflow, only the counted statuses, alphabetically.
    pub fn in_workflow_order(&self, kind: WorkItemKind) -> Vec<(String, u64)> {
        let counts = self.of(kind);
        let workflow = self.statuses.as_ref().map(|s| s.of(kind)).unwrap_or(&[]);
        let mut ordered: Vec<(String, u64)> = workflow
            .iter()
            .map(|status| (status.clone(), counts.get(status).copied().unwrap_or(0)))
            .collect();
        for (status, count) in counts {
            if !workflow.contains(status) {
                ordered.push((status.clone(), *count));
            }
        }
        ordered
    }
}

/// Request of [`CERTIFICATES_EXPIRING`]: `{"within_days": 30}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatesExpiringRequest {
    /// Report certificates whose earliest expiry is within this many days
    /// from now (0 to 36500). Expired certificates are always included.
    pub within_days: u32,
}

/// Response of [`CERTIFICATES_EXPIRING`]: the workspaces that have expiring
/// or expired certificates (workspaces with none are left out), each with
/// its certificates, soonest expiry first.
///
/// ```json
/// {"workspaces": [{"workspace": "ops", "certificates": [
///     {"id": 1, "name": "api.example.com", "subject": "CN=api.example.com",
///      "not_after": "2026-12-01T00:00:00Z", "days_left": 3, "expired": false}]}]}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatesExpiring {
    /// One entry per workspace with something to report.
    pub workspaces: Vec<ExpiringWorkspace>,
}

/// One workspace's entry in [`CertificatesExpiring`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringWorkspace {
    /// The workspace's slug.
    pub workspace: String,
    /// Its certificates, soonest expiry first.
    #[serde(default)]
    pub certificates: Vec<ExpiringCertificate>,
}

/// A certificate in [`CertificatesExpiring`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringCertificate {
    /// The certificate's identifier in its workspace.
    pub id: i64,
    /// Its display name (may be empty).
    #[serde(default)]
    pub name: String,
    /// The leaf certificate's subject, for example `CN=api.example.com`.
    #[serde(default)]
    pub subject: String,
    /// The earliest expiry in its chain, RFC 3339.
    pub not_after: String,
    /// Whole days left, rounded down: negative once expired (`-1` means it
    /// expired less than a day ago). The server sends `i64::MIN` when it
    /// could not read the expiry.
    pub days_left: i64,
    /// Whether it has expired.
    pub expired: bool,
}

/// Request of [`INTEGRATIONS_NOTIFY`]:
/// `{"workspace": "ops", "event": {...}, "integration": "ops-slack"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifyRequest {
    /// The workspace whose integrations deliver the event.
    pub workspace: String,
    /// The event. Its `type` is required; the server sets its `workspace` to
    /// [`NotifyRequest::workspace`].
    pub event: Event,
    /// Deliver through this one integration only (by name); `None` delivers
    /// through every enabled integration of the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
}

/// Response of [`INTEGRATIONS_NOTIFY`]: one entry per integration the event
/// was handed to (none when the workspace has no enabled integration).
///
/// ```json
/// {"deliveries": [{"integration": "ops-slack", "adapter": "slack_notifier", "ok": true,
///                  "detail": {"status": 200}, "error": null, "delivery_id": 12}]}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifyResponse {
    /// The delivery attempts, in the order they were made.
    pub deliveries: Vec<Delivery>,
}

/// One delivery attempt in [`NotifyResponse`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The integration's name.
    #[serde(default)]
    pub integration: String,
    /// The adapter it uses.
    #[serde(default)]
    pub adapter: String,
    /// Whether the adapter delivered the event.
    #[serde(default)]
    pub ok: bool,
    /// What the adapter reported (for example `{"status": 200}`).
    #[serde(default)]
    pub detail: Option<Value>,
    /// Why the delivery failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The entry in the integration's delivery log.
    #[serde(default)]
    pub delivery_id: Option<i64>,
}

/// The methods [`HTTP_REQUEST`] accepts; on the wire, upper case (`"POST"`).
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

/// Request of [`HTTP_REQUEST`]:
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

/// Response of [`HTTP_REQUEST`]:
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
/// failed [`HTTP_REQUEST`]): every occurrence of the URL, with or without its
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

/// The plugin's view of the [`crate::abi::HostApi`] trait object it was
/// handed.
pub(crate) struct HostClient<'lt, 'r> {
    api: HostApi_TO<'lt, RRef<'r, ()>>,
}

impl<'lt, 'r> HostClient<'lt, 'r> {
    pub(crate) fn new(api: HostApi_TO<'lt, RRef<'r, ()>>) -> Self {
        HostClient { api }
    }
}

impl Host for HostClient<'_, '_> {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        let input = input.to_string();
        match self
            .api
            .call(RStr::from_str(method), RStr::from_str(&input))
        {
            RResult::ROk(text) => serde_json::from_str(&text)
                .map_err(|e| format!("host method `{method}` answered with invalid JSON: {e}")),
            RResult::RErr(message) => Err(message.into_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::harness::MockHost;

    #[test]
    fn count_by_status_reads_old_and_new_servers() {
        // A server from before `statuses`: counts only.
        let old = MockHost::new().respond(
            WORK_ITEMS_COUNT_BY_STATUS,
            json!({"changes": {"draft": 2, "approved": 1}, "incidents": {}, "tasks": {"todo": 3}}),
        );
        let counts = old.work_items_count_by_status("ops").unwrap();
        assert_eq!(counts.statuses, None);
        assert_eq!(
            old.calls(),
            vec![(
                WORK_ITEMS_COUNT_BY_STATUS.to_owned(),
                json!({"workspace": "ops"})
            )]
        );
        assert_eq!(
            counts.in_workflow_order(WorkItemKind::Change),
            vec![("approved".to_owned(), 1), ("draft".to_owned(), 2)]
        );
        assert_eq!(counts.in_workflow_order(WorkItemKind::Incident), vec![]);

        // A server that sends each workflow: every status, in order, zeros
        // included; a counted status the workflow does not list comes last.
        let new = MockHost::new().respond(
            WORK_ITEMS_COUNT_BY_STATUS,
            json!({
                "changes": {"approved": 1, "draft": 2},
                "incidents": {"open": 1},
                "tasks": {"doing": 4, "archived": 1},
                "statuses": {
                    "changes": ["draft", "pending_approval", "approved", "rejected", "in_progress", "done"],
                    "incidents": ["open", "investigating", "mitigated", "resolved"],
                    "tasks": ["todo", "doing", "done"]
                }
            }),
        );
        let counts = new.work_items_count_by_status("ops").unwrap();
        let pairs = |kind| -> Vec<(String, u64)> { counts.in_workflow_order(kind) };
        let owned = |items: &[(&str, u64)]| -> Vec<(String, u64)> {
            items.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
        };
        assert_eq!(
            pairs(WorkItemKind::Change),
            owned(&[
                ("draft", 2),
                ("pending_approval", 0),
                ("approved", 1),
                ("rejected", 0),
                ("in_progress", 0),
                ("done", 0)
            ])
        );
        assert_eq!(
            pairs(WorkItemKind::Incident),
            owned(&[
                ("open", 1),
                ("investigating", 0),
                ("mitigated", 0),
                ("resolved", 0)
            ])
        );
        assert_eq!(
            pairs(WorkItemKind::Task),
            owned(&[("todo", 0), ("doing", 4), ("done", 0), ("archived", 1)])
        );
        // And it round-trips; without `statuses` the field is left out.
        assert_eq!(
            serde_json::to_value(WorkItemCounts::default()).unwrap(),
            json!({"changes": {}, "incidents": {}, "tasks": {}})
        );
    }

    #[test]
    fn a_host_error_passes_through_and_a_bad_shape_is_named() {
        let host = MockHost::new().respond_with(WORK_ITEMS_COUNT_BY_STATUS, |_| {
            Err("no workspace `x`".into())
        });
        assert_eq!(
            host.work_items_count_by_status("x"),
            Err("no workspace `x`".into())
        );
        let host = MockHost::new().respond(CERTIFICATES_EXPIRING, json!({"certificates": []}));
        let error = host.certificates_expiring(30).unwrap_err();
        assert!(
            error.starts_with("host answered certificates.expiring with an unexpected shape: "),
            "{error}"
        );
        assert!(error.contains("workspaces"), "{error}");
    }

    #[test]
    fn certificates_expiring_shapes() {
        let answer = json!({"workspaces": [{"workspace": "ops", "certificates": [
            {"id": 1, "name": "api.example.com", "subject": "CN=api.example.com",
             "not_after": "2026-12-01T00:00:00Z", "days_left": 3, "expired": false,
             "issuer": "a field from a newer server"}]}]});
        let host = MockHost::new().respond(CERTIFICATES_EXPIRING, answer);
        let expiring = host.certificates_expiring(30).unwrap();
        assert_eq!(
            host.calls(),
            vec![(CERTIFICATES_EXPIRING.to_owned(), json!({"within_days": 30}))]
        );
        assert_eq!(
            expiring,
            CertificatesExpiring {
                workspaces: vec![ExpiringWorkspace {
                    workspace: "ops".into(),
                    certificates: vec![ExpiringCertificate {
                        id: 1,
                        name: "api.example.com".into(),
                        subject: "CN=api.example.com".into(),
                        not_after: "2026-12-01T00:00:00Z".into(),
                        days_left: 3,
                        expired: false,
                    }],
                }],
            }
        );
    }

    #[test]
    fn integrations_notify_shapes() {
        let host = MockHost::new().respond(
            INTEGRATIONS_NOTIFY,
            json!({"deliveries": [
                {"integration": "ops-slack", "adapter": "slack_notifier", "ok": true,
                 "detail": {"status": 200}, "error": null, "delivery_id": 12},
                {"integration": "ops-hook", "adapter": "webhook", "ok": false,
                 "error": "the webhook at hooks.example.com answered HTTP 500: down"}
            ]}),
        );
        let event = Event {
            event_type: "certificate.expiry_digest".into(),
            workspace: "ops".into(),
            title: "1 certificate expiring within 30 days".into(),
            text: "api.example.com — expires 2026-12-01 (3 days left)".into(),
            data: json!({"within_days": 30}),
        };
        let mut request = NotifyRequest {
            workspace: "ops".into(),
            event: event.clone(),
            integration: None,
        };
        let answer = host.integrations_notify(&request).unwrap();
        assert_eq!(answer.deliveries.len(), 2);
        assert_eq!(answer.deliveries[0].detail, Some(json!({"status": 200})));
        assert_eq!(answer.deliveries[0].delivery_id, Some(12));
        assert!(!answer.deliveries[1].ok);
        assert_eq!(answer.deliveries[1].delivery_id, None);
        // Without an integration the key is left out (every integration).
        assert_eq!(
            host.calls()[0].1,
            json!({"workspace": "ops", "event": {
                "type": "certificate.expiry_digest", "workspace": "ops",
                "title": "1 certificate expiring within 30 days",
                "text": "api.example.com — expires 2026-12-01 (3 days left)",
                "data": {"within_days": 30}}})
        );
        request.integration = Some("ops-slack".into());
        assert_eq!(
            serde_json::to_value(&request).unwrap()["integration"],
            "ops-slack"
        );
    }

    #[test]
    fn http_request_encoding() {
        let request = HttpRequest::post("https://hooks.example.com/in?token=x")
            .header("Content-Type", "application/json")
            .header("X-Team", "ops")
            .body("{\"text\":\"hello\"}")
            .timeout(Duration::from_secs(4));
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({
                "method": "POST",
                "url": "https://hooks.example.com/in?token=x",
                "headers": [
                    {"name": "Content-Type", "value": "application/json"},
                    {"name": "X-Team", "value": "ops"}
                ],
                "body": "{\"text\":\"hello\"}",
                "timeout_ms": 4000
            })
        );
        assert_eq!(
            request.header_value("content-type"),
            Some("application/json")
        );
        // The optional fields may be left out, and unknown ones are ignored.
        let minimal: HttpRequest = serde_json::from_value(
            json!({"method": "GET", "url": "https://example.com/", "follow": "a newer field"}),
        )
        .unwrap();
        assert_eq!(minimal, HttpRequest::get("https://example.com/"));
        assert_eq!(
            serde_json::to_value(&minimal).unwrap(),
            json!({"method": "GET", "url": "https://example.com/", "headers": []})
        );
        for (method, name) in [
            (HttpMethod::Get, "GET"),
            (HttpMethod::Post, "POST"),
            (HttpMethod::Put, "PUT"),
            (HttpMethod::Patch, "PATCH"),
            (HttpMethod::Delete, "DELETE"),
        ] {
            assert_eq!(method.as_str(), name);
            assert_eq!(serde_json::to_value(method).unwrap(), json!(name));
        }
        assert!(serde_json::from_value::<HttpMethod>(json!("TRACE")).is_err());
    }

    #[test]
    fn http_response_decoding_and_errors() {
        let host = MockHost::new().respond(
            HTTP_REQUEST,
            json!({"status": 500, "headers": [{"name": "Content-Type", "value": "text/plain"}],
                   "body": "database\non fire"}),
        );
        let response = host
            .http_request(&HttpRequest::get("https://example.com/"))
            .unwrap();
        assert_eq!(
            host.calls(),
            vec![(
                HTTP_REQUEST.to_owned(),
                json!({"method": "GET", "url": "https://example.com/", "headers": []})
            )]
        );
        assert!(!response.is_success());
        assert!(!response.truncated);
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(
            response.error_message("the webhook at example.com"),
            "the webhook at example.com answered HTTP 500: database on fire"
        );
        assert_eq!(
            HttpResponse::new(502, "  \n").error_message("the Slack webhook"),
            "the Slack webhook answered HTTP 502 with an empty body"
        );
        let long = HttpResponse::new(404, "x".repeat(250));
        assert_eq!(
            long.error_message("it"),
            format!("it answered HTTP 404: {}…", "x".repeat(200))
        );
        assert!(HttpResponse::new(204, "").is_success());
        assert_eq!(
            serde_json::to_value(HttpResponse::new(200, "ok")).unwrap(),
            json!({"status": 200, "headers": [], "body": "ok"})
        );

        // A refused destination is the host's error, unchanged.
        let refusing = MockHost::new().respond_with(HTTP_REQUEST, |_| {
            Err(
                "10.0.0.5 is a private address; plugins may call it only if the operator allows it"
                    .into(),
            )
        });
        assert_eq!(
            refusing.http_request(&HttpRequest::get("http://10.0.0.5/")),
            Err(
                "10.0.0.5 is a private address; plugins may call it only if the operator allows it"
                    .into()
            )
        );
    }

    #[test]
    fn urls_are_redacted() {
        let url = "http://127.0.0.1:9/services/T000/B000/SECRET";
        assert_eq!(
            redact_url(
                "connecting to http://127.0.0.1:9/services/T000/B000/SECRET failed",
                url,
                "the Slack webhook"
            ),
            "connecting to the Slack webhook failed"
        );
        assert_eq!(
            redact_url("127.0.0.1:9/services/T000/B000/SECRET: refused", url, "X"),
            "X: refused"
        );
        assert_eq!(
            redact_url("path /services/T000/B000/SECRET", url, "X"),
            "path /…"
        );
        assert_eq!(redact_url("nothing to hide", url, "X"), "nothing to hide");
        assert_eq!(
            redact_url("to http://h/", "http://h/", "the hook"),
            "to the hook"
        );
        assert_eq!(redact_url("a", "", "X"), "a");
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            http_url_host("https://a.example.com/x?y"),
            Some("a.example.com")
        );
        assert_eq!(http_url_host("http://user:pw@h:8080/p"), Some("h:8080"));
        assert_eq!(http_url_host("https://"), None);
        assert_eq!(http_url_host("https:///path"), None);
        assert_eq!(http_url_host("ftp://h/x"), None);
        assert_eq!(http_url_host("https://h/a b"), None);
        assert_eq!(http_url_host("h/x"), None);
    }
}
