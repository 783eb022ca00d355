//! The host's callback API as plugins (and hosts) see it in Rust.
//!
//! Across the boundary the callback API is one method taking and returning
//! JSON text ([`crate::abi::HostApi`]). Plugins use the [`Host`] trait
//! instead: JSON values in and out, plus typed helpers for the methods the
//! SDK knows about. A server implements [`Host`] too and hands it to
//! [`crate::PluginHandle::call`], which wraps it in a [`HostBridge`].

use std::{
    collections::BTreeMap,
    panic::{catch_unwind, AssertUnwindSafe},
};

use abi_stable::{
    sabi_types::RRef,
    std_types::{RResult, RStr, RString},
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::abi::{HostApi, HostApi_TO};

/// Host method: work item counts by status for one workspace.
///
/// Input `{"workspace": "<slug>"}`; output [`WorkItemCounts`], e.g.
/// `{"changes": {"draft": 2, "approved": 1}, "incidents": {"open": 1},
/// "tasks": {"todo": 4}}`.
pub const WORK_ITEMS_COUNT_BY_STATUS: &str = "work_items.count_by_status";

/// The server's callback API, as a plugin calls it.
///
/// The host decides which methods exist; calling one it does not know is an
/// error (not a panic). Calls are synchronous and run on the thread that
/// called the plugin.
pub trait Host {
    /// Calls host method `method` with `input`; returns its JSON output or
    /// an error message.
    fn call(&self, method: &str, input: &Value) -> Result<Value, String>;

    /// Work item counts by status in `workspace`
    /// ([`WORK_ITEMS_COUNT_BY_STATUS`]).
    fn work_items_count_by_status(&self, workspace: &str) -> Result<WorkItemCounts, String> {
        let output = self.call(WORK_ITEMS_COUNT_BY_STATUS, &json!({"workspace": workspace}))?;
        serde_json::from_value(output).map_err(|e| {
            format!("host answered {WORK_ITEMS_COUNT_BY_STATUS} with an unexpected shape: {e}")
        })
    }
}

/// Output of [`WORK_ITEMS_COUNT_BY_STATUS`]: for each kind of work item, the
/// number of items in each status. A kind with no items may be absent or
/// empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItemCounts {
    /// Change requests by status (`draft`, `submitted`, `approved`, ...).
    #[serde(default)]
    pub changes: BTreeMap<String, u64>,
    /// Incidents by status.
    #[serde(default)]
    pub incidents: BTreeMap<String, u64>,
    /// Tasks by status.
    #[serde(default)]
    pub tasks: BTreeMap<String, u64>,
}

/// Adapts a Rust [`Host`] to the ABI's [`HostApi`], so a server (or a test
/// double) can be handed to a plugin.
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

impl HostApi for HostBridge<'_> {
    fn call(&self, method: RStr<'_>, input: RStr<'_>) -> RResult<RString, RString> {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let input: Value = serde_json::from_str(input.as_str())
                .map_err(|e| format!("input to host method `{method}` is not JSON: {e}"))?;
            let output = self.host.call(method.as_str(), &input)?;
            Ok::<_, String>(output.to_string())
        }));
        match outcome {
            Ok(Ok(text)) => RResult::ROk(text.into()),
            Ok(Err(message)) => RResult::RErr(message.into()),
            Err(payload) => RResult::RErr(
                format!(
                    "host method `{method}` failed inside the server: {}",
                    crate::runtime::panic_message(payload.as_ref())
                )
                .into(),
            ),
        }
    }
}

/// The plugin's view of the [`HostApi`] trait object it was handed.
pub(crate) struct HostClient<'lt, 'r> {
    api: HostApi_TO<'lt, RRef<'r, ()>>,
}

impl<'lt, 'r> HostClient<'lt, 'r> {
    pub(crate) fn new(api: HostApi_TO<'lt, RRef<'r, ()>>) -> Self {
        HostClient { api }
    }
}

impl Host for HostClient<'_, '_> {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        let input = input.to_string();
        match self
            .api
            .call(RStr::from_str(method), RStr::from_str(&input))
        {
            RResult::ROk(text) => serde_json::from_str(&text)
                .map_err(|e| format!("host method `{method}` answered with invalid JSON: {e}")),
            RResult::RErr(message) => Err(message.into_string()),
        }
    }
}
