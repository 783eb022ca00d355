//! The task as the server sees it: through its ABI, in process, with a
//! scripted host standing in for the server.

use cert_expiry_digest::{CERTIFICATES_EXPIRING, INTEGRATIONS_NOTIFY};
use vigilo_sdk::harness::{MockHost, PluginTestHarness, Registration};
use vigilo_sdk::{json, PluginKind, Schedule, Value};

const TASK: &str = "cert_expiry_digest";
const NOW: &str = "2026-11-28T07:00:00Z";

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process(cert_expiry_digest::vigilo_plugin_module)
}

fn api() -> Value {
    json!({"id": 1, "name": "api.example.com", "subject": "CN=api.example.com",
           "not_after": "2026-12-01T00:00:00Z", "days_left": 3, "expired": false})
}

fn old() -> Value {
    json!({"id": 2, "name": "old.example.com", "subject": "CN=old.example.com",
           "not_after": "2026-11-26T00:00:00Z", "days_left": -2, "expired": true})
}

fn www() -> Value {
    json!({"id": 3, "name": "www.dev.example.com", "subject": "CN=www.dev.example.com",
           "not_after": "2026-12-20T12:00:00Z", "days_left": 22, "expired": false})
}

fn expiring() -> Value {
    json!({"workspaces": [
        {"workspace": "ops", "certificates": [old(), api()]},
        {"workspace": "dev", "certificates": [www()]}
    ]})
}

fn delivered(integration: &str, adapter: &str) -> Value {
    json!({"deliveries": [{"integration": integration, "adapter": adapter, "ok": true, "error": null}]})
}

/// Calls to `method`, in order.
fn calls_to(host: &MockHost, method: &str) -> Vec<Value> {
    host.calls()
        .into_iter()
        .filter(|(m, _)| m == method)
        .map(|(_, input)| input)
        .collect()
}

#[test]
fn is_a_valid_plugin() {
    plugin().assert_valid_plugin();
    let manifest = plugin().manifest();
    assert_eq!(manifest.name, "cert_expiry_digest");
    assert_eq!(manifest.kind, PluginKind::CeleryTask);
    assert_eq!(manifest.version, "0.1.0");
    assert_eq!(manifest.compatible_with, ">=0.1, <0.2");
}

#[test]
fn registers_a_daily_task_at_seven_utc() {
    let registrations = plugin().registrations();
    assert_eq!(registrations.len(), 1);
    let Registration::CeleryTask {
        name,
        label,
        schedule,
        config_schema,
        ..
    } = &registrations[0]
    else {
        panic!("expected a task, got {registrations:?}");
    };
    assert_eq!(name, TASK);
    assert_eq!(label, "Certificate expiry digest");
    assert_eq!(schedule, &Schedule::Cron("0 7 * * *".into()));
    assert_eq!(
        config_schema["properties"]["within_days"]["type"],
        "integer"
    );
    assert_eq!(config_schema["properties"]["within_days"]["default"], 30);
    assert_eq!(config_schema["properties"]["integration"]["type"], "string");
}

