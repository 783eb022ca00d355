//! The JSON that crosses the boundary: the manifest, the registrations, and
//! the input and output of every [`crate::abi::PluginMod::call`] method.
//!
//! Plugins (through the SDK) and the server both use these types, so the two
//! sides agree by construction. Readers ignore unknown fields, so a newer
//! side may add optional fields without breaking an older one.
//!
//! | method | input | output |
//! | --- | --- | --- |
//! | [`FIELD_TYPE_VALIDATE`] | [`ValidateRequest`] | [`ValidateResponse`]; an invalid value is a `BadInput` error whose message is the reason |
//! | [`WIDGET_RENDER`] | [`RenderRequest`] | the widget's JSON data |
//! | [`ADAPTER_SEND`] | [`SendRequest`] | [`SendResponse`] |
//! | [`ADAPTER_VALIDATE_CONFIG`] | [`ValidateConfigRequest`] | [`ValidateConfigResponse`] |
//! | [`WIDGET_VALIDATE_CONFIG`] | [`ValidateConfigRequest`] | [`ValidateConfigResponse`]; refused options are a `BadInput` error whose message is the reason |
//! | [`TASK_RUN`] | [`RunTaskRequest`] | the task's JSON summary |
//!
//! Any other method name is an `UnknownMethod` error; malformed input or a
//! name the plugin did not register is `BadInput`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    abi::SDK_ABI_VERSION,
    event::Event,
    plugin::{FieldContext, PluginKind, Schedule},
};

/// `field_type.validate`: validate and normalise a custom-field value.
pub const FIELD_TYPE_VALIDATE: &str = "field_type.validate";
/// `widget.render`: a dashboard tile's data.
pub const WIDGET_RENDER: &str = "widget.render";
/// `adapter.send`: deliver an event through an integration.
pub const ADAPTER_SEND: &str = "adapter.send";
/// `adapter.validate_config`: check an integration's configuration.
pub const ADAPTER_VALIDATE_CONFIG: &str = "adapter.validate_config";
/// `widget.validate_config`: check a tile's options beyond its schema.
/// Plugins built before it existed answer `UnknownMethod`, which the
/// server takes as "nothing more to check".
pub const WIDGET_VALIDATE_CONFIG: &str = "widget.validate_config";
/// `task.run`: run a periodic task once.
pub const TASK_RUN: &str = "task.run";

/// The plugin's manifest: what [`crate::abi::PluginMod::manifest`] returns.
///
/// ```json
/// {"name": "datepicker_with_holidays", "kind": "field_type", "version": "0.1.0",
///  "compatible_with": ">=0.1, <0.2", "sdk_abi_version": 1, "sdk_version": "0.1.0",
///  "panic_unwind": true, "description": "...",
///  "frontend": [{"path": "holiday_aware_date.js", "content_type": "text/javascript"}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Globally unique plugin name.
    pub name: String,
    /// What the plugin primarily provides.
    pub kind: PluginKind,
    /// The plugin's version (semver).
    pub version: String,
    /// Semver requirement on the server's `VIGILO_VERSION`.
    pub compatible_with: String,
    /// [`SDK_ABI_VERSION`] of the SDK the plugin was built with.
    pub sdk_abi_version: u32,
    /// Version of the `vigilo-sdk` crate the plugin was built with.
    pub sdk_version: String,
    /// Whether the plugin was built with `panic = "unwind"`. When false, a
    /// panic in the plugin aborts the whole server: the SDK cannot catch it.
    #[serde(default)]
    pub panic_unwind: bool,
    /// One sentence for operators.
    #[serde(default)]
    pub description: String,
    /// Embedded frontend files, fetched with
    /// [`crate::abi::PluginMod::asset`].
    #[serde(default)]
    pub frontend: Vec<FrontendAsset>,
    /// The frontend contract the plugin's elements were built for
    /// ([`crate::FRONTEND_API_VERSION`] of its SDK); 0 when the manifest
    /// predates it.
    #[serde(default)]
    pub frontend_api: u32,
    /// The capabilities the plugin declares ([`crate::Plugin::capabilities`]);
    /// `None` from a plugin that declares none, or was built before they
    /// existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<crate::host::Capabilities>,
}

/// A registration's custom element, as the manifest of registrations
/// carries it (see [`crate::Element`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementSpec {
    /// The custom element's tag.
    pub tag: String,
    /// The frontend asset (an ES module) that defines it.
    pub module: String,
    /// A frontend asset (CSS) to link first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stylesheet: Option<String>,
}

impl From<crate::Element> for ElementSpec {
    fn from(e: crate::Element) -> Self {
        ElementSpec {
            tag: e.tag,
            module: e.module,
            stylesheet: e.stylesheet,
        }
    }
}

