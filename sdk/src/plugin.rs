//! The Rust API plugin vendors write against: the [`Plugin`] trait, the four
//! kinds of registration and the [`PluginRegistry`] that collects them.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::event::Event;
use crate::host::Host;

/// What a plugin primarily provides. The wire names (`as_str`, serde) are
/// fixed: `field_type`, `dashboard_widget`, `integration_adapter`,
/// `celery_task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// A value type for custom fields ([`FieldType`]).
    FieldType,
    /// A dashboard tile ([`Widget`]).
    DashboardWidget,
    /// A Slack/Jira/webhook-style notifier ([`Adapter`]).
    IntegrationAdapter,
    /// A periodic task run by the server's scheduler ([`Task`]).
    CeleryTask,
}

impl PluginKind {
    /// Every kind, in documentation order.
    pub const ALL: [PluginKind; 4] = [
        PluginKind::FieldType,
        PluginKind::DashboardWidget,
        PluginKind::IntegrationAdapter,
        PluginKind::CeleryTask,
    ];

    /// The wire name of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::FieldType => "field_type",
            PluginKind::DashboardWidget => "dashboard_widget",
            PluginKind::IntegrationAdapter => "integration_adapter",
            PluginKind::CeleryTask => "celery_task",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(name: &str) -> Option<PluginKind> {
        PluginKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frontend file embedded in the plugin (JavaScript, CSS, images...).
///
/// The server serves it to the web app; embed it with `include_bytes!` so
/// the plugin stays a single file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Relative path, for example `"holiday_aware_date.js"`. Use plain
    /// `name.ext` or `dir/name.ext`; no `..`, no leading `/`.
    pub path: &'static str,
    /// MIME type, for example `"text/javascript"` or `"text/css"`.
    pub content_type: &'static str,
    /// The file's bytes.
    pub bytes: &'static [u8],
}

/// The version of the frontend contract (how the web app hands data to a
/// plugin's custom elements and reads their values back) that this SDK
/// builds plugins for. The server records it from the manifest and refuses
/// to load elements built for a contract it does not speak, with a message
/// naming both versions. See "Frontend half" in the SDK's README.
pub const FRONTEND_API_VERSION: u32 = 1;

/// The custom element that draws one registration in the web app: a field
/// type's editor or a widget's tile.
///
/// The element is defined by an ES module among the plugin's
/// [`Plugin::frontend`] assets; the web app imports the module, waits for
/// the tag to be defined, and creates the element where the editor or tile
/// goes. The tag must be the plugin's name, a hyphen, and more
/// (`datepicker_with_holidays-picker`), so two plugins never claim the same
/// tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The custom element's tag.
    pub tag: String,
    /// The path of the ES module (one of the plugin's frontend assets) that
    /// defines it.
    pub module: String,
    /// A stylesheet (another frontend asset) the page links before the
    /// element is used, for styles outside its shadow root. Optional.
    pub stylesheet: Option<String>,
}

impl Element {
    /// Element `tag`, defined by the ES module `module`.
    pub fn new(tag: impl Into<String>, module: impl Into<String>) -> Self {
        Element {
            tag: tag.into(),
            module: module.into(),
            stylesheet: None,
        }
    }

    /// Also links the stylesheet asset `path`.
    pub fn with_stylesheet(mut self, path: impl Into<String>) -> Self {
        self.stylesheet = Some(path.into());
        self
    }

    /// Why this element cannot be used by plugin `plugin` with frontend
    /// assets `assets`, if it cannot.
    pub fn check(&self, plugin: &str, assets: &[&str]) -> Result<(), String> {
        let prefix = format!("{plugin}-");
        let valid_name = self.tag.len() > prefix.len()
            && self.tag.starts_with(&prefix)
            && self.tag.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !valid_name {
            return Err(format!(
                "element tag `{}` must be the plugin's name, a hyphen and more (`{prefix}...`), \
                 in lower-case letters, digits, `-`, `_` and `.`",
                self.tag
            ));
        }
        for path in std::iter::once(&self.module).chain(self.stylesheet.as_ref()) {
            if !assets.contains(&path.as_str()) {
                return Err(format!(
                    "element `{}` uses `{path}`, which is not one of the plugin's frontend assets",
                    self.tag
                ));
            }
        }
        Ok(())
    }
}

