//! The published ABI: every type that crosses the boundary between the
//! Vigilo server and a plugin library.
//!
//! This module is deliberately tiny. Everything a plugin provides travels as
//! JSON text through four function pointers, so new capabilities are new
//! *method names* (strings), not new fields or types, and the layout that
//! `abi_stable` checks at load time stays the same from release to release.
//!
//! # Evolution rules
//!
//! * [`PluginMod`] is a prefix type. Fields may only be **appended** after
//!   the one marked `#[sabi(last_prefix_field)]`; never insert, remove,
//!   reorder or retype a field. A plugin built against a newer SDK (with an
//!   extra trailing field) still loads into an older server; the reverse is
//!   refused by `abi_stable` ("too many fields"), which is why we avoid adding
//!   fields at all and add JSON methods instead.
//! * [`HostApi`] has exactly one method. Adding a method to it would make
//!   every plugin built before the change unloadable, so the host grows new
//!   callbacks as new *method names* passed to [`HostApi::call`].
//! * [`PluginError`] and [`PluginErrorKind`] are frozen. A host-side problem
//!   that needs a new category is expressed in the message, or host-side.
//! * Any change to this module that alters the layout snapshot in
//!   `sdk/tests/abi_layout.txt` is a breaking change: bump
//!   [`SDK_ABI_VERSION`] and the SDK's major version (minor while 0.x).
// `#[derive(StableAbi)]` and `#[sabi_trait]` expand to impls outside the
// item they annotate (abi_stable 0.11 predates that lint).
#![allow(non_local_definitions)]

use std::fmt;

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::{RRef, VersionStrings},
    std_types::{ROption, RResult, RStr, RString, RVec},
    StableAbi,
};

/// The version of the wire contract between a server and a plugin: the
/// layout of [`PluginMod`] plus the JSON methods and shapes documented in
/// [`crate::wire`].
///
/// A plugin records the value it was built with in its manifest
/// (`sdk_abi_version`); a server refuses plugins whose value differs from its
/// own. Bump it together with the SDK's major version whenever the layout
/// snapshot test (`sdk/tests/abi_layout.txt`) or an existing JSON shape
/// changes incompatibly.
pub const SDK_ABI_VERSION: u32 = 1;

/// The root module every plugin library exports.
///
/// Obtain one with [`crate::loader::load_library`] (from a `.so`/`.dylib`)
/// or from the `vigilo_plugin_module()` function that
/// [`crate::export_plugin!`] defines (in-process), and talk to it through
/// [`crate::loader::PluginHandle`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// The plugin's manifest as JSON text (see [`crate::wire::Manifest`]).
    ///
    /// Never unwinds: if the plugin panics while building it, the text is
    /// empty.
    pub manifest: extern "C" fn() -> RString,

    /// Builds the plugin's registry (once) and returns JSON describing every
    /// registration (see [`crate::wire::Registrations`]).
    pub register: extern "C" fn() -> RResult<RString, PluginError>,

    /// The generic entry point: a method name and its JSON input (plus the
    /// host's callback API) in, JSON output out. See [`crate::wire`] for the
    /// methods and their shapes.
    pub call: extern "C" fn(
        method: RStr<'_>,
        input: RStr<'_>,
        host: HostApi_TO<'_, RRef<'_, ()>>,
    ) -> RResult<RString, PluginError>,

    /// An embedded frontend asset by relative path (for example
    /// `"widget.js"`), or `RNone` if the plugin has no such asset.
    ///
    /// This is the last field of the first published version of the ABI:
    /// fields may only be appended after it, never inserted before it or
    /// changed.
    #[sabi(last_prefix_field)]
    pub asset: extern "C" fn(path: RStr<'_>) -> ROption<RVec<u8>>,
}

