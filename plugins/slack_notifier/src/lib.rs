//! # slack_notifier: post Vigilo events to Slack
//!
//! An `integration_adapter` plugin. It registers the adapter
//! **`slack_notifier`** ("Slack"), which posts each event it is handed to a
//! Slack [incoming webhook](https://api.slack.com/messaging/webhooks).
//!
//! ## Configuration
//!
//! ```json
//! {"webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX", "channel": "#ops", "username": "Vigilo"}
//! ```
//!
//! | key | required | meaning |
//! | --- | --- | --- |
//! | `webhook_url` | yes | The incoming-webhook URL Slack gave you. It must start with `https://` (or `http://`, for a relay on your own network). **Secret**: the server stores it encrypted and never shows it again, and the adapter never puts it in an error message (it says "the Slack webhook"). |
//! | `channel` | no | `#channel` or `@user` to post to instead of the webhook's default. Must start with `#` or `@`. |
//! | `username` | no | The name the message is posted under. |
//!
//! Slack's current (app-based) incoming webhooks always post to the channel
//! chosen when the webhook was created, under the app's name; only legacy
//! webhooks honour `channel` and `username`. The adapter sends them whenever
//! they are configured.
//!
//! `validate_config` checks the types and the rules above and returns the
//! configuration normalised: surrounding whitespace is trimmed from the three
//! settings, and a blank `channel` or `username` is dropped.
//!
//! ## What is sent
//!
//! One `POST <webhook_url>` with `Content-Type: application/json;
//! charset=utf-8` and this body (built by [`slack_message`]) for an event
//! `{"type": "incident.opened", "workspace": "ops", "title": "DB down", "text": "Primary is unreachable"}`:
//!
//! ```json
//! {
//!   "text": "*DB down*\nPrimary is unreachable",
//!   "channel": "#ops",
//!   "username": "Vigilo",
//!   "blocks": [
//!     {"type": "section", "text": {"type": "mrkdwn", "text": "*DB down*\nPrimary is unreachable"}},
//!     {"type": "context", "elements": [{"type": "mrkdwn", "text": "incident.opened · ops"}]}
//!   ]
//! }
//! ```
//!
//! * `text` is `*<title>*\n<text>`, or just the text when the title is empty
//!   (just the bold title when the text is empty; the event type when both
//!   are). `&`, `<` and `>` in the event's fields are escaped as Slack
//!   requires (`&amp;`, `&lt;`, `&gt;`), so event text cannot inject links
//!   or mentions.
//! * `channel` and `username` appear only when configured.
//! * The section block carries the same text (cut to Slack's limit of 3000
//!   characters for a section, with `…`); the context block names the event
//!   type and the workspace.
//!
//! ## Result and errors
//!
//! The adapter does not open a connection itself: it asks the server to make
//! the request ([`vigilo_sdk::HTTP_REQUEST`]), so the server's egress policy,
//! time limits and size limits apply.
//!
//! A 2xx answer returns `{"status": <HTTP status>}` (Slack answers `200 ok`).
//! Anything else is an `Err` for the delivery log:
//!
//! * a non-2xx answer: `the Slack webhook answered HTTP 404: no_service`
//!   (the status and the first 200 characters of the body; a redirect
//!   counts as non-2xx);
//! * no answer: `could not reach the Slack webhook: <the server's reason>`,
//!   for example a destination the server's egress policy refuses (a relay
//!   on a private network the operator has not allowed), or a connection
//!   refused, DNS, TLS or timeout failure.
//!
//! Each request asks for a total time limit of 4 seconds, below the
//! server's 5 s limit on a plugin call.

use std::time::Duration;

use vigilo_sdk::{
    check_config_against_schema, http_url_host, json, redact_url, Adapter, Event, Host,
    HttpRequest, Map, Plugin, PluginKind, PluginRegistry, Value,
};

/// The plugin: registers [`SlackNotifier`].
pub struct SlackNotifierPlugin;

