//! The plugin side of the boundary: what [`crate::export_plugin!`] expands
//! to calls into this module (through `vigilo_sdk::__private`).
//!
//! Every `extern "C"` function here runs its body under
//! [`std::panic::catch_unwind`]: a panic unwinding out of an `extern "C"`
//! function aborts the server, so it is turned into a
//! [`PluginErrorKind::Panicked`] error (or, for `manifest` and `asset`, an
//! empty answer) instead.

use std::{
    any::Any,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::OnceLock,
};

use abi_stable::{
    library::{CheckTypeLayout, LibHeader, RootModuleResult},
    prefix_type::WithMetadata,
    sabi_types::RRef,
    std_types::{ROption, RResult, RStr, RString, RVec},
};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    abi::{HostApi_TO, PluginError, PluginErrorKind, PluginMod, PluginModRef, SDK_ABI_VERSION},
    host::{Host, HostClient},
    plugin::{Asset, Plugin, PluginRegistry, TaskContext, WidgetContext},
    wire::{self, FrontendAsset, Manifest, Registration, Registrations},
};

/// Ties the generic entry points to one plugin crate's lazily created
/// [`Runtime`]. Implemented by the type [`crate::export_plugin!`] defines.
pub trait PluginSource: 'static {
    /// The plugin's runtime, created on first use.
    fn runtime() -> &'static Runtime;
    /// The plugin's root module.
    fn module() -> PluginModRef;
}

/// One plugin instance plus its registry, built on first use.
pub struct Runtime {
    plugin: Box<dyn Plugin>,
    panic_unwind: bool,
    frontend: Vec<Asset>,
    registry: OnceLock<Result<PluginRegistry, String>>,
}

