//! The adapter called as the server calls it, with a host that records the
//! requests it is asked to make.

use vigilo_sdk::harness::{MockHost, PluginTestHarness};
use vigilo_sdk::{json, Event, HttpResponse, Value};

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process({{name}}::vigilo_plugin_module)
}

fn event() -> Event {
    Event {
        event_type: "incident.opened".into(),
        workspace: "ops".into(),
        title: "Database down".into(),
        text: "Opened by ada".into(),
        data: Value::Null,
    }
}

fn answering(status: u16) -> MockHost {
    MockHost::new().respond_http(move |_| {
        Ok(HttpResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
            truncated: false,
        })
    })
}

#[test]
fn posts_the_event_as_json() {
    let host = answering(204);
    let config = json!({"url": "https://hooks.example.com/secret-token"});
    let sent = plugin().send_with_host("{{name}}", config, &event(), &host).unwrap();
    assert_eq!(sent, json!({"status": 204}));
    let requests = host.http_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url, "https://hooks.example.com/secret-token");
    let body = requests[0].body.clone().unwrap_or_default();
    assert!(body.contains(r#""title":"Database down""#), "{body}");
    assert!(body.contains(r#""type":"incident.opened""#), "{body}");
}

#[test]
fn a_refusal_names_the_status_but_not_the_url() {
    let host = answering(500);
    let config = json!({"url": "https://hooks.example.com/secret-token"});
    let error = plugin().send_with_host("{{name}}", config, &event(), &host).unwrap_err();
    assert!(error.contains("500"), "{error}");
    assert!(!error.contains("secret-token"), "{error}");
}

#[test]
fn the_configuration_is_checked() {
    let plugin = plugin();
    assert!(plugin.validate_config("{{name}}", json!({})).unwrap_err().contains("url"));
    assert!(plugin
        .validate_config("{{name}}", json!({"url": "ftp://x"}))
        .unwrap_err()
        .contains("https://"));
    assert!(plugin.validate_config("{{name}}", json!({"url": "https://x.example"})).is_ok());
}
