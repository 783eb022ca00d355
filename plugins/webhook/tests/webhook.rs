//! The adapter as the server sees it: through its ABI, in process, posting
//! through a host that makes its `http.request` calls for real, to an HTTP
//! server on 127.0.0.1.

#[path = "../../test_support/http.rs"]
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::{closed_port_url, serve_once};
use vigilo_sdk::harness::{HttpHost, MockHost, PluginTestHarness, Registration};
use vigilo_sdk::{json, Event, HttpMethod, HttpResponse, PluginKind, Value};
use webhook::{hmac_sha256, verify_signature};

const ADAPTER: &str = "webhook";
const SECRET: &str = "s3cret-s3cret-s3cret";

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process(webhook::vigilo_plugin_module).with_host(HttpHost::new())
}

fn event() -> Event {
    Event {
        event_type: "incident.opened".into(),
        workspace: "ops".into(),
        title: "DB down".into(),
        text: "Primary is unreachable".into(),
        data: json!({"id": 7, "severity": "high"}),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn is_a_valid_plugin() {
    plugin().assert_valid_plugin();
    let manifest = plugin().manifest();
    assert_eq!(manifest.name, "webhook");
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
    assert_eq!(label, "Webhook");
    assert_eq!(
        secret_fields,
        &vec!["url".to_owned(), "secret".to_owned(), "headers".to_owned()]
    );
    assert_eq!(config_schema["required"], json!(["url", "secret"]));
    assert_eq!(config_schema["properties"]["headers"]["type"], "object");
}

#[test]
fn accepts_a_good_config() {
    assert_eq!(
        plugin().validate_config(
            ADAPTER,
            json!({"url": " https://hooks.example.com/vigilo ", "secret": SECRET})
        ),
        Ok(json!({"url": "https://hooks.example.com/vigilo", "secret": SECRET}))
    );
    let with_headers = json!({
        "url": "http://10.0.0.5:8080/in",
        "secret": SECRET,
        "headers": {"Authorization": "Bearer abc", "X-Team": "ops"}
    });
    assert_eq!(
        plugin().validate_config(ADAPTER, with_headers.clone()),
        Ok(with_headers)
    );
}

#[test]
fn rejects_bad_configs() {
    let url = "https://hooks.example.com/vigilo";
    let reserved = |name: &str| {
        format!(
            "`headers` may not set {name}: the adapter sets Content-Type, the X-Vigilo-* headers \
             and the request framing itself"
        )
    };
    let cases = [
        (
            json!([]),
            "the configuration must be a JSON object".to_owned(),
        ),
        (
            json!({"secret": SECRET}),
            "missing required setting `url`".into(),
        ),
        (
            json!({"url": url}),
            "missing required setting `secret`".into(),
        ),
        (
            json!({"url": url, "secret": 1234567890123456789u64}),
            "setting `secret` must be of type string".into(),
        ),
        (
            json!({"url": "hooks.example.com/vigilo", "secret": SECRET}),
            "`url` must be an http:// or https:// URL, like https://hooks.example.com/vigilo"
                .into(),
        ),
        (
            json!({"url": "file:///etc/passwd", "secret": SECRET}),
            "`url` must be an http:// or https:// URL, like https://hooks.example.com/vigilo"
                .into(),
        ),
        (
            json!({"url": url, "secret": "short-secret"}),
            "`secret` must be at least 16 characters long".into(),
        ),
        (
            json!({"url": url, "secret": SECRET, "headers": ["X-A: b"]}),
            "setting `headers` must be of type object".into(),
        ),
        (
            json!({"url": url, "secret": SECRET, "headers": {"content-type": "text/plain"}}),
            reserved("content-type"),
        ),
        (
            json!({"url": url, "secret": SECRET, "headers": {"X-Vigilo-Signature": "sha256=0"}}),
            reserved("X-Vigilo-Signature"),
        ),
        (
            json!({"url": url, "secret": SECRET, "headers": {"x-vigilo-timestamp": "1"}}),
            reserved("x-vigilo-timestamp"),
        ),
        (
            json!({"url": url, "secret": SECRET, "headers": {"Content-Length": "1"}}),
            reserved("Content-Length"),
        ),
        (
            json!({"url": url, "secret": SECRET, "headers": {"X-Team": 5}}),
            "`headers`: the value of X-Team must be a string".into(),
        ),
        (
            json!({"url": url, "secret": SECRET, "headers": {"Bad Name": "x"}}),
            "`headers` has an invalid header name \"Bad Name\"".into(),
        ),
        (
            json!({"url": url, "secret": SECRET, "headers": {"X-Team": "a\r\nX-Evil: 1"}}),
            "`headers`: the value of X-Team may not contain line breaks or control characters"
                .into(),
        ),
    ];
    for (config, expected) in cases {
        let error = plugin()
            .validate_config(ADAPTER, config.clone())
            .expect_err(&format!("{config} should be rejected"));
        assert_eq!(error, expected, "for {config}");
        assert!(!error.contains(SECRET), "{error}");
    }
}

#[test]
fn posts_the_signed_event() {
    let (base, server) = serve_once(202, "queued");
    let config = json!({
        "url": format!("{base}/in/vigilo?team=ops"),
        "secret": SECRET,
        "headers": {"Authorization": "Bearer abc"}
    });
    let before = now();
    let detail = plugin().send(ADAPTER, config, &event()).unwrap();
    let after = now();
    assert_eq!(detail, json!({"status": 202}));

    let request = server.join().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/in/vigilo?team=ops");
    assert_eq!(request.header("Content-Type"), "application/json");
    assert_eq!(request.header("X-Vigilo-Event"), "incident.opened");
    assert_eq!(request.header("Authorization"), "Bearer abc");

    // The body is the event as serde serialises it.
    assert_eq!(
        request.body,
        serde_json::to_string(&event()).unwrap().into_bytes()
    );
    assert_eq!(
        request.json(),
        json!({
            "type": "incident.opened",
            "workspace": "ops",
            "title": "DB down",
            "text": "Primary is unreachable",
            "data": {"id": 7, "severity": "high"}
        })
    );

    // The timestamp is the time of sending, and the signature verifies.
    let timestamp = request.header("X-Vigilo-Timestamp");
    let sent_at: u64 = timestamp.parse().unwrap();
    assert!((before..=after).contains(&sent_at), "{sent_at}");
    let signature = request.header("X-Vigilo-Signature");
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&request.body);
    assert_eq!(
        signature,
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(SECRET.as_bytes(), &signed))
        )
    );
    assert_eq!(
        verify_signature(SECRET, timestamp, signature, &request.body, sent_at),
        Ok(())
    );
    assert!(verify_signature(
        "another-secret-value",
        timestamp,
        signature,
        &request.body,
        sent_at
    )
    .is_err());
}