/// A Vigilo plugin: identity, compatibility, and what it registers.
///
/// Implement it on a type and export it with [`crate::export_plugin!`].
/// The instance is created once, lazily, the first time the server asks the
/// library for anything; it must be cheap to create and must not block.
pub trait Plugin: Send + Sync + 'static {
    /// Globally unique name, for example `"datepicker_with_holidays"`. Use
    /// lower-case letters, digits and `_`.
    fn name(&self) -> &str;
    /// What the plugin primarily provides.
    fn kind(&self) -> PluginKind;
    /// The plugin's own version (semver), usually `env!("CARGO_PKG_VERSION")`.
    fn version(&self) -> &str;
    /// The Vigilo server versions the plugin works with, as a semver
    /// requirement, for example `">=0.1, <0.2"`. The server skips the plugin
    /// when its own version does not match.
    fn compatible_with(&self) -> &str;
    /// One sentence for operators.
    fn description(&self) -> &str {
        ""
    }
    /// Registers what the plugin provides. Called once.
    fn register(&self, registry: &mut PluginRegistry);
    /// The plugin's frontend half, embedded in the library.
    fn frontend(&self) -> Vec<Asset> {
        vec![]
    }
    /// What the plugin asks of the host: the capabilities its calls need
    /// (see [`crate::host::Capability`]) and the hosts its HTTP requests
    /// reach. The operator sees them before the plugin runs, and the server
    /// refuses any call outside them.
    ///
    /// `None` (the default) declares nothing: the plugin keeps what plugins
    /// built before capabilities existed may do (count work items, read
    /// certificates, notify, and HTTP to any host the egress policy
    /// allows, as its kind permits) and none of the newer methods. Declare
    /// `Some(Capabilities::none())` for a plugin that never calls the host.
    fn capabilities(&self) -> Option<crate::host::Capabilities> {
        None
    }
}

/// The workspace context a field value is validated in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldContext {
    /// The workspace's slug.
    #[serde(default)]
    pub workspace: String,
    /// The workspace's settings object (for example `{"holidays": [...]}`).
    #[serde(default)]
    pub settings: Map<String, Value>,
}

impl FieldContext {
    /// One workspace setting, if present and not null.
    pub fn setting(&self, key: &str) -> Option<&Value> {
        self.settings.get(key).filter(|value| !value.is_null())
    }
}

/// What a dashboard widget renders for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WidgetContext {
    /// The workspace's slug.
    pub workspace: String,
    /// The tile's configuration (validated by the server against
    /// [`Widget::config_schema`]).
    #[serde(default)]
    pub config: Value,
}

/// What a periodic task runs with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskContext {
    /// The task's configuration.
    #[serde(default)]
    pub config: Value,
    /// The scheduled run time, RFC 3339 (for example
    /// `"2026-12-24T07:00:00Z"`). Use it instead of the clock so runs are
    /// reproducible.
    pub now: String,
}

/// When a [`Task`] runs.
///
/// On the wire: `{"every_seconds": N}` or `{"cron": "0 7 * * *"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleWire", into = "ScheduleWire")]
pub enum Schedule {
    /// At a fixed interval (whole seconds; at least one second).
    Every(Duration),
    /// On a five-field cron expression (minute hour day-of-month month
    /// day-of-week), evaluated by the server in UTC.
    Cron(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
enum ScheduleWire {
    #[serde(rename = "every_seconds")]
    EverySeconds(u64),
    #[serde(rename = "cron")]
    Cron(String),
}

impl From<Schedule> for ScheduleWire {
    fn from(schedule: Schedule) -> Self {
        match schedule {
            Schedule::Every(interval) => ScheduleWire::EverySeconds(interval.as_secs()),
            Schedule::Cron(expression) => ScheduleWire::Cron(expression),
        }
    }
}

impl TryFrom<ScheduleWire> for Schedule {
    type Error = String;

    fn try_from(wire: ScheduleWire) -> Result<Self, String> {
        match wire {
            ScheduleWire::EverySeconds(0) => Err("every_seconds must be at least 1".into()),
            ScheduleWire::EverySeconds(secs) => Ok(Schedule::Every(Duration::from_secs(secs))),
            ScheduleWire::Cron(expression) => Ok(Schedule::Cron(expression)),
        }
    }
}

/// The default configuration schema: an object with no required keys.
pub fn empty_config_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

/// A value type for custom fields (`field_type`).
///
/// The server calls [`FieldType::validate`] whenever a value of this type is
/// written; what it returns is stored. The frontend half provides the editor.
pub trait FieldType: Send + Sync + 'static {
    /// Unique name of the field type, for example `"holiday_aware_date"`.
    fn name(&self) -> &str;
    /// Label shown in the field-type picker.
    fn label(&self) -> &str;
    /// Longer help text.
    fn description(&self) -> &str {
        ""
    }
    /// Validates `value` in `ctx` and returns its normalised form, or the
    /// reason it is invalid (shown to the user as is).
    fn validate(&self, value: &Value, ctx: &FieldContext) -> Result<Value, String>;
    /// The editor the web app shows for fields of this type (a
    /// form-associated custom element; see "Frontend half" in the README).
    /// None: a plain text box.
    fn element(&self) -> Option<Element> {
        None
    }
}

/// A dashboard tile (`dashboard_widget`).
pub trait Widget: Send + Sync + 'static {
    /// Unique name of the widget.
    fn name(&self) -> &str;
    /// Label shown in the widget picker.
    fn label(&self) -> &str;
    /// Longer help text.
    fn description(&self) -> &str {
        ""
    }
    /// JSON Schema of the tile's options, checked in full by the server
    /// when a tile is added or changed. Give each property a `title` and a
    /// `description`: the web app draws a form from them (text, a number
    /// with `minimum`/`maximum`, a boolean, an `enum` as a choice).
    fn config_schema(&self) -> Value {
        empty_config_schema()
    }
    /// Checks a tile's options beyond what [`Widget::config_schema`] says,
    /// after the server checked them against it, when a tile is added or
    /// its options change. Return the options to store (normalised), or
    /// why they are refused. Start the reason with an option's key and a
    /// colon (`"columns: the status open is pinned twice"`) and the web app
    /// shows it beside that option (and the API names it in `field`). The
    /// default accepts what the schema accepts.
    fn validate_config(&self, config: &Value) -> Result<Value, String> {
        Ok(config.clone())
    }
    /// The tile's data for `ctx.workspace`. Read workspace data only through
    /// `host`; the frontend half draws the result.
    fn render(&self, ctx: &WidgetContext, host: &dyn Host) -> Result<Value, String>;
    /// The custom element that draws the tile from that data (see "Frontend
    /// half" in the README). None: the web app shows the data as formatted
    /// JSON.
    fn element(&self) -> Option<Element> {
        None
    }
}

