//! The contract in one place: every host method as a variant of
//! [`HostRequest`], the [`Capability`] each needs, and the [`Capabilities`]
//! a plugin declares in its manifest.

use std::collections::BTreeSet;
use std::fmt;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use super::items::*;
use super::store::*;
use super::*;

/// The start of the error a host answers when a plugin calls a method whose
/// capability it did not declare (or reaches an HTTP host it did not list).
pub const CAPABILITY_NOT_DECLARED: &str = "capability_not_declared";

/// What a plugin may ask of the host. A plugin declares the ones it uses
/// ([`crate::Plugin::capabilities`]); the server shows them to the operator
/// before the plugin runs, and refuses any call outside them with an error
/// starting with [`CAPABILITY_NOT_DECLARED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Capability {
    /// Read work items: counts, lists, one item.
    #[serde(rename = "work_items.read")]
    WorkItemsRead,
    /// Create, edit and move work items (audited as the plugin).
    #[serde(rename = "work_items.write")]
    WorkItemsWrite,
    /// Read a workspace's settings.
    #[serde(rename = "settings.read")]
    SettingsRead,
    /// Keep data in the plugin's own key-value store.
    #[serde(rename = "storage")]
    Storage,
    /// Write lines to the server's log.
    #[serde(rename = "log")]
    Log,
    /// Deliver events through a workspace's integrations.
    #[serde(rename = "notify")]
    Notify,
    /// Read certificates and their expiry.
    #[serde(rename = "certificates.read")]
    CertificatesRead,
    /// Make outbound HTTP requests, to the hosts in
    /// [`Capabilities::http_hosts`] only.
    #[serde(rename = "http")]
    Http,
}

impl Capability {
    /// Every capability, in documentation order.
    pub const ALL: [Capability; 8] = [
        Capability::WorkItemsRead,
        Capability::WorkItemsWrite,
        Capability::SettingsRead,
        Capability::Storage,
        Capability::Log,
        Capability::Notify,
        Capability::CertificatesRead,
        Capability::Http,
    ];

    /// The wire name, for example `work_items.read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::WorkItemsRead => "work_items.read",
            Capability::WorkItemsWrite => "work_items.write",
            Capability::SettingsRead => "settings.read",
            Capability::Storage => "storage",
            Capability::Log => "log",
            Capability::Notify => "notify",
            Capability::CertificatesRead => "certificates.read",
            Capability::Http => "http",
        }
    }

    /// What it lets a plugin do, in words an operator reads.
    pub fn description(self) -> &'static str {
        match self {
            Capability::WorkItemsRead => "read work items",
            Capability::WorkItemsWrite => "create, edit and move work items",
            Capability::SettingsRead => "read workspace settings",
            Capability::Storage => "keep data of its own",
            Capability::Log => "write to the server's log",
            Capability::Notify => "send events through integrations",
            Capability::CertificatesRead => "read certificates",
            Capability::Http => "make HTTP requests",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The capabilities a plugin declares, as its manifest carries them.
///
/// ```json
/// {"uses": ["work_items.read", "http"], "http_hosts": ["hooks.slack.com"]}
/// ```
///
/// ```
/// use vigilo_sdk::host::{Capabilities, Capability};
///
/// let declared = Capabilities::none()
///     .with(Capability::WorkItemsRead)
///     .with_http_host("hooks.slack.com");
/// assert!(declared.allows(Capability::Http));
/// assert!(declared.allows_host("hooks.slack.com"));
/// assert!(!declared.allows_host("example.com"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// What the plugin uses.
    #[serde(default)]
    pub uses: BTreeSet<Capability>,
    /// The hosts its HTTP requests reach: exact names, `*.example.com` for
    /// any name under `example.com`, or `*` for wherever its configuration
    /// points (an adapter that posts to a URL the operator gives it). The
    /// server's egress policy applies on top in every case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_hosts: Vec<String>,
}

impl Capabilities {
    /// Nothing: the plugin never calls the host.
    pub fn none() -> Self {
        Self::default()
    }

    /// Also `capability`.
    pub fn with(mut self, capability: Capability) -> Self {
        self.uses.insert(capability);
        self
    }

