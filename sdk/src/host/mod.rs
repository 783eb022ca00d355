//! The server's callback API: every host method's name and its request and
//! response types, and the [`Host`] trait plugins call them through.
//!
//! Widgets, field types, adapters and tasks receive a `&dyn Host`.
//! [`Host::call`] takes a method name and JSON; the typed helpers build the
//! request and check the answer for you, and [`call`] does the same for any
//! [`HostCall`]. [`HostRequest`] is the whole contract as one enum.
//!
//! | method | request | response | capability | who may call it |
//! | --- | --- | --- | --- | --- |
//! | [`WORK_ITEMS_COUNT_BY_STATUS`] | [`WorkItemCountsRequest`] | [`WorkItemCounts`] | `work_items.read` | any plugin, in its workspace |
//! | [`WORK_ITEMS_LIST`] | [`WorkItemsQuery`] | [`WorkItemPage`] | `work_items.read` | any plugin, in its workspace |
//! | [`WORK_ITEMS_GET`] | [`WorkItemRef`] | [`WorkItem`] | `work_items.read` | any plugin, in its workspace |
//! | [`WORKSPACES_LIST`] | [`WorkspacesRequest`] | [`Workspaces`] | `work_items.read` | any plugin: the workspaces it may act in |
//! | [`WORK_ITEMS_CREATE`] | [`NewWorkItem`] | [`WorkItem`] | `work_items.write` | tasks and adapters |
//! | [`WORK_ITEMS_UPDATE`] | [`WorkItemUpdate`] | [`WorkItem`] | `work_items.write` | tasks and adapters |
//! | [`WORK_ITEMS_TRANSITION`] | [`WorkItemMove`] | [`WorkItem`] | `work_items.write` | tasks and adapters |
//! | [`SETTINGS_GET`] | [`SettingsRequest`] | [`WorkspaceSettings`] | `settings.read` | any plugin, in its workspace |
//! | [`KV_GET`] | [`KvKey`] | [`KvEntry`] | `storage` | any plugin |
//! | [`KV_SET`] | [`KvSet`] | [`KvEntry`] | `storage` | any plugin |
//! | [`KV_DELETE`] | [`KvDelete`] | [`KvDeleted`] | `storage` | any plugin |
//! | [`KV_LIST`] | [`KvList`] | [`KvKeys`] | `storage` | any plugin |
//! | [`LOG_WRITE`] | [`LogLine`] | [`LogWritten`] | `log` | any plugin |
//! | [`CERTIFICATES_EXPIRING`] | [`CertificatesExpiringRequest`] | [`CertificatesExpiring`] | `certificates.read` | tasks |
//! | [`INTEGRATIONS_NOTIFY`] | [`NotifyRequest`] | [`NotifyResponse`] | `notify` | tasks |
//! | [`HTTP_REQUEST`] | [`HttpRequest`] | [`HttpResponse`] | `http` and the host | adapters (`send`) and tasks |
//!
//! "In its workspace": a widget or a field type acts in the workspace it is
//! rendered or validated in, an adapter in its event's workspace, and a
//! periodic task in the workspaces its operator enabled it for (all by
//! default). A workspace outside that is refused as if it did not exist.
//!
//! # Capabilities
//!
//! A plugin declares the capabilities it uses ([`crate::Plugin::capabilities`]);
//! a call outside them is an `Err` starting with [`CAPABILITY_NOT_DECLARED`]
//! and naming what is missing. A plugin that declares nothing (built before
//! capabilities existed) keeps what it had: the first four methods above and
//! the last three, as its kind allowed them.
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

use std::{collections::BTreeMap, sync::Arc};

use abi_stable::{
    sabi_types::RRef,
    std_types::{RResult, RStr},
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::{abi::HostApi_TO, event::Event};

mod calls;
mod http;
mod items;
mod store;

pub use calls::{
    call, Capabilities, Capability, DecodeError, HostCall, HostRequest, CAPABILITY_NOT_DECLARED,
};
pub use http::{
    http_url_host, redact_url, HttpHeader, HttpMethod, HttpRequest, HttpResponse,
    ERROR_BODY_EXCERPT_CHARS,
};
pub use items::*;
pub use store::*;

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

    /// The workspaces the plugin may act in ([`WORKSPACES_LIST`]).
    fn workspaces(&self) -> Result<Workspaces, String> {
        call(self, &WorkspacesRequest {})
    }

    /// A page of a workspace's work items ([`WORK_ITEMS_LIST`]).
    fn work_items_list(&self, query: &WorkItemsQuery) -> Result<WorkItemPage, String> {
        call(self, query)
    }

    /// One work item ([`WORK_ITEMS_GET`]).
    fn work_item(&self, workspace: &str, id: i64) -> Result<WorkItem, String> {
        call(
            self,
            &WorkItemRef {
                workspace: workspace.to_owned(),
                id,
            },
        )
    }

    /// Creates a work item ([`WORK_ITEMS_CREATE`]).
    fn create_work_item(&self, item: &NewWorkItem) -> Result<WorkItem, String> {
        call(self, item)
    }

    /// Edits a work item ([`WORK_ITEMS_UPDATE`]).
    fn update_work_item(&self, update: &WorkItemUpdate) -> Result<WorkItem, String> {
        call(self, update)
    }

    /// Moves a work item through its workflow ([`WORK_ITEMS_TRANSITION`]).
    fn move_work_item(&self, to: &WorkItemMove) -> Result<WorkItem, String> {
        call(self, to)
    }

    /// A workspace's settings ([`SETTINGS_GET`]).
    fn workspace_settings(&self, workspace: &str) -> Result<WorkspaceSettings, String> {
        call(
            self,
            &SettingsRequest {
                workspace: workspace.to_owned(),
            },
        )
    }

    /// An entry of the plugin's store ([`KV_GET`]).
    fn kv_get(&self, key: &KvKey) -> Result<KvEntry, String> {
        call(self, key)
    }

    /// Writes an entry of the plugin's store ([`KV_SET`]).
    fn kv_set(&self, set: &KvSet) -> Result<KvEntry, String> {
        call(self, set)
    }

    /// Deletes an entry of the plugin's store ([`KV_DELETE`]).
    fn kv_delete(&self, delete: &KvDelete) -> Result<KvDeleted, String> {
        call(self, delete)
    }

    /// Keys of the plugin's store ([`KV_LIST`]).
    fn kv_list(&self, list: &KvList) -> Result<KvKeys, String> {
        call(self, list)
    }

    /// Writes a line to the server's log under the plugin's name
    /// ([`LOG_WRITE`]).
    fn log(&self, level: LogLevel, message: &str) -> Result<LogWritten, String> {
        call(
            self,
            &LogLine {
                level,
                message: message.to_owned(),
                fields: Default::default(),
            },
        )
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
mod tests;