/// A Slack/Jira/webhook-style adapter (`integration_adapter`).
pub trait Adapter: Send + Sync + 'static {
    /// Unique name of the adapter.
    fn name(&self) -> &str;
    /// Label shown when configuring an integration.
    fn label(&self) -> &str;
    /// Longer help text.
    fn description(&self) -> &str {
        ""
    }
    /// JSON Schema of the adapter's configuration.
    fn config_schema(&self) -> Value {
        empty_config_schema()
    }
    /// Configuration keys that are secrets (webhook URLs, tokens): the server
    /// stores them encrypted and never shows them again.
    fn secret_fields(&self) -> Vec<String> {
        vec![]
    }
    /// Checks and normalises a configuration before the server stores it.
    ///
    /// The default checks it against [`Adapter::config_schema`] with
    /// [`check_config_against_schema`] and returns it unchanged.
    fn validate_config(&self, config: &Value) -> Result<Value, String> {
        check_config_against_schema(config, &self.config_schema())?;
        Ok(config.clone())
    }
    /// Delivers `event` with the integration's (validated) `config`; returns
    /// details for the delivery log (for example the remote status code).
    ///
    /// Reach the service through `host`: [`Host::http_request`] asks the
    /// server to make the request under its egress policy and limits. An
    /// adapter does not open connections of its own.
    fn send(&self, config: &Value, event: &Event, host: &dyn Host) -> Result<Value, String>;
}

/// A periodic task (`celery_task`), run by the server's scheduler alongside
/// its own.
pub trait Task: Send + Sync + 'static {
    /// Unique name of the task.
    fn name(&self) -> &str;
    /// Label shown in the scheduler's list.
    fn label(&self) -> &str;
    /// Longer help text.
    fn description(&self) -> &str {
        ""
    }
    /// When the task runs.
    fn schedule(&self) -> Schedule;
    /// JSON Schema of the task's configuration.
    fn config_schema(&self) -> Value {
        empty_config_schema()
    }
    /// Runs once; returns a JSON summary for the task log.
    fn run(&self, ctx: &TaskContext, host: &dyn Host) -> Result<Value, String>;
}

