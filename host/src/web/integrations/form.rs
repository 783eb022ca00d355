//! An integration's settings as a form: the inputs its adapter's config
//! schema describes (text, numbers, yes/no, choices, JSON for the rest;
//! secrets write-only), and the typed settings read back from a filled-in
//! form.

use serde_json::{Map, Value};

use crate::integrations::AdapterInfo;
use crate::store::integrations::Integration;

/// One setting of an adapter's form, from its config schema.
pub struct SettingInput {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) help: String,
    /// `text`, `secret`, `number`, `boolean`, `choice`, `json`.
    pub(super) input: &'static str,
    pub(super) required: bool,
    pub(super) choices: Vec<String>,
    /// What the form shows (never a secret's value).
    pub(super) value: String,
    /// For a secret: whether a value is stored.
    pub(super) is_set: bool,
    /// Whether the value is written as JSON (an object or a list).
    pub(super) as_json: bool,
}

pub(super) fn schema_inputs(
    adapter: &AdapterInfo,
    stored: Option<&Integration>,
    typed: &Map<String, Value>,
) -> Vec<SettingInput> {
    let schema = &adapter.config_schema;
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    // Required settings first, in the schema's order, then the rest.
    let mut keys: Vec<&String> = properties.keys().collect();
    keys.sort_by_key(|k| {
        required
            .iter()
            .position(|r| r == k)
            .unwrap_or(required.len())
    });
    keys.into_iter()
        .map(|key| (key, &properties[key]))
        .map(|(key, property)| {
            let secret = adapter.secret_fields.iter().any(|s| s == key);
            let choices: Vec<String> = property["enum"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let input = if secret {
                "secret"
            } else if !choices.is_empty() {
                "choice"
            } else {
                match property["type"].as_str() {
                    Some("integer" | "number") => "number",
                    Some("boolean") => "boolean",
                    Some("string") | None => "text",
                    _ => "json",
                }
            };
            let shown = typed
                .get(key)
                .or_else(|| stored.and_then(|s| s.config.get(key)))
                .or_else(|| {
                    stored
                        .is_none()
                        .then(|| &property["default"])
                        .filter(|d| !d.is_null())
                });
            let value = match (secret, shown) {
                (true, _) | (_, None) => String::new(),
                (false, Some(Value::String(s))) => s.clone(),
                (false, Some(v)) if input == "json" => {
                    serde_json::to_string_pretty(v).unwrap_or_default()
                }
                (false, Some(v)) => v.to_string(),
            };
            SettingInput {
                label: property["title"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| label(key)),
                help: property["description"].as_str().unwrap_or("").to_owned(),
                input,
                required: required.contains(&key.as_str()),
                choices,
                value,
                is_set: secret && stored.is_some_and(|s| s.sealed_secrets.contains_key(key)),
                as_json: matches!(property["type"].as_str(), Some("object" | "array")),
                key: key.clone(),
            }
        })
        .collect()
}

/// A setting's key as a label: `webhook_url` → `Webhook URL`.
fn label(key: &str) -> String {
    let words: Vec<String> = key
        .split('_')
        .map(|w| match w {
            "url" | "id" | "api" | "tls" | "http" | "https" => w.to_uppercase(),
            _ => w.to_owned(),
        })
        .collect();
    crate::web::items::humanise(words.join(" "))
}

/// The settings a form sent, typed by the adapter's schema. An empty secret
/// is left out (kept); an empty plain setting is left out when creating and
/// removed (`null`) when updating.
pub(super) fn typed_config(
    adapter: &AdapterInfo,
    sent: &[(String, String)],
    updating: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    let properties = adapter.config_schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (key, property) in &properties {
        let secret = adapter.secret_fields.iter().any(|s| s == key);
        let text = sent
            .iter()
            .rev()
            .find(|(k, _)| k.strip_prefix("config.") == Some(key.as_str()))
            .map(|(_, v)| v.trim().to_owned());
        let kind = property["type"].as_str().unwrap_or("string");
        let value = match (kind, text) {
            ("boolean", text) => Some(Value::Bool(text.as_deref() == Some("true"))),
            (_, None) => None,
            (_, Some(t)) if t.is_empty() => {
                if updating && !secret {
                    out.insert(key.clone(), Value::Null);
                }
                None
            }
            ("integer", Some(t)) => Some(
                t.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(t)),
            ),
            ("number", Some(t)) => Some(
                t.parse::<f64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(t)),
            ),
            ("string", Some(t)) => Some(Value::String(t)),
            (_, Some(t)) => Some(serde_json::from_str(&t).unwrap_or(Value::String(t))),
        };
        if let Some(value) = value {
            out.insert(key.clone(), value);
        }
    }
    out
}
