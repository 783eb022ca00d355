//! Integration adapters call out through the server (`http.request`), so
//! the egress policy that guards playbook webhook steps guards them too: a
//! loopback or private destination is refused unless the operator allowed
//! it, and nothing reaches it.

use serde_json::json;
use vigilo_tests::capture::CaptureServer;
use vigilo_tests::plugins::reference_plugin;
use vigilo_tests::{expect, on_both_databases, TestDb, TestServer};

use crate::create_workspace;

on_both_databases!(adapters_obey_the_egress_policy);

fn adapters_obey_the_egress_policy(db: TestDb) {
    let far = CaptureServer::start();
    let server = TestServer::start_with(db, |config| {
        config.installed_plugins = vec![reference_plugin("webhook").into()];
        config.watch_plugins_dir = false;
    });
    let admin = server.admin();
    create_workspace(&admin, "ops");
    expect(
        &admin.post(
            "/api/v1/workspaces/ops/integrations",
            json!({"name": "hook", "adapter": "webhook",
                   "config": {"url": far.url.replace("127.0.0.1", "localhost") + "/in",
                              "secret": "a-long-random-shared-secret"}}),
        ),
        201,
    );
    let outcome = expect(
        &admin.post("/api/v1/workspaces/ops/integrations/hook/test", json!({})),
        200,
    )
    .clone();
    assert_eq!(outcome["ok"], false, "{outcome}");
    let error = outcome["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("loopback") || error.contains("private"),
        "the refusal says why: {error}"
    );
    assert!(
        !error.contains("127.0.0.1"),
        "the refusal does not echo the address: {error}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(far.requests().is_empty(), "nothing reached the far end");

    // The delivery log records the refusal.
    let deliveries = expect(
        &admin.get("/api/v1/workspaces/ops/integrations/hook/deliveries"),
        200,
    )
    .clone();
    assert_eq!(deliveries["deliveries"][0]["ok"], false, "{deliveries}");
}
