//! The plugin as the server sees it: through its ABI, in process, with a
//! scripted host standing in for the server's data.

use vigilo_sdk::harness::{MockHost, PluginTestHarness, Registration};
use vigilo_sdk::{json, PluginKind, Value, WORK_ITEMS_COUNT_BY_STATUS};

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process(kanban_overview::vigilo_plugin_module)
}

fn host_with(counts: Value) -> MockHost {
    MockHost::new().respond(WORK_ITEMS_COUNT_BY_STATUS, counts)
}

#[test]
fn is_a_valid_plugin() {
    plugin().assert_valid_plugin();
    let manifest = plugin().manifest();
    assert_eq!(manifest.name, "kanban_overview");
    assert_eq!(manifest.kind, PluginKind::DashboardWidget);
    assert_eq!(manifest.compatible_with, ">=0.1, <0.2");
}

#[test]
fn registers_the_widget() {
    let registrations = plugin().registrations();
    assert_eq!(registrations.len(), 1);
    let Registration::DashboardWidget {
        name,
        label,
        config_schema,
        ..
    } = &registrations[0]
    else {
        panic!("expected a dashboard widget, got {registrations:?}");
    };
    assert_eq!(name, "kanban_overview");
    assert_eq!(label, "Kanban overview");
    assert_eq!(config_schema["type"], "object");
}

#[test]
fn counts_by_status_across_kinds() {
    let host = host_with(json!({
        "changes": {"draft": 2, "approved": 1},
        "incidents": {"open": 1},
        "tasks": {"todo": 3, "done": 5}
    }));
    let data = plugin()
        .render("kanban_overview", "ops", json!({}), &host)
        .unwrap();
    assert_eq!(
        data,
        json!({
            "workspace": "ops",
            "columns": ["draft", "approved", "todo", "open", "done"],
            "rows": [
                {"kind": "changes", "label": "Changes",
                 "counts": {"draft": 2, "approved": 1, "todo": 0, "open": 0, "done": 0}, "total": 3},
                {"kind": "incidents", "label": "Incidents",
                 "counts": {"draft": 0, "approved": 0, "todo": 0, "open": 1, "done": 0}, "total": 1},
                {"kind": "tasks", "label": "Tasks",
                 "counts": {"draft": 0, "approved": 0, "todo": 3, "open": 0, "done": 5}, "total": 8}
            ],
            "column_totals": {"draft": 2, "approved": 1, "todo": 3, "open": 1, "done": 5},
            "total": 12
        })
    );
    // The widget read through the host API, once, for its workspace.
    assert_eq!(
        host.calls(),
        vec![(
            WORK_ITEMS_COUNT_BY_STATUS.to_owned(),
            json!({"workspace": "ops"})
        )]
    );
}

#[test]
fn every_status_of_each_workflow_is_shown_in_order_with_zeros() {
    // A server that sends each workflow's statuses.
    let host = host_with(json!({
        "changes": {"approved": 2},
        "incidents": {},
        "tasks": {"doing": 1},
        "statuses": {
            "changes": ["draft", "pending_approval", "approved", "rejected", "in_progress", "done"],
            "incidents": ["open", "investigating", "mitigated", "resolved"],
            "tasks": ["todo", "doing", "done"]
        }
    }));
    let data = plugin()
        .render("kanban_overview", "ops", json!({}), &host)
        .unwrap();
    let lanes = data["lanes"].as_array().expect("lanes");
    let lane = |kind: &str| {
        lanes
            .iter()
            .find(|l| l["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} lane"))
    };
    assert_eq!(
        lane("changes")["statuses"],
        json!([
            {"status": "draft", "count": 0},
            {"status": "pending_approval", "count": 0},
            {"status": "approved", "count": 2},
            {"status": "rejected", "count": 0},
            {"status": "in_progress", "count": 0},
            {"status": "done", "count": 0}
        ])
    );
    assert_eq!(lane("incidents")["total"], 0);
    assert_eq!(
        lane("incidents")["statuses"].as_array().unwrap().len(),
        4,
        "an empty workflow still shows every status"
    );
    assert_eq!(
        lane("tasks")["statuses"][1],
        json!({"status": "doing", "count": 1})
    );
    // The grid's columns hold every status too, not only counted ones.
    let columns: Vec<&str> = data["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for status in ["draft", "investigating", "mitigated", "todo", "resolved"] {
        assert!(
            columns.contains(&status),
            "{status} missing from {columns:?}"
        );
    }
    assert_eq!(data["total"], 3);
}

#[test]
fn an_empty_workspace_renders_empty_rows() {
    let host = host_with(json!({}));
    let data = plugin()
        .render("kanban_overview", "new", json!({}), &host)
        .unwrap();
    assert_eq!(data["columns"], json!([]));
    assert_eq!(data["total"], 0);
    let kinds: Vec<_> = data["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [json!("changes"), json!("incidents"), json!("tasks")]
    );
}

