//! A plugin upgrade that asks for more of the host API than was approved
//! waits, disabled, until a platform admin approves it.

use super::*;

on_both_databases!(an_upgrade_asking_for_more_waits_for_approval);

/// A new version that asks for more than was approved loads disabled,
/// says what it waits for, cannot simply be enabled, and runs once a
/// platform admin approves; the approval is audited and outlives a restart.
fn an_upgrade_asking_for_more_waits_for_approval(db: TestDb) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = plugins.join("libfixture_host_calls.so");
    std::fs::copy(vigilo_tests::plugins::fixture_plugin("host_calls"), &file).unwrap();
    let watched = plugins.clone();
    let start = || {
        let watched = watched.clone();
        TestServer::start_with(db.shared(), move |config| {
            config.plugins_dir = Some(watched);
            config.task_settings.insert(
                "fixture_host_calls".into(),
                json!({"calls": [call("kv.set", json!({"key": "kept", "value": 1}))]}),
            );
        })
    };
    let server = start();
    let admin = server.admin();
    let plugin =
        |admin: &Api| expect(&admin.get("/api/v1/plugins/fixture_host_calls"), 200).clone();
    let wait_for = |admin: &Api, what: &str, check: &dyn Fn(&Value) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let seen = plugin(admin);
            if check(&seen) {
                return seen;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: {seen:#}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for(&admin, "the first version loads", &|p| {
        p["state"] == "loaded"
    });
    // Its first load approved what it declares, for the installation.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while server
        .db
        .number("SELECT COUNT(*) FROM plugin_approvals WHERE name = 'fixture_host_calls'")
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first load approved nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // 0.2.0 also asks to notify and to read certificates.
    let staged = dir.path().join("staged.so");
    std::fs::copy(
        vigilo_tests::plugins::fixture_plugin("host_calls_more"),
        &staged,
    )
    .unwrap();
    std::fs::rename(&staged, &file).unwrap();
    let waiting = wait_for(&admin, "the new version waits", &|p| {
        p["version"] == "0.2.0" && p["state"] == "disabled"
    });
    assert_eq!(waiting["reason"], "awaiting_approval", "{waiting:#}");
    assert_eq!(
        waiting["message"],
        "new capabilities awaiting approval: notify, certificates.read"
    );
    let refused = admin.post("/api/v1/plugins/fixture_host_calls/enable", json!({}));
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(
        refused.text.contains("approve them first"),
        "{}",
        refused.text
    );
    // Its task does not run meanwhile.
    let idle = admin.post("/api/v1/scheduler/tasks/fixture_host_calls/run", json!({}));
    assert_ne!(idle.status, 200, "{}", idle.text);

    let cli = vigilo_tests::Cli::with(&server.url, &server.admin_token, None);
    let approved = cli
        .run(&["plugin", "approve", "fixture_host_calls"])
        .ok()
        .stdout
        .clone();
    assert!(
        approved.contains("Approved for plugin fixture_host_calls 0.2.0")
            && approved.contains("notify, certificates.read")
            && approved.contains("It is loaded."),
        "{approved}"
    );
    let run = expect(
        &admin.post("/api/v1/scheduler/tasks/fixture_host_calls/run", json!({})),
        200,
    )
    .clone();
    assert_eq!(run["outcome"], "ok", "{run:#}");
    let events = expect(&admin.get("/api/v1/audit/events?limit=500"), 200).clone();
    let approval = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "plugin.approve")
        .unwrap_or_else(|| panic!("no plugin.approve in {events:#}"))
        .clone();
    assert_eq!(approval["actor"]["label"], "admin@example.com");
    assert_eq!(
        approval["details"]["added"],
        json!(["notify", "certificates.read"])
    );
    assert!(events["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "plugin.awaiting_approval"));

    // After a restart, the approved version loads at once.
    drop(server);
    let server = start();
    wait_for(
        &server.admin(),
        "the approved version loads after a restart",
        &|p| p["version"] == "0.2.0" && p["state"] == "loaded",
    );

    // Uninstalled with --purge: what it stored and its approval go too.
    let stored = |server: &TestServer| {
        server
            .db
            .number("SELECT COUNT(*) FROM plugin_kv WHERE plugin = 'fixture_host_calls'")
    };
    assert_eq!(stored(&server), 1, "the run stored its entry");
    let (_, purged) = vigilo_tests::block_on(vigilo_host::plugin_install::uninstall(
        &server.config,
        "fixture_host_calls",
        true,
    ))
    .expect("uninstall --purge");
    assert_eq!(purged, Some(1));
    assert_eq!(stored(&server), 0);
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM plugin_approvals WHERE name = 'fixture_host_calls'"),
        0
    );
    assert!(!file.exists());
    let events = expect(
        &server
            .admin()
            .get("/api/v1/audit/events?action=plugin.purge"),
        200,
    )
    .clone();
    assert_eq!(
        events["events"][0]["details"]["stored_entries"], 1,
        "{events:#}"
    );
}
