//! The server's side of the plugins' host callbacks, written once.
//!
//! A plugin calls back into the server through [`vigilo_sdk::Host`]: a
//! method name and JSON, both defined in the SDK. Every call a plugin can
//! make is answered here, within an explicit [`Scope`]: a dashboard widget
//! reads only the workspace it is rendered in; a periodic task acts on the
//! installation. Errors are treated one way: what the plugin asked for that
//! cannot be done (an unknown workspace, a method outside its scope) is
//! answered with a sentence saying so; a failure inside the server is
//! logged, and the plugin is told only that the server could not answer.
//!
//! Plugin calls run on the blocking pool, never on an async worker, so the
//! answers here wait for the database with `block_on`.

use serde_json::{json, Value};
use tokio::runtime::Handle;
use vigilo_sdk::Host;

use crate::domain::DomainError;
use crate::integrations::Integrations;
use crate::store::{Store, StoreError};

const CERTIFICATES_EXPIRING: &str = "certificates.expiring";
const INTEGRATIONS_NOTIFY: &str = "integrations.notify";

/// Where a plugin's calls act.
#[derive(Debug, Clone)]
pub enum Scope {
    /// One workspace (a widget rendered in it, a field validated in it).
    Workspace {
        /// Its id.
        id: i64,
        /// Its slug.
        slug: String,
    },
    /// The whole installation (a periodic task).
    Installation {
        /// The task's name, recorded as the source of deliveries.
        task: String,
    },
}

/// The host callbacks handed to one plugin call.
pub struct HostCalls {
    store: Store,
    integrations: Integrations,
    scope: Scope,
    runtime: Handle,
}

/// Why a host call was not answered.
enum Refusal {
    /// What the plugin asked for cannot be done: the sentence says why.
    Asked(String),
    /// The server failed; the detail is logged, never handed to the plugin.
    Server(String),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) | StoreError::Conflict(what) => Refusal::Asked(what),
            other => Refusal::Server(other.to_string()),
        }
    }
}

impl From<DomainError> for Refusal {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Internal(detail) => Refusal::Server(detail),
            other => Refusal::Asked(other.to_string()),
        }
    }
}

impl HostCalls {
    /// Host callbacks acting in `scope`, on the current tokio runtime.
    pub fn new(store: Store, integrations: Integrations, scope: Scope) -> Self {
        HostCalls {
            store,
            integrations,
            scope,
            runtime: Handle::current(),
        }
    }

    fn answer(&self, method: &str, input: &Value) -> Result<Value, Refusal> {
        match method {
            vigilo_sdk::WORK_ITEMS_COUNT_BY_STATUS => self.count_by_status(input),
            CERTIFICATES_EXPIRING => self.certificates_expiring(input),
            INTEGRATIONS_NOTIFY => self.notify(input),
            other => Err(Refusal::Asked(format!(
                "the server has no host method `{other}`"
            ))),
        }
    }

    /// The workspace `input` names, which the scope must allow.
    fn workspace(&self, input: &Value) -> Result<(i64, String), Refusal> {
        let asked = input.get("workspace").and_then(Value::as_str).unwrap_or("");
        match &self.scope {
            Scope::Workspace { id, slug } if asked == slug => Ok((*id, slug.clone())),
            Scope::Workspace { slug, .. } => Err(Refusal::Asked(format!(
                "a plugin may read only the workspace it is called in (`{slug}`), not `{asked}`"
            ))),
            Scope::Installation { .. } => {
                let workspace = self
                    .runtime
                    .block_on(self.store.workspace_by_slug(asked))?
                    .ok_or_else(|| Refusal::Asked(format!("no workspace `{asked}`")))?;
                Ok((workspace.id, workspace.slug))
            }
        }
    }

    fn installation_only(&self, method: &str) -> Result<&str, Refusal> {
        match &self.scope {
            Scope::Installation { task } => Ok(task),
            Scope::Workspace { .. } => Err(Refusal::Asked(format!(
                "the host method `{method}` is only for periodic tasks"
            ))),
        }
    }

    fn count_by_status(&self, input: &Value) -> Result<Value, Refusal> {
        let (id, _) = self.workspace(input)?;
        let counts = self
            .runtime
            .block_on(self.store.count_work_items_by_status(id))?;
        let kind = |kind: &str| json!(counts.get(kind).cloned().unwrap_or_default());
        let statuses = |kind: &str| {
            json!(crate::domain::work_items::workflow(kind)
                .map(|w| w.statuses)
                .unwrap_or_default())
        };
        Ok(json!({
            "changes": kind("change"), "incidents": kind("incident"), "tasks": kind("task"),
            "statuses": {"changes": statuses("change"), "incidents": statuses("incident"), "tasks": statuses("task")},
        }))
    }

    fn certificates_expiring(&self, input: &Value) -> Result<Value, Refusal> {
        self.installation_only(CERTIFICATES_EXPIRING)?;
        let days = input
            .get("within_days")
            .and_then(Value::as_i64)
            .filter(|d| (0..=36_500).contains(d))
            .ok_or_else(|| {
                Refusal::Asked("`within_days` must be a number of days between 0 and 36500".into())
            })?;
        let workspaces = self
            .runtime
            .block_on(self.store.certificates_expiring_everywhere(days))?;
        Ok(json!({ "workspaces": workspaces }))
    }

    fn notify(&self, input: &Value) -> Result<Value, Refusal> {
        let task = self.installation_only(INTEGRATIONS_NOTIFY)?;
        let (workspace_id, slug) = self.workspace(input)?;
        let mut event: vigilo_sdk::Event = input
            .get("event")
            .cloned()
            .ok_or_else(|| Refusal::Asked("`event` is missing".into()))
            .and_then(|e| {
                serde_json::from_value(e)
                    .map_err(|e| Refusal::Asked(format!("`event` is not an event: {e}")))
            })?;
        // An event always belongs to the workspace it is sent in.
        event.workspace = slug;
        let only = input.get("integration").and_then(Value::as_str);
        let source = format!("task:{task}");
        let deliveries =
            self.runtime.block_on(
                self.integrations
                    .notify(workspace_id, only, &event, &source),
            )?;
        Ok(json!({ "deliveries": deliveries }))
    }
}

impl Host for HostCalls {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
        self.answer(method, input).map_err(|refusal| match refusal {
            Refusal::Asked(why) => why,
            Refusal::Server(detail) => {
                tracing::error!(method, error = %detail, "a plugin's host call failed inside the server");
                format!("the server could not answer `{method}`; its log has the details")
            }
        })
    }
}