#[test]
fn config_pins_columns_and_selects_kinds() {
    let host = host_with(json!({
        "changes": {"draft": 1, "weird_state": 2, "closed": 1, "alpha_state": 1},
        "incidents": {"open": 4},
        "tasks": {"todo": 1}
    }));
    let config = json!({"columns": ["closed", "submitted"], "kinds": ["changes", "tasks"]});
    let data = plugin()
        .render("kanban_overview", "ops", config, &host)
        .unwrap();
    // Pinned first (even when empty), then the rest in workflow order with
    // unknown statuses (alphabetically) before the finished ones.
    assert_eq!(
        data["columns"],
        json!([
            "closed",
            "submitted",
            "draft",
            "todo",
            "alpha_state",
            "weird_state"
        ])
    );
    let kinds: Vec<_> = data["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("changes"), json!("tasks")]);
    assert_eq!(data["total"], 6);
    assert_eq!(data["column_totals"]["submitted"], 0);
}

#[test]
fn bad_config_and_host_errors_are_reported() {
    let host = host_with(json!({}));
    let error = plugin()
        .render("kanban_overview", "ops", json!({"kinds": ["bugs"]}), &host)
        .unwrap_err();
    assert_eq!(
        error,
        "config `kinds` contains \"bugs\"; use changes, incidents or tasks"
    );

    let failing = MockHost::new().respond_with(WORK_ITEMS_COUNT_BY_STATUS, |_| {
        Err("workspace not found".into())
    });
    let error = plugin()
        .render("kanban_overview", "gone", json!({}), &failing)
        .unwrap_err();
    assert_eq!(error, "workspace not found");

    let odd = host_with(json!({"changes": "lots"}));
    let error = plugin()
        .render("kanban_overview", "ops", json!({}), &odd)
        .unwrap_err();
    assert!(error.contains("unexpected shape"), "{error}");
}

#[test]
fn breaks_open_incidents_down_by_a_custom_field() {
    let host = host_with(json!({
        "incidents": {"open": 2, "mitigated": 1, "resolved": 4},
        "statuses": {"changes": [], "incidents": ["open", "investigating", "mitigated", "resolved"], "tasks": []}
    }))
    .respond_with(vigilo_sdk::host::WORK_ITEMS_LIST, |input| {
        let item = |id: i64, severity: Value| {
            json!({"id": id, "kind": "incident", "title": "x", "status": input["status"],
                   "fields": {"severity": severity}, "created_at": "", "updated_at": ""})
        };
        assert_eq!(input["kind"], "incident");
        Ok(match input["status"].as_str().unwrap() {
            "open" if input["before"].is_null() => {
                json!({"items": [item(9, json!("high"))], "next_before": 9})
            }
            "open" => json!({"items": [item(4, json!("high"))], "next_before": null}),
            "mitigated" => json!({"items": [item(3, Value::Null)], "next_before": null}),
            "investigating" => json!({"items": [], "next_before": null}),
            other => panic!("a finished status was listed: {other}"),
        })
    });
    let data = plugin()
        .render(
            "kanban_overview",
            "ops",
            json!({"kinds": ["incidents"], "breakdown": "severity"}),
            &host,
        )
        .unwrap();
    assert_eq!(
        data["breakdown"],
        json!({"field": "severity", "counts": {"high": 2}, "without": 1, "total": 3, "capped": false})
    );
}

#[test]
fn checks_its_own_options_beyond_the_schema() {
    let plugin = plugin();
    let twice = plugin.call(
        vigilo_sdk::wire::WIDGET_VALIDATE_CONFIG,
        &json!({"name": "kanban_overview", "config": {"columns": ["open", " open"]}}),
        &MockHost::new(),
    );
    let error = twice.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the status open is pinned twice"),
        "{error}"
    );
    let fine = plugin
        .call(
            vigilo_sdk::wire::WIDGET_VALIDATE_CONFIG,
            &json!({"name": "kanban_overview", "config": {"columns": [" open "]}}),
            &MockHost::new(),
        )
        .unwrap();
    assert_eq!(fine["config"]["columns"], json!(["open"]));
    assert_eq!(
        plugin.manifest().capabilities,
        Some(vigilo_sdk::Capabilities::none().with(vigilo_sdk::Capability::WorkItemsRead))
    );
}

#[test]
fn serves_its_frontend_half() {
    let plugin = plugin();
    let js = String::from_utf8(plugin.asset("kanban_overview.js").unwrap()).unwrap();
    assert!(js.contains("\"kanban_overview-board\""));
    assert!(plugin.asset("kanban_overview.css").is_some());
}