#[test]
fn sends_one_digest_per_workspace() {
    let host = MockHost::new()
        .respond(CERTIFICATES_EXPIRING, expiring())
        .respond_with(INTEGRATIONS_NOTIFY, |input| {
            Ok(match input["workspace"].as_str() {
                Some("ops") => json!({"deliveries": [
                    {"integration": "ops-slack", "adapter": "slack_notifier", "ok": true, "error": null},
                    {"integration": "ops-hook", "adapter": "webhook", "ok": false,
                     "error": "the webhook at hooks.example.com answered HTTP 500: down"}
                ]}),
                _ => delivered("dev-slack", "slack_notifier"),
            })
        });
    let summary = plugin().run_task(TASK, json!({}), NOW, &host).unwrap();
    assert_eq!(
        summary,
        json!({
            "workspaces": 2,
            "certificates": 3,
            "deliveries_ok": 2,
            "deliveries_failed": 1,
            "errors": ["ops: delivery through ops-hook (webhook) failed: the webhook at hooks.example.com answered HTTP 500: down"]
        })
    );

    assert_eq!(
        calls_to(&host, CERTIFICATES_EXPIRING),
        vec![json!({"within_days": 30})]
    );
    let notified = calls_to(&host, INTEGRATIONS_NOTIFY);
    assert_eq!(notified.len(), 2);
    assert_eq!(
        notified[0],
        json!({
            "workspace": "ops",
            "event": {
                "type": "certificate.expiry_digest",
                "workspace": "ops",
                "title": "2 certificates expiring within 30 days",
                "text": "old.example.com — EXPIRED 1 day ago\napi.example.com — expires 2026-12-01 (3 days left)",
                "data": {"within_days": 30, "certificates": [old(), api()]}
            }
        })
    );
    assert_eq!(
        notified[1],
        json!({
            "workspace": "dev",
            "event": {
                "type": "certificate.expiry_digest",
                "workspace": "dev",
                "title": "1 certificate expiring within 30 days",
                "text": "www.dev.example.com — expires 2026-12-20 (22 days left)",
                "data": {"within_days": 30, "certificates": [www()]}
            }
        })
    );
}

#[test]
fn within_days_and_integration_come_from_the_config() {
    let host = MockHost::new()
        .respond(
            CERTIFICATES_EXPIRING,
            json!({"workspaces": [{"workspace": "ops", "certificates": [api()]}]}),
        )
        .respond(
            INTEGRATIONS_NOTIFY,
            delivered("ops-slack", "slack_notifier"),
        );
    let summary = plugin()
        .run_task(
            TASK,
            json!({"within_days": 7, "integration": "ops-slack"}),
            NOW,
            &host,
        )
        .unwrap();
    assert_eq!(summary["deliveries_ok"], 1);
    assert_eq!(summary["errors"], json!([]));
    assert_eq!(
        calls_to(&host, CERTIFICATES_EXPIRING),
        vec![json!({"within_days": 7})]
    );
    let notified = calls_to(&host, INTEGRATIONS_NOTIFY);
    assert_eq!(notified[0]["integration"], "ops-slack");
    assert_eq!(
        notified[0]["event"]["title"],
        "1 certificate expiring within 7 days"
    );
    assert_eq!(notified[0]["event"]["data"]["within_days"], 7);
}

#[test]
fn a_failed_workspace_does_not_stop_the_others() {
    let host = MockHost::new()
        .respond(CERTIFICATES_EXPIRING, expiring())
        .respond_with(INTEGRATIONS_NOTIFY, |input| {
            match input["workspace"].as_str() {
                Some("ops") => Err("no integration named ops-slack".into()),
                _ => Ok(delivered("dev-slack", "slack_notifier")),
            }
        });
    let summary = plugin()
        .run_task(TASK, json!({"integration": "ops-slack"}), NOW, &host)
        .unwrap();
    assert_eq!(
        summary,
        json!({
            "workspaces": 2,
            "certificates": 3,
            "deliveries_ok": 1,
            "deliveries_failed": 0,
            "errors": ["ops: host method integrations.notify failed: no integration named ops-slack"]
        })
    );
    assert_eq!(calls_to(&host, INTEGRATIONS_NOTIFY).len(), 2);
}

#[test]
fn fails_when_every_workspace_fails() {
    let host = MockHost::new()
        .respond(CERTIFICATES_EXPIRING, expiring())
        .respond_with(INTEGRATIONS_NOTIFY, |_| {
            Err("integrations are offline".into())
        });
    let error = plugin().run_task(TASK, json!({}), NOW, &host).unwrap_err();
    assert_eq!(
        error,
        "could not notify any workspace: \
         ops: host method integrations.notify failed: integrations are offline; \
         dev: host method integrations.notify failed: integrations are offline"
    );
}

