//! The plugin called as the server calls it, with a host that answers like
//! a server.

use vigilo_sdk::harness::{MockHost, PluginTestHarness};
use vigilo_sdk::{json, WORK_ITEMS_COUNT_BY_STATUS};

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process({{name}}::vigilo_plugin_module)
}

fn host() -> MockHost {
    MockHost::new().respond(
        WORK_ITEMS_COUNT_BY_STATUS,
        json!({
            "changes": {"draft": 2, "done": 5},
            "incidents": {"open": 1, "resolved": 4},
            "tasks": {"todo": 3}
        }),
    )
}

#[test]
fn counts_what_is_not_finished() {
    let host = host();
    let data = plugin().render("{{name}}", "ops", json!({}), &host).unwrap();
    assert_eq!(data, json!({"open": 6, "kind": "all"}));
    assert_eq!(host.calls(), [(WORK_ITEMS_COUNT_BY_STATUS.to_owned(), json!({"workspace": "ops"}))]);
}

#[test]
fn the_kind_option_narrows_the_count() {
    let data = plugin().render("{{name}}", "ops", json!({"kind": "incidents"}), &host()).unwrap();
    assert_eq!(data, json!({"open": 1, "kind": "incidents"}));
}

#[test]
fn a_host_error_reaches_the_tile() {
    let host = MockHost::new().respond_with(WORK_ITEMS_COUNT_BY_STATUS, |_| Err("no such workspace".into()));
    let error = plugin().render("{{name}}", "ops", json!({}), &host).unwrap_err();
    assert!(error.contains("no such workspace"), "{error}");
}