impl Runtime {
    /// Wraps `plugin`. `panic_unwind` is `cfg!(panic = "unwind")` as seen by
    /// the plugin crate.
    pub fn new(plugin: impl Plugin, panic_unwind: bool) -> Self {
        let frontend = plugin.frontend();
        Runtime {
            plugin: Box::new(plugin),
            panic_unwind,
            frontend,
            registry: OnceLock::new(),
        }
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> Manifest {
        let plugin = &*self.plugin;
        Manifest {
            name: plugin.name().to_owned(),
            kind: plugin.kind(),
            version: plugin.version().to_owned(),
            compatible_with: plugin.compatible_with().to_owned(),
            sdk_abi_version: SDK_ABI_VERSION,
            sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
            panic_unwind: self.panic_unwind,
            description: plugin.description().to_owned(),
            frontend: self
                .frontend
                .iter()
                .map(|asset| FrontendAsset {
                    path: asset.path.to_owned(),
                    content_type: asset.content_type.to_owned(),
                })
                .collect(),
            frontend_api: crate::plugin::FRONTEND_API_VERSION,
            capabilities: plugin.capabilities(),
        }
    }

    /// The registry, built (and checked) on first use.
    pub fn registry(&self) -> Result<&PluginRegistry, PluginError> {
        let built = self.registry.get_or_init(|| {
            let mut registry = PluginRegistry::new();
            self.plugin.register(&mut registry);
            let assets: Vec<&str> = self.frontend.iter().map(|a| a.path).collect();
            registry
                .check()
                .and_then(|()| registry.check_elements(self.plugin.name(), &assets))
                .map(|()| registry)
        });
        built.as_ref().map_err(|message| {
            PluginError::failed(format!(
                "plugin `{}` registered an invalid set of items: {message}",
                self.plugin.name()
            ))
        })
    }

    /// Everything registered, in wire form.
    pub fn registrations(&self) -> Result<Registrations, PluginError> {
        let registry = self.registry()?;
        let mut registrations = Vec::new();
        for field_type in &registry.field_types {
            registrations.push(Registration::FieldType {
                name: field_type.name().to_owned(),
                label: field_type.label().to_owned(),
                description: field_type.description().to_owned(),
                element: field_type.element().map(Into::into),
            });
        }
        for widget in &registry.widgets {
            registrations.push(Registration::DashboardWidget {
                name: widget.name().to_owned(),
                label: widget.label().to_owned(),
                description: widget.description().to_owned(),
                config_schema: widget.config_schema(),
                element: widget.element().map(Into::into),
            });
        }
        for adapter in &registry.adapters {
            registrations.push(Registration::IntegrationAdapter {
                name: adapter.name().to_owned(),
                label: adapter.label().to_owned(),
                description: adapter.description().to_owned(),
                config_schema: adapter.config_schema(),
                secret_fields: adapter.secret_fields(),
            });
        }
        for task in &registry.tasks {
            registrations.push(Registration::CeleryTask {
                name: task.name().to_owned(),
                label: task.label().to_owned(),
                description: task.description().to_owned(),
                schedule: task.schedule(),
                config_schema: task.config_schema(),
            });
        }
        Ok(Registrations { registrations })
    }

    /// Dispatches one `call`: `method` with JSON `input`.
    pub fn call(&self, method: &str, input: &str, host: &dyn Host) -> Result<String, PluginError> {
        let registry = self.registry()?;
        match method {
            wire::FIELD_TYPE_VALIDATE => {
                let request: wire::ValidateRequest = parse_input(method, input)?;
                let field_type = registry
                    .field_type(&request.name)
                    .ok_or_else(|| self.not_registered("field type", &request.name))?;
                let value = field_type
                    .validate(&request.value, &request.context)
                    .map_err(PluginError::bad_input)?;
                to_json(&wire::ValidateResponse { value })
            }
            wire::WIDGET_RENDER => {
                let request: wire::RenderRequest = parse_input(method, input)?;
                let widget = registry
                    .widget(&request.name)
                    .ok_or_else(|| self.not_registered("widget", &request.name))?;
                let ctx = WidgetContext {
                    workspace: request.workspace,
                    config: request.config,
                };
                let data = widget.render(&ctx, host).map_err(PluginError::failed)?;
                to_json(&data)
            }
            wire::ADAPTER_SEND => {
                let request: wire::SendRequest = parse_input(method, input)?;
                let adapter = registry
                    .adapter(&request.name)
                    .ok_or_else(|| self.not_registered("adapter", &request.name))?;
                let detail = adapter
                    .send(&request.config, &request.event, host)
                    .map_err(PluginError::failed)?;
                to_json(&wire::SendResponse {
                    delivered: true,
                    detail,
                })
            }
            wire::ADAPTER_VALIDATE_CONFIG => {
                let request: wire::ValidateConfigRequest = parse_input(method, input)?;
                let adapter = registry
                    .adapter(&request.name)
                    .ok_or_else(|| self.not_registered("adapter", &request.name))?;
                let config = adapter
                    .validate_config(&request.config)
                    .map_err(PluginError::bad_input)?;
                to_json(&wire::ValidateConfigResponse { config })
            }
            wire::WIDGET_VALIDATE_CONFIG => {
                let request: wire::ValidateConfigRequest = parse_input(method, input)?;
                let widget = registry
                    .widget(&request.name)
                    .ok_or_else(|| self.not_registered("widget", &request.name))?;
                let config = widget
                    .validate_config(&request.config)
                    .map_err(PluginError::bad_input)?;
                to_json(&wire::ValidateConfigResponse { config })
            }
            wire::TASK_RUN => {
                let request: wire::RunTaskRequest = parse_input(method, input)?;
                let task = registry
                    .task(&request.name)
                    .ok_or_else(|| self.not_registered("task", &request.name))?;
                let ctx = TaskContext {
                    config: request.config,
                    now: request.now,
                };
                let summary = task.run(&ctx, host).map_err(PluginError::failed)?;
                to_json(&summary)
            }
            _ => Err(PluginError::unknown_method(method)),
        }
    }

    /// The embedded frontend file at `path`.
    pub fn asset(&self, path: &str) -> Option<&'static [u8]> {
        self.frontend
            .iter()
            .find(|asset| asset.path == path)
            .map(|asset| asset.bytes)
    }

    fn not_registered(&self, what: &str, name: &str) -> PluginError {
        PluginError::bad_input(format!(
            "plugin `{}` has no {what} named `{name}`",
            self.plugin.name()
        ))
    }
}

fn parse_input<T: DeserializeOwned>(method: &str, input: &str) -> Result<T, PluginError> {
    serde_json::from_str(input)
        .map_err(|e| PluginError::bad_input(format!("invalid input for `{method}`: {e}")))
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, PluginError> {
    serde_json::to_string(value)
        .map_err(|e| PluginError::failed(format!("could not serialise the plugin's output: {e}")))
}

/// The text of a panic payload (`panic!("...")` carries a `&str` or a
/// `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

thread_local! {
    /// Whether this thread is inside a call from the host.
    static IN_HOST_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last panic inside a call from the host happened
    /// (`file:line:column`), for the error that reports it.
    static PANIC_PLACE: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `body` as a call from the host: a panic in it is caught (by the
/// caller's `catch_unwind`) and its message returned to the server, which
/// logs it with secrets removed; so the panic hook stays quiet for it
/// instead of printing the raw message to the server's stderr, and keeps
/// only its place (file, line, column) for the message. Panics outside
/// host calls (a vendor's own tests) reach the previous hook as usual.
fn as_host_call<T>(body: impl FnOnce() -> T) -> T {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_HOST_CALL.with(std::cell::Cell::get) {
                let place = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                PANIC_PLACE.with(|slot| *slot.borrow_mut() = place);
            } else {
                previous(info);
            }
        }));
    });
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_HOST_CALL.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(IN_HOST_CALL.with(|flag| flag.replace(true)));
    body()
}