#[test]
fn a_malformed_notify_answer_counts_as_a_failure() {
    let host = MockHost::new()
        .respond(
            CERTIFICATES_EXPIRING,
            json!({"workspaces": [{"workspace": "ops", "certificates": [api()]}]}),
        )
        .respond(INTEGRATIONS_NOTIFY, json!({"sent": true}));
    let error = plugin().run_task(TASK, json!({}), NOW, &host).unwrap_err();
    assert_eq!(
        error,
        "could not notify any workspace: ops: host method integrations.notify answered without a `deliveries` list"
    );
}

#[test]
fn a_workspace_without_integrations_is_noted() {
    let host = MockHost::new()
        .respond(
            CERTIFICATES_EXPIRING,
            json!({"workspaces": [{"workspace": "ops", "certificates": [api()]}]}),
        )
        .respond(INTEGRATIONS_NOTIFY, json!({"deliveries": []}));
    let summary = plugin().run_task(TASK, json!({}), NOW, &host).unwrap();
    assert_eq!(
        summary,
        json!({
            "workspaces": 1, "certificates": 1, "deliveries_ok": 0, "deliveries_failed": 0,
            "errors": ["ops: no integration received the digest"]
        })
    );
}

#[test]
fn nothing_expiring_sends_nothing() {
    let host = MockHost::new().respond(CERTIFICATES_EXPIRING, json!({"workspaces": []}));
    let summary = plugin().run_task(TASK, Value::Null, NOW, &host).unwrap();
    assert_eq!(
        summary,
        json!({"workspaces": 0, "certificates": 0, "deliveries_ok": 0, "deliveries_failed": 0, "errors": []})
    );
    assert!(calls_to(&host, INTEGRATIONS_NOTIFY).is_empty());
}

#[test]
fn fails_when_certificates_expiring_fails() {
    let host =
        MockHost::new().respond_with(CERTIFICATES_EXPIRING, |_| Err("database is locked".into()));
    assert_eq!(
        plugin().run_task(TASK, json!({}), NOW, &host),
        Err("host method certificates.expiring failed: database is locked".into())
    );
    let host = MockHost::new().respond(CERTIFICATES_EXPIRING, json!({"certificates": []}));
    assert_eq!(
        plugin().run_task(TASK, json!({}), NOW, &host),
        Err("host method certificates.expiring answered without a `workspaces` list".into())
    );
    // A host that does not know the method at all (an older server).
    let error = plugin()
        .run_task(TASK, json!({}), NOW, &MockHost::new())
        .unwrap_err();
    assert!(
        error.starts_with("host method certificates.expiring failed: "),
        "{error}"
    );
}

#[test]
fn rejects_a_bad_config_before_calling_the_host() {
    let cases = [
        (
            json!({"within_days": 0}),
            "`within_days` must be between 1 and 3650, not 0",
        ),
        (
            json!({"within_days": -5}),
            "`within_days` must be between 1 and 3650, not -5",
        ),
        (
            json!({"within_days": 3651}),
            "`within_days` must be between 1 and 3650, not 3651",
        ),
        (
            json!({"within_days": 7.5}),
            "`within_days` must be a whole number of days, not 7.5",
        ),
        (
            json!({"within_days": "30"}),
            "`within_days` must be a whole number of days, not \"30\"",
        ),
        (
            json!({"integration": 3}),
            "`integration` must be the name of an integration (a string), not 3",
        ),
        (json!([1]), "the configuration must be a JSON object"),
    ];
    for (config, expected) in cases {
        let host = MockHost::new();
        assert_eq!(
            plugin().run_task(TASK, config.clone(), NOW, &host),
            Err(expected.to_owned()),
            "for {config}"
        );
        assert!(host.calls().is_empty(), "for {config}");
    }
    // The bounds themselves are fine.
    for days in [1, 3650] {
        let host = MockHost::new().respond(CERTIFICATES_EXPIRING, json!({"workspaces": []}));
        assert!(plugin()
            .run_task(TASK, json!({"within_days": days}), NOW, &host)
            .is_ok());
    }
}
