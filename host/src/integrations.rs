//! The runtime of `integration_adapter` plugins: a workspace's configured
//! integrations, validated against their adapter, with secret settings
//! sealed at rest and never shown again, and delivery of events through
//! them with every attempt recorded.
//!
//! Adapters are called like every plugin: off the async executor, within
//! the call time limit, with panics caught. A failed delivery (the remote
//! endpoint answered 500, the adapter panicked or timed out, the adapter's
//! plugin is gone) is recorded in the delivery log and returned as a
//! failure; it never takes the server down.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use vigilo_sdk::loader::Registration;
use vigilo_sdk::wire::{SendRequest, ValidateConfigRequest};
use vigilo_sdk::{Event, PluginKind};

use crate::outbound::Policy;
use crate::plugins::host_api::{HostCalls, Outlets, Refusal, Scope, Workplace};
use crate::plugins::{redact_text, PluginCallError, PluginEntry, Plugins};
use crate::secretbox::SecretBox;
use crate::store::integrations::{Integration, NewDelivery};
use crate::store::Store;

mod error;
mod settings;

pub use error::IntegrationError;

use settings::{collect_urls, redact_value, secret_strings};

/// What the server knows about a loaded adapter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdapterInfo {
    /// Registered name (`slack_notifier`).
    pub name: String,
    /// Label for pickers.
    pub label: String,
    /// Help text.
    pub description: String,
    /// The plugin providing it.
    pub plugin: String,
    /// JSON Schema of its configuration.
    #[schema(value_type = Object)]
    pub config_schema: Value,
    /// Settings that are secrets: write-only through the API.
    pub secret_fields: Vec<String>,
}

/// The outcome of delivering one event through one integration.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryOutcome {
    /// The delivery log entry.
    pub delivery_id: Option<i64>,
    /// Integration name.
    pub integration: String,
    /// Adapter name.
    pub adapter: String,
    /// Whether the adapter delivered the event.
    pub ok: bool,
    /// What the adapter reported (for example `{"status": 200}`).
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Integrations: configuration checks, sealing and delivery.
#[derive(Clone, Debug)]
pub struct Integrations {
    store: Store,
    plugins: Arc<Plugins>,
    secrets: Arc<SecretBox>,
    policy: Policy,
    /// What answers plugins' work-item calls (the domain's rules), handed
    /// in once the server is assembled.
    workplace: Arc<std::sync::OnceLock<Arc<dyn Workplace>>>,
}

impl Integrations {
    /// The runtime over `store`, the plugin registry and the secrets key.
    pub fn new(
        store: Store,
        plugins: Arc<Plugins>,
        secrets: Arc<SecretBox>,
        policy: Policy,
    ) -> Self {
        Integrations {
            store,
            plugins,
            secrets,
            policy,
            workplace: Default::default(),
        }
    }

    /// From now on, plugins' work-item calls (through this runtime's host
    /// callbacks, and the scheduler's) are answered by `workplace`. Set
    /// once, when the server is assembled; later calls change nothing.
    pub fn attach_workplace(&self, workplace: Arc<dyn Workplace>) {
        let _ = self.workplace.set(workplace);
    }

    /// The destinations adapters' requests may reach.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Every loaded adapter.
    pub fn adapters(&self) -> Vec<AdapterInfo> {
        self.plugins
            .registrations(PluginKind::IntegrationAdapter)
            .into_iter()
            .filter_map(|(entry, r)| adapter_info(&entry, r))
            .collect()
    }

    /// A loaded adapter by name, with its plugin.
    pub fn adapter(&self, name: &str) -> Option<(Arc<PluginEntry>, AdapterInfo)> {
        let (entry, registration) = self
            .plugins
            .registration(PluginKind::IntegrationAdapter, name)?;
        let info = adapter_info(&entry, registration)?;
        Some((entry, info))
    }