    /// Also HTTP requests to `host` (which implies [`Capability::Http`]).
    pub fn with_http_host(mut self, host: impl Into<String>) -> Self {
        self.uses.insert(Capability::Http);
        self.http_hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Whether `capability` is declared.
    pub fn allows(&self, capability: Capability) -> bool {
        self.uses.contains(&capability)
    }

    /// Whether an HTTP request to `host` is declared.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allows(Capability::Http)
            && self
                .http_hosts
                .iter()
                .any(|pattern| match pattern.strip_prefix("*.") {
                    _ if pattern == "*" => true,
                    Some(domain) => host.ends_with(&format!(".{domain}")),
                    None => *pattern == host,
                })
    }

    /// What this declares beyond `approved`, in words: the capabilities and
    /// the HTTP hosts `approved` lacks. Empty when it asks for nothing more.
    pub fn beyond(&self, approved: &Capabilities) -> Vec<String> {
        let mut more: Vec<String> = self
            .uses
            .difference(&approved.uses)
            .map(|c| c.as_str().to_owned())
            .collect();
        more.extend(
            self.http_hosts
                .iter()
                .filter(|h| !approved.http_hosts.contains(h))
                .map(|h| format!("http:{h}")),
        );
        more
    }

    /// Why these cannot be declared, if they cannot: a host pattern that is
    /// not a host name.
    pub fn check(&self) -> Result<(), String> {
        for host in self.http_hosts.iter().filter(|h| *h != "*") {
            let name = host.strip_prefix("*.").unwrap_or(host);
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
                && !name.contains("..");
            if !valid {
                return Err(format!(
                    "`{host}` in http_hosts is not a host name (write `api.example.com`, `*.example.com`, or `*` for any host)"
                ));
            }
        }
        if !self.http_hosts.is_empty() && !self.allows(Capability::Http) {
            return Err("http_hosts are listed but the `http` capability is not declared".into());
        }
        Ok(())
    }