#[test]
fn an_error_answer_is_an_error_naming_status_and_body() {
    let (base, server) = serve_once(500, "database is on fire");
    let config = json!({"url": format!("{base}/in?token=TOKEN"), "secret": SECRET});
    let error = plugin().send(ADAPTER, config, &event()).unwrap_err();
    server.join().unwrap();
    let host = base.trim_start_matches("http://");
    assert_eq!(
        error,
        format!("the webhook at {host} answered HTTP 500: database is on fire")
    );
    assert!(!error.contains("TOKEN"), "{error}");
}

#[test]
fn a_closed_port_is_an_error() {
    let url = closed_port_url();
    let error = plugin()
        .send(ADAPTER, json!({"url": url, "secret": SECRET}), &event())
        .unwrap_err();
    assert!(
        error.starts_with("could not reach the webhook at 127.0.0.1:"),
        "{error}"
    );
    assert!(!error.contains("/hook"), "{error}");
    assert!(!error.contains(SECRET), "{error}");
}

#[test]
fn send_refuses_an_invalid_config() {
    assert_eq!(
        plugin().send(
            ADAPTER,
            json!({"url": "http://127.0.0.1:9/x", "secret": "short"}),
            &event()
        ),
        Err("`secret` must be at least 16 characters long".into())
    );
    assert_eq!(
        plugin().send(ADAPTER, Value::Null, &event()),
        Err("the configuration must be a JSON object".into())
    );
}

#[test]
fn asks_the_server_to_post_the_signed_event_with_a_time_limit() {
    let host = MockHost::new().respond_http(|_| Ok(HttpResponse::new(204, "")));
    let url = "https://hooks.example.com/in?token=TOKEN";
    let config = json!({"url": url, "secret": SECRET, "headers": {"X-Team": "ops"}});
    let detail = plugin()
        .send_with_host(ADAPTER, config, &event(), &host)
        .unwrap();
    assert_eq!(detail, json!({"status": 204}));
    let requests = host.http_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, HttpMethod::Post);
    assert_eq!(request.url, url);
    assert_eq!(request.timeout_ms, Some(4000));
    assert_eq!(
        request.header_value("content-type"),
        Some("application/json")
    );
    assert_eq!(request.header_value("X-Team"), Some("ops"));
    let body = request.body.as_deref().unwrap();
    assert_eq!(body, serde_json::to_string(&event()).unwrap());
    let timestamp = request.header_value("X-Vigilo-Timestamp").unwrap();
    assert_eq!(
        verify_signature(
            SECRET,
            timestamp,
            request.header_value("X-Vigilo-Signature").unwrap(),
            body.as_bytes(),
            timestamp.parse().unwrap()
        ),
        Ok(())
    );
}

#[test]
fn a_destination_the_server_refuses_is_an_error_saying_why_without_secrets() {
    let host = MockHost::new().respond_http(|request| {
        Err(format!(
            "`{}` is a link-local address; the server calls it only if its operator allows it \
             (http_allowed_hosts); sent with Authorization: {}",
            request.url,
            request.header_value("Authorization").unwrap_or_default()
        ))
    });
    let config = json!({
        "url": "http://169.254.169.254/latest/meta-data?token=TOKEN",
        "secret": SECRET,
        "headers": {"Authorization": "Bearer CREDENTIAL"}
    });
    let error = plugin()
        .send_with_host(ADAPTER, config, &event(), &host)
        .unwrap_err();
    assert_eq!(
        error,
        "could not reach the webhook at 169.254.169.254: `169.254.169.254` is a link-local \
         address; the server calls it only if its operator allows it (http_allowed_hosts); \
         sent with Authorization: <Authorization>"
    );
    for secret in ["TOKEN", "meta-data", "CREDENTIAL", SECRET] {
        assert!(!error.contains(secret), "{error}");
    }
}
