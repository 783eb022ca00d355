//! The server's side of the plugins' host callbacks, written once.
//!
//! A plugin calls back into the server through [`vigilo_sdk::Host`]: a
//! method name and JSON, both defined in the SDK. Each call is decoded once
//! into [`HostRequest`], checked against the capabilities the plugin
//! declared, and answered with the SDK's response type, within an explicit
//! [`Scope`]: a widget, a field type or an adapter acts in one workspace; a
//! periodic task in the workspaces its operator enabled it for.
//!
//! Errors are treated one way: what the plugin asked for that cannot be
//! done (an undeclared capability, a workspace outside its scope, a value
//! the rules refuse) is answered with a sentence saying so; a failure inside
//! the server is logged, and the plugin is told only that the server could
//! not answer.
//!
//! Plugin calls run on the blocking pool, never on an async worker, so the
//! answers here wait for the database (and `http.request` for the remote
//! end) right there.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::runtime::Handle;
use vigilo_sdk::host::{
    Capabilities, Capability, DecodeError, LogLevel, LogWritten, WorkItem, WorkItemPage,
    WorkspaceSettings,
};
use vigilo_sdk::{
    CertificatesExpiring, Host, HostRequest, WorkItemCounts, WorkflowStatuses,
    CAPABILITY_NOT_DECLARED,
};

use super::PluginEntry;
use crate::model::workflow::Kind;
use crate::outbound::Policy;
use crate::store::workspaces::Workspace;
use crate::store::{Store, StoreError};

mod http;
mod kv;

/// The longest an `http.request` may take, whatever the plugin asks for.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a response body handed back to a plugin.
pub const HTTP_MAX_BODY: u64 = 1024 * 1024;
/// The largest request body a plugin may send.
pub const HTTP_MAX_REQUEST_BODY: usize = 1024 * 1024;
/// The longest log line kept, in characters.
const LOG_MAX_CHARS: usize = 2_000;

/// Where a plugin's calls act.
#[derive(Debug, Clone)]
pub enum Scope {
    /// One workspace (a widget rendered in it, a field validated in it, an
    /// event delivered from it).
    Workspace {
        /// Its id.
        id: i64,
        /// Its slug.
        slug: String,
    },
    /// The installation (a periodic task), limited to some workspaces when
    /// its operator said so.
    Installation {
        /// The task's name, recorded as the source of deliveries.
        task: String,
        /// The slugs of the workspaces it may act in; None for every one.
        workspaces: Option<Vec<String>>,
    },
}

/// A work-item call, as [`Workplace::work_items`] answers it.
#[derive(Debug, Clone)]
pub enum ItemsRequest {
    /// `work_items.list`.
    List(vigilo_sdk::host::WorkItemsQuery),
    /// `work_items.get`.
    Get(i64),
    /// `work_items.create`.
    Create(vigilo_sdk::host::NewWorkItem),
    /// `work_items.update`.
    Update(vigilo_sdk::host::WorkItemUpdate),
    /// `work_items.transition`.
    Transition(vigilo_sdk::host::WorkItemMove),
}

/// What a work-item call answers.
#[derive(Debug, Clone)]
pub enum ItemsAnswer {
    /// A page of items.
    Page(WorkItemPage),
    /// One item.
    Item(WorkItem),
}

/// What the host API reaches above the plugins: the integrations that
/// deliver a periodic task's events (`integrations.notify`), the egress
/// policy outbound requests obey, and the domain's rules for work items.
pub trait Outlets: Send + Sync {
    /// Delivers `event` through the enabled integrations of the workspace
    /// (only the one named `only`, when given), recorded with `source`.
    fn deliver<'a>(
        &'a self,
        workspace_id: i64,
        only: Option<&'a str>,
        event: &'a vigilo_sdk::Event,
        source: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<vigilo_sdk::Delivery>, Refusal>>;

    /// The egress policy outbound requests obey.
    fn policy(&self) -> &Policy;

    /// What answers work-item calls, once the server has one.
    fn workplace(&self) -> Option<Arc<dyn Workplace>>;
}

/// What answers plugins' work-item calls: the domain's rules for work
/// items, which live above the plugins and are handed down as this.
pub trait Workplace: Send + Sync + std::fmt::Debug {
    /// Answers a work-item call of plugin `plugin` in `workspace`, through
    /// the same rules as a person's, audited as `plugin:NAME`. `write` says
    /// whether the plugin declared `work_items.write`.
    fn work_items<'a>(
        &'a self,
        plugin: &'a str,
        write: bool,
        workspace: Workspace,
        request: ItemsRequest,
    ) -> futures_util::future::BoxFuture<'a, Result<ItemsAnswer, Refusal>>;
}

