//! One call to each thing a loaded plugin registers, as `vigilo-server
//! check-plugin` makes them: a field type validates a text, a widget
//! renders a tile, an adapter checks an empty configuration, a task runs.
//! Host calls are refused, so nothing outside the plugin is touched.
//!
//! What counts is that the plugin *answered*: an error it returns (a value
//! it rejects, a configuration it finds incomplete) is an answer. A panic,
//! a crash of its worker or a call past the time limit is not: in the
//! worker tier it means the plugin needs something its confinement forbids.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use vigilo_sdk::loader::Registration;
use vigilo_sdk::wire::{RenderRequest, RunTaskRequest, ValidateConfigRequest, ValidateRequest};
use vigilo_sdk::{FieldContext, Host};

use super::{PluginCallError, PluginEntry, Plugins};

/// How one smoke call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmokeOutcome {
    /// The plugin answered.
    Answered,
    /// The plugin answered with an error of its own (still an answer).
    AnsweredWithError(String),
    /// The plugin did not answer: it panicked, its worker crashed, or the
    /// call ran past its limit.
    Broken(String),
}

/// One registration's smoke call.
#[derive(Debug, Clone)]
pub struct SmokeCall {
    /// What was called: `field_type `name``, ...
    pub registration: Registration,
    /// How it went.
    pub outcome: SmokeOutcome,
}

/// The host of a smoke call: it answers no method.
struct NoCalls;

impl Host for NoCalls {
    fn call(&self, method: &str, _input: &Value) -> Result<Value, String> {
        Err(format!(
            "host method `{method}` is not answered while the plugin is being checked"
        ))
    }
}

/// Calls each registration of `entry` once.
pub async fn smoke(plugins: &Arc<Plugins>, entry: &Arc<PluginEntry>) -> Vec<SmokeCall> {
    let mut calls = Vec::new();
    for registration in entry.registrations.clone() {
        let name = registration.name().to_owned();
        let answer = match &registration {
            Registration::FieldType { .. } => {
                let request = ValidateRequest {
                    name,
                    value: json!("check"),
                    context: FieldContext {
                        workspace: "check".into(),
                        settings: Map::new(),
                    },
                };
                plugins
                    .call(entry, move |plugin| plugin.validate_field(&request))
                    .await
            }
            Registration::DashboardWidget { .. } => {
                let request = RenderRequest {
                    name,
                    workspace: "check".into(),
                    config: json!({}),
                };
                plugins
                    .call(entry, move |plugin| {
                        plugin.render_widget(&request, &NoCalls)
                    })
                    .await
            }
            Registration::IntegrationAdapter { .. } => {
                let request = ValidateConfigRequest {
                    name,
                    config: json!({}),
                };
                plugins
                    .call(entry, move |plugin| {
                        plugin.validate_adapter_config(&request)
                    })
                    .await
            }
            Registration::CeleryTask { .. } => {
                let request = RunTaskRequest {
                    name,
                    config: json!({}),
                    now: "2026-01-01T00:00:00Z".into(),
                };
                plugins
                    .call(entry, move |plugin| plugin.run_task(&request, &NoCalls))
                    .await
            }
        };
        let outcome = match answer {
            Ok(_) => SmokeOutcome::Answered,
            Err(
                PluginCallError::Rejected { message, .. } | PluginCallError::Failed { message, .. },
            ) => SmokeOutcome::AnsweredWithError(message),
            Err(broken) => SmokeOutcome::Broken(broken.to_string()),
        };
        calls.push(SmokeCall {
            registration,
            outcome,
        });
    }
    calls
}
