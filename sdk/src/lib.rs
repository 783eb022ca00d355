//! # vigilo-sdk: the Vigilo Plugin SDK
//!
//! Vigilo operators extend a running server with *native plugins*: shared
//! libraries (`cdylib`, `.so` on Linux, `.dylib` on macOS) that the server
//! loads at startup and whenever one is moved into its plugins directory.
//! This crate is what a plugin vendor builds against, and the only
//! dependency a plugin needs.
//!
//! What a vendor uses is at the crate root:
//!
//! * the [`Plugin`] trait and the four kinds of registration ([`FieldType`],
//!   [`Widget`], [`Adapter`], [`Task`]) collected by a [`PluginRegistry`],
//!   with the contexts they run in ([`FieldContext`], [`WidgetContext`],
//!   [`TaskContext`]) and the one macro, [`export_plugin!`];
//! * the frontend half: the files a plugin embeds ([`Asset`], listed by
//!   [`Plugin::frontend`]) and the custom element that draws a field editor
//!   or a dashboard tile in the web app ([`Element`], returned by
//!   [`FieldType::element`] and [`Widget::element`]), built for the contract
//!   [`FRONTEND_API_VERSION`] names;
//! * the server's callback API, [`Host`]: every host method's name, its
//!   request and response types, and a typed helper for each (the [`host`]
//!   module), among them [`HTTP_REQUEST`], the way plugins call out;
//! * [`harness`], which drives a plugin through the very calls the server
//!   makes, and checks the library you ship as the server will;
//! * JSON: [`Value`], [`Map`], [`json!`].
//!
//! The rest is the other side of the boundary, which plugin authors do not
//! need: [`loader`] is what the Vigilo server uses to load and call a plugin;
//! [`abi`] (the stable ABI) and [`wire`] (the JSON on top of it) are the
//! documented contract both sides are built from.
//!
//! It depends on nothing else of Vigilo.
//!
//! ## The ABI, and why it looks like this
//!
//! Rust has no stable ABI, so the boundary is built with
//! [`abi_stable`](https://docs.rs/abi_stable): when the server loads a
//! library, abi_stable checks the library's SDK version (equal majors; equal
//! minors while 0.x) and the layout of every type reachable from the root
//! module, and refuses a mismatch with a typed error instead of crashing.
//!
//! That check is strict in one direction only: a plugin built against an SDK
//! whose root module has an *extra* trailing field still loads into an older
//! server, but a server whose SDK gained a root-module field or a callback
//! method rejects every plugin built before it. So the boundary is kept tiny
//! and data-shaped: a prefix-type root module ([`abi::PluginMod`]) of four
//! function pointers, `manifest`, `register`, `call` and `asset`, and a
//! one-method callback trait ([`abi::HostApi`]), with JSON text crossing it.
//! New capabilities are new *method names* and new optional JSON fields
//! ([`wire`]), which change no layout, so old plugins keep loading.
//!
//! Evolution rules:
//!
//! 1. Fields of [`abi::PluginMod`] may only be appended after the one marked
//!    `#[sabi(last_prefix_field)]` (and should not be: prefer a JSON method).
//! 2. [`abi::HostApi`], [`abi::PluginError`] and [`abi::PluginErrorKind`] are
//!    frozen.
//! 3. JSON shapes only gain optional fields; readers ignore unknown fields.
//! 4. Anything else is a breaking change: bump [`abi::SDK_ABI_VERSION`] and the
//!    SDK's major version. The test `sdk/tests/abi_layout.rs` compares the
//!    layout with a checked-in snapshot and fails if it changes by accident.
//!
//! ## Panics
//!
//! A panic that unwinds out of an `extern "C"` function aborts the server.
//! So the functions [`export_plugin!`] exports run every plugin call under
//! [`std::panic::catch_unwind`] and return a [`abi::PluginErrorKind::Panicked`]
//! error with the panic message and its place (`(at src/lib.rs:42:17)`)
//! instead; the server logs it and carries on.
//! That only works if the plugin is built with `panic = "unwind"` (Cargo's
//! default). A plugin built with `panic = "abort"` cannot be contained, so
//! the manifest records the strategy (`panic_unwind`) and the server can
//! refuse such plugins.
//!
//! Nothing is shared between server and plugin: each has its own copy of
//! this crate's statics, its own allocator and its own async runtime. Calls
//! are synchronous; the server makes them off its async executor.
//!
//! ## A minimal plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! vigilo-sdk = { path = "../vigilo/sdk" }   # a checkout of Vigilo
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use vigilo_sdk::{FieldContext, FieldType, Plugin, PluginKind, PluginRegistry, Value};
//!
//! pub struct TicketRef;
//!
//! impl Plugin for TicketRef {
//!     fn name(&self) -> &str { "ticket_ref" }
//!     fn kind(&self) -> PluginKind { PluginKind::FieldType }
//!     fn version(&self) -> &str { env!("CARGO_PKG_VERSION") }
//!     fn compatible_with(&self) -> &str { ">=0.1, <0.2" }
//!     fn register(&self, registry: &mut PluginRegistry) {
//!         registry.register_field_type(TicketRefField);
//!     }
//! }
//!
//! struct TicketRefField;
//!
//! impl FieldType for TicketRefField {
//!     fn name(&self) -> &str { "ticket_ref" }
//!     fn label(&self) -> &str { "Ticket reference (ABC-123)" }
//!     fn validate(&self, value: &Value, _ctx: &FieldContext) -> Result<Value, String> {
//!         let text = value.as_str().ok_or("a ticket reference is text, like ABC-123")?;
//!         let upper = text.trim().to_ascii_uppercase();
//!         match upper.split_once('-') {
//!             Some((project, number))
//!                 if !project.is_empty()
//!                     && project.chars().all(|c| c.is_ascii_uppercase())
//!                     && !number.is_empty()
//!                     && number.chars().all(|c| c.is_ascii_digit()) =>
//!             {
//!                 Ok(Value::String(upper))
//!             }
//!             _ => Err(format!("{text:?} is not a ticket reference like ABC-123")),
//!         }
//!     }
//! }
//!
//! vigilo_sdk::export_plugin!(TicketRef);
//!
//! // In the plugin's tests:
//! use vigilo_sdk::harness::PluginTestHarness;
//!
//! let plugin = PluginTestHarness::in_process(vigilo_plugin_module);
//! plugin.assert_valid_plugin();
//! assert_eq!(
//!     plugin.validate("ticket_ref", "abc-42".into(), Value::Null),
//!     Ok(Value::from("ABC-42"))
//! );
//! assert!(plugin.validate("ticket_ref", "42".into(), Value::Null).is_err());
//! ```
//!
//! `cargo build --release -p ticket_ref` then produces
//! `target/release/libticket_ref.so`, the file to move into the server's
//! plugins directory (or to package with `vigilo-plugin`). Ship release
//! builds: the server runs plugin code inside the time limit of each call,
//! and a debug build is unoptimised and several times larger. The release
//! build is also the one your release profile (its `panic` setting above
//! all) applies to, so check that file before shipping it, as the server
//! will, with [`harness::assert_server_accepts`]:
//!
//! ```no_run
//! use vigilo_sdk::harness::{assert_server_accepts, release_library, SERVER_VERSION};
//!
//! // In a test, after `cargo build --release`:
//! assert_server_accepts(release_library("ticket_ref"), SERVER_VERSION);
//! ```
//!
//! ## The frontend half
//!
//! The web app draws a field of a plugin's type with the plugin's editor,
//! and a plugin's dashboard tile with its element: a custom element defined
//! by one of the plugin's ES modules. Its tag starts with the plugin's name
//! and a hyphen (`datepicker_with_holidays-picker`), which registration
//! checks ([`Element::check`]). The server serves the files at
//! `/plugins/{name}/v/{sha16}/{path}` (the start of the library's SHA-256,
//! so browsers may cache them for good) and uses an element only when the
//! manifest's [`wire::Manifest::frontend_api`] equals its own
//! [`FRONTEND_API_VERSION`]. An editor is a form-associated element (it
//! submits its value through `ElementInternals`); a tile gets its widget's
//! rendered `data`. Pages carry a strict Content-Security-Policy: no inline
//! script or style and no `eval`, so an element styles itself with a
//! constructable stylesheet or a linked CSS file of its own. The README's
//! "Frontend half" is the whole contract.
//!
//! ## Calling out
//!
//! A plugin reaches other services only through the server: adapters, tasks
//! and widgets call [`Host::http_request`] ([`HTTP_REQUEST`]), and the server
//! makes the request under its egress policy and limits. A plugin needs no
//! HTTP client of its own; the test harness has one ([`harness`], feature
//! `harness-http`).
//!
//! The crate's `README.md` is the full plugin developer guide.

