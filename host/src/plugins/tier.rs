//! The two tiers a plugin can run in, and which one each plugin gets.
//!
//! *In process*: the library is loaded into the server and called directly
//! (fastest; a crash in it ends the server). *Worker*: the server starts a
//! process of its own binary that loads the same library with the same
//! checks, confines itself, and answers the same calls over a socket
//! ([`super::worker`]). The plugin is the same file either way.
//!
//! A plugin's tier is, first match wins: the installation's stored decision
//! for it (`plugin_policies`, shared by every server on the database), its
//! own `[plugin_settings.NAME] isolation`, then `plugin_isolation`. The
//! name is the plugin's own (from its manifest), so when the tier depends on
//! the name the server learns the name from a worker first: a file's code
//! runs inside the server only once the policy says its plugin may.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use vigilo_sdk::loader::PluginHandle;

use super::worker::{WorkerPlugin, WorkerSettings};
use crate::config::Config;
pub use crate::config::Isolation;
use crate::store::Store;

/// Which setting chose a plugin's tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierSource {
    /// The installation's stored decision for this plugin (`plugin_policies`).
    Policy,
    /// The plugin's own `[plugin_settings.NAME] isolation`.
    PluginSettings,
    /// `plugin_isolation`, the installation-wide default.
    Default,
    /// Chosen for one load by hand (`check-plugin --isolation`, tests).
    Manual,
}

impl TierSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TierSource::Policy => "policy",
            TierSource::PluginSettings => "plugin_settings",
            TierSource::Default => "default",
            TierSource::Manual => "manual",
        }
    }
}

/// A plugin's tier and what chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tier {
    /// Where it runs.
    pub isolation: Isolation,
    /// Which setting chose it.
    pub source: TierSource,
}

/// What the installation's stored policy says about a plugin, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyNote {
    /// Who decided: `system` or a user's email.
    pub decided_by: String,
    /// Why, in words.
    pub reason: String,
    /// When.
    pub updated_at: String,
    /// The in-process call the plugin was making when the server stopped
    /// inside it (`field_type.validate`, ...), if that happened.
    pub interrupted_call: Option<String>,
    /// When that call started.
    pub interrupted_at: Option<String>,
}

/// The tier of every plugin of an installation.
#[derive(Debug, Clone)]
pub struct Tiers {
    default: Isolation,
    /// Whether the default was chosen by hand rather than by configuration.
    manual: bool,
    by_name: BTreeMap<String, Tier>,
    /// The stored policies, with their reasons, by plugin name.
    notes: BTreeMap<String, PolicyNote>,
    /// How workers are started and confined.
    pub worker: Arc<WorkerSettings>,
}

impl Default for Tiers {
    /// Every plugin in process (what loading a file by hand means unless a
    /// tier is asked for).
    fn default() -> Self {
        Tiers::all(Isolation::InProcess, TierSource::Manual)
    }
}

impl Tiers {
    /// The tier of each plugin: the installation's stored decisions, then the
    /// configuration.
    pub async fn read(config: &Config, store: &Store) -> anyhow::Result<Tiers> {
        let stored = store
            .plugin_policies()
            .await
            .context("cannot read the plugin policies")?;
        Ok(Tiers::new(
            config.plugin_isolation,
            config
                .plugin_settings
                .iter()
                .filter_map(|(name, s)| s.isolation.map(|i| (name.clone(), i))),
            stored
                .iter()
                .filter_map(|p| p.isolation.map(|i| (p.name.clone(), i))),
            WorkerSettings::from_config(config),
        )
        .with_notes(stored.into_iter().map(|p| {
            (
                p.name,
                PolicyNote {
                    decided_by: p.decided_by,
                    reason: p.reason,
                    updated_at: p.updated_at,
                    interrupted_call: p.interrupted_call,
                    interrupted_at: p.interrupted_at,
                },
            )
        })))
    }