/// The host callbacks handed to one plugin call.
pub struct HostCalls {
    store: Store,
    outlets: Arc<dyn Outlets>,
    policy: Policy,
    scope: Scope,
    plugin: Arc<PluginEntry>,
    runtime: Handle,
    /// Once true, every call is refused (the server is stopping), and one
    /// in progress stops waiting.
    halted: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Why a host call was not answered (also what the [`Outlets`] and the
/// [`Workplace`] above the plugins answer when they refuse).
#[derive(Debug)]
pub enum Refusal {
    /// What the plugin asked for cannot be done: the sentence says why.
    Asked(String),
    /// The server failed; the detail is logged, never handed to the plugin.
    Server(String),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Refusal::Asked(what.to_string()),
            StoreError::Conflict(why) => Refusal::Asked(why.to_string()),
            other => Refusal::Server(other.to_string()),
        }
    }
}

impl From<DecodeError> for Refusal {
    fn from(e: DecodeError) -> Self {
        Refusal::Asked(e.to_string())
    }
}

/// The methods a plugin that declares no capabilities may call: what every
/// plugin could call before capabilities existed.
const UNDECLARED_MAY_CALL: [Capability; 4] = [
    Capability::WorkItemsRead,
    Capability::CertificatesRead,
    Capability::Notify,
    Capability::Http,
];

impl HostCalls {
    /// Host callbacks for `plugin` acting in `scope`, on the current tokio
    /// runtime.
    pub fn new(
        store: Store,
        outlets: impl Outlets + 'static,
        scope: Scope,
        plugin: Arc<PluginEntry>,
    ) -> Self {
        HostCalls {
            policy: outlets.policy().clone(),
            store,
            outlets: Arc::new(outlets),
            scope,
            plugin,
            runtime: Handle::current(),
            halted: None,
        }
    }

    /// The same callbacks, refused once `halted` is set: a periodic task
    /// interrupted by the server's shutdown makes no more calls (and so
    /// starts no delivery) while its plugin finishes.
    pub fn halted_by(mut self, halted: tokio::sync::watch::Receiver<bool>) -> Self {
        self.halted = Some(halted);
        self
    }

    /// Whether the calls are refused now.
    fn is_halted(&self) -> bool {
        self.halted.as_ref().is_some_and(|h| *h.borrow())
    }

    fn plugin_name(&self) -> String {
        self.plugin.label()
    }

    fn capabilities(&self) -> Option<&Capabilities> {
        self.plugin
            .manifest
            .as_ref()
            .and_then(|m| m.capabilities.as_ref())
    }