impl Plugin for SlackNotifierPlugin {
    fn capabilities(&self) -> Option<vigilo_sdk::Capabilities> {
        // It posts to the webhook URL each integration is configured with.
        Some(vigilo_sdk::Capabilities::none().with_http_host("*"))
    }

    fn name(&self) -> &str {
        "slack_notifier"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::IntegrationAdapter
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn compatible_with(&self) -> &str {
        ">=0.1, <0.2"
    }

    fn description(&self) -> &str {
        "Posts events to a Slack channel through an incoming webhook."
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_adapter(SlackNotifier);
    }
}

vigilo_sdk::export_plugin!(SlackNotifierPlugin);

/// Total time limit of one request to Slack.
pub const TIMEOUT: Duration = Duration::from_secs(4);

/// Slack's limit on the text of a section block, in characters.
pub const SECTION_TEXT_LIMIT: usize = 3000;

/// What error messages call the (secret) webhook URL.
const TARGET: &str = "the Slack webhook";

/// The `slack_notifier` adapter.
pub struct SlackNotifier;

impl Adapter for SlackNotifier {
    fn name(&self) -> &str {
        "slack_notifier"
    }

    fn label(&self) -> &str {
        "Slack"
    }

    fn description(&self) -> &str {
        "Posts each event to a Slack channel through an incoming webhook."
    }

    fn config_schema(&self) -> Value {
        config_schema()
    }

    fn secret_fields(&self) -> Vec<String> {
        vec!["webhook_url".to_owned()]
    }

    fn validate_config(&self, config: &Value) -> Result<Value, String> {
        let parsed = Config::parse(config)?;
        let mut normalised = config.as_object().cloned().unwrap_or_default();
        normalised.insert("webhook_url".into(), json!(parsed.webhook_url));
        for (key, value) in [("channel", parsed.channel), ("username", parsed.username)] {
            match value {
                Some(value) => normalised.insert(key.into(), json!(value)),
                None => normalised.remove(key),
            };
        }
        Ok(Value::Object(normalised))
    }

    fn send(&self, config: &Value, event: &Event, host: &dyn Host) -> Result<Value, String> {
        let config = Config::parse(config)?;
        let message = slack_message(event, config.channel.as_deref(), config.username.as_deref());
        let request = HttpRequest::post(&config.webhook_url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "User-Agent",
                concat!("vigilo-slack-notifier/", env!("CARGO_PKG_VERSION")),
            )
            .body(message.to_string())
            .timeout(TIMEOUT);
        // The server's reason may quote the URL; it never reaches the log.
        let response = host.http_request(&request).map_err(|reason| {
            format!(
                "could not reach {TARGET}: {}",
                redact_url(&reason, &config.webhook_url, TARGET)
            )
        })?;
        if !response.is_success() {
            return Err(response.error_message(TARGET));
        }
        Ok(json!({ "status": response.status }))
    }
}

/// JSON Schema of the adapter's configuration.
pub fn config_schema() -> Value {
    json!({
        "type": "object",
        "required": ["webhook_url"],
        "properties": {
            "webhook_url": {
                "type": "string",
                "description": "The Slack incoming-webhook URL (https://hooks.slack.com/services/...). Stored encrypted."
            },
            "channel": {
                "type": "string",
                "description": "#channel or @user to post to instead of the webhook's default (legacy webhooks only)."
            },
            "username": {
                "type": "string",
                "description": "Name to post as (legacy webhooks only)."
            }
        }
    })
}

/// A checked configuration.
struct Config {
    webhook_url: String,
    channel: Option<String>,
    username: Option<String>,
}

impl Config {
    /// Checks `config` against the schema and the adapter's rules. Error
    /// messages never contain the webhook URL.
    fn parse(config: &Value) -> Result<Config, String> {
        check_config_against_schema(config, &config_schema())?;
        let webhook_url = config["webhook_url"].as_str().unwrap_or_default().trim();
        if !is_http_url(webhook_url) {
            return Err("`webhook_url` must be an https:// (or http://) URL, like \
                 https://hooks.slack.com/services/..."
                .into());
        }
        let channel = optional_string(config, "channel");
        if let Some(channel) = &channel {
            if !channel.starts_with(['#', '@']) || channel.len() < 2 {
                return Err(format!(
                    "`channel` must start with # (a channel) or @ (a user), like #ops; got {channel:?}"
                ));
            }
        }
        Ok(Config {
            webhook_url: webhook_url.to_owned(),
            channel,
            username: optional_string(config, "username"),
        })
    }
}

/// A trimmed, non-blank string setting (the schema check has made sure it
/// is a string if present).
fn optional_string(config: &Value, key: &str) -> Option<String> {
    config
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// `http://` or `https://`, a non-empty host, no whitespace or control
/// characters.
fn is_http_url(url: &str) -> bool {
    http_url_host(url).is_some()
}

/// The Slack message for `event`: `text`, optional `channel` and
/// `username`, and `blocks` (a mrkdwn section with the same text and a
/// context line `"<event type> · <workspace>"`).
pub fn slack_message(event: &Event, channel: Option<&str>, username: Option<&str>) -> Value {
    let text = message_text(event);
    let context = format!(
        "{} · {}",
        escape_mrkdwn(&event.event_type),
        escape_mrkdwn(&event.workspace)
    );
    let mut message = Map::new();
    message.insert("text".into(), json!(text));
    if let Some(channel) = channel {
        message.insert("channel".into(), json!(channel));
    }
    if let Some(username) = username {
        message.insert("username".into(), json!(username));
    }
    message.insert(
        "blocks".into(),
        json!([
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(&text, SECTION_TEXT_LIMIT)}
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": context}]
            }
        ]),
    );
    Value::Object(message)
}