    /// Every plugin in `isolation`, chosen by `source` (`Default` or
    /// `Manual`).
    pub fn all(isolation: Isolation, source: TierSource) -> Self {
        Tiers {
            default: isolation,
            manual: source == TierSource::Manual,
            by_name: BTreeMap::new(),
            notes: BTreeMap::new(),
            worker: Arc::new(WorkerSettings::default()),
        }
    }

    /// The same tiers, with workers started as `worker` says.
    pub fn with_worker(mut self, worker: WorkerSettings) -> Self {
        self.worker = Arc::new(worker);
        self
    }

    /// The tiers a configuration and the stored policies give: `stored`
    /// (name, isolation) pairs win over `settings` (name, isolation), which
    /// win over `default`.
    pub fn new(
        default: Isolation,
        settings: impl IntoIterator<Item = (String, Isolation)>,
        stored: impl IntoIterator<Item = (String, Isolation)>,
        worker: WorkerSettings,
    ) -> Self {
        let mut by_name = BTreeMap::new();
        for (name, isolation) in settings {
            by_name.insert(
                name,
                Tier {
                    isolation,
                    source: TierSource::PluginSettings,
                },
            );
        }
        for (name, isolation) in stored {
            by_name.insert(
                name,
                Tier {
                    isolation,
                    source: TierSource::Policy,
                },
            );
        }
        Tiers {
            default,
            manual: false,
            by_name,
            notes: BTreeMap::new(),
            worker: Arc::new(worker),
        }
    }

    /// The same tiers, with the stored policies' reasons.
    pub fn with_notes(mut self, notes: impl IntoIterator<Item = (String, PolicyNote)>) -> Self {
        self.notes.extend(notes);
        self
    }

    /// The same tiers, with the plugin `name` moved to `isolation` by the
    /// installation's policy for `note`'s reason.
    pub fn with_policy(mut self, name: &str, isolation: Isolation, note: PolicyNote) -> Self {
        self.by_name.insert(
            name.to_owned(),
            Tier {
                isolation,
                source: TierSource::Policy,
            },
        );
        self.notes.insert(name.to_owned(), note);
        self
    }

    /// What the stored policy says about the plugin `name`, if it says
    /// anything.
    pub fn note(&self, name: &str) -> Option<&PolicyNote> {
        self.notes.get(name)
    }

    /// The tier of the plugin called `name`.
    pub fn tier_of(&self, name: &str) -> Tier {
        self.by_name.get(name).copied().unwrap_or(Tier {
            isolation: self.default,
            source: if self.manual {
                TierSource::Manual
            } else {
                TierSource::Default
            },
        })
    }

    /// The one tier every plugin gets, when no plugin's setting differs
    /// from the default (then a file can be loaded in its tier straight
    /// away, without learning its name first).
    pub fn uniform(&self) -> Option<Isolation> {
        self.by_name
            .values()
            .all(|t| t.isolation == self.default)
            .then_some(self.default)
    }
}

/// How the server reaches a loaded plugin.
#[derive(Debug, Clone)]
pub enum PluginLink {
    /// The library is loaded into this process.
    InProcess(PluginHandle),
    /// The library is loaded in a worker process.
    Worker(Arc<WorkerPlugin>),
}

impl PluginLink {
    /// Where the plugin runs.
    pub fn isolation(&self) -> Isolation {
        match self {
            PluginLink::InProcess(_) => Isolation::InProcess,
            PluginLink::Worker(_) => Isolation::Worker,
        }
    }

    /// The embedded frontend file at `path`, if the plugin has one (a
    /// worker's files were fetched when it loaded, so this never waits).
    pub fn asset(&self, path: &str) -> Option<Vec<u8>> {
        match self {
            PluginLink::InProcess(handle) => handle.asset(path),
            PluginLink::Worker(worker) => worker.asset(path),
        }
    }

    /// The worker, for a worker-tier plugin.
    pub fn worker(&self) -> Option<&Arc<WorkerPlugin>> {
        match self {
            PluginLink::Worker(worker) => Some(worker),
            PluginLink::InProcess(_) => None,
        }
    }
}
