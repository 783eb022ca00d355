//! Testing plugins: [`PluginTestHarness`] drives a plugin through the same
//! ABI calls the server makes, [`MockHost`] stands in for the server's
//! callback API, (with the `harness-http` feature) `HttpHost` really
//! makes the `http.request` calls an adapter asks for, and
//! [`assert_server_accepts`] checks the library you ship
//! ([`release_library`]) exactly as a server will.
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

use std::{
    collections::BTreeMap,
    fmt,
    path::Path,
    sync::{Arc, Mutex},
};

use serde_json::{Map, Value};

use crate::{
    abi::PluginModRef,
    event::Event,
    host::{Host, HttpRequest, HttpResponse, HTTP_REQUEST},
    loader::{PluginCalls, PluginHandle},
    plugin::FieldContext,
    wire,
};

#[cfg(feature = "harness-http")]
mod http;
mod release;

#[cfg(feature = "harness-http")]
pub use http::{HttpExchange, HttpHost};
pub use release::{assert_server_accepts, release_library, SERVER_VERSION};

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

    /// Answers [`HTTP_REQUEST`] with `answer(request)`: an [`HttpResponse`],
    /// or the server's reason for refusing the request. For example, a
    /// server that refuses the destination:
    ///
    /// ```
    /// use vigilo_sdk::harness::MockHost;
    /// use vigilo_sdk::{Host, HttpRequest};
    ///
    /// let host = MockHost::new().respond_http(|request| {
    ///     Err(format!("{} is a private address; the server's operator has not allowed it", request.url))
    /// });
    /// let error = host.http_request(&HttpRequest::get("http://10.0.0.5/")).unwrap_err();
    /// assert!(error.contains("private address"));
    /// ```
    pub fn respond_http(
        self,
        answer: impl Fn(&HttpRequest) -> Result<HttpResponse, String> + Send + Sync + 'static,
    ) -> Self {
        self.respond_with(HTTP_REQUEST, move |input| {
            let request: HttpRequest = serde_json::from_value(input.clone())
                .map_err(|e| format!("MockHost: invalid {HTTP_REQUEST} request: {e}"))?;
            let response = answer(&request)?;
            serde_json::to_value(response)
                .map_err(|e| format!("MockHost: cannot encode the response: {e}"))
        })
    }

    /// Every call made so far: `(method, input)`, oldest first.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The [`HTTP_REQUEST`] calls made so far, oldest first.
    pub fn http_requests(&self) -> Vec<HttpRequest> {
        self.calls()
            .into_iter()
            .filter(|(method, _)| method == HTTP_REQUEST)
            .filter_map(|(_, input)| serde_json::from_value(input).ok())
            .collect()
    }
}

