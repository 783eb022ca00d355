//! The adapter as the server sees it: through its ABI, in process, posting
//! through a host that makes its `http.request` calls for real, to an HTTP
//! server on 127.0.0.1.

#[path = "../../test_support/http.rs"]
mod support;

use support::{closed_port_url, serve_once};
use vigilo_sdk::harness::{HttpHost, MockHost, PluginTestHarness, Registration};
use vigilo_sdk::{json, Event, HttpMethod, HttpResponse, PluginKind, Value};

const ADAPTER: &str = "slack_notifier";

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process(slack_notifier::vigilo_plugin_module).with_host(HttpHost::new())
}

fn event() -> Event {
    Event {
        event_type: "incident.opened".into(),
        workspace: "ops".into(),
        title: "DB down".into(),
        text: "Primary is unreachable".into(),
        data: json!({"id": 7}),
    }
}

#[test]
fn is_a_valid_plugin() {
    plugin().assert_valid_plugin();
    let manifest = plugin().manifest();
    assert_eq!(manifest.name, "slack_notifier");
    assert_eq!(manifest.kind, PluginKind::IntegrationAdapter);
    assert_eq!(manifest.version, "0.1.0");
    assert_eq!(manifest.compatible_with, ">=0.1, <0.2");
}

#[test]
fn registers_the_adapter_with_its_secret() {
    let registrations = plugin().registrations();
    assert_eq!(registrations.len(), 1);
    let Registration::IntegrationAdapter {
        name,
        label,
        config_schema,
        secret_fields,
        ..
    } = &registrations[0]
    else {
        panic!("expected an integration adapter, got {registrations:?}");
    };
    assert_eq!(name, ADAPTER);
    assert_eq!(label, "Slack");
    assert_eq!(secret_fields, &vec!["webhook_url".to_owned()]);
    assert_eq!(config_schema["required"], json!(["webhook_url"]));
    for key in ["webhook_url", "channel", "username"] {
        assert_eq!(config_schema["properties"][key]["type"], "string", "{key}");
    }
}

#[test]
fn accepts_and_normalises_a_good_config() {
    let config = json!({
        "webhook_url": " https://hooks.slack.com/services/T000/B000/XXXX\n",
        "channel": "#ops",
        "username": "Vigilo"
    });
    assert_eq!(
        plugin().validate_config(ADAPTER, config),
        Ok(json!({
            "webhook_url": "https://hooks.slack.com/services/T000/B000/XXXX",
            "channel": "#ops",
            "username": "Vigilo"
        }))
    );
    assert_eq!(
        plugin().validate_config(
            ADAPTER,
            json!({"webhook_url": "http://relay.internal/hook", "channel": "@alice", "username": " "})
        ),
        Ok(json!({"webhook_url": "http://relay.internal/hook", "channel": "@alice"}))
    );
}

#[test]
fn rejects_bad_configs() {
    let secret = "https://hooks.slack.com/services/T000/B000/SECRET";
    let cases = [
        (json!("https://x"), "the configuration must be a JSON object"),
        (json!({}), "missing required setting `webhook_url`"),
        (json!({"webhook_url": null}), "missing required setting `webhook_url`"),
        (json!({"webhook_url": 42}), "setting `webhook_url` must be of type string"),
        (
            json!({"webhook_url": secret, "channel": 5}),
            "setting `channel` must be of type string",
        ),
        (
            json!({"webhook_url": secret, "username": true}),
            "setting `username` must be of type string",
        ),
        (
            json!({"webhook_url": "hooks.slack.com/services/T000/B000/SECRET"}),
            "`webhook_url` must be an https:// (or http://) URL, like https://hooks.slack.com/services/...",
        ),
        (
            json!({"webhook_url": "ftp://hooks.slack.com/services/T000/B000/SECRET"}),
            "`webhook_url` must be an https:// (or http://) URL, like https://hooks.slack.com/services/...",
        ),
        (
            json!({"webhook_url": secret, "channel": "ops"}),
            "`channel` must start with # (a channel) or @ (a user), like #ops; got \"ops\"",
        ),
    ];
    for (config, expected) in cases {
        let error = plugin()
            .validate_config(ADAPTER, config.clone())
            .expect_err(&format!("{config} should be rejected"));
        assert_eq!(error, expected, "for {config}");
        assert!(!error.contains("SECRET"), "{error}");
    }
}

#[test]
fn posts_the_slack_message() {
    let (base, server) = serve_once(200, "ok");
    let config = json!({
        "webhook_url": format!("{base}/services/T000/B000/XXXX"),
        "channel": "#ops",
        "username": "Vigilo"
    });
    let detail = plugin().send(ADAPTER, config, &event()).unwrap();
    assert_eq!(detail, json!({"status": 200}));

    let request = server.join().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/services/T000/B000/XXXX");
    assert_eq!(
        request.header("Content-Type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(
        request.json(),
        json!({
            "text": "*DB down*\nPrimary is unreachable",
            "channel": "#ops",
            "username": "Vigilo",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "*DB down*\nPrimary is unreachable"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "incident.opened · ops"}]}
            ]
        })
    );
}