/// `*<title>*\n<text>`, or whichever of the two is not blank; the event type
/// when both are blank (Slack refuses an empty message).
fn message_text(event: &Event) -> String {
    let title = event.title.trim();
    let text = event.text.trim_end();
    match (title.is_empty(), text.trim().is_empty()) {
        (false, false) => format!("*{}*\n{}", escape_mrkdwn(title), escape_mrkdwn(text)),
        (false, true) => format!("*{}*", escape_mrkdwn(title)),
        (true, false) => escape_mrkdwn(text),
        (true, true) if !event.event_type.trim().is_empty() => escape_mrkdwn(&event.event_type),
        (true, true) => "Vigilo event".to_owned(),
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control
/// characters.
pub fn escape_mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` cut to at most `limit` characters, ending in `…` when cut.
fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(title: &str, text: &str) -> Event {
        Event {
            event_type: "incident.opened".into(),
            workspace: "ops".into(),
            title: title.into(),
            text: text.into(),
            data: Value::Null,
        }
    }

    #[test]
    fn text_is_bold_title_then_text() {
        assert_eq!(message_text(&event("DB down", "gone")), "*DB down*\ngone");
        assert_eq!(message_text(&event("", "gone")), "gone");
        assert_eq!(message_text(&event("DB down", "")), "*DB down*");
        assert_eq!(message_text(&event("", "")), "incident.opened");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            message_text(&event("a < b", "<!channel> & co")),
            "*a &lt; b*\n&lt;!channel&gt; &amp; co"
        );
    }

    #[test]
    fn long_section_text_is_cut() {
        let long = "x".repeat(SECTION_TEXT_LIMIT + 10);
        let message = slack_message(&event("", &long), None, None);
        let section = message["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(section.chars().count(), SECTION_TEXT_LIMIT);
        assert!(section.ends_with('…'));
        assert_eq!(message["text"].as_str().unwrap().len(), long.len());
    }

    #[test]
    fn urls() {
        assert!(is_http_url("https://hooks.slack.com/services/T/B/X"));
        assert!(is_http_url("http://relay:8080/x"));
        assert!(!is_http_url("ftp://hooks.slack.com/x"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https:///path"));
        assert!(!is_http_url("https://host/with space"));
        assert!(!is_http_url("hooks.slack.com/services"));
    }
}
