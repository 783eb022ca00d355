use std::time::Duration;

use serde_json::json;

use super::*;
use crate::harness::MockHost;

#[test]
fn count_by_status_reads_old_and_new_servers() {
    // A server from before `statuses`: counts only.
    let old = MockHost::new().respond(
        WORK_ITEMS_COUNT_BY_STATUS,
        json!({"changes": {"draft": 2, "approved": 1}, "incidents": {}, "tasks": {"todo": 3}}),
    );
    let counts = old.work_items_count_by_status("ops").unwrap();
    assert_eq!(counts.statuses, None);
    assert_eq!(
        old.calls(),
        vec![(
            WORK_ITEMS_COUNT_BY_STATUS.to_owned(),
            json!({"workspace": "ops"})
        )]
    );
    assert_eq!(
        counts.in_workflow_order(WorkItemKind::Change),
        vec![("approved".to_owned(), 1), ("draft".to_owned(), 2)]
    );
    assert_eq!(counts.in_workflow_order(WorkItemKind::Incident), vec![]);

    // A server that sends each workflow: every status, in order, zeros
    // included; a counted status the workflow does not list comes last.
    let new = MockHost::new().respond(
        WORK_ITEMS_COUNT_BY_STATUS,
        json!({
            "changes": {"approved": 1, "draft": 2},
            "incidents": {"open": 1},
            "tasks": {"doing": 4, "archived": 1},
            "statuses": {
                "changes": ["draft", "pending_approval", "approved", "rejected", "in_progress", "done"],
                "incidents": ["open", "investigating", "mitigated", "resolved"],
                "tasks": ["todo", "doing", "done"]
            }
        }),
    );
    let counts = new.work_items_count_by_status("ops").unwrap();
    let pairs = |kind| -> Vec<(String, u64)> { counts.in_workflow_order(kind) };
    let owned = |items: &[(&str, u64)]| -> Vec<(String, u64)> {
        items.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    };
    assert_eq!(
        pairs(WorkItemKind::Change),
        owned(&[
            ("draft", 2),
            ("pending_approval", 0),
            ("approved", 1),
            ("rejected", 0),
            ("in_progress", 0),
            ("done", 0)
        ])
    );
    assert_eq!(
        pairs(WorkItemKind::Incident),
        owned(&[
            ("open", 1),
            ("investigating", 0),
            ("mitigated", 0),
            ("resolved", 0)
        ])
    );
    assert_eq!(
        pairs(WorkItemKind::Task),
        owned(&[("todo", 0), ("doing", 4), ("done", 0), ("archived", 1)])
    );
    // And it round-trips; without `statuses` the field is left out.
    assert_eq!(
        serde_json::to_value(WorkItemCounts::default()).unwrap(),
        json!({"changes": {}, "incidents": {}, "tasks": {}})
    );
}

#[test]
fn a_host_error_passes_through_and_a_bad_shape_is_named() {
    let host = MockHost::new().respond_with(WORK_ITEMS_COUNT_BY_STATUS, |_| {
        Err("no workspace `x`".into())
    });
    assert_eq!(
        host.work_items_count_by_status("x"),
        Err("no workspace `x`".into())
    );
    let host = MockHost::new().respond(CERTIFICATES_EXPIRING, json!({"certificates": []}));
    let error = host.certificates_expiring(30).unwrap_err();
    assert!(
        error.starts_with("host answered certificates.expiring with an unexpected shape: "),
        "{error}"
    );
    assert!(error.contains("workspaces"), "{error}");
}

#[test]
fn certificates_expiring_shapes() {
    let answer = json!({"workspaces": [{"workspace": "ops", "certificates": [
        {"id": 1, "name": "api.example.com", "subject": "CN=api.example.com",
         "not_after": "2026-12-01T00:00:00Z", "days_left": 3, "expired": false,
         "issuer": "a field from a newer server"}]}]});
    let host = MockHost::new().respond(CERTIFICATES_EXPIRING, answer);
    let expiring = host.certificates_expiring(30).unwrap();
    assert_eq!(
        host.calls(),
        vec![(CERTIFICATES_EXPIRING.to_owned(), json!({"within_days": 30}))]
    );
    assert_eq!(
        expiring,
        CertificatesExpiring {
            workspaces: vec![ExpiringWorkspace {
                workspace: "ops".into(),
                certificates: vec![ExpiringCertificate {
                    id: 1,
                    name: "api.example.com".into(),
                    subject: "CN=api.example.com".into(),
                    not_after: "2026-12-01T00:00:00Z".into(),
                    days_left: 3,
                    expired: false,
                }],
            }],
        }
    );
}

#[test]
fn integrations_notify_shapes() {
    let host = MockHost::new().respond(
        INTEGRATIONS_NOTIFY,
        json!({"deliveries": [
            {"integration": "ops-slack", "adapter": "slack_notifier", "ok": true,
             "detail": {"status": 200}, "error": null, "delivery_id": 12},
            {"integration": "ops-hook", "adapter": "webhook", "ok": false,
             "error": "the webhook at hooks.example.com answered HTTP 500: down"}
        ]}),
    );
    let event = Event {
        event_type: "certificate.expiry_digest".into(),
        workspace: "ops".into(),
        title: "1 certificate expiring within 30 days".into(),
        text: "api.example.com — expires 2026-12-01 (3 days left)".into(),
        data: json!({"within_days": 30}),
    };
    let mut request = NotifyRequest {
        workspace: "ops".into(),
        event: event.clone(),
        integration: None,
    };
    let answer = host.integrations_notify(&request).unwrap();
    assert_eq!(answer.deliveries.len(), 2);
    assert_eq!(answer.deliveries[0].detail, Some(json!({"status": 200})));
    assert_eq!(answer.deliveries[0].delivery_id, Some(12));
    assert!(!answer.deliveries[1].ok);
    assert_eq!(answer.deliveries[1].delivery_id, None);
    // Without an integration the key is left out (every integration).
    assert_eq!(
        host.calls()[0].1,
        json!({"workspace": "ops", "event": {
            "type": "certificate.expiry_digest", "workspace": "ops",
            "title": "1 certificate expiring within 30 days",
            "text": "api.example.com — expires 2026-12-01 (3 days left)",
            "data": {"within_days": 30}}})
    );
    request.integration = Some("ops-slack".into());
    assert_eq!(
        serde_json::to_value(&request).unwrap()["integration"],
        "ops-slack"
    );
}

