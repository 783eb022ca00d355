//! How a plugin moves between tiers by itself: a server that died inside
//! an in-process plugin call names the plugin, the call and the time at
//! the next start and runs the plugin in a worker from then on; a plugin
//! that keeps panicking in process is moved to a worker. Both moves are
//! the installation's policy and are in its audit chain.

use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use vigilo_host::plugins::Isolation;
use vigilo_tests::plugins::fixture_plugin;
use vigilo_tests::process::{config_file, create_admin, server_command, ServerProcess};
use vigilo_tests::{expect, on_both_databases, Api, Cli, TestDb, TestServer};

use crate::create_workspace;

on_both_databases!(
    a_server_that_died_in_a_plugin_call_names_it_and_runs_it_in_a_worker,
    a_plugin_that_keeps_panicking_in_process_moves_to_a_worker,
);

fn a_server_that_died_in_a_plugin_call_names_it_and_runs_it_in_a_worker(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let hostile = fixture_plugin("hostile").display().to_string();
    let (config, port) = config_file(
        dir.path(),
        "vigilo",
        &db.url,
        &format!("installed_plugins = [{hostile:?}]\nplugin_isolation = \"in_process\"\n"),
    );
    let token = create_admin(&config, "root@example.com");
    let mut first =
        ServerProcess::spawn(server_command(&config), port, &dir.path().join("first.log"));
    first.wait_healthy();
    let admin = Api::new(first.url(), Some(&token));
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "h", "label": "Hostile", "type": "fixture_hostile", "applies_to": ["task"]}),
    );
    let item = |value: &str| json!({"kind": "task", "title": "t", "fields": {"h": value}});
    expect(
        &admin.post("/api/v1/workspaces/ops/items", item("fine")),
        201,
    );
    let shown = expect(&admin.get("/api/v1/plugins/fixture_hostile"), 200).clone();
    assert_eq!(shown["isolation"], "in_process", "{shown:#}");

    // In process, a segfault in the plugin ends the server.
    let _ = ureq::post(&format!("{}/api/v1/workspaces/ops/items", first.url()))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(item("segfault"));
    let ended = first
        .exit_within(Duration::from_secs(20))
        .expect("the segfault should have ended the server");
    assert!(!ended.success(), "{ended:?}");

    // The next start names the plugin, the call and when it started, and
    // runs the plugin in a worker from now on.
    let second = ServerProcess::spawn(
        server_command(&config),
        port,
        &dir.path().join("second.log"),
    );
    second.wait_healthy();
    let log = second.log();
    let line = log
        .lines()
        .find(|l| l.contains("stopped during an in-process call"))
        .unwrap_or_else(|| panic!("the log does not name the call:\n{log}"));
    assert!(line.contains("fixture_hostile"), "{line}");
    assert!(line.contains("field_type.validate"), "{line}");
    let shown = expect(&admin.get("/api/v1/plugins/fixture_hostile"), 200).clone();
    assert_eq!(shown["isolation"], "worker", "{shown:#}");
    assert_eq!(shown["isolation_source"], "policy", "{shown:#}");
    let policy = &shown["policy"];
    assert_eq!(
        policy["interrupted_call"], "field_type.validate",
        "{shown:#}"
    );
    assert_eq!(policy["decided_by"], "system", "{shown:#}");
    let at = policy["interrupted_at"].as_str().unwrap();
    assert!(
        line.contains(at),
        "the log and the API give one time: {at} / {line}"
    );
    assert!(
        policy["reason"]
            .as_str()
            .unwrap()
            .contains("runs in a worker from now on"),
        "{shown:#}"
    );
    let cli = Cli::with(second.url(), &token, None);
    let listed = cli.run(&["plugin", "list", "--all"]).ok().stdout.clone();
    let row = listed
        .lines()
        .find(|l| l.contains("fixture_hostile"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("worker"), "{listed}");
    assert!(
        row.contains("field_type.validate") && row.contains(at),
        "{listed}"
    );

    // Now the same value costs one call, not the server.
    let crashed = admin.post("/api/v1/workspaces/ops/items", item("segfault"));
    assert_eq!(crashed.code(), "plugin_crashed", "{}", crashed.text);
    expect(&admin.get("/healthz"), 200);
    expect(
        &admin.post("/api/v1/workspaces/ops/items", item("fine")),
        201,
    );

    // The move is in the installation's audit chain, which verifies.
    let events = admin.installation_audit("action=plugin.isolation");
    let event = events
        .find("plugin.isolation")
        .expect("the move is audited");
    assert_eq!(event.target, "fixture_hostile");
    let verified = expect(&admin.get("/api/v1/audit/verify?full=true"), 200).clone();
    assert_eq!(verified["intact"], true, "{verified:#}");

    // Once the plugin is fixed (or trusted again), an admin hands the
    // choice back to the configuration; from the next start it runs in
    // process again. A tier that is not one is refused.
    let bad = cli.run(&["plugin", "tier", "fixture_hostile", "sideways"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let unknown = admin.put(
        "/api/v1/plugins/fixture_hostile/tier",
        json!({"tier": "nowhere"}),
    );
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    let back = cli
        .run(&["--json", "plugin", "tier", "fixture_hostile", "config"])
        .ok()
        .json();
    assert_eq!(
        back["isolation"], "worker",
        "it runs where it runs: {back:#}"
    );
    assert_eq!(back["policy"]["decided_by"], "root@example.com", "{back:#}");
    assert!(
        back["policy"]["reason"]
            .as_str()
            .unwrap()
            .contains("back to the configuration"),
        "{back:#}"
    );
    assert_eq!(
        admin.installation_audit("action=plugin.isolation").len(),
        2,
        "the hand-back is audited"
    );
    let mut second = second;
    assert!(second.terminate());
    second
        .exit_within(Duration::from_secs(15))
        .expect("the server stops");
    let third = ServerProcess::spawn(server_command(&config), port, &dir.path().join("third.log"));
    third.wait_healthy();
    let shown = expect(&admin.get("/api/v1/plugins/fixture_hostile"), 200).clone();
    assert_eq!(shown["isolation"], "in_process", "{shown:#}");
    assert_eq!(shown["isolation_source"], "default", "{shown:#}");
}

fn a_plugin_that_keeps_panicking_in_process_moves_to_a_worker(db: TestDb) {
    let server = TestServer::with_plugins_and(db, &["call_panic"], |config| {
        config.plugin_isolation = Isolation::InProcess;
        config.plugin_panic_limit = 3;
    });
    let admin = server.admin();
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "shout", "label": "Shout", "type": "fixture_call_panic", "applies_to": ["task"]}),
    );
    let post = || {
        admin.post(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "task", "title": "t", "fields": {"shout": "hi"}}),
        )
    };
    for attempt in 1..=3 {
        let r = post();
        assert_eq!(r.code(), "plugin_panicked", "attempt {attempt}: {}", r.text);
    }
    // It is loaded again, from the same file, in a worker of its own.
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = expect(&admin.get("/api/v1/plugins/fixture_call_panic"), 200).clone();
        if shown["state"] == "loaded" && shown["isolation"] == "worker" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(shown["isolation"], "worker", "{shown:#}");
    assert_eq!(shown["isolation_source"], "policy", "{shown:#}");
    assert_eq!(shown["policy"]["decided_by"], "system", "{shown:#}");
    let reason = shown["policy"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("panicked 3 times in a row in process"),
        "{reason}"
    );
    let all = expect(&admin.get("/api/v1/plugins?all=true"), 200).clone();
    let moved = all["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["reason"] == "moved_to_worker")
        .unwrap_or_else(|| panic!("{all:#}"));
    assert_eq!(moved["name"], "fixture_call_panic");
    // Its calls still panic, now in the worker, where a fault costs one call.
    let r = post();
    assert_eq!(r.code(), "plugin_panicked", "{}", r.text);
    expect(&admin.get("/healthz"), 200);
    // The move is in the audit chain, which still verifies.
    let events = admin.installation_audit("action=plugin.isolation");
    assert_eq!(events.count("plugin.isolation"), 1);
    let verified = expect(&admin.get("/api/v1/audit/verify?full=true"), 200).clone();
    assert_eq!(verified["intact"], true, "{verified:#}");
}