    /// Checks `config` for a new integration `name` of `adapter` in
    /// workspace `workspace_id`, and splits it into stored settings and
    /// sealed secrets.
    ///
    /// For an update, `previous` is the stored integration: a secret setting
    /// left out of `config` keeps its stored value, so a user can change a
    /// channel without re-entering a webhook URL. But when the update sets
    /// any secret, it must set them all: otherwise a changed destination
    /// could be handed the secrets stored for the old one.
    pub async fn prepare(
        &self,
        workspace_id: i64,
        name: &str,
        adapter: &str,
        config: Map<String, Value>,
        previous: Option<(&Integration, &Map<String, Value>)>,
    ) -> Result<(Map<String, Value>, Map<String, Value>), IntegrationError> {
        let (entry, info) = self.adapter(adapter).ok_or_else(|| {
            IntegrationError::invalid(
                "adapter",
                format!(
                    "no loaded integration adapter is called `{adapter}`; loaded adapters: {}",
                    names(&self.adapters())
                ),
            )
        })?;
        let mut full = config;
        let mut known_secrets = secret_strings(&full, &info.secret_fields);
        if let Some((previous, changes)) = previous {
            let given: Vec<&String> = info
                .secret_fields
                .iter()
                .filter(|k| changes.get(*k).is_some_and(|v| !v.is_null()))
                .collect();
            let missing: Vec<&String> = info
                .secret_fields
                .iter()
                .filter(|k| previous.sealed_secrets.contains_key(*k) && !given.contains(k))
                .collect();
            if !given.is_empty() && !missing.is_empty() {
                return Err(IntegrationError::invalid(
                    "config",
                    format!(
                        "setting a secret ({}) means setting every stored secret again: also give {}",
                        join(&given),
                        join(&missing)
                    ),
                ));
            }
            if given.is_empty() {
                let stored = self
                    .open_secrets(workspace_id, previous)
                    .map_err(IntegrationError::Internal)?;
                known_secrets.extend(secret_strings(&stored, &info.secret_fields));
                for (key, value) in stored {
                    if !changes.contains_key(&key) {
                        full.entry(key).or_insert(value);
                    }
                }
            }
        }
        // The server checks the adapter's published schema itself (required
        // settings, simple types), whatever the adapter's own check does.
        let full = Value::Object(full);
        vigilo_sdk::check_config_against_schema(&full, &info.config_schema).map_err(|reason| {
            IntegrationError::invalid(
                "config",
                format!("the `{adapter}` adapter's settings: {reason}"),
            )
        })?;
        let request = ValidateConfigRequest {
            name: adapter.to_owned(),
            config: full,
        };
        let limit = self.plugins.call_timeout();
        let normalised = self
            .plugins
            .call_scrubbed(&entry, limit, &known_secrets, move |handle| {
                handle.validate_adapter_config(&request)
            })
            .await
            .map_err(|e| match e {
                PluginCallError::Rejected { message, .. } => IntegrationError::invalid(
                    "config",
                    format!("the `{adapter}` adapter refused the configuration: {message}"),
                ),
                other => IntegrationError::Plugin(other),
            })?;
        let Value::Object(normalised) = normalised else {
            return Err(IntegrationError::invalid(
                "config",
                format!("the `{adapter}` adapter did not return a configuration object"),
            ));
        };
        Ok(self.seal_secrets(workspace_id, name, &info, normalised))
    }

    /// `settings` split into the plain ones and the secret ones of `info`'s
    /// adapter, sealed to integration `name` of the workspace.
    fn seal_secrets(
        &self,
        workspace_id: i64,
        name: &str,
        info: &AdapterInfo,
        settings: Map<String, Value>,
    ) -> (Map<String, Value>, Map<String, Value>) {
        let mut plain = Map::new();
        let mut sealed = Map::new();
        for (key, value) in settings {
            if info.secret_fields.contains(&key) {
                if !value.is_null() {
                    let context = seal_context(workspace_id, name, &key);
                    sealed.insert(
                        key,
                        Value::String(self.secrets.seal(&context, &value.to_string())),
                    );
                }
            } else {
                plain.insert(key, value);
            }
        }
        (plain, sealed)
    }

