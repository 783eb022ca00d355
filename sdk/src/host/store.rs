//! What a plugin keeps and says: workspace settings, its own key-value
//! store, and lines in the server's log.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Host method `settings.get`: a workspace's settings. Capability
/// [`crate::host::Capability::SettingsRead`].
///
/// Request [`SettingsRequest`]; response [`WorkspaceSettings`].
pub const SETTINGS_GET: &str = "settings.get";

/// Host method `workspaces.list`: the workspaces the plugin may act in
/// (a periodic task: every workspace its operator enabled it for; any other
/// plugin: the one it is called in). Capability
/// [`crate::host::Capability::WorkItemsRead`].
///
/// Request [`WorkspacesRequest`] (`{}`); response [`Workspaces`].
pub const WORKSPACES_LIST: &str = "workspaces.list";

/// Request of [`WORKSPACES_LIST`]: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspacesRequest {}

/// Response of [`WORKSPACES_LIST`]:
/// `{"workspaces": [{"slug": "ops", "name": "Operations"}]}`, by slug.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspaces {
    /// The workspaces.
    pub workspaces: Vec<WorkspaceSummary>,
}

/// One workspace in [`Workspaces`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSummary {
    /// Its slug, which every other method takes.
    pub slug: String,
    /// Its display name.
    #[serde(default)]
    pub name: String,
}

/// Host method `kv.get`: one entry of the plugin's key-value store.
/// Capability [`crate::host::Capability::Storage`].
///
/// Request [`KvKey`]; response [`KvEntry`] (`value: null, version: 0` when
/// there is none).
pub const KV_GET: &str = "kv.get";
/// Host method `kv.set`: store a value, optionally only if the entry is
/// still at a version the plugin read (compare-and-set), optionally for a
/// limited time. Capability [`crate::host::Capability::Storage`].
///
/// Request [`KvSet`]; response [`KvEntry`] with the new version. A
/// compare-and-set that lost is an error starting with
/// [`KV_VERSION_CONFLICT`]: read again and retry.
pub const KV_SET: &str = "kv.set";
/// Host method `kv.delete`: remove an entry (optionally only at a version).
/// Capability [`crate::host::Capability::Storage`].
///
/// Request [`KvDelete`]; response [`KvDeleted`].
pub const KV_DELETE: &str = "kv.delete";
/// Host method `kv.list`: the keys of the plugin's store, sorted.
/// Capability [`crate::host::Capability::Storage`].
///
/// Request [`KvList`]; response [`KvKeys`].
pub const KV_LIST: &str = "kv.list";
/// Host method `log.write`: a line in the server's log under the plugin's
/// name. Capability [`crate::host::Capability::Log`].
///
/// Request [`LogLine`]; response `{}`, or `{"dropped": true}` when the
/// plugin wrote too many lines too fast (the server keeps up to 20 lines a
/// second per plugin, with bursts of 100, and logs how many it dropped).
pub const LOG_WRITE: &str = "log.write";

/// The start of a `kv.set` or `kv.delete` error when the entry was not at
/// the version the plugin expected.
pub const KV_VERSION_CONFLICT: &str = "version_conflict";
/// The longest key, in bytes.
pub const KV_MAX_KEY_BYTES: usize = 200;
/// The largest value, as JSON text, in bytes.
pub const KV_MAX_VALUE_BYTES: usize = 64 * 1024;
/// The most entries a plugin may keep in one scope (a workspace, or the
/// installation).
pub const KV_MAX_ENTRIES: u64 = 10_000;

/// Request of [`SETTINGS_GET`]: `{"workspace": "ops"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsRequest {
    /// The workspace's slug.
    pub workspace: String,
}

/// Response of [`SETTINGS_GET`].
///
/// ```json
/// {"workspace": "ops", "settings": {"holidays": ["2026-12-25"], "four_eyes": true,
///  "kanban_overview": {"wip_limit": 5}}, "own": {"wip_limit": 5}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceSettings {
    /// The workspace's slug.
    pub workspace: String,
    /// Every setting of the workspace.
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// The settings an admin keeps for this plugin, under the plugin's name
    /// (`settings.<plugin name>`); `null` when there are none.
    #[serde(default)]
    pub own: Value,
}

/// Which key, in which scope: [`KV_GET`]'s request.
///
/// `{"workspace": "ops", "key": "last-digest"}`; leave `workspace` out for
/// the plugin's installation-wide store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvKey {
    /// The workspace whose store this is; `None` for the installation-wide
    /// store (periodic tasks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The key: 1 to [`KV_MAX_KEY_BYTES`] bytes of printable text.
    pub key: String,
}

/// An entry of the store: [`KV_GET`]'s and [`KV_SET`]'s response.
///
/// `{"key": "last-digest", "value": {"sent": 3}, "version": 4, "expires_at": null}`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvEntry {
    /// The key.
    pub key: String,
    /// The value; `null` when there is no entry.
    #[serde(default)]
    pub value: Value,
    /// Counts the writes of this entry from 1; `0` when there is no entry.
    /// Pass it as [`KvSet::expected_version`] to write only if nobody else
    /// wrote in between.
    #[serde(default)]
    pub version: u64,
    /// When the entry expires (RFC 3339, UTC), if it does.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Request of [`KV_SET`].
///
/// ```json
/// {"workspace": "ops", "key": "seen", "value": [1, 2], "expected_version": 3, "ttl_seconds": 86400}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvSet {
    /// The scope, as in [`KvKey::workspace`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The key.
    pub key: String,
    /// The value: any JSON but `null`, up to [`KV_MAX_VALUE_BYTES`] as text.
    pub value: Value,
    /// Write only if the entry is at this version now (`0`: only if there
    /// is no entry). `None` writes whatever is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    /// Forget the entry this many seconds from now (1 to 31,536,000).
    /// `None` keeps it until it is deleted or the plugin's data is purged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// Request of [`KV_DELETE`]: `{"workspace": "ops", "key": "seen"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvDelete {
    /// The scope, as in [`KvKey::workspace`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The key.
    pub key: String,
    /// Delete only if the entry is at this version now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
}

/// Response of [`KV_DELETE`]: `{"deleted": true}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvDeleted {
    /// Whether there was an entry to delete.
    pub deleted: bool,
}

/// Request of [`KV_LIST`]: `{"workspace": "ops", "prefix": "seen:", "after": "seen:12"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvList {
    /// The scope, as in [`KvKey::workspace`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Only keys that start with this.
    #[serde(default)]
    pub prefix: String,
    /// Only keys after this one ([`KvKeys::next_after`] of the page before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// At most this many keys (1 to 1,000; 100 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Response of [`KV_LIST`]: the keys, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvKeys {
    /// The keys.
    pub keys: Vec<String>,
    /// Pass as [`KvList::after`] for the next page; `None` on the last one.
    #[serde(default)]
    pub next_after: Option<String>,
}

/// How much a [`LogLine`] matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Details for whoever debugs the plugin.
    Debug,
    /// What the plugin did.
    #[default]
    Info,
    /// Something an operator may want to look at.
    Warn,
    /// Something an operator must act on.
    Error,
}

/// Request of [`LOG_WRITE`]: `{"level": "warn", "message": "3 tasks closed", "fields": {"closed": 3}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Its level.
    #[serde(default)]
    pub level: LogLevel,
    /// The line (cut at 2,000 characters). Never put a secret in it.
    pub message: String,
    /// Structured details, logged as JSON beside the message.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

/// Response of [`LOG_WRITE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogWritten {
    /// True when the line was dropped because the plugin wrote too fast.
    #[serde(default)]
    pub dropped: bool,
}