/// A minimal configuration check: `config` must be an object, every key
/// listed in the schema's `required` must be present and not null, and every
/// present property whose schema names a simple `type` (`string`, `integer`,
/// `number`, `boolean`, `object`, `array`) must have that type.
///
/// It is what [`Adapter::validate_config`] does by default; it is not a full
/// JSON Schema validator.
pub fn check_config_against_schema(config: &Value, schema: &Value) -> Result<(), String> {
    let Some(object) = config.as_object() else {
        return Err("the configuration must be a JSON object".into());
    };
    let required = schema.get("required").and_then(Value::as_array);
    for key in required.into_iter().flatten().filter_map(Value::as_str) {
        if object.get(key).is_none_or(Value::is_null) {
            return Err(format!("missing required setting `{key}`"));
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (key, property) in properties.into_iter().flatten() {
        let (Some(value), Some(expected)) = (
            object.get(key).filter(|v| !v.is_null()),
            property.get("type").and_then(Value::as_str),
        ) else {
            continue;
        };
        let matches = match expected {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            _ => true,
        };
        if !matches {
            return Err(format!("setting `{key}` must be of type {expected}"));
        }
    }
    Ok(())
}

/// Collects what a plugin provides. Handed to [`Plugin::register`].
#[derive(Default)]
pub struct PluginRegistry {
    pub(crate) field_types: Vec<Box<dyn FieldType>>,
    pub(crate) widgets: Vec<Box<dyn Widget>>,
    pub(crate) adapters: Vec<Box<dyn Adapter>>,
    pub(crate) tasks: Vec<Box<dyn Task>>,
}

impl fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |items: Vec<&str>| items.join(", ");
        f.debug_struct("PluginRegistry")
            .field(
                "field_types",
                &names(self.field_types.iter().map(|t| t.name()).collect()),
            )
            .field(
                "widgets",
                &names(self.widgets.iter().map(|w| w.name()).collect()),
            )
            .field(
                "adapters",
                &names(self.adapters.iter().map(|a| a.name()).collect()),
            )
            .field(
                "tasks",
                &names(self.tasks.iter().map(|t| t.name()).collect()),
            )
            .finish()
    }
}

impl PluginRegistry {
    /// An empty registry (useful in unit tests of a [`Plugin::register`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a custom field type.
    pub fn register_field_type(&mut self, field_type: impl FieldType) -> &mut Self {
        self.field_types.push(Box::new(field_type));
        self
    }

    /// Registers a dashboard widget.
    pub fn register_widget(&mut self, widget: impl Widget) -> &mut Self {
        self.widgets.push(Box::new(widget));
        self
    }

    /// Registers an integration adapter.
    pub fn register_adapter(&mut self, adapter: impl Adapter) -> &mut Self {
        self.adapters.push(Box::new(adapter));
        self
    }

    /// Registers a periodic task.
    pub fn register_task(&mut self, task: impl Task) -> &mut Self {
        self.tasks.push(Box::new(task));
        self
    }

    /// The registered field type called `name`.
    pub fn field_type(&self, name: &str) -> Option<&dyn FieldType> {
        self.field_types
            .iter()
            .find(|t| t.name() == name)
            .map(|t| &**t)
    }

    /// The registered widget called `name`.
    pub fn widget(&self, name: &str) -> Option<&dyn Widget> {
        self.widgets.iter().find(|w| w.name() == name).map(|w| &**w)
    }

    /// The registered adapter called `name`.
    pub fn adapter(&self, name: &str) -> Option<&dyn Adapter> {
        self.adapters
            .iter()
            .find(|a| a.name() == name)
            .map(|a| &**a)
    }

    /// The registered task called `name`.
    pub fn task(&self, name: &str) -> Option<&dyn Task> {
        self.tasks.iter().find(|t| t.name() == name).map(|t| &**t)
    }

    /// Checks what was registered: names are non-empty and unique within
    /// their kind, and task intervals are at least one second.
    pub fn check(&self) -> Result<(), String> {
        fn unique<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
            let mut seen = std::collections::BTreeSet::new();
            for name in names {
                if name.trim().is_empty() {
                    return Err(format!("a {kind} was registered with an empty name"));
                }
                if !seen.insert(name) {
                    return Err(format!("{kind} `{name}` is registered twice"));
                }
            }
            Ok(())
        }
        unique("field type", self.field_types.iter().map(|t| t.name()))?;
        unique("widget", self.widgets.iter().map(|w| w.name()))?;
        unique("adapter", self.adapters.iter().map(|a| a.name()))?;
        unique("task", self.tasks.iter().map(|t| t.name()))?;
        for task in &self.tasks {
            if let Schedule::Every(interval) = task.schedule() {
                if interval.as_secs() == 0 {
                    return Err(format!(
                        "task `{}` must run at most once a second (Schedule::Every of at least 1 s)",
                        task.name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks every editor and tile element against the plugin's name and
    /// frontend assets (see [`Element::check`]).
    pub fn check_elements(&self, plugin: &str, assets: &[&str]) -> Result<(), String> {
        let elements = self
            .field_types
            .iter()
            .filter_map(|t| t.element())
            .chain(self.widgets.iter().filter_map(|w| w.element()));
        for element in elements {
            element.check(plugin, assets)?;
        }
        Ok(())
    }

    /// Whether nothing was registered.
    pub fn is_empty(&self) -> bool {
        self.field_types.is_empty()
            && self.widgets.is_empty()
            && self.adapters.is_empty()
            && self.tasks.is_empty()
    }
}
