//! The host side: what the Vigilo server uses to load a plugin library and
//! call it. Plugin authors do not need this module; their API is at the
//! crate root and in [`crate::harness`].
//!
//! A server uses [`load_library`] for each plugin file, reads the
//! [`Manifest`] through a [`PluginHandle`], checks it with
//! [`Manifest::check_compatible`] (or makes every check the server makes with
//! [`check_library`]), and from then on calls the plugin with the typed
//! calls of [`PluginCalls`], handing it its implementation of [`Host`] for
//! callbacks ([`HostBridge`] adapts it to the ABI).
//! [`crate::harness::PluginTestHarness`] is built on the same handle, so
//! vendors' tests exercise exactly the server's path.
//!
//! The same plugin library can also run in a process of its own: a server
//! that loads it there implements [`PluginCalls::call_text`] by relaying the
//! method name and JSON text to that process, and relays the plugin's host
//! calls back as a method name and JSON text, so both sides see exactly the
//! calls they see in process.
//!
//! Plugin calls are synchronous and may block (an adapter waiting for the
//! server's own `http.request`): call them off the async executor
//! (`spawn_blocking` or a dedicated pool).

use std::{
    fmt,
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
};

use abi_stable::{
    library::lib_header_from_path,
    sabi_types::RRef,
    std_types::{RResult, RStr, RString},
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::{
    abi::{HostApi, HostApi_TO},
    host::Host,
    wire::{self, Registrations},
};

mod check;
pub mod frontend;
mod target;

pub use check::{
    check_library, check_loaded, check_manifest, check_name, check_registrations, library_reason,
    safe_relative_path, CheckedLibrary, Refusal, RefusalReason, BUILTIN_FIELD_TYPES,
};
pub use frontend::{check_frontend, FrontendProblem};
pub use target::LibraryTarget;

pub use crate::abi::{PluginErrorKind, PluginModRef, SDK_ABI_VERSION};
pub use crate::wire::{FrontendAsset, Incompatibility, Manifest, Registration};
/// `abi_stable`'s loader error, returned by [`load_library`].
pub use abi_stable::library::LibraryError;

/// Loads the plugin library at `path` and returns its root module.
///
/// This is how a server loads plugins: `lib_header_from_path` opens the
/// library and checks its abi_stable header, then `init_root_module` checks
/// the SDK version (equal majors) and the layout of everything reachable from
/// [`PluginModRef`], and runs the plugin's root-module constructor under
/// `catch_unwind`. Unlike `RootModule::load_from_file` it caches nothing, so
/// every plugin file gets its own module.
///
/// The library is never unloaded. Loading the same path twice returns the
/// code loaded the first time (the dynamic loader reuses the handle); to pick
/// up a new build, copy it to a new path first. Never overwrite a loaded
/// library in place.
///
/// For the log line, [`library_error_summary`] condenses the error to one
/// line; its `Display` text is the full (multi-line) report.
pub fn load_library(path: impl AsRef<Path>) -> Result<PluginModRef, LibraryError> {
    lib_header_from_path(path.as_ref())?.init_root_module::<PluginModRef>()
}

/// A one-line explanation of a [`LibraryError`] for operators. The full
/// `Display` text (several kilobytes for a layout mismatch) belongs at debug
/// level.
pub fn library_error_summary(error: &LibraryError) -> String {
    match error {
        LibraryError::OpenError { path, err } => {
            format!("cannot open {} as a shared library: {err}", path.display())
        }
        LibraryError::GetSymbolError { library, .. } => format!(
            "{} is a shared library but not a Vigilo plugin (it exports no plugin root module; \
             build it with vigilo_sdk::export_plugin!)",
            library.display()
        ),
        LibraryError::ParseVersionError(e) => {
            format!("the plugin's SDK version is malformed: {}", one_line(&e.to_string()))
        }
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => format!(
            "the plugin was built with vigilo-sdk {actual_version}, which is incompatible with this \
             server's vigilo-sdk {expected_version}; rebuild the plugin against a matching SDK"
        ),
        LibraryError::RootModule { .. } => {
            "the plugin's root module failed to initialise (it panicked or returned an error)"
                .to_owned()
        }
        LibraryError::AbiInstability(e) => format!(
            "the plugin's ABI layout does not match this server's vigilo-sdk ({}); \
             rebuild the plugin against a matching SDK",
            layout_errors(&e.to_string())
        ),
        LibraryError::InvalidAbiHeader(_) => {
            "the plugin was built with an incompatible version of abi_stable".to_owned()
        }
        LibraryError::InvalidCAbi { .. } => {
            "the plugin's C ABI differs from the server's (built by an incompatible compiler?)"
                .to_owned()
        }
        LibraryError::Many(errors) => errors
            .iter()
            .map(library_error_summary)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `Error:` entries of abi_stable's layout report, each with its
/// expected and found values: "incompatible type size (expected 40, found
/// 48); too many fields (expected 2, found 3)".
fn layout_errors(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let value_after = |from: usize, label: &str| {
        lines[from..]
            .iter()
            .position(|l| *l == label)
            .and_then(|i| lines[from + i + 1..].iter().find(|l| !l.is_empty()))
            .map(|v| one_line(v))
    };
    let mut errors: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(error) = line.strip_prefix("Error:") else {
            continue;
        };
        let mut entry = one_line(error);
        if let (Some(expected), Some(found)) =
            (value_after(i, "Expected:"), value_after(i, "Found:"))
        {
            entry = format!("{entry} (expected {expected}, found {found})");
        }
        if !errors.contains(&entry) {
            errors.push(entry);
        }
    }
    if errors.is_empty() {
        return "layout mismatch".to_owned();
    }
    errors.truncate(3);
    errors.join("; ")
}

/// What went wrong calling into a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The plugin returned an error.
    Plugin {
        /// Its category.
        kind: PluginErrorKind,
        /// Its message (for `BadInput` from `field_type.validate`, the reason
        /// to show the user).
        message: String,
    },
    /// The plugin's answer was not the JSON the contract promises (or its
    /// manifest was empty because it panicked building it).
    InvalidResponse {
        /// What was being asked (`"manifest"`, `"register"`, or a method).
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The request could not be serialised (a host bug).
    InvalidRequest(String),
}

impl CallError {
    /// The plugin's error kind, if the plugin returned an error.
    pub fn kind(&self) -> Option<PluginErrorKind> {
        match self {
            CallError::Plugin { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The message: the plugin's own for [`CallError::Plugin`], else an
    /// explanation.
    pub fn message(&self) -> String {
        match self {
            CallError::Plugin { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Plugin { kind, message } => write!(f, "plugin error ({kind}): {message}"),
            CallError::InvalidResponse { what, reason } => {
                write!(f, "plugin answered `{what}` with invalid JSON: {reason}")
            }
            CallError::InvalidRequest(reason) => {
                write!(f, "could not encode the request: {reason}")
            }
        }
    }
}

impl std::error::Error for CallError {}

/// A loaded plugin's root module with typed calls. Cheap to copy; `Send` and
/// `Sync`, so a server can share it between worker threads.
#[derive(Debug, Clone, Copy)]
pub struct PluginHandle {
    module: PluginModRef,
}

impl PluginHandle {
    /// Wraps a root module (from [`load_library`] or a plugin crate's
    /// `vigilo_plugin_module()`).
    pub fn new(module: PluginModRef) -> Self {
        PluginHandle { module }
    }

    /// [`load_library`] and wrap.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LibraryError> {
        load_library(path).map(Self::new)
    }

    /// The raw root module.
    pub fn module(&self) -> PluginModRef {
        self.module
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> Result<Manifest, CallError> {
        let text = (self.module.manifest())();
        serde_json::from_str(&text).map_err(|e| CallError::InvalidResponse {
            what: "manifest".into(),
            reason: if text.is_empty() {
                "the manifest is empty (the plugin panicked while building it)".into()
            } else {
                e.to_string()
            },
        })
    }

    /// Everything the plugin registers (the plugin builds its registry on the
    /// first call).
    pub fn registrations(&self) -> Result<Vec<Registration>, CallError> {
        let text = match (self.module.register())() {
            RResult::ROk(text) => text,
            RResult::RErr(error) => return Err(plugin_error(error)),
        };
        let parsed: Registrations = parse_output("register", &text)?;
        Ok(parsed.registrations)
    }

    /// The embedded frontend file at `path`, if the plugin has one.
    pub fn asset(&self, path: &str) -> Option<Vec<u8>> {
        let bytes: Option<_> = (self.module.asset())(RStr::from_str(path)).into();
        bytes.map(|bytes: abi_stable::std_types::RVec<u8>| bytes.into_vec())
    }
}

impl PluginCalls for PluginHandle {
    fn call_text(&self, method: &str, input: &str, host: &dyn Host) -> Result<Answer, CallError> {
        let bridge = HostBridge::new(host);
        let answer = (self.module.call())(
            RStr::from_str(method),
            RStr::from_str(input),
            bridge.as_host_api(),
        );
        match answer {
            RResult::ROk(text) => Ok(Answer(AnswerText::Library(text))),
            RResult::RErr(error) => Err(plugin_error(error)),
        }
    }
}

/// The calls a server makes into a plugin, wherever the plugin runs.
///
/// Every call is a method name and JSON text in, JSON text (or a
/// [`CallError`]) out, with the server's [`Host`] handed along for the
/// plugin's callbacks. [`PluginHandle`] answers [`PluginCalls::call_text`]
/// by calling a library loaded into this process; a server that runs a
/// plugin in another process implements it by sending the same method and
/// text there (and answering the plugin's host calls with the same
/// [`Host`]), and gets the same typed calls.
pub trait PluginCalls {
    /// Calls `method` with JSON text `input`, giving the plugin `host` for
    /// callbacks; the plugin's answer as JSON text.
    fn call_text(&self, method: &str, input: &str, host: &dyn Host) -> Result<Answer, CallError>;

    /// Calls `method` with `input`, giving the plugin `host` for callbacks.
    ///
    /// A panic in `host` is reported to the plugin as an error rather than
    /// ending the process (see [`HostBridge`]).
    fn call(&self, method: &str, input: &Value, host: &dyn Host) -> Result<Value, CallError> {
        let input =
            serde_json::to_string(input).map_err(|e| CallError::InvalidRequest(e.to_string()))?;
        let text = self.call_text(method, &input, host)?;
        parse_output(method, &text)
    }

    /// `field_type.validate`: the normalised value, or (as
    /// [`CallError::Plugin`] with kind `BadInput`) why it is invalid.
    fn validate_field(&self, request: &wire::ValidateRequest) -> Result<Value, CallError> {
        let response: wire::ValidateResponse =
            typed(self, wire::FIELD_TYPE_VALIDATE, request, &NoHost)?;
        Ok(response.value)
    }

    /// `widget.render`: the tile's data.
    fn render_widget(
        &self,
        request: &wire::RenderRequest,
        host: &dyn Host,
    ) -> Result<Value, CallError> {
        typed(self, wire::WIDGET_RENDER, request, host)
    }

    /// `adapter.send`, giving the adapter `host` for callbacks (it makes its
    /// outbound requests through `http.request`).
    fn send_event(
        &self,
        request: &wire::SendRequest,
        host: &dyn Host,
    ) -> Result<wire::SendResponse, CallError> {
        typed(self, wire::ADAPTER_SEND, request, host)
    }

    /// `adapter.validate_config`: the normalised configuration.
    fn validate_adapter_config(
        &self,
        request: &wire::ValidateConfigRequest,
    ) -> Result<Value, CallError> {
        let response: wire::ValidateConfigResponse =
            typed(self, wire::ADAPTER_VALIDATE_CONFIG, request, &NoHost)?;
        Ok(response.config)
    }

    /// `widget.validate_config`: the normalised tile options.
    fn validate_widget_config(
        &self,
        request: &wire::ValidateConfigRequest,
    ) -> Result<Value, CallError> {
        let response: wire::ValidateConfigResponse =
            typed(self, wire::WIDGET_VALIDATE_CONFIG, request, &NoHost)?;
        Ok(response.config)
    }

    /// `task.run`: the task's summary.
    fn run_task(
        &self,
        request: &wire::RunTaskRequest,
        host: &dyn Host,
    ) -> Result<Value, CallError> {
        typed(self, wire::TASK_RUN, request, host)
    }
}

/// A plugin's answer to [`PluginCalls::call_text`]: JSON text, read in
/// place (an answer from a library loaded into this process is not copied
/// out of the library's allocation).
pub struct Answer(AnswerText);

enum AnswerText {
    Library(RString),
    Owned(String),
}

impl std::ops::Deref for Answer {
    type Target = str;

    fn deref(&self) -> &str {
        match &self.0 {
            AnswerText::Library(text) => text.as_str(),
            AnswerText::Owned(text) => text,
        }
    }
}

impl From<String> for Answer {
    fn from(text: String) -> Self {
        Answer(AnswerText::Owned(text))
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Answer").field(&&**self).finish()
    }
}

fn typed<Req: Serialize, Resp: DeserializeOwned>(
    calls: &(impl PluginCalls + ?Sized),
    method: &str,
    request: &Req,
    host: &dyn Host,
) -> Result<Resp, CallError> {
    // Straight to and from text: no intermediate `Value` on either side.
    let input =
        serde_json::to_string(request).map_err(|e| CallError::InvalidRequest(e.to_string()))?;
    let text = calls.call_text(method, &input, host)?;
    parse_output(method, &text)
}

fn plugin_error(error: crate::abi::PluginError) -> CallError {
    CallError::Plugin {
        kind: error.kind,
        message: error.message.into_string(),
    }
}

fn parse_output<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, CallError> {
    serde_json::from_str(text).map_err(|e| CallError::InvalidResponse {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

/// The host given to methods whose contract has no callbacks
/// (`field_type.validate`, `adapter.validate_config`): every call is refused.
pub struct NoHost;

impl Host for NoHost {
    fn call(&self, method: &str, _input: &Value) -> Result<Value, String> {
        Err(format!(
            "host method `{method}` is not available here: field types and configuration checks \
             cannot call the host (widgets, adapters' send and tasks can)"
        ))
    }
}

/// Adapts a Rust [`Host`] to the ABI's [`HostApi`], so a server (or a test
/// double) can be handed to a plugin. [`PluginHandle`]'s calls do this for
/// you.
///
/// It parses the plugin's JSON input, serialises the output, and catches a
/// panic in the host's implementation (which would otherwise end the
/// process) and reports it to the plugin as an error.
pub struct HostBridge<'a> {
    host: &'a dyn Host,
}

impl<'a> HostBridge<'a> {
    /// Wraps `host`.
    pub fn new(host: &'a dyn Host) -> Self {
        HostBridge { host }
    }

    /// The FFI-safe trait object for [`crate::abi::PluginMod::call`].
    pub fn as_host_api(&self) -> HostApi_TO<'_, RRef<'_, ()>> {
        HostApi_TO::from_ptr(self, abi_stable::sabi_trait::TD_Opaque)
    }
}

impl HostBridge<'_> {
    /// Answers host method `method` with JSON text `input` as the ABI's
    /// [`HostApi::call`] does: JSON text, or the message the plugin gets.
    /// A server relaying the host calls of a plugin that runs in another
    /// process answers them here, so they are answered exactly as in
    /// process.
    pub fn answer(&self, method: &str, input: &str) -> Result<String, String> {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let input: Value = serde_json::from_str(input)
                .map_err(|e| format!("input to host method `{method}` is not JSON: {e}"))?;
            let output = self.host.call(method, &input)?;
            Ok::<_, String>(output.to_string())
        }));
        match outcome {
            Ok(answer) => answer,
            Err(payload) => Err(format!(
                "host method `{method}` failed inside the server: {}",
                crate::runtime::panic_message(payload.as_ref())
            )),
        }
    }
}

impl HostApi for HostBridge<'_> {
    fn call(&self, method: RStr<'_>, input: RStr<'_>) -> RResult<RString, RString> {
        match self.answer(method.as_str(), input.as_str()) {
            Ok(text) => RResult::ROk(text.into()),
            Err(message) => RResult::RErr(message.into()),
        }
    }
}
