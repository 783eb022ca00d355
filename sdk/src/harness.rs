//! Testing plugins: [`PluginTestHarness`] drives a plugin through the same
//! ABI calls the server makes, and [`MockHost`] stands in for the server's
//! callback API.
//!
//! ```
//! use serde_json::json;
//! use vigilo_sdk::harness::MockHost;
//! use vigilo_sdk::Host;
//!
//! let host = MockHost::new().respond(
//!     "work_items.count_by_status",
//!     json!({"changes": {"draft": 2}, "incidents": {}, "tasks": {"todo": 1}}),
//! );
//! let counts = host.work_items_count_by_status("ops").unwrap();
//! assert_eq!(counts.changes["draft"], 2);
//! assert_eq!(host.calls(), vec![("work_items.count_by_status".to_owned(), json!({"workspace": "ops"}))]);
//! ```

use std::{collections::BTreeMap, path::Path, sync::Mutex};

use serde_json::{Map, Value};

use crate::{
    abi::PluginModRef,
    host::Host,
    loader::PluginHandle,
    plugin::{Event, FieldContext},
    wire,
};

pub use crate::loader::{
    library_error_summary, load_library, CallError, LibraryError, Manifest, PluginErrorKind,
    Registration,
};

type Responder = Box<dyn Fn(&Value) -> Result<Value, String> + Send + Sync>;

/// A scripted [`Host`] for tests: answers the methods it was told about,
/// refuses the rest, and records every call.
#[derive(Default)]
pub struct MockHost {
    responders: BTreeMap<String, Responder>,
    calls: Mutex<Vec<(String, Value)>>,
}

impl MockHost {
    /// A host that knows no methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `method` with `output`, whatever the input.
    pub fn respond(self, method: &str, output: Value) -> Self {
        self.respond_with(method, move |_| Ok(output.clone()))
    }

    /// Answers `method` with `answer(input)`.
    pub fn respond_with(
        mut self,
        method: &str,
        answer: impl Fn(&Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.responders.insert(method.to_owned(), Box::new(answer));
        self
    }

    /// Every call made so far: `(method, input)`, oldest first.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Host for MockHost {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((method.to_owned(), input.clone()));
        match self.responders.get(method) {
            Some(answer) => answer(input),
            None => Err(format!(
                "MockHost: no answer configured for host method `{method}`"
            )),
        }
    }
}

/// Drives a plugin through its ABI, as the server does.
///
/// * [`PluginTestHarness::in_process`] takes the `vigilo_plugin_module`
///   function [`crate::export_plugin!`] defines, so a plugin crate's own
///   tests need no build step and no `dlopen`.
/// * [`PluginTestHarness::load`] loads a built `.so`/`.dylib` with
///   [`load_library`], exactly as the server does.
///
/// The typed helpers (`validate`, `render`, `send`, ...) return the plugin's
/// answer, or `Err(message)` for an error the plugin *returned*. A panic
/// caught at the boundary, an unknown method, or a malformed answer is a bug
/// in the plugin, so they panic the test with the details. Use
/// [`PluginTestHarness::call`] to see those as values.
#[derive(Debug, Clone, Copy)]
pub struct PluginTestHarness {
    handle: PluginHandle,
}

impl PluginTestHarness {
    /// A harness over a plugin linked into the test (no `dlopen`):
    /// `PluginTestHarness::in_process(my_plugin::vigilo_plugin_module)`.
    pub fn in_process(module: fn() -> PluginModRef) -> Self {
        PluginTestHarness {
            handle: PluginHandle::new(module()),
        }
    }