impl fmt::Debug for PluginModRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginModRef").finish_non_exhaustive()
    }
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "vigilo_plugin";
    const NAME: &'static str = "vigilo_plugin";
    // The SDK's own package version: `abi_stable` refuses a library whose
    // SDK major (minor while 0.x) differs from the loader's.
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

pub use host_api::{HostApi, HostApi_TO};

// `#[sabi_trait]` generates the vtable and the `HostApi_TO` trait object,
// whose method shims are `unsafe` blocks around erased pointers. That code is
// abi_stable's (and covered by its tests); the module exists only so this
// allowance stays as narrow as the generated items. Nothing else in the SDK
// is unsafe except the library header in `runtime.rs`.
#[allow(unsafe_code)]
mod host_api {
    use abi_stable::{
        sabi_trait,
        std_types::{RResult, RStr, RString},
    };

    /// The host's callback API, handed to every [`crate::abi::PluginMod::call`].
    ///
    /// One generic method keeps the layout fixed: the host decides which method
    /// names exist (for example `"work_items.count_by_status"` with input
    /// `{"workspace": "ops"}`) and answers with JSON text, or with an error
    /// message. Plugins use it through the friendlier [`crate::host::Host`]
    /// trait.
    ///
    /// Implementations must not panic: a panic inside a `#[sabi_trait]` method
    /// ends the process. [`crate::loader::HostBridge`] wraps a
    /// [`crate::host::Host`] and turns its panics into errors.
    #[sabi_trait]
    pub trait HostApi {
        /// Calls host method `method` with JSON text `input`; returns JSON text,
        /// or an error message.
        fn call(&self, method: RStr<'_>, input: RStr<'_>) -> RResult<RString, RString>;
    }
}

/// An error a plugin returns across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// What kind of failure this is.
    pub kind: PluginErrorKind,
    /// A human-readable explanation. For [`PluginErrorKind::BadInput`] from
    /// `field_type.validate` this is the reason shown to the user.
    pub message: RString,
    /// Only in builds with the `__altered_abi_for_tests` feature: an extra
    /// field that changes this type's layout, so Vigilo's tests can build a
    /// plugin "against a different SDK" and check the server refuses it.
    #[cfg(feature = "__altered_abi_for_tests")]
    #[doc(hidden)]
    pub altered: u64,
}

/// The category of a [`PluginError`]. Frozen: see the module docs.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginErrorKind {
    /// The plugin tried and failed (for example an adapter could not reach
    /// its service).
    Failed,
    /// The plugin panicked; the SDK caught the panic at the boundary.
    Panicked,
    /// The plugin does not implement the requested method.
    UnknownMethod,
    /// The input was rejected: malformed JSON, an unknown registration name,
    /// or (for field types) an invalid value.
    BadInput,
}

impl PluginErrorKind {
    /// A stable lower-case name for logs and API errors.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginErrorKind::Failed => "failed",
            PluginErrorKind::Panicked => "panicked",
            PluginErrorKind::UnknownMethod => "unknown_method",
            PluginErrorKind::BadInput => "bad_input",
        }
    }
}

impl fmt::Display for PluginErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PluginError {
    /// An error of `kind` with `message`.
    pub fn new(kind: PluginErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: RString::from(message.into()),
            #[cfg(feature = "__altered_abi_for_tests")]
            altered: 0,
        }
    }

    /// A [`PluginErrorKind::Failed`] error.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(PluginErrorKind::Failed, message)
    }

    /// A [`PluginErrorKind::BadInput`] error.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(PluginErrorKind::BadInput, message)
    }

    /// A [`PluginErrorKind::Panicked`] error.
    pub fn panicked(message: impl Into<String>) -> Self {
        Self::new(PluginErrorKind::Panicked, message)
    }

    /// A [`PluginErrorKind::UnknownMethod`] error.
    pub fn unknown_method(method: &str) -> Self {
        Self::new(
            PluginErrorKind::UnknownMethod,
            format!("this plugin does not implement method `{method}`"),
        )
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for PluginError {}
