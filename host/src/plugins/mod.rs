//! The native plugin host: which plugins run, what they registered, and how
//! the server calls them.
//!
//! At startup [`Plugins::load_startup`] loads every file in
//! `installed_plugins` and every `.so`/`.dylib` in the plugins directory
//! through [`load::load_file`]; a file that fails is logged with one WARN
//! line and kept in the registry as *skipped* with a [`Reason`], and startup
//! goes on. The registry is shared (`Arc`) and changes while the server runs:
//! plugins can be added ([`Plugins::add`]) and disabled ([`Plugins::disable`]),
//! and every lookup sees only plugins whose state is `loaded`.
//!
//! Libraries are never unloaded (see `../shared/DESIGN.md`): disabling a
//! plugin removes its registrations from every lookup, its code stays mapped.
//!
//! Each plugin runs in one of two tiers ([`Isolation`]): in process, or in
//! a confined worker process of its own ([`worker`]); the same file runs in
//! either, and [`Tiers`] says which one each plugin gets.
//!
//! Calls into plugins are synchronous and may block or panic, so
//! [`Plugins::call`] runs them on tokio's blocking pool with a time limit.
//! A panic is caught by the SDK inside the plugin and comes back as an
//! error; after `plugin_panic_limit` panics in a row the plugin is disabled
//! (`disabled_after_panics`). A worker that crashes or runs past the limit
//! costs the calls it was serving; after `plugin_crash_limit` such ends
//! within `plugin_crash_window_secs` the plugin is disabled
//! (`disabled_after_crashes`).
//!
//! An in-process plugin that panics `plugin_panic_limit` times in a row is
//! moved to the worker tier instead when `plugin_panic_policy` says so
//! (the default); one whose call the server died in is moved at the next
//! start ([`forensics`] keeps the record of running in-process calls).
//! Every call is counted per plugin and call kind ([`metrics`]).
//!
//! Loads, skips, disables and moves are announced on a channel as
//! [`PluginEvent`]s; the server appends them to the installation's audit
//! chain as the system actor.

pub mod assets;
mod calls;
mod entry;
pub mod forensics;
pub mod host_api;
mod label;
mod load;
pub mod metrics;
mod moves;
mod registry;
pub mod smoke;
mod tier;
pub mod watch;
pub mod worker;

pub use calls::{redact_text, PluginCallError, MAX_STUCK_CALLS};
pub use entry::{FileSignature, PluginEntry, PluginEvent, Source, State, BUILTIN_FIELD_TYPES};
pub use load::{is_library_name, load_file, load_file_with, LoadOptions, Loaded, Reason, Skip};
pub use registry::{EnableError, Plugins};
pub use tier::{Isolation, PluginLink, PolicyNote, Tier, TierSource, Tiers};

/// The running server's version, against which plugins' `compatible_with`
/// is checked.
pub const VIGILO_VERSION: &str = env!("CARGO_PKG_VERSION");
