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
use vigilo_sdk::wire::{SendRequest, ValidateConfigRequest};
use vigilo_sdk::{Event, PluginKind, Registration};

use crate::error::ApiError;
use crate::plugins::{PluginCallError, PluginEntry, Plugins};
use crate::secretbox::SecretBox;
use crate::store::{Integration, NewDelivery, Store};

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
}

impl Integrations {
    /// The runtime over `store`, the plugin registry and the secrets key.
    pub fn new(store: Store, plugins: Arc<Plugins>, secrets: Arc<SecretBox>) -> Self {
        Integrations {
            store,
            plugins,
            secrets,
        }
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

    /// Checks `config` for `adapter` and splits it into stored settings and
    /// sealed secrets. When `previous` is given (an update), secret settings
    /// left out of `config` keep their stored values, so a user can change
    /// a channel without re-entering a webhook URL.
    pub async fn prepare(
        &self,
        adapter: &str,
        config: Map<String, Value>,
        previous: Option<&Integration>,
    ) -> Result<(Map<String, Value>, Map<String, Value>), ApiError> {
        let (entry, info) = self.adapter(adapter).ok_or_else(|| {
            ApiError::invalid(
                "adapter",
                format!(
                    "no loaded integration adapter is called `{adapter}`; loaded adapters: {}",
                    names(&self.adapters())
                ),
            )
        })?;
        let mut full = config;
        if let Some(previous) = previous {
            let stored = self.open_secrets(previous).map_err(ApiError::Internal)?;
            for (key, value) in stored {
                full.entry(key).or_insert(value);
            }
        }
        let request = ValidateConfigRequest {
            name: adapter.to_owned(),
            config: Value::Object(full),
        };
        let normalised = self
            .plugins
            .call(&entry, move |handle| {
                handle.validate_adapter_config(&request)
            })
            .await
            .map_err(|e| match e {
                PluginCallError::Rejected { message, .. } => ApiError::invalid(
                    "config",
                    format!("the `{adapter}` adapter refused the configuration: {message}"),
                ),
                other => ApiError::from(other),
            })?;
        let Value::Object(normalised) = normalised else {
            return Err(ApiError::invalid(
                "config",
                format!("the `{adapter}` adapter did not return a configuration object"),
            ));
        };
        let mut plain = Map::new();
        let mut sealed = Map::new();
        for (key, value) in normalised {
            if info.secret_fields.contains(&key) {
                if !value.is_null() {
                    sealed.insert(key, Value::String(self.secrets.seal(&value.to_string())));
                }
            } else {
                plain.insert(key, value);
            }
        }
        Ok((plain, sealed))
    }

    /// The integration's secret settings, opened.
    fn open_secrets(&self, integration: &Integration) -> Result<Map<String, Value>, String> {
        integration
            .sealed_secrets
            .iter()
            .map(|(key, sealed)| {
                let text = self
                    .secrets
                    .open(sealed.as_str().unwrap_or_default())
                    .map_err(|e| {
                        format!("secret `{key}` of integration `{}`: {e}", integration.name)
                    })?;
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                Ok((key.clone(), value))
            })
            .collect()
    }

    /// Checks that `integration` could deliver now: its adapter is loaded
    /// and its stored secrets open. Used by playbook dry runs.
    pub fn check_ready(&self, integration: &Integration) -> Result<(), String> {
        if !integration.enabled {
            return Err(format!("integration `{}` is disabled", integration.name));
        }
        if self.adapter(&integration.adapter).is_none() {
            return Err(format!(
                "integration `{}` uses the adapter `{}`, which no loaded plugin provides",
                integration.name, integration.adapter
            ));
        }
        self.open_secrets(integration).map(drop)
    }

    /// Delivers `event` through `integration` and records the attempt.
    pub async fn deliver(
        &self,
        workspace_id: i64,
        integration: &Integration,
        event: &Event,
        source: &str,
    ) -> DeliveryOutcome {
        let secrets = self.open_secrets(integration);
        let result = self.send(integration, event, secrets.clone()).await;
        // An adapter's error text may quote what it was given: never let a
        // secret into the delivery log or the API answer.
        let scrub = |text: String| match &secrets {
            Ok(values) => redact(text, values),
            Err(_) => text,
        };
        let (ok, detail, error) = match result {
            Ok(detail) => (true, Some(detail), None),
            Err(error) => (false, None, Some(scrub(error))),
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
        integration: &Integration,
        event: &Event,
        secrets: Result<Map<String, Value>, String>,
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
        let response = self
            .plugins
            .call(&entry, move |handle| handle.send_event(&request))
            .await
            .map_err(|e| match e {
                PluginCallError::Rejected { message, .. }
                | PluginCallError::Failed { message, .. } => message,
                other => other.to_string(),
            })?;
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
    ) -> Result<Vec<DeliveryOutcome>, String> {
        let targets: Vec<Integration> = match only {
            Some(name) => vec![self
                .store
                .integration(workspace_id, name)
                .await
                .map_err(|e| e.to_string())?],
            None => self
                .store
                .list_integrations(workspace_id)
                .await
                .map_err(|e| e.to_string())?
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

/// `text` with every secret value (at least 4 characters long) replaced.
fn redact(mut text: String, secrets: &Map<String, Value>) -> String {
    for value in secrets.values() {
        let secret = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if secret.len() >= 4 {
            text = text.replace(&secret, "[redacted]");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secret_values_from_error_text() {
        let mut secrets = Map::new();
        secrets.insert(
            "webhook_url".into(),
            Value::String("https://hooks.example/T1/B2/xyz".into()),
        );
        let text = redact(
            "POST https://hooks.example/T1/B2/xyz failed: connection refused".into(),
            &secrets,
        );
        assert_eq!(text, "POST [redacted] failed: connection refused");
    }
}
