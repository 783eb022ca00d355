//! What an integration's settings hold that must be handled with care: the
//! strings of its secret settings, kept out of whatever the server stores or
//! shows, and the URLs it would send to, checked against the egress policy.

use serde_json::{Map, Value};

use crate::plugins::redact_text;

/// Every string inside the settings named in `keys` (a secret may be an
/// object, such as a map of headers): what must never appear in text the
/// server keeps or shows.
pub(super) fn secret_strings(config: &Map<String, Value>, keys: &[String]) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            Value::Number(n) => out.push(n.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for key in keys {
        if let Some(value) = config.get(key) {
            walk(value, &mut out);
        }
    }
    out
}

/// `value` with every secret replaced inside every string it holds.
pub(super) fn redact_value(value: Value, secrets: &[String]) -> Value {
    match value {
        Value::String(s) => Value::String(redact_text(s, secrets)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| redact_value(v, secrets))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, redact_value(v, secrets)))
                .collect(),
        ),
        other => other,
    }
}

/// The http(s) URLs in `value` (a setting named `key`), with where they
/// are and whether they are secret.
pub(super) fn collect_urls(
    key: &str,
    value: &Value,
    secret: bool,
    out: &mut Vec<(String, String, bool)>,
) {
    match value {
        Value::String(text) => {
            let lower = text.trim().to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                out.push((key.to_owned(), text.trim().to_owned(), secret));
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_urls(key, item, secret, out);
            }
        }
        Value::Object(map) => {
            for (inner, item) in map {
                collect_urls(&format!("{key}.{inner}"), item, secret, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::redact_text;
    use serde_json::json;

    #[test]
    fn redacts_secret_values_wherever_they_hide() {
        let config = json!({
            "webhook_url": "https://hooks.example/T1/B2/xyz",
            "headers": {"Authorization": "Bearer abcdef123"},
            "channel": "#ops",
        });
        let config = config.as_object().unwrap().clone();
        let secrets = secret_strings(&config, &["webhook_url".into(), "headers".into()]);
        assert_eq!(
            redact_text(
                "POST https://hooks.example/T1/B2/xyz failed with Bearer abcdef123".into(),
                &secrets
            ),
            "POST [redacted] failed with [redacted]"
        );
        let detail = redact_value(
            json!({"echo": ["https://hooks.example/T1/B2/xyz"], "channel": "#ops"}),
            &secrets,
        );
        assert_eq!(detail, json!({"echo": ["[redacted]"], "channel": "#ops"}));
    }
}