pub mod abi;
mod event;
pub mod harness;
pub mod host;
pub mod loader;
mod plugin;
mod runtime;
pub mod wire;

pub use host::{
    http_url_host, redact_url, Capabilities, Capability, CertificatesExpiring,
    CertificatesExpiringRequest, Delivery, ExpiringCertificate, ExpiringWorkspace, Host, HostCall,
    HostRequest, HttpHeader, HttpMethod, HttpRequest, HttpResponse, LogLevel, NotifyRequest,
    NotifyResponse, WorkItemCounts, WorkItemCountsRequest, WorkItemKind, WorkflowStatuses,
    CAPABILITY_NOT_DECLARED, CERTIFICATES_EXPIRING, HTTP_REQUEST, INTEGRATIONS_NOTIFY,
    WORK_ITEMS_COUNT_BY_STATUS,
};
pub use plugin::{
    check_config_against_schema, empty_config_schema, Adapter, Asset, Element, FieldContext,
    FieldType, Plugin, PluginKind, PluginRegistry, Schedule, Task, TaskContext, Widget,
    WidgetContext, FRONTEND_API_VERSION,
};

/// JSON values, as plugins receive and return them.
pub use event::Event;
pub use serde_json::{json, Map, Value};

/// Makes the crate a loadable Vigilo plugin. Invoke it once, at the crate
/// root, with an expression that creates the plugin (a unit struct's name is
/// one):
///
/// ```ignore
/// vigilo_sdk::export_plugin!(MyPlugin);
/// vigilo_sdk::export_plugin!(MyPlugin::new());
/// ```
///
/// It generates:
///
/// * the exported root-module symbol the server looks up when it loads the
///   library (what `abi_stable`'s `#[export_root_module]` would generate);
/// * `pub fn vigilo_plugin_module() -> vigilo_sdk::abi::PluginModRef`, the same
///   root module in process, for [`harness::PluginTestHarness::in_process`].
///
/// The plugin value is created on the first call into the library and kept
/// for the life of the process; its registry is built once, on the first
/// `register` or `call`. Every entry point catches panics (see the crate
/// docs). The crate needs `crate-type = ["cdylib", "rlib"]`.
///
/// Linking two plugin crates' `rlib`s into one binary fails (both define the
/// root-module symbol); test each plugin in its own crate, or load the
/// built libraries with [`harness::PluginTestHarness::load`].
#[macro_export]
macro_rules! export_plugin {
    ($plugin:expr $(,)?) => {
        #[doc(hidden)]
        struct __VigiloPluginSource;

        impl $crate::__private::PluginSource for __VigiloPluginSource {
            fn runtime() -> &'static $crate::__private::Runtime {
                static RUNTIME: ::std::sync::OnceLock<$crate::__private::Runtime> =
                    ::std::sync::OnceLock::new();
                RUNTIME.get_or_init(|| {
                    $crate::__private::Runtime::new($plugin, cfg!(panic = "unwind"))
                })
            }

            fn module() -> $crate::abi::PluginModRef {
                vigilo_plugin_module()
            }
        }

        /// This plugin's root module, in process: what the server gets from
        /// the library, without loading it. Pass it to
        /// `vigilo_sdk::harness::PluginTestHarness::in_process`.
        pub fn vigilo_plugin_module() -> $crate::abi::PluginModRef {
            const MODULE: &$crate::__private::WithMetadata<$crate::abi::PluginMod> =
                &$crate::__private::WithMetadata::new($crate::__private::plugin_mod::<
                    __VigiloPluginSource,
                >());
            $crate::__private::module_ref(MODULE)
        }

        /// The header abi_stable's loader reads from the library.
        #[doc(hidden)]
        #[unsafe(export_name = $crate::__root_module_loader_name!())]
        pub static __VIGILO_PLUGIN_LIB_HEADER: $crate::__private::LibHeader =
            $crate::__private::lib_header::<__VigiloPluginSource>();
    };
}

/// Implementation details of [`export_plugin!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
    pub use abi_stable::{library::LibHeader, prefix_type::WithMetadata};
    pub use serde_json;

    pub use crate::runtime::{lib_header, module_ref, plugin_mod, PluginSource, Runtime};
}