#[test]
fn without_title_channel_or_username_sends_just_the_text() {
    let (base, server) = serve_once(200, "ok");
    let mut event = event();
    event.title = String::new();
    plugin()
        .send(
            ADAPTER,
            json!({"webhook_url": format!("{base}/hook")}),
            &event,
        )
        .unwrap();
    let body = server.join().unwrap().json();
    assert_eq!(body["text"], "Primary is unreachable");
    assert_eq!(body["blocks"][0]["text"]["text"], "Primary is unreachable");
    assert!(body.get("channel").is_none(), "{body}");
    assert!(body.get("username").is_none(), "{body}");
}

#[test]
fn an_error_answer_is_an_error_naming_status_and_body_but_not_the_url() {
    let (base, server) = serve_once(500, "invalid_payload");
    let config = json!({"webhook_url": format!("{base}/services/T000/B000/SECRET")});
    let error = plugin().send(ADAPTER, config, &event()).unwrap_err();
    server.join().unwrap();
    assert_eq!(
        error,
        "the Slack webhook answered HTTP 500: invalid_payload"
    );
}

#[test]
fn a_long_error_body_is_cut_to_200_characters() {
    static LONG: &str = concat!(
        "0123456789012345678901234567890123456789012345678901234567890123456789",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
        "tail that must not appear"
    );
    let (base, server) = serve_once(404, LONG);
    let error = plugin()
        .send(
            ADAPTER,
            json!({"webhook_url": format!("{base}/x")}),
            &event(),
        )
        .unwrap_err();
    server.join().unwrap();
    let expected: String = LONG.chars().take(200).collect();
    assert_eq!(
        error,
        format!("the Slack webhook answered HTTP 404: {expected}…")
    );
}

#[test]
fn a_closed_port_is_an_error_without_the_url() {
    let url = closed_port_url().replace("/hook", "/services/T000/B000/SECRET");
    let error = plugin()
        .send(ADAPTER, json!({"webhook_url": url}), &event())
        .unwrap_err();
    assert!(
        error.starts_with("could not reach the Slack webhook: "),
        "{error}"
    );
    assert!(!error.contains("SECRET"), "{error}");
    assert!(!error.contains("127.0.0.1"), "{error}");
}

#[test]
fn send_refuses_an_invalid_config() {
    let error = plugin()
        .send(ADAPTER, json!({"webhook_url": "not a url"}), &event())
        .unwrap_err();
    assert!(error.contains("`webhook_url` must be"), "{error}");
    assert_eq!(
        plugin().send(ADAPTER, Value::Null, &event()),
        Err("the configuration must be a JSON object".into())
    );
}

#[test]
fn asks_the_server_to_post_with_a_time_limit() {
    let host = MockHost::new().respond_http(|_| Ok(HttpResponse::new(200, "ok")));
    let url = "https://hooks.slack.com/services/T000/B000/XXXX";
    let detail = plugin()
        .send_with_host(ADAPTER, json!({"webhook_url": url}), &event(), &host)
        .unwrap();
    assert_eq!(detail, json!({"status": 200}));
    let requests = host.http_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, HttpMethod::Post);
    assert_eq!(request.url, url);
    assert_eq!(
        request.header_value("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(request.timeout_ms, Some(4000));
    let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["text"], "*DB down*\nPrimary is unreachable");
}

#[test]
fn a_destination_the_server_refuses_is_an_error_saying_why_without_the_url() {
    let host = MockHost::new().respond_http(|request| {
        Err(format!(
            "{} resolves to a private address; the server calls it only if its operator \
             allows it (http_allowed_hosts)",
            request.url
        ))
    });
    let config = json!({"webhook_url": "http://relay.internal/services/T000/B000/SECRET"});
    let error = plugin()
        .send_with_host(ADAPTER, config, &event(), &host)
        .unwrap_err();
    assert_eq!(
        error,
        "could not reach the Slack webhook: the Slack webhook resolves to a private address; \
         the server calls it only if its operator allows it (http_allowed_hosts)"
    );
    assert!(!error.contains("SECRET"), "{error}");
}

#[test]
fn without_a_host_that_makes_requests_the_delivery_fails_clearly() {
    let plugin = PluginTestHarness::in_process(slack_notifier::vigilo_plugin_module);
    let error = plugin
        .send(
            ADAPTER,
            json!({"webhook_url": "https://hooks.slack.com/services/T/B/X"}),
            &event(),
        )
        .unwrap_err();
    assert_eq!(
        error,
        "could not reach the Slack webhook: MockHost: no answer configured for host method `http.request`"
    );
}