/// Runs `body`, turning a panic into a [`PluginErrorKind::Panicked`] error.
fn guarded(body: impl FnOnce() -> Result<String, PluginError>) -> RResult<RString, PluginError> {
    match as_host_call(|| catch_unwind(AssertUnwindSafe(body))) {
        Ok(Ok(text)) => RResult::ROk(RString::from(text)),
        Ok(Err(error)) => RResult::RErr(error),
        Err(payload) => RResult::RErr(PluginError::new(
            PluginErrorKind::Panicked,
            placed(panic_message(payload.as_ref())),
        )),
    }
}

/// A caught panic's message with the place it happened (kept by the panic
/// hook), as in `index out of bounds (at src/lib.rs:42:9)`.
fn placed(message: String) -> String {
    match PANIC_PLACE.with(|slot| slot.borrow_mut().take()) {
        Some(place) => format!("{message} (at {place})"),
        None => message,
    }
}

extern "C" fn manifest<S: PluginSource>() -> RString {
    as_host_call(|| catch_unwind(|| serde_json::to_string(&S::runtime().manifest())))
        .ok()
        .and_then(Result::ok)
        .map(RString::from)
        .unwrap_or_default()
}

extern "C" fn register<S: PluginSource>() -> RResult<RString, PluginError> {
    guarded(|| to_json(&S::runtime().registrations()?))
}

extern "C" fn call<S: PluginSource>(
    method: RStr<'_>,
    input: RStr<'_>,
    host: HostApi_TO<'_, RRef<'_, ()>>,
) -> RResult<RString, PluginError> {
    guarded(move || {
        let host = HostClient::new(host);
        S::runtime().call(method.as_str(), input.as_str(), &host)
    })
}

extern "C" fn asset<S: PluginSource>(path: RStr<'_>) -> ROption<RVec<u8>> {
    as_host_call(|| catch_unwind(|| S::runtime().asset(path.as_str()).map(RVec::from_slice)))
        .ok()
        .flatten()
        .into()
}

/// The root module's function table for plugin `S`.
pub const fn plugin_mod<S: PluginSource>() -> PluginMod {
    PluginMod {
        manifest: manifest::<S>,
        register: register::<S>,
        call: call::<S>,
        asset: asset::<S>,
    }
}

/// Turns a `'static` function table into the root module reference.
pub const fn module_ref(module: &'static WithMetadata<PluginMod>) -> PluginModRef {
    PluginModRef(module.static_as_prefix())
}

/// The symbol abi_stable's loader looks up
/// (`abi_stable::library::ROOT_MODULE_LOADER_NAME`), spelled out because
/// `export_name` needs a literal; the assertion below keeps the two equal.
#[macro_export]
#[doc(hidden)]
macro_rules! __root_module_loader_name {
    () => {
        "_1as_0lib_1header_0root_bmodule_bloader"
    };
}

const _: () = assert!(
    str_eq(
        abi_stable::library::ROOT_MODULE_LOADER_NAME,
        __root_module_loader_name!()
    ),
    "abi_stable changed the name of the root module symbol: update __root_module_loader_name!"
);

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

extern "C" fn root_module_loader<S: PluginSource>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(S::module)
}

/// The library header abi_stable's loader reads: the same value
/// `#[export_root_module]` would generate. (That attribute's expansion names
/// `::abi_stable` directly, which does not resolve in a plugin crate that
/// depends only on vigilo-sdk, so [`crate::export_plugin!`] exports this
/// instead.)
// The one `unsafe` call in the SDK (besides `#[sabi_trait]`'s expansion).
#[allow(unsafe_code)]
pub const fn lib_header<S: PluginSource>() -> LibHeader {
    // SAFETY: `from_constructor` requires the constructor to return a
    // `PrefixRef` erased from the root module type given here
    // (`PluginModRef`). `root_module_loader::<S>` returns exactly what
    // `__call_root_module_loader(S::module)` makes of `S::module()`, which is
    // a `PluginModRef` by its signature: the same pairing the attribute makes.
    unsafe {
        LibHeader::from_constructor::<PluginModRef>(root_module_loader::<S>, CheckTypeLayout::Yes)
    }
}