    /// The integration's secret settings, opened.
    fn open_secrets(
        &self,
        workspace_id: i64,
        integration: &Integration,
    ) -> Result<Map<String, Value>, String> {
        integration
            .sealed_secrets
            .iter()
            .map(|(key, sealed)| {
                let context = seal_context(workspace_id, &integration.name, key);
                let text = self
                    .secrets
                    .open(&context, sealed.as_str().unwrap_or_default())
                    .map_err(|e| {
                        format!("secret `{key}` of integration `{}`: {e}", integration.name)
                    })?;
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                Ok((key.clone(), value))
            })
            .collect()
    }

    /// Checks that `integration` could deliver now: it is enabled, its
    /// adapter is loaded and its stored secrets open. Used by playbook dry
    /// runs.
    pub fn check_ready(
        &self,
        workspace_id: i64,
        integration: &Integration,
    ) -> Result<(), IntegrationError> {
        if !integration.enabled {
            return Err(IntegrationError::NotReady(format!(
                "integration `{}` is disabled",
                integration.name
            )));
        }
        if self.adapter(&integration.adapter).is_none() {
            return Err(IntegrationError::AdapterMissing(format!(
                "integration `{}` uses the adapter `{}`, which no loaded plugin provides",
                integration.name, integration.adapter
            )));
        }
        self.open_secrets(workspace_id, integration)
            .map(drop)
            .map_err(IntegrationError::NotReady)
    }

    /// Checks every http(s) URL among `integration`'s settings against the
    /// egress policy, as the requests its adapter makes will be checked:
    /// why one would be refused, if one would. A URL kept as a secret is
    /// not quoted, only the setting that holds it. Used by playbook dry
    /// runs, so that a step the policy will stop is not reported as one
    /// that would run.
    pub async fn check_destinations(
        &self,
        workspace_id: i64,
        integration: &Integration,
    ) -> Result<(), String> {
        let mut urls = Vec::new();
        for (key, value) in &integration.config {
            collect_urls(key, value, false, &mut urls);
        }
        if let Ok(secrets) = self.open_secrets(workspace_id, integration) {
            for (key, value) in &secrets {
                collect_urls(key, value, true, &mut urls);
            }
        }
        if urls.is_empty() {
            return Ok(());
        }
        let (policy, name) = (self.policy.clone(), integration.name.clone());
        let checked = tokio::task::spawn_blocking(move || {
            for (key, url, secret) in urls {
                if let Err(why) = policy.resolve(&url) {
                    return Err(if secret {
                        format!(
                            "integration `{name}` would be refused: the address in its secret \
                             setting `{key}` is one the server may not call (see \
                             `webhook_allowed_hosts`)"
                        )
                    } else {
                        format!("integration `{name}` would be refused at `{key}`: {why}")
                    });
                }
            }
            Ok(())
        })
        .await;
        checked.unwrap_or(Ok(()))
    }

