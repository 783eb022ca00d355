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
//! answers here wait for the database (and `http.request` for the remote
//! end) right there.

use std::io::Read;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::runtime::Handle;
use vigilo_sdk::{Host, HttpHeader, HttpRequest, HttpResponse};

use crate::domain::DomainError;
use crate::outbound::Policy;
use crate::store::{Store, StoreError};

/// The longest an `http.request` may take, whatever the plugin asks for.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a response body handed back to a plugin.
pub const HTTP_MAX_BODY: u64 = 1024 * 1024;
/// The largest request body a plugin may send.
pub const HTTP_MAX_REQUEST_BODY: usize = 1024 * 1024;

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

/// What delivers a periodic task's events through a workspace's
/// integrations (`integrations.notify`), and the egress policy a plugin's
/// outbound requests obey: the server's integrations runtime.
pub trait Outlets: Send + Sync {
    /// Delivers `event` through the enabled integrations of the workspace
    /// (only the one named `only`, when given), recorded with `source`;
    /// answers the deliveries as JSON.
    fn deliver<'a>(
        &'a self,
        workspace_id: i64,
        only: Option<&'a str>,
        event: &'a vigilo_sdk::Event,
        source: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Value, DomainError>>;

    /// The egress policy outbound requests obey.
    fn policy(&self) -> &Policy;
}

/// The host callbacks handed to one plugin call.
pub struct HostCalls {
    store: Store,
    outlets: std::sync::Arc<dyn Outlets>,
    policy: Policy,
    scope: Scope,
    runtime: Handle,
    /// Once true, every call is refused (the server is stopping), and one
    /// in progress stops waiting.
    halted: Option<tokio::sync::watch::Receiver<bool>>,
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
    pub fn new(store: Store, outlets: impl Outlets + 'static, scope: Scope) -> Self {
        HostCalls {
            policy: outlets.policy().clone(),
            store,
            outlets: std::sync::Arc::new(outlets),
            scope,
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

    fn answer(&self, method: &str, input: &Value) -> Result<Value, Refusal> {
        match method {
            vigilo_sdk::WORK_ITEMS_COUNT_BY_STATUS => self.count_by_status(input),
            vigilo_sdk::CERTIFICATES_EXPIRING => self.certificates_expiring(input),
            vigilo_sdk::INTEGRATIONS_NOTIFY => self.notify(input),
            vigilo_sdk::HTTP_REQUEST => self.http_request(input),
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
                    .wait(self.store.workspace_by_slug(asked))??
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
        let counts = self.wait(self.store.count_work_items_by_status(id))??;
        let kind = |kind: &str| json!(counts.get(kind).cloned().unwrap_or_default());
        let statuses = |kind: &str| {
            json!(crate::domain::workflow::workflow(kind)
                .map(|w| w.statuses)
                .unwrap_or_default())
        };
        Ok(json!({
            "changes": kind("change"), "incidents": kind("incident"), "tasks": kind("task"),
            "statuses": {"changes": statuses("change"), "incidents": statuses("incident"), "tasks": statuses("task")},
        }))
    }

    fn certificates_expiring(&self, input: &Value) -> Result<Value, Refusal> {
        self.installation_only(vigilo_sdk::CERTIFICATES_EXPIRING)?;
        let days = input
            .get("within_days")
            .and_then(Value::as_i64)
            .filter(|d| (0..=36_500).contains(d))
            .ok_or_else(|| {
                Refusal::Asked("`within_days` must be a number of days between 0 and 36500".into())
            })?;
        let workspaces = self.wait(self.store.certificates_expiring_everywhere(days))??;
        Ok(json!({ "workspaces": workspaces }))
    }

    fn notify(&self, input: &Value) -> Result<Value, Refusal> {
        let task = self.installation_only(vigilo_sdk::INTEGRATIONS_NOTIFY)?;
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
        let deliveries = self.wait(self.outlets.deliver(workspace_id, only, &event, &source))??;
        Ok(json!({ "deliveries": deliveries }))
    }
}

impl HostCalls {
    /// Makes a plugin's outbound request under the server's egress policy
    /// (the rules of playbook webhook steps: no loopback or private
    /// destination unless the operator allowed it), connecting only to the
    /// addresses that were checked, never following redirects, within
    /// [`HTTP_TIMEOUT`] and with the body cut at [`HTTP_MAX_BODY`].
    fn http_request(&self, input: &Value) -> Result<Value, Refusal> {
        let request: HttpRequest = serde_json::from_value(input.clone())
            .map_err(|e| Refusal::Asked(format!("not an http.request: {e}")))?;
        if !(request.url.starts_with("https://") || request.url.starts_with("http://")) {
            return Err(Refusal::Asked(
                "the URL must start with http:// or https://".into(),
            ));
        }
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > HTTP_MAX_REQUEST_BODY)
        {
            return Err(Refusal::Asked(format!(
                "the request body is larger than {HTTP_MAX_REQUEST_BODY} bytes"
            )));
        }
        if let Some(bad) = request.headers.iter().find(|h| {
            ["host", "content-length", "transfer-encoding", "connection"]
                .contains(&h.name.to_ascii_lowercase().as_str())
        }) {
            return Err(Refusal::Asked(format!(
                "the header `{}` is set by the server, not the plugin",
                bad.name
            )));
        }
        // The answer never repeats the addresses a name resolved to.
        let addrs = self.policy.resolve(&request.url).map_err(Refusal::Asked)?;
        let timeout = request
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(HTTP_TIMEOUT)
            .min(HTTP_TIMEOUT);
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .resolver(move |_: &str| Ok(addrs.clone()))
            .build();
        let mut call = agent
            .request(request.method.as_str(), &request.url)
            .set("User-Agent", concat!("vigilo/", env!("CARGO_PKG_VERSION")));
        for header in &request.headers {
            call = call.set(&header.name, &header.value);
        }
        let outcome = match &request.body {
            Some(body) => call.send_string(body),
            None => call.call(),
        };
        let response = match outcome {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(e)) => {
                return Err(Refusal::Asked(format!(
                    "the request could not be made: {}",
                    e.kind()
                )))
            }
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .flat_map(|name| {
                response
                    .all(&name)
                    .into_iter()
                    .map(|value| HttpHeader {
                        name: name.clone(),
                        value: value.to_owned(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut bytes = Vec::new();
        let read = response
            .into_reader()
            .take(HTTP_MAX_BODY + 1)
            .read_to_end(&mut bytes);
        if let Err(e) = read {
            return Err(Refusal::Asked(format!(
                "the response could not be read: {}",
                e.kind()
            )));
        }
        let truncated = bytes.len() as u64 > HTTP_MAX_BODY;
        bytes.truncate(HTTP_MAX_BODY as usize);
        serde_json::to_value(HttpResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            truncated,
        })
        .map_err(|e| Refusal::Server(e.to_string()))
    }
}

impl Host for HostCalls {
    fn call(&self, method: &str, input: &Value) -> Result<Value, String> {
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
