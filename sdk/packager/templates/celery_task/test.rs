//! The task run as the server runs it, with a host that answers like a
//! server.

use vigilo_sdk::harness::{MockHost, PluginTestHarness};
use vigilo_sdk::{json, WORK_ITEMS_COUNT_BY_STATUS};

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process({{name}}::vigilo_plugin_module)
}

#[test]
fn counts_the_workspaces_unfinished_work() {
    let host = MockHost::new().respond(
        WORK_ITEMS_COUNT_BY_STATUS,
        json!({"changes": {"draft": 1, "done": 9}, "incidents": {"open": 2}, "tasks": {"todo": 3}}),
    );
    let summary = plugin()
        .run_task("{{name}}", json!({"workspace": "ops"}), "2026-12-24T07:00:00Z", &host)
        .unwrap();
    assert_eq!(summary, json!({"at": "2026-12-24T07:00:00Z", "workspace": "ops", "open": 6}));
}

#[test]
fn without_a_workspace_it_says_what_to_set() {
    let error = plugin()
        .run_task("{{name}}", json!({}), "2026-12-24T07:00:00Z", &MockHost::new())
        .unwrap_err();
    assert!(error.contains("set `workspace`"), "{error}");
}