impl fmt::Debug for MockHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockHost")
            .field("methods", &self.responders.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
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
///
/// [`PluginTestHarness::send`] gives the adapter the harness's host, set
/// with [`PluginTestHarness::with_host`]: an `HttpHost` (feature
/// `harness-http`) to make the adapter's `http.request` calls for real, or
/// a [`MockHost`] to script them. Without one, every host call is refused
/// (a [`MockHost`] that knows no methods).
#[derive(Clone)]
pub struct PluginTestHarness {
    handle: PluginHandle,
    host: Arc<dyn Host + Send + Sync>,
}

impl fmt::Debug for PluginTestHarness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginTestHarness")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl PluginTestHarness {
    /// A harness over a plugin linked into the test (no `dlopen`):
    /// `PluginTestHarness::in_process(my_plugin::vigilo_plugin_module)`.
    pub fn in_process(module: fn() -> PluginModRef) -> Self {
        Self::over(PluginHandle::new(module()))
    }

    /// A harness over the plugin library at `path`, loaded as the server
    /// loads it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LibraryError> {
        Ok(Self::over(PluginHandle::load(path)?))
    }

    fn over(handle: PluginHandle) -> Self {
        PluginTestHarness {
            handle,
            host: Arc::new(MockHost::new()),
        }
    }

    /// The host [`PluginTestHarness::send`] gives the adapter. Pass an
    /// `Arc` and keep a clone to look at the calls afterwards:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use vigilo_sdk::harness::{MockHost, PluginTestHarness};
    /// use vigilo_sdk::HttpResponse;
    /// # struct Nothing;
    /// # impl vigilo_sdk::Plugin for Nothing {
    /// #     fn name(&self) -> &str { "nothing" }
    /// #     fn kind(&self) -> vigilo_sdk::PluginKind { vigilo_sdk::PluginKind::FieldType }
    /// #     fn version(&self) -> &str { "0.1.0" }
    /// #     fn compatible_with(&self) -> &str { "*" }
    /// #     fn register(&self, _: &mut vigilo_sdk::PluginRegistry) {}
    /// # }
    /// # vigilo_sdk::export_plugin!(Nothing);
    ///
    /// let host = Arc::new(MockHost::new().respond_http(|_| Ok(HttpResponse::new(200, "ok"))));
    /// let plugin = PluginTestHarness::in_process(vigilo_plugin_module).with_host(host.clone());
    /// // plugin.send(...), then look at host.http_requests()
    /// ```
    pub fn with_host(mut self, host: impl Host + Send + Sync + 'static) -> Self {
        self.host = Arc::new(host);
        self
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

    /// `adapter.send` of `event` through `adapter` configured with `config`,
    /// with the harness's host ([`PluginTestHarness::with_host`]); `Ok` is
    /// the adapter's detail.
    pub fn send(&self, adapter: &str, config: Value, event: &Event) -> Result<Value, String> {
        self.send_with_host(adapter, config, event, &*self.host)
    }

    /// [`PluginTestHarness::send`] with `host` instead of the harness's.
    pub fn send_with_host(
        &self,
        adapter: &str,
        config: Value,
        event: &Event,
        host: &dyn Host,
    ) -> Result<Value, String> {
        let request = wire::SendRequest {
            name: adapter.to_owned(),
            config,
            event: event.clone(),
        };
        let response = expect_returned(wire::ADAPTER_SEND, self.handle.send_event(&request, host))?;
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

// `export_plugin!` exports the library header with `export_name`, which the
// `unsafe_code` lint counts when the macro expands inside this crate (in a
// plugin crate it is the SDK's expansion and not linted).
#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        host::HttpResponse,
        plugin::{Adapter, Plugin, PluginKind, PluginRegistry},
    };

    /// Posts the event's title to the configured URL through the host.
    struct Relay;

    impl Plugin for Relay {
        fn name(&self) -> &str {
            "relay"
        }
        fn kind(&self) -> PluginKind {
            PluginKind::IntegrationAdapter
        }
        fn version(&self) -> &str {
            "0.1.0"
        }
        fn compatible_with(&self) -> &str {
            "*"
        }
        fn register(&self, registry: &mut PluginRegistry) {
            registry.register_adapter(RelayAdapter);
        }
    }

    struct RelayAdapter;

    impl Adapter for RelayAdapter {
        fn name(&self) -> &str {
            "relay"
        }
        fn label(&self) -> &str {
            "Relay"
        }
        fn send(&self, config: &Value, event: &Event, host: &dyn Host) -> Result<Value, String> {
            let url = config["url"].as_str().ok_or("no url")?;
            let response = host.http_request(&HttpRequest::post(url).body(event.title.clone()))?;
            Ok(json!({"status": response.status, "body": response.body}))
        }
    }

    crate::export_plugin!(Relay);

    fn event() -> Event {
        Event {
            event_type: "incident.opened".into(),
            workspace: "ops".into(),
            title: "DB down".into(),
            ..Event::default()
        }
    }

    #[test]
    fn send_hands_the_adapter_the_harness_host() {
        let host = Arc::new(
            MockHost::new().respond_http(|request| Ok(HttpResponse::new(201, request.url.clone()))),
        );
        let plugin = PluginTestHarness::in_process(vigilo_plugin_module).with_host(host.clone());
        assert_eq!(
            plugin.send("relay", json!({"url": "https://example.com/in"}), &event()),
            Ok(json!({"status": 201, "body": "https://example.com/in"}))
        );
        assert_eq!(
            host.http_requests(),
            vec![HttpRequest::post("https://example.com/in").body("DB down")]
        );
        // A clone of the harness shares its host.
        let _ = plugin
            .clone()
            .send("relay", json!({"url": "https://example.com/2"}), &event());
        assert_eq!(host.http_requests().len(), 2);
    }

    #[test]
    fn without_a_host_every_callback_is_refused() {
        let plugin = PluginTestHarness::in_process(vigilo_plugin_module);
        assert_eq!(
            plugin.send("relay", json!({"url": "https://example.com/in"}), &event()),
            Err("MockHost: no answer configured for host method `http.request`".into())
        );
    }

    #[test]
    fn the_server_side_call_passes_its_host_through() {
        let refusing = MockHost::new().respond_http(|_| {
            Err(
                "example.com resolves to a loopback address; the operator has not allowed it"
                    .into(),
            )
        });
        let handle = PluginTestHarness::in_process(vigilo_plugin_module).handle();
        let error = handle
            .send_event(
                &wire::SendRequest {
                    name: "relay".into(),
                    config: json!({"url": "https://example.com/in"}),
                    event: event(),
                },
                &refusing,
            )
            .unwrap_err();
        assert_eq!(
            error.message(),
            "example.com resolves to a loopback address; the operator has not allowed it"
        );
        assert_eq!(refusing.http_requests().len(), 1);
    }
}