    /// Delivers `event` through `integration` and records the attempt.
    pub async fn deliver(
        &self,
        workspace_id: i64,
        integration: &Integration,
        event: &Event,
        source: &str,
    ) -> DeliveryOutcome {
        let secrets = self.open_secrets(workspace_id, integration);
        let known: Vec<String> = match &secrets {
            Ok(values) => secret_strings(values, &values.keys().cloned().collect::<Vec<_>>()),
            Err(_) => Vec::new(),
        };
        let result = self
            .send(workspace_id, integration, event, secrets, &known)
            .await;
        // An adapter's report may quote what it was given: never let a
        // secret into the delivery log or the API answer.
        let (ok, detail, error) = match result {
            Ok(detail) => (true, Some(redact_value(detail, &known)), None),
            Err(error) => (false, None, Some(redact_text(error, &known))),
        };
        if let Some(error) = &error {
            tracing::warn!(integration = %integration.name, adapter = %integration.adapter, source, "delivery failed: {error}");
        }
        let delivery_id = match self
            .store
            .record_delivery(
                workspace_id,
                NewDelivery {
                    integration_id: Some(integration.id),
                    integration: &integration.name,
                    adapter: &integration.adapter,
                    event_type: &event.event_type,
                    source,
                    ok,
                    detail: detail.as_ref(),
                    error: error.as_deref(),
                },
            )
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(integration = %integration.name, error = %e, "cannot record a delivery");
                None
            }
        };
        DeliveryOutcome {
            delivery_id,
            integration: integration.name.clone(),
            adapter: integration.adapter.clone(),
            ok,
            detail,
            error,
        }
    }

    async fn send(
        &self,
        workspace_id: i64,
        integration: &Integration,
        event: &Event,
        secrets: Result<Map<String, Value>, String>,
        known: &[String],
    ) -> Result<Value, String> {
        if !integration.enabled {
            return Err(format!("integration `{}` is disabled", integration.name));
        }
        let (entry, _) = self.adapter(&integration.adapter).ok_or_else(|| {
            format!(
                "the adapter `{}` is not loaded (its plugin was removed, disabled or failed to load)",
                integration.adapter
            )
        })?;
        let mut config = integration.config.clone();
        config.extend(secrets?);
        let request = SendRequest {
            name: integration.adapter.clone(),
            config: Value::Object(config),
            event: event.clone(),
        };
        let limit = self.plugins.call_timeout();
        // The adapter calls out through `http.request`, under the egress
        // policy, acting for the event's workspace.
        let host = HostCalls::new(
            self.store.clone(),
            self.clone(),
            Scope::Workspace {
                id: workspace_id,
                slug: event.workspace.clone(),
            },
            entry.clone(),
        );
        let response = self
            .plugins
            .call_scrubbed(&entry, limit, known, move |handle| {
                handle.send_event(&request, &host)
            })
            .await
            .map_err(|e| match e {
                PluginCallError::Rejected { message, .. }
                | PluginCallError::Failed { message, .. } => message,
                other => other.to_string(),
            })?;
        if !response.delivered {
            return Err(format!(
                "the `{}` adapter reported the event as not delivered",
                integration.adapter
            ));
        }
        Ok(response.detail)
    }

    /// Delivers `event` through the workspace's enabled integrations (or
    /// only the one named `only`), recording each attempt.
    pub async fn notify(
        &self,
        workspace_id: i64,
        only: Option<&str>,
        event: &Event,
        source: &str,
    ) -> Result<Vec<DeliveryOutcome>, IntegrationError> {
        let targets: Vec<Integration> = match only {
            Some(name) => vec![self.store.integration(workspace_id, name).await?],
            None => self
                .store
                .list_integrations(workspace_id)
                .await?
                .into_iter()
                .filter(|i| i.enabled)
                .collect(),
        };
        let mut outcomes = Vec::with_capacity(targets.len());
        for integration in &targets {
            outcomes.push(self.deliver(workspace_id, integration, event, source).await);
        }
        Ok(outcomes)
    }
}

fn adapter_info(entry: &PluginEntry, registration: Registration) -> Option<AdapterInfo> {
    match registration {
        Registration::IntegrationAdapter {
            name,
            label,
            description,
            config_schema,
            secret_fields,
        } => Some(AdapterInfo {
            name,
            label,
            description,
            plugin: entry.label(),
            config_schema,
            secret_fields,
        }),
        _ => None,
    }
}

fn names(adapters: &[AdapterInfo]) -> String {
    if adapters.is_empty() {
        "none".into()
    } else {
        adapters
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What binds a sealed secret to its place: the workspace, the integration
/// and the setting.
fn seal_context(workspace_id: i64, integration: &str, key: &str) -> String {
    format!("integration:{workspace_id}:{integration}:{key}")
}

fn join(keys: &[&String]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Outlets for Integrations {
    fn deliver<'a>(
        &'a self,
        workspace_id: i64,
        only: Option<&'a str>,
        event: &'a Event,
        source: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<vigilo_sdk::Delivery>, Refusal>> {
        Box::pin(async move {
            let deliveries = self
                .notify(workspace_id, only, event, source)
                .await
                .map_err(Refusal::from)?;
            Ok(deliveries
                .into_iter()
                .map(|d| vigilo_sdk::Delivery {
                    integration: d.integration,
                    adapter: d.adapter,
                    ok: d.ok,
                    detail: d.detail,
                    error: d.error,
                    delivery_id: d.delivery_id,
                })
                .collect())
        })
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn workplace(&self) -> Option<Arc<dyn Workplace>> {
        self.workplace.get().cloned()
    }
}