    /// A harness over the plugin library at `path`, loaded as the server
    /// loads it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LibraryError> {
        Ok(PluginTestHarness {
            handle: PluginHandle::load(path)?,
        })
    }

    /// The underlying handle.
    pub fn handle(&self) -> PluginHandle {
        self.handle
    }

    /// The plugin's manifest. Panics if it is not valid.
    pub fn manifest(&self) -> Manifest {
        self.handle
            .manifest()
            .unwrap_or_else(|e| panic!("the plugin's manifest is invalid: {e}"))
    }

    /// Everything the plugin registers. Panics if registration fails.
    pub fn registrations(&self) -> Vec<Registration> {
        self.handle
            .registrations()
            .unwrap_or_else(|e| panic!("the plugin's registration failed: {e}"))
    }

    /// Any method, with any input: every outcome as a value.
    pub fn call(&self, method: &str, input: &Value, host: &dyn Host) -> Result<Value, CallError> {
        self.handle.call(method, input, host)
    }

    /// `field_type.validate` of `value` in workspace `"test"` with the given
    /// workspace `settings` (a JSON object, or null for none). `Ok` is the
    /// normalised value; `Err` is the reason shown to the user.
    pub fn validate(
        &self,
        field_type: &str,
        value: Value,
        settings: Value,
    ) -> Result<Value, String> {
        let settings = match settings {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            other => panic!("workspace settings must be a JSON object or null, not {other}"),
        };
        let request = wire::ValidateRequest {
            name: field_type.to_owned(),
            value,
            context: FieldContext {
                workspace: "test".to_owned(),
                settings,
            },
        };
        expect_returned(
            wire::FIELD_TYPE_VALIDATE,
            self.handle.validate_field(&request),
        )
    }

    /// `widget.render` of `widget` for `workspace` with `config`, reading
    /// through `host`.
    pub fn render(
        &self,
        widget: &str,
        workspace: &str,
        config: Value,
        host: &dyn Host,
    ) -> Result<Value, String> {
        let request = wire::RenderRequest {
            name: widget.to_owned(),
            workspace: workspace.to_owned(),
            config,
        };
        expect_returned(
            wire::WIDGET_RENDER,
            self.handle.render_widget(&request, host),
        )
    }

    /// `adapter.send` of `event` through `adapter` configured with `config`;
    /// `Ok` is the adapter's detail.
    pub fn send(&self, adapter: &str, config: Value, event: &Event) -> Result<Value, String> {
        let request = wire::SendRequest {
            name: adapter.to_owned(),
            config,
            event: event.clone(),
        };
        let response = expect_returned(
            wire::ADAPTER_SEND,
            self.handle.send_event(&request, &crate::loader::NoHost),
        )?;
        Ok(response.detail)
    }

    /// `adapter.validate_config`; `Ok` is the normalised configuration.
    pub fn validate_config(&self, adapter: &str, config: Value) -> Result<Value, String> {
        let request = wire::ValidateConfigRequest {
            name: adapter.to_owned(),
            config,
        };
        expect_returned(
            wire::ADAPTER_VALIDATE_CONFIG,
            self.handle.validate_adapter_config(&request),
        )
    }

    /// `task.run` of `task` with `config` at `now` (RFC 3339).
    pub fn run_task(
        &self,
        task: &str,
        config: Value,
        now: &str,
        host: &dyn Host,
    ) -> Result<Value, String> {
        let request = wire::RunTaskRequest {
            name: task.to_owned(),
            config,
            now: now.to_owned(),
        };
        expect_returned(wire::TASK_RUN, self.handle.run_task(&request, host))
    }

    /// The embedded frontend file at `path`.
    pub fn asset(&self, path: &str) -> Option<Vec<u8>> {
        self.handle.asset(path)
    }

    /// Checks what a server checks before accepting a plugin, and what a
    /// vendor should never ship: a parseable manifest with a semver
    /// `version` and `compatible_with`, this SDK's ABI version, the unwinding
    /// panic strategy, a frontend list whose every file the plugin serves
    /// (with a content type), and a registration that succeeds with at least
    /// one item, unique names, and one of the plugin's own kind. Panics
    /// listing every problem.
    pub fn assert_valid_plugin(&self) {
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "the plugin is not valid:\n  - {}",
            problems.join("\n  - ")
        );
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let manifest = match self.handle.manifest() {
            Ok(manifest) => manifest,
            Err(e) => return vec![e.to_string()],
        };
        if manifest.name.trim().is_empty() {
            problems.push("the plugin's name is empty".to_owned());
        }
        if let Err(e) = semver::Version::parse(&manifest.version) {
            problems.push(format!("version `{}` is not semver: {e}", manifest.version));
        }
        if let Err(e) = semver::VersionReq::parse(&manifest.compatible_with) {
            problems.push(format!(
                "compatible_with `{}` is not a semver requirement: {e}",
                manifest.compatible_with
            ));
        }
        if manifest.sdk_abi_version != crate::abi::SDK_ABI_VERSION {
            problems.push(format!(
                "sdk_abi_version is {}, this SDK speaks {}",
                manifest.sdk_abi_version,
                crate::abi::SDK_ABI_VERSION
            ));
        }
        if !manifest.panic_unwind {
            problems.push(
                "the plugin was built with panic = \"abort\": a panic would take the server down"
                    .to_owned(),
            );
        }
        for asset in &manifest.frontend {
            if asset.content_type.trim().is_empty() {
                problems.push(format!(
                    "frontend file `{}` has no content type",
                    asset.path
                ));
            }
            if asset.path.starts_with('/') || asset.path.split('/').any(|part| part == "..") {
                problems.push(format!("frontend path `{}` must be relative", asset.path));
            }
            if self.handle.asset(&asset.path).is_none() {
                problems.push(format!(
                    "frontend file `{}` is listed but not served",
                    asset.path
                ));
            }
        }
        match self.handle.registrations() {
            Err(e) => problems.push(e.to_string()),
            Ok(registrations) => {
                if !registrations.iter().any(|r| r.kind() == manifest.kind) {
                    problems.push(format!(
                        "the plugin is of kind {} but registers nothing of that kind",
                        manifest.kind
                    ));
                }
                for registration in &registrations {
                    if registration.label().trim().is_empty() {
                        problems.push(format!(
                            "{} `{}` has no label",
                            registration.kind(),
                            registration.name()
                        ));
                    }
                }
            }
        }
        problems
    }
}

/// `Ok`, or `Err(message)` for an error the plugin returned; panics on
/// everything else (a plugin bug the test should show).
fn expect_returned<T>(method: &str, result: Result<T, CallError>) -> Result<T, String> {
    match result {
        Ok(value) => Ok(value),
        Err(CallError::Plugin {
            kind: PluginErrorKind::Failed | PluginErrorKind::BadInput,
            message,
        }) => Err(message),
        Err(other) => panic!("`{method}` did not return normally: {other}"),
    }
}