/// A frontend file listed in the [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendAsset {
    /// Relative path, as passed to the `asset` function.
    pub path: String,
    /// MIME type to serve it with.
    pub content_type: String,
}

/// Why a plugin cannot run on this server (see [`Manifest::check_compatible`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatibility {
    /// The plugin's `compatible_with` does not match the server's version.
    ServerVersion {
        /// The plugin's requirement.
        required: String,
        /// The server's version.
        server: String,
    },
    /// `compatible_with` is not a semver requirement.
    InvalidRequirement {
        /// The text.
        requirement: String,
        /// The parser's explanation.
        reason: String,
    },
    /// The server's own version is not semver (a server bug).
    InvalidServerVersion {
        /// The text.
        version: String,
        /// The parser's explanation.
        reason: String,
    },
    /// The plugin was built for another version of the wire contract.
    SdkAbiVersion {
        /// The plugin's [`Manifest::sdk_abi_version`].
        plugin: u32,
        /// This SDK's [`SDK_ABI_VERSION`].
        server: u32,
    },
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Incompatibility::ServerVersion { required, server } => write!(
                f,
                "plugin requires Vigilo {required}, but this server is {server}"
            ),
            Incompatibility::InvalidRequirement {
                requirement,
                reason,
            } => write!(
                f,
                "plugin's compatible_with `{requirement}` is not a semver requirement: {reason}"
            ),
            Incompatibility::InvalidServerVersion { version, reason } => {
                write!(f, "server version `{version}` is not semver: {reason}")
            }
            Incompatibility::SdkAbiVersion { plugin, server } => write!(
                f,
                "plugin was built for plugin ABI version {plugin}, but this server speaks version {server}; \
                 rebuild the plugin against a matching vigilo-sdk"
            ),
        }
    }
}

impl std::error::Error for Incompatibility {}

impl Manifest {
    /// Checks that the plugin can run on a server whose version is
    /// `vigilo_version`: its `compatible_with` requirement matches and it
    /// speaks this SDK's [`SDK_ABI_VERSION`].
    ///
    /// Semver rules apply: a pre-release server version (`0.2.0-rc.1`)
    /// matches only requirements that mention a pre-release of the same
    /// version.
    pub fn check_compatible(&self, vigilo_version: &str) -> Result<(), Incompatibility> {
        if self.sdk_abi_version != SDK_ABI_VERSION {
            return Err(Incompatibility::SdkAbiVersion {
                plugin: self.sdk_abi_version,
                server: SDK_ABI_VERSION,
            });
        }
        let requirement = semver::VersionReq::parse(&self.compatible_with).map_err(|e| {
            Incompatibility::InvalidRequirement {
                requirement: self.compatible_with.clone(),
                reason: e.to_string(),
            }
        })?;
        let server = semver::Version::parse(vigilo_version).map_err(|e| {
            Incompatibility::InvalidServerVersion {
                version: vigilo_version.to_owned(),
                reason: e.to_string(),
            }
        })?;
        if requirement.matches(&server) {
            Ok(())
        } else {
            Err(Incompatibility::ServerVersion {
                required: self.compatible_with.clone(),
                server: vigilo_version.to_owned(),
            })
        }
    }
}

/// What [`crate::abi::PluginMod::register`] returns:
/// `{"registrations": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registrations {
    /// Everything the plugin registered, in registration order.
    pub registrations: Vec<Registration>,
}

/// One thing a plugin registered, tagged by `kind`:
///
/// ```json
/// {"kind": "field_type", "name": "holiday_aware_date", "label": "...", "description": "..."}
/// {"kind": "dashboard_widget", "name": "...", "label": "...", "description": "", "config_schema": {...}}
/// {"kind": "integration_adapter", "name": "...", "label": "...", "description": "",
///  "config_schema": {...}, "secret_fields": ["url"]}
/// {"kind": "celery_task", "name": "...", "label": "...", "description": "",
///  "schedule": {"every_seconds": 3600} | {"cron": "0 7 * * *"}, "config_schema": {...}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Registration {
    /// A custom field type.
    FieldType {
        /// Unique name.
        name: String,
        /// Label for pickers.
        label: String,
        /// Help text.
        #[serde(default)]
        description: String,
        /// The editor element, if the plugin has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        element: Option<ElementSpec>,
    },
    /// A dashboard widget.
    DashboardWidget {
        /// Unique name.
        name: String,
        /// Label for pickers.
        label: String,
        /// Help text.
        #[serde(default)]
        description: String,
        /// JSON Schema of the tile's configuration.
        #[serde(default)]
        config_schema: Value,
        /// The tile element, if the plugin has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        element: Option<ElementSpec>,
    },
    /// An integration adapter.
    IntegrationAdapter {
        /// Unique name.
        name: String,
        /// Label for pickers.
        label: String,
        /// Help text.
        #[serde(default)]
        description: String,
        /// JSON Schema of the configuration.
        #[serde(default)]
        config_schema: Value,
        /// Configuration keys that hold secrets.
        #[serde(default)]
        secret_fields: Vec<String>,
    },
    /// A periodic task.
    CeleryTask {
        /// Unique name.
        name: String,
        /// Label for the scheduler's list.
        label: String,
        /// Help text.
        #[serde(default)]
        description: String,
        /// When it runs.
        schedule: Schedule,
        /// JSON Schema of the configuration.
        #[serde(default)]
        config_schema: Value,
    },
}