    /// One line for operators: `work_items.read, http (hooks.slack.com)`,
    /// or `none`.
    pub fn summary(&self) -> String {
        if self.uses.is_empty() {
            return "none".into();
        }
        self.uses
            .iter()
            .map(|c| match c {
                Capability::Http if !self.http_hosts.is_empty() => {
                    format!("http ({})", self.http_hosts.join(", "))
                }
                other => other.as_str().to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A host method: its name, its request (the implementing type), its
/// response, and the capability it needs.
pub trait HostCall: Serialize + DeserializeOwned {
    /// The method's name.
    const METHOD: &'static str;
    /// What the host answers.
    type Response: Serialize + DeserializeOwned;
    /// The capability a plugin must declare to call it.
    const CAPABILITY: Capability;
}

macro_rules! host_calls {
    ($( $(#[$doc:meta])* $variant:ident($request:ty) => $method:ident, $response:ty, $capability:ident; )*) => {
        /// Every host method, decoded: the name picks the variant, the
        /// input is its typed request.
        ///
        /// The server decodes each call into this once
        /// ([`HostRequest::decode`]) and answers with the variant's
        /// response type ([`HostCall::Response`]).
        #[derive(Debug, Clone, PartialEq)]
        pub enum HostRequest {
            $( $(#[$doc])* $variant($request), )*
        }

        $(
            impl HostCall for $request {
                const METHOD: &'static str = $method;
                type Response = $response;
                const CAPABILITY: Capability = Capability::$capability;
            }
        )*

        impl HostRequest {
            /// Every method's name and the capability it needs, in
            /// documentation order.
            pub const METHODS: &'static [(&'static str, Capability)] = &[
                $( ($method, Capability::$capability), )*
            ];

            /// Reads a call: `Err` when the server has no method `method`
            /// ([`DecodeError::UnknownMethod`]) or `input` is not its
            /// request ([`DecodeError::BadInput`]).
            pub fn decode(method: &str, input: &Value) -> Result<HostRequest, DecodeError> {
                match method {
                    $( $method => serde_json::from_value(input.clone())
                        .map(HostRequest::$variant)
                        .map_err(|e| DecodeError::BadInput {
                            method: $method,
                            reason: e.to_string(),
                        }), )*
                    other => Err(DecodeError::UnknownMethod(other.to_owned())),
                }
            }

            /// The method's name.
            pub fn method(&self) -> &'static str {
                match self {
                    $( HostRequest::$variant(_) => $method, )*
                }
            }

            /// The capability the call needs.
            pub fn capability(&self) -> Capability {
                match self {
                    $( HostRequest::$variant(_) => Capability::$capability, )*
                }
            }
        }
    };
}

host_calls! {
    /// [`WORK_ITEMS_COUNT_BY_STATUS`].
    WorkItemsCountByStatus(WorkItemCountsRequest) => WORK_ITEMS_COUNT_BY_STATUS, WorkItemCounts, WorkItemsRead;
    /// [`WORK_ITEMS_LIST`].
    WorkItemsList(WorkItemsQuery) => WORK_ITEMS_LIST, WorkItemPage, WorkItemsRead;
    /// [`WORK_ITEMS_GET`].
    WorkItemsGet(WorkItemRef) => WORK_ITEMS_GET, WorkItem, WorkItemsRead;
    /// [`WORKSPACES_LIST`].
    WorkspacesList(WorkspacesRequest) => WORKSPACES_LIST, Workspaces, WorkItemsRead;
    /// [`WORK_ITEMS_CREATE`].
    WorkItemsCreate(NewWorkItem) => WORK_ITEMS_CREATE, WorkItem, WorkItemsWrite;
    /// [`WORK_ITEMS_UPDATE`].
    WorkItemsUpdate(WorkItemUpdate) => WORK_ITEMS_UPDATE, WorkItem, WorkItemsWrite;
    /// [`WORK_ITEMS_TRANSITION`].
    WorkItemsTransition(WorkItemMove) => WORK_ITEMS_TRANSITION, WorkItem, WorkItemsWrite;
    /// [`SETTINGS_GET`].
    SettingsGet(SettingsRequest) => SETTINGS_GET, WorkspaceSettings, SettingsRead;
    /// [`KV_GET`].
    KvGet(KvKey) => KV_GET, KvEntry, Storage;
    /// [`KV_SET`].
    KvSet(KvSet) => KV_SET, KvEntry, Storage;
    /// [`KV_DELETE`].
    KvDelete(KvDelete) => KV_DELETE, KvDeleted, Storage;
    /// [`KV_LIST`].
    KvList(KvList) => KV_LIST, KvKeys, Storage;
    /// [`LOG_WRITE`].
    LogWrite(LogLine) => LOG_WRITE, LogWritten, Log;
    /// [`CERTIFICATES_EXPIRING`].
    CertificatesExpiring(CertificatesExpiringRequest) => CERTIFICATES_EXPIRING, CertificatesExpiring, CertificatesRead;
    /// [`INTEGRATIONS_NOTIFY`].
    IntegrationsNotify(NotifyRequest) => INTEGRATIONS_NOTIFY, NotifyResponse, Notify;
    /// [`HTTP_REQUEST`].
    HttpRequest(HttpRequest) => HTTP_REQUEST, HttpResponse, Http;
}

impl HostRequest {
    /// The capability method `method` needs, if the server has it.
    pub fn capability_of(method: &str) -> Option<Capability> {
        Self::METHODS
            .iter()
            .find(|(name, _)| *name == method)
            .map(|(_, capability)| *capability)
    }
}

/// Why a call could not be read (see [`HostRequest::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// No host method has this name.
    UnknownMethod(String),
    /// The input is not the method's request.
    BadInput {
        /// The method.
        method: &'static str,
        /// What is wrong with the input.
        reason: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownMethod(method) => {
                write!(f, "the server has no host method `{method}`")
            }
            DecodeError::BadInput { method, reason } => {
                write!(f, "the input of `{method}` is not valid: {reason}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The typed call behind every helper of [`Host`]: encodes `request`, calls
/// its method, and reads the answer as its response.
pub fn call<C: HostCall, H: Host + ?Sized>(host: &H, request: &C) -> Result<C::Response, String> {
    typed_call(host, C::METHOD, request)
}