    /// Runs `work` on the server's runtime from the plugin's thread, giving
    /// up when the calls are halted.
    fn wait<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, Refusal> {
        let halted = self.halted.clone();
        self.runtime.block_on(async move {
            let stopped = async {
                match halted {
                    Some(mut halted) => {
                        let _ = halted.wait_for(|h| *h).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = work => Ok(done),
                () = stopped => Err(Refusal::Asked(
                    "the server is stopping: the call was abandoned, and the task was interrupted"
                        .into(),
                )),
            }
        })
    }

    /// Refuses `request` unless the plugin declared what it needs.
    fn permit(&self, request: &HostRequest) -> Result<(), Refusal> {
        let needed = request.capability();
        let name = self.plugin_name();
        let method = request.method();
        let refused = |what: String| {
            self.plugin.metrics.count_capability_refusal();
            Err(Refusal::Asked(format!("{CAPABILITY_NOT_DECLARED}: {what}")))
        };
        let Some(declared) = self.capabilities() else {
            if UNDECLARED_MAY_CALL.contains(&needed) {
                return Ok(());
            }
            return refused(format!(
                "plugin `{name}` declares no capabilities, so it may not call `{method}`, which \
                 needs `{needed}`; declare it in Plugin::capabilities"
            ));
        };
        if !declared.allows(needed) {
            return refused(format!(
                "plugin `{name}` did not declare `{needed}`, which `{method}` needs (it declared: {})",
                declared.summary()
            ));
        }
        if let HostRequest::HttpRequest(http) = request {
            let host = vigilo_sdk::http_url_host(&http.url).map(host_name);
            if let Some(host) = host.filter(|h| !declared.allows_host(h)) {
                return refused(format!(
                    "plugin `{name}` did not declare HTTP requests to `{host}` (it declared: {})",
                    declared.summary()
                ));
            }
        }
        Ok(())
    }

    fn answer(&self, method: &str, input: &Value) -> Result<Value, Refusal> {
        let request = HostRequest::decode(method, input)?;
        self.permit(&request)?;
        match request {
            HostRequest::WorkItemsCountByStatus(asked) => {
                encode(self.count_by_status(&asked.workspace)?)
            }
            HostRequest::WorkspacesList(_) => encode(self.workspaces()?),
            HostRequest::WorkItemsList(query) => {
                let workspace = self.workspace(&query.workspace)?;
                encode(self.items(workspace, ItemsRequest::List(query))?)
            }
            HostRequest::WorkItemsGet(item) => {
                let workspace = self.workspace(&item.workspace)?;
                encode(self.items(workspace, ItemsRequest::Get(item.id))?)
            }
            HostRequest::WorkItemsCreate(item) => {
                let workspace = self.workspace(&item.workspace)?;
                encode(self.items(workspace, ItemsRequest::Create(item))?)
            }
            HostRequest::WorkItemsUpdate(update) => {
                let workspace = self.workspace(&update.workspace)?;
                encode(self.items(workspace, ItemsRequest::Update(update))?)
            }
            HostRequest::WorkItemsTransition(to) => {
                let workspace = self.workspace(&to.workspace)?;
                encode(self.items(workspace, ItemsRequest::Transition(to))?)
            }
            HostRequest::SettingsGet(asked) => encode(self.settings(&asked.workspace)?),
            HostRequest::KvGet(key) => encode(self.kv_get(key.workspace.as_deref(), &key.key)?),
            HostRequest::KvSet(set) => encode(self.kv_set(set)?),
            HostRequest::KvDelete(delete) => encode(self.kv_delete(delete)?),
            HostRequest::KvList(list) => encode(self.kv_list(list)?),
            HostRequest::LogWrite(line) => encode(self.log(line)),
            HostRequest::CertificatesExpiring(asked) => {
                encode(self.certificates_expiring(asked.within_days)?)
            }
            HostRequest::IntegrationsNotify(notify) => encode(self.notify(notify)?),
            HostRequest::HttpRequest(request) => encode(self.http_request(request)?),
        }
    }

    /// The workspace `slug`, which the scope must allow. One outside the
    /// scope is refused in the words of one that does not exist, so a
    /// plugin learns nothing about other workspaces.
    fn workspace(&self, slug: &str) -> Result<Workspace, Refusal> {
        let outside = || match &self.scope {
            Scope::Workspace { slug: own, .. } => Refusal::Asked(format!(
                "a plugin acts only in the workspace it is called in (`{own}`), not `{slug}`"
            )),
            Scope::Installation { .. } => {
                Refusal::Asked(format!("no workspace `{slug}` that this task may act in"))
            }
        };
        let allowed = match &self.scope {
            Scope::Workspace { slug: own, .. } => own == slug,
            Scope::Installation { workspaces, .. } => workspaces
                .as_ref()
                .is_none_or(|list| list.iter().any(|w| w == slug)),
        };
        if !allowed {
            return Err(outside());
        }
        let found = self.wait(self.store.workspace_by_slug(slug))??;
        match found {
            Some(workspace) if !matches!(self.scope, Scope::Workspace { id, .. } if id != workspace.id) => {
                Ok(workspace)
            }
            _ => Err(outside()),
        }
    }

    /// The workspaces the scope allows, by slug.
    fn workspaces(&self) -> Result<vigilo_sdk::host::Workspaces, Refusal> {
        let all = match &self.scope {
            Scope::Workspace { slug, .. } => vec![self.workspace(slug)?],
            Scope::Installation { workspaces, .. } => {
                let mut all = self.wait(self.store.list_all_workspaces())??;
                if let Some(allowed) = workspaces {
                    all.retain(|w| allowed.contains(&w.slug));
                }
                all
            }
        };
        let mut workspaces: Vec<_> = all
            .into_iter()
            .map(|w| vigilo_sdk::host::WorkspaceSummary {
                slug: w.slug,
                name: w.name,
            })
            .collect();
        workspaces.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(vigilo_sdk::host::Workspaces { workspaces })
    }

    fn installation_only(&self, method: &str) -> Result<&str, Refusal> {
        match &self.scope {
            Scope::Installation { task, .. } => Ok(task),
            Scope::Workspace { .. } => Err(Refusal::Asked(format!(
                "the host method `{method}` is only for periodic tasks"
            ))),
        }
    }

    fn count_by_status(&self, slug: &str) -> Result<WorkItemCounts, Refusal> {
        let workspace = self.workspace(slug)?;
        let mut counts = self.wait(self.store.count_work_items_by_status(workspace.id))??;
        let statuses = |kind: Kind| {
            kind.workflow()
                .statuses
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        let mut counted = |kind: Kind| {
            counts
                .remove(&kind)
                .unwrap_or_default()
                .into_iter()
                .map(|(status, n)| (status.to_string(), n))
                .collect()
        };
        Ok(WorkItemCounts {
            changes: counted(Kind::Change),
            incidents: counted(Kind::Incident),
            tasks: counted(Kind::Task),
            statuses: Some(WorkflowStatuses {
                changes: statuses(Kind::Change),
                incidents: statuses(Kind::Incident),
                tasks: statuses(Kind::Task),
            }),
        })
    }

    fn items(&self, workspace: Workspace, request: ItemsRequest) -> Result<ItemsAnswer, Refusal> {
        let write = self
            .capabilities()
            .is_some_and(|c| c.allows(Capability::WorkItemsWrite));
        let name = self.plugin_name();
        let workplace = self.outlets.workplace().ok_or_else(|| {
            Refusal::Server("no workplace is attached to answer work-item calls".into())
        })?;
        self.wait(workplace.work_items(&name, write, workspace, request))?
    }

    fn settings(&self, slug: &str) -> Result<WorkspaceSettings, Refusal> {
        let workspace = self.workspace(slug)?;
        let settings = match workspace.settings {
            Value::Object(map) => map,
            _ => Default::default(),
        };
        let own = settings
            .get(&self.plugin_name())
            .cloned()
            .unwrap_or(Value::Null);
        Ok(WorkspaceSettings {
            workspace: workspace.slug,
            settings,
            own,
        })
    }

    fn log(&self, line: vigilo_sdk::host::LogLine) -> LogWritten {
        let plugin = self.plugin_name();
        let Some(dropped_before) = self.plugin.metrics.admit_log_line() else {
            return LogWritten { dropped: true };
        };
        if dropped_before > 0 {
            tracing::warn!(
                plugin,
                dropped = dropped_before,
                "a plugin wrote too many log lines too fast; some were dropped"
            );
        }
        let message: String = line
            .message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(LOG_MAX_CHARS)
            .collect();
        let fields = Value::Object(line.fields).to_string();
        match line.level {
            LogLevel::Debug => tracing::debug!(plugin, fields, "{message}"),
            LogLevel::Info => tracing::info!(plugin, fields, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, fields, "{message}"),
            LogLevel::Error => tracing::error!(plugin, fields, "{message}"),
        }
        LogWritten { dropped: false }
    }

    fn certificates_expiring(&self, days: u32) -> Result<CertificatesExpiring, Refusal> {
        self.installation_only(vigilo_sdk::CERTIFICATES_EXPIRING)?;
        if days > 36_500 {
            return Err(Refusal::Asked(
                "`within_days` must be a number of days between 0 and 36500".into(),
            ));
        }
        let mut workspaces =
            self.wait(self.store.certificates_expiring_everywhere(i64::from(days)))??;
        if let Scope::Installation {
            workspaces: Some(allowed),
            ..
        } = &self.scope
        {
            workspaces.retain(|w| allowed.contains(&w.workspace));
        }
        Ok(CertificatesExpiring { workspaces })
    }

    fn notify(
        &self,
        request: vigilo_sdk::NotifyRequest,
    ) -> Result<vigilo_sdk::NotifyResponse, Refusal> {
        let task = self.installation_only(vigilo_sdk::INTEGRATIONS_NOTIFY)?;
        let workspace = self.workspace(&request.workspace)?;
        let mut event = request.event;
        // An event always belongs to the workspace it is sent in.
        event.workspace = workspace.slug.clone();
        let source = format!("task:{task}");
        let deliveries = self.wait(self.outlets.deliver(
            workspace.id,
            request.integration.as_deref(),
            &event,
            &source,
        ))??;
        Ok(vigilo_sdk::NotifyResponse { deliveries })
    }
}

/// `host` (as [`vigilo_sdk::http_url_host`] gives it) without its port.
fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.split(':').next().unwrap_or(host),
    }
}

fn encode(answer: impl Serialize) -> Result<Value, Refusal> {
    serde_json::to_value(answer).map_err(|e| Refusal::Server(e.to_string()))
}

impl Serialize for ItemsAnswer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ItemsAnswer::Page(page) => page.serialize(serializer),
            ItemsAnswer::Item(item) => item.serialize(serializer),
        }
    }
}

impl Host for HostCalls {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        self.plugin.metrics.count_host_call();
        if self.is_halted() {
            return Err(format!(
                "the server is stopping: `{method}` was not carried out, and the task was interrupted"
            ));
        }
        // The answer waits on the server's runtime; should that runtime be
        // gone (the process is exiting), the call fails here rather than
        // unwinding into the plugin.
        let answered =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.answer(method, input)))
                .unwrap_or_else(|_| {
                    Err(Refusal::Server(format!(
                        "the host call `{method}` failed while the server was stopping"
                    )))
                });
        answered.map_err(|refusal| match refusal {
            Refusal::Asked(why) => why,
            Refusal::Server(detail) => {
                tracing::error!(method, error = %detail, "a plugin's host call failed inside the server");
                format!("the server could not answer `{method}`; its log has the details")
            }
        })
    }
}