#[test]
fn http_request_encoding() {
    let request = HttpRequest::post("https://hooks.example.com/in?token=x")
        .header("Content-Type", "application/json")
        .header("X-Team", "ops")
        .body("{\"text\":\"hello\"}")
        .timeout(Duration::from_secs(4));
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({
            "method": "POST",
            "url": "https://hooks.example.com/in?token=x",
            "headers": [
                {"name": "Content-Type", "value": "application/json"},
                {"name": "X-Team", "value": "ops"}
            ],
            "body": "{\"text\":\"hello\"}",
            "timeout_ms": 4000
        })
    );
    assert_eq!(
        request.header_value("content-type"),
        Some("application/json")
    );
    // The optional fields may be left out, and unknown ones are ignored.
    let minimal: HttpRequest = serde_json::from_value(
        json!({"method": "GET", "url": "https://example.com/", "follow": "a newer field"}),
    )
    .unwrap();
    assert_eq!(minimal, HttpRequest::get("https://example.com/"));
    assert_eq!(
        serde_json::to_value(&minimal).unwrap(),
        json!({"method": "GET", "url": "https://example.com/", "headers": []})
    );
    for (method, name) in [
        (HttpMethod::Get, "GET"),
        (HttpMethod::Post, "POST"),
        (HttpMethod::Put, "PUT"),
        (HttpMethod::Patch, "PATCH"),
        (HttpMethod::Delete, "DELETE"),
    ] {
        assert_eq!(method.as_str(), name);
        assert_eq!(serde_json::to_value(method).unwrap(), json!(name));
    }
    assert!(serde_json::from_value::<HttpMethod>(json!("TRACE")).is_err());
}

#[test]
fn http_response_decoding_and_errors() {
    let host = MockHost::new().respond(
        HTTP_REQUEST,
        json!({"status": 500, "headers": [{"name": "Content-Type", "value": "text/plain"}],
               "body": "database\non fire"}),
    );
    let response = host
        .http_request(&HttpRequest::get("https://example.com/"))
        .unwrap();
    assert_eq!(
        host.calls(),
        vec![(
            HTTP_REQUEST.to_owned(),
            json!({"method": "GET", "url": "https://example.com/", "headers": []})
        )]
    );
    assert!(!response.is_success());
    assert!(!response.truncated);
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(
        response.error_message("the webhook at example.com"),
        "the webhook at example.com answered HTTP 500: database on fire"
    );
    assert_eq!(
        HttpResponse::new(502, "  \n").error_message("the Slack webhook"),
        "the Slack webhook answered HTTP 502 with an empty body"
    );
    let long = HttpResponse::new(404, "x".repeat(250));
    assert_eq!(
        long.error_message("it"),
        format!("it answered HTTP 404: {}…", "x".repeat(200))
    );
    assert!(HttpResponse::new(204, "").is_success());
    assert_eq!(
        serde_json::to_value(HttpResponse::new(200, "ok")).unwrap(),
        json!({"status": 200, "headers": [], "body": "ok"})
    );

    // A refused destination is the host's error, unchanged.
    let refusing = MockHost::new().respond_with(HTTP_REQUEST, |_| {
        Err(
            "10.0.0.5 is a private address; plugins may call it only if the operator allows it"
                .into(),
        )
    });
    assert_eq!(
        refusing.http_request(&HttpRequest::get("http://10.0.0.5/")),
        Err(
            "10.0.0.5 is a private address; plugins may call it only if the operator allows it"
                .into()
        )
    );
}

#[test]
fn urls_are_redacted() {
    let url = "http://127.0.0.1:9/services/T000/B000/SECRET";
    assert_eq!(
        redact_url(
            "connecting to http://127.0.0.1:9/services/T000/B000/SECRET failed",
            url,
            "the Slack webhook"
        ),
        "connecting to the Slack webhook failed"
    );
    assert_eq!(
        redact_url("127.0.0.1:9/services/T000/B000/SECRET: refused", url, "X"),
        "X: refused"
    );
    assert_eq!(
        redact_url("path /services/T000/B000/SECRET", url, "X"),
        "path /…"
    );
    assert_eq!(redact_url("nothing to hide", url, "X"), "nothing to hide");
    assert_eq!(
        redact_url("to http://h/", "http://h/", "the hook"),
        "to the hook"
    );
    assert_eq!(redact_url("a", "", "X"), "a");
}

#[test]
fn url_hosts() {
    assert_eq!(
        http_url_host("https://a.example.com/x?y"),
        Some("a.example.com")
    );
    assert_eq!(http_url_host("http://user:pw@h:8080/p"), Some("h:8080"));
    assert_eq!(http_url_host("https://"), None);
    assert_eq!(http_url_host("https:///path"), None);
    assert_eq!(http_url_host("ftp://h/x"), None);
    assert_eq!(http_url_host("https://h/a b"), None);
    assert_eq!(http_url_host("h/x"), None);
}
