//! The task as the server runs it: through its ABI, in process, with a
//! scripted host standing in for the server.

use std::sync::{Arc, Mutex};

use incident_autoresolve::days_before;
use vigilo_sdk::harness::{MockHost, PluginTestHarness};
use vigilo_sdk::host::{
    KV_SET, LOG_WRITE, WORKSPACES_LIST, WORK_ITEMS_LIST, WORK_ITEMS_TRANSITION,
};
use vigilo_sdk::{json, Capability, Value};

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process(incident_autoresolve::vigilo_plugin_module)
}

fn incident(id: i64) -> Value {
    json!({"id": id, "kind": "incident", "title": format!("incident {id}"), "status": "mitigated",
           "created_at": "2026-11-01T00:00:00.000000Z", "updated_at": "2026-11-02T00:00:00.000000Z"})
}

#[test]
fn is_a_valid_plugin_that_declares_what_it_uses() {
    plugin().assert_valid_plugin();
    let declared = plugin().manifest().capabilities.expect("declared");
    for capability in [
        Capability::WorkItemsRead,
        Capability::WorkItemsWrite,
        Capability::Storage,
        Capability::Log,
    ] {
        assert!(declared.allows(capability), "{capability}");
    }
    assert!(!declared.allows(Capability::Http));
    assert!(!declared.allows(Capability::Notify));
}

#[test]
fn resolves_long_mitigated_incidents_page_by_page_and_reports_each() {
    let moved: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = moved.clone();
    let host = MockHost::new()
        .respond(
            WORKSPACES_LIST,
            json!({"workspaces": [{"slug": "ops", "name": "Ops"}]}),
        )
        .respond_with(WORK_ITEMS_LIST, |input| {
            assert_eq!(input["status"], "mitigated");
            assert_eq!(input["kind"], "incident");
            assert_eq!(input["updated_before"], "2026-11-30T06:00:00Z");
            Ok(if input["before"].is_null() {
                json!({"items": [incident(9), incident(7)], "next_before": 7})
            } else {
                json!({"items": [incident(3)], "next_before": null})
            })
        })
        .respond_with(WORK_ITEMS_TRANSITION, move |input| {
            seen.lock().unwrap().push(input.clone());
            if input["id"] == 7 {
                return Err("incident 7 is open and cannot move to resolved".into());
            }
            Ok(
                json!({"id": input["id"], "kind": "incident", "title": "", "status": "resolved",
                      "created_at": "", "updated_at": ""}),
            )
        })
        .respond(
            KV_SET,
            json!({"key": "last-run", "value": {}, "version": 1}),
        )
        .respond(LOG_WRITE, json!({"dropped": false}));
    let host = Arc::new(host);
    let summary = plugin()
        .run_task(
            "incident_autoresolve",
            json!({}),
            "2026-12-07T06:00:00Z",
            &host,
        )
        .unwrap();
    assert_eq!(summary["resolved"], 2, "{summary:#}");
    assert_eq!(summary["workspaces"][0]["resolved"], json!([9, 3]));
    assert_eq!(summary["workspaces"][0]["failed"][0]["id"], 7);
    let moved = moved.lock().unwrap().clone();
    assert_eq!(moved.len(), 3);
    assert_eq!(moved[0]["status"], "resolved");
    assert_eq!(
        moved[0]["comment"],
        "Resolved automatically: mitigated and unchanged for 7 days."
    );
    let stored = host
        .calls()
        .into_iter()
        .find(|(method, _)| method == KV_SET)
        .expect("the summary is stored");
    assert_eq!(stored.1["workspace"], "ops");
    assert_eq!(stored.1["value"]["resolved"], json!([9, 3]));
}

#[test]
fn refuses_a_bad_setting_and_passes_on_host_errors() {
    let error = plugin()
        .run_task(
            "incident_autoresolve",
            json!({"after_days": 0}),
            "2026-12-07T06:00:00Z",
            &MockHost::new(),
        )
        .unwrap_err();
    assert_eq!(
        error,
        "`after_days` must be a whole number of days from 1 to 365, not 0"
    );
    let refusing = MockHost::new().respond_with(WORKSPACES_LIST, |_| {
        Err("capability_not_declared: ...".into())
    });
    let error = plugin()
        .run_task(
            "incident_autoresolve",
            json!({}),
            "2026-12-07T06:00:00Z",
            &refusing,
        )
        .unwrap_err();
    assert!(error.starts_with("capability_not_declared"), "{error}");
}

#[test]
fn counts_days_back_across_months_years_and_leap_days() {
    assert_eq!(
        days_before("2026-12-07T06:00:00Z", 7).unwrap(),
        "2026-11-30T06:00:00Z"
    );
    assert_eq!(
        days_before("2026-01-03T00:00:00Z", 5).unwrap(),
        "2025-12-29T00:00:00Z"
    );
    assert_eq!(
        days_before("2028-03-01T12:30:00Z", 1).unwrap(),
        "2028-02-29T12:30:00Z"
    );
    assert_eq!(
        days_before("2026-03-01T12:30:00.123456Z", 365).unwrap(),
        "2025-03-01T12:30:00Z"
    );
    assert!(days_before("2026-03-01 12:30", 1).is_err());
    assert!(days_before("2026-03-01T12:30:00+02:00", 1).is_err());
}
