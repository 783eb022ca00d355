//! # {{name}}: a Vigilo `integration_adapter` plugin
//!
//! Registers the adapter `{{name}}` ("{{label}}"): it posts each event as
//! JSON to the URL a workspace admin configures (`url`, kept secret by the
//! server because such URLs often carry a token). An adapter never opens a
//! connection of its own: it asks the server with `http.request`, and the
//! server applies its egress policy.

use std::time::Duration;

use vigilo_sdk::{
    json, redact_url, Adapter, Event, Host, HttpRequest, Plugin, PluginKind, PluginRegistry,
    Value,
};

/// The plugin: registers [`Poster`].
pub struct ThisPlugin;

impl Plugin for ThisPlugin {
    fn name(&self) -> &str {
        "{{name}}"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::IntegrationAdapter
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn compatible_with(&self) -> &str {
        "{{compatible_with}}"
    }

    fn description(&self) -> &str {
        env!("CARGO_PKG_DESCRIPTION")
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_adapter(Poster);
    }
}

/// The `{{name}}` adapter.
pub struct Poster;

impl Adapter for Poster {
    fn name(&self) -> &str {
        "{{name}}"
    }

    fn label(&self) -> &str {
        "{{label}}"
    }

    fn description(&self) -> &str {
        "Posts each event as JSON to a URL."
    }

    fn config_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "description": "Where to post events (https://...)."}
            }
        })
    }

    fn secret_fields(&self) -> Vec<String> {
        vec!["url".into()]
    }

    fn validate_config(&self, config: &Value) -> Result<Value, String> {
        vigilo_sdk::check_config_against_schema(config, &self.config_schema())?;
        let url = config["url"].as_str().unwrap_or_default();
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err("the url must start with https:// or http://".into());
        }
        Ok(config.clone())
    }

    fn send(&self, config: &Value, event: &Event, host: &dyn Host) -> Result<Value, String> {
        let url = config["url"].as_str().ok_or("no url is configured")?;
        let body = json!({
            "type": event.event_type,
            "workspace": event.workspace,
            "title": event.title,
            "text": event.text,
            "data": event.data,
        });
        let request = HttpRequest::post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .timeout(Duration::from_secs(5));
        let response = host
            .http_request(&request)
            // The server's reason may quote the (secret) URL.
            .map_err(|reason| format!("could not post the event: {}", redact_url(&reason, url, "the configured URL")))?;
        if !response.is_success() {
            return Err(response.error_message("the configured URL"));
        }
        Ok(json!({"status": response.status}))
    }
}

vigilo_sdk::export_plugin!(ThisPlugin);