impl Registration {
    /// The custom element that draws it in the web app, if any.
    pub fn element(&self) -> Option<&ElementSpec> {
        match self {
            Registration::FieldType { element, .. }
            | Registration::DashboardWidget { element, .. } => element.as_ref(),
            _ => None,
        }
    }

    /// The registration's kind.
    pub fn kind(&self) -> PluginKind {
        match self {
            Registration::FieldType { .. } => PluginKind::FieldType,
            Registration::DashboardWidget { .. } => PluginKind::DashboardWidget,
            Registration::IntegrationAdapter { .. } => PluginKind::IntegrationAdapter,
            Registration::CeleryTask { .. } => PluginKind::CeleryTask,
        }
    }

    /// The registration's name.
    pub fn name(&self) -> &str {
        match self {
            Registration::FieldType { name, .. }
            | Registration::DashboardWidget { name, .. }
            | Registration::IntegrationAdapter { name, .. }
            | Registration::CeleryTask { name, .. } => name,
        }
    }

    /// The registration's label.
    pub fn label(&self) -> &str {
        match self {
            Registration::FieldType { label, .. }
            | Registration::DashboardWidget { label, .. }
            | Registration::IntegrationAdapter { label, .. }
            | Registration::CeleryTask { label, .. } => label,
        }
    }
}

/// Input of [`FIELD_TYPE_VALIDATE`]:
/// `{"name": "holiday_aware_date", "value": "2026-12-24", "context": {"workspace": "ops", "settings": {...}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// The field type's registered name.
    pub name: String,
    /// The value to validate.
    pub value: Value,
    /// The workspace it is validated in.
    #[serde(default)]
    pub context: FieldContext,
}

/// Output of [`FIELD_TYPE_VALIDATE`]: `{"value": <normalised>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateResponse {
    /// The normalised value to store.
    pub value: Value,
}

/// Input of [`WIDGET_RENDER`]: `{"name": "kanban_overview", "workspace": "ops", "config": {}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderRequest {
    /// The widget's registered name.
    pub name: String,
    /// The workspace's slug.
    pub workspace: String,
    /// The tile's configuration.
    #[serde(default = "empty_object")]
    pub config: Value,
}

/// Input of [`ADAPTER_SEND`]:
/// `{"name": "slack", "config": {...}, "event": {"type": "incident.opened", "workspace": "ops", "title": "...", "text": "...", "data": {...}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendRequest {
    /// The adapter's registered name.
    pub name: String,
    /// The integration's (validated) configuration, secrets included.
    #[serde(default = "empty_object")]
    pub config: Value,
    /// The event to deliver.
    pub event: Event,
}

/// Output of [`ADAPTER_SEND`]: `{"delivered": true, "detail": <adapter's detail>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendResponse {
    /// Always true in a successful response (a failed delivery is an error).
    pub delivered: bool,
    /// What the adapter reported (for the delivery log).
    #[serde(default)]
    pub detail: Value,
}

/// Input of [`ADAPTER_VALIDATE_CONFIG`]: `{"name": "slack", "config": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateConfigRequest {
    /// The adapter's registered name.
    pub name: String,
    /// The configuration to check.
    pub config: Value,
}

/// Output of [`ADAPTER_VALIDATE_CONFIG`]: `{"config": <normalised>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateConfigResponse {
    /// The normalised configuration to store.
    pub config: Value,
}

/// Input of [`TASK_RUN`]: `{"name": "cert_digest", "config": {...}, "now": "2026-12-24T07:00:00Z"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTaskRequest {
    /// The task's registered name.
    pub name: String,
    /// The task's configuration.
    #[serde(default = "empty_object")]
    pub config: Value,
    /// The scheduled time, RFC 3339.
    pub now: String,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}
