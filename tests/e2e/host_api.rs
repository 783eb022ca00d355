//! The host API from real plugins in a real server: a periodic task and a
//! dashboard tile (the `host_calls` fixture builds) make the calls their
//! configuration lists, and the answers, the stored data and the audit log
//! show what the server did with them: work items read and written through
//! the domain's rules and audited as the plugin, settings, the key-value
//! store with compare-and-set, undeclared capabilities refused, and no
//! reach into another workspace.

use serde_json::{json, Value};
use vigilo_tests::{expect, on_both_databases, Api, TestDb, TestServer};

use crate::create_workspace;

mod upgrades;

/// The answers of a `fixture_host_calls` run or tile: one per call.
fn answers(output: &Value) -> Vec<Value> {
    output["answers"]
        .as_array()
        .unwrap_or_else(|| panic!("no answers in {output:#}"))
        .clone()
}

fn ok(answer: &Value) -> &Value {
    assert!(answer["error"].is_null(), "the call failed: {answer:#}");
    &answer["ok"]
}

fn error(answer: &Value) -> &str {
    answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("the call did not fail: {answer:#}"))
}

fn call(method: &str, input: Value) -> Value {
    json!({"method": method, "input": input})
}

/// Two workspaces, `ops` (with a `severity` field on incidents and three
/// incidents) and `other` (with one), as the platform admin sees them.
fn two_workspaces(admin: &Api) -> i64 {
    create_workspace(admin, "ops");
    create_workspace(admin, "other");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "severity", "label": "Severity", "type": "select",
               "options": ["low", "high"], "applies_to": ["incident"]}),
    );
    for (title, severity) in [
        ("Disk full on db-2", "high"),
        ("Slow search", "low"),
        ("Certificate warning", "high"),
    ] {
        admin.create(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "incident", "title": title, "fields": {"severity": severity}}),
        );
    }
    admin.create(
        "/api/v1/workspaces/other/items",
        json!({"kind": "incident", "title": "Other's secret outage"}),
    )["id"]
        .as_i64()
        .unwrap()
}

fn a_task_works_through_the_host_api(db: TestDb) {
    let script = json!([
        call(
            "work_items.list",
            json!({"workspace": "ops", "kind": "incident",
                                        "field": {"key": "severity", "value": "high"}})
        ),
        call(
            "work_items.create",
            json!({"workspace": "ops", "kind": "task",
                                          "title": "Rotate keys"})
        ),
        call(
            "work_items.update",
            json!({"workspace": "ops", "id": "$id",
                                          "title": "Rotate the keys"})
        ),
        call(
            "work_items.transition",
            json!({"workspace": "ops", "id": "$id",
                                              "status": "doing", "comment": "started by a plugin"})
        ),
        call(
            "work_items.create",
            json!({"workspace": "ops", "kind": "task", "title": "  "})
        ),
        call("work_items.list", json!({"workspace": "other"})),
        call("settings.get", json!({"workspace": "ops"})),
        call("kv.set", json!({"key": "digest", "value": {"sent": 1}})),
        call(
            "kv.set",
            json!({"key": "digest", "value": {"sent": 2}, "expected_version": 0})
        ),
        call(
            "kv.set",
            json!({"key": "digest", "value": {"sent": 2}, "expected_version": 1})
        ),
        call("kv.get", json!({"key": "digest"})),
        call(
            "kv.set",
            json!({"workspace": "ops", "key": "brief", "value": true, "ttl_seconds": 1})
        ),
        call("kv.list", json!({"prefix": "dig"})),
        call(
            "log.write",
            json!({"level": "warn", "message": "fixture says hello"})
        ),
        call(
            "http.request",
            json!({"method": "GET", "url": "http://127.0.0.1:9/"})
        ),
        call("certificates.expiring", json!({"within_days": 30})),
        call(
            "work_items.create",
            json!({"workspace": "ops", "kind": "change",
                                          "title": "Upgrade the proxy"})
        ),
        call(
            "work_items.transition",
            json!({"workspace": "ops", "id": "$id",
                                              "status": "pending_approval"})
        ),
        call(
            "work_items.transition",
            json!({"workspace": "ops", "id": "$id",
                                              "status": "approved"})
        ),
        call(
            "work_items.list",
            json!({"workspace": "ops", "updated_before": "yesterday"})
        ),
        call("no.such_method", json!({})),
    ]);
    let legacy_script = json!([
        call("work_items.count_by_status", json!({"workspace": "ops"})),
        call("kv.get", json!({"key": "digest"})),
    ]);
    let server =
        TestServer::with_plugins_and(db, &["host_calls", "host_calls_legacy"], move |config| {
            config.task_settings.insert(
                "fixture_host_calls".into(),
                json!({"calls": script, "workspaces": ["ops"]}),
            );
            config.task_settings.insert(
                "fixture_host_calls_legacy".into(),
                json!({"calls": legacy_script}),
            );
        });
    let admin = server.admin();
    two_workspaces(&admin);
    let run = expect(
        &admin.post("/api/v1/scheduler/tasks/fixture_host_calls/run", json!({})),
        200,
    )
    .clone();
    assert_eq!(run["outcome"], "ok", "{run:#}");
    let a = answers(&run["output"]);

    // Reading with a custom field's value: the two high-severity incidents.
    let mut titles: Vec<&str> = ok(&a[0])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(titles, ["Certificate warning", "Disk full on db-2"]);

    // Writing: created, edited and moved, each as the plugin.
    let created = ok(&a[1]);
    assert_eq!(
        created["created_by"], "plugin:fixture_host_calls",
        "{created}"
    );
    assert_eq!(created["status"], "todo");
    assert_eq!(ok(&a[2])["title"], "Rotate the keys");
    assert_eq!(ok(&a[3])["status"], "doing");
    let task_id = created["id"].as_i64().unwrap();
    let stored = expect(
        &admin.get(&format!("/api/v1/workspaces/ops/items/{task_id}")),
        200,
    )
    .clone();
    assert_eq!(stored["title"], "Rotate the keys");
    assert_eq!(stored["status"], "doing");
    assert_eq!(stored["created_by"], "plugin:fixture_host_calls");

    // The domain's rules hold for a plugin as for a person.
    assert!(error(&a[4]).contains("title"), "{}", a[4]);
    // The task was enabled for `ops` only.
    assert!(
        error(&a[5]).contains("no workspace `other` that this task may act in"),
        "{}",
        a[5]
    );

    assert!(ok(&a[6])["settings"].is_object(), "{}", a[6]);
    assert_eq!(ok(&a[6])["workspace"], "ops");

    // The key-value store: a write, a compare-and-set that loses and one
    // that wins, the value read back, an entry that expires, a listing.
    assert_eq!(ok(&a[7])["version"], 1);
    assert!(
        error(&a[8]).starts_with("version_conflict: `digest` is at version 1"),
        "{}",
        a[8]
    );
    assert_eq!(ok(&a[9])["version"], 2);
    assert_eq!(ok(&a[10])["value"], json!({"sent": 2}));
    assert_eq!(ok(&a[10])["version"], 2);
    assert!(ok(&a[11])["expires_at"].is_string(), "{}", a[11]);
    assert_eq!(ok(&a[12])["keys"], json!(["digest"]));
    assert_eq!(ok(&a[13])["dropped"], false);

    // Undeclared: HTTP to a host it did not list, certificates.
    let refused = error(&a[14]);
    assert!(
        refused.starts_with("capability_not_declared:")
            && refused.contains("HTTP requests to `127.0.0.1`"),
        "{refused}"
    );
    let refused = error(&a[15]);
    assert!(
        refused.starts_with("capability_not_declared:") && refused.contains("`certificates.read`"),
        "{refused}"
    );
    // A plugin may move a change to approval, never approve it.
    assert_eq!(ok(&a[17])["status"], "pending_approval");
    assert!(error(&a[18]).contains("change.approve"), "{}", a[18]);
    assert!(
        error(&a[19]).contains("`yesterday` is not a time"),
        "{}",
        a[19]
    );
    assert!(
        error(&a[20]).contains("no host method `no.such_method`"),
        "{}",
        a[20]
    );

    // Nothing reached the other workspace.
    let other = expect(&admin.get("/api/v1/workspaces/other/items"), 200).clone();
    assert_eq!(other["items"].as_array().unwrap().len(), 1, "{other:#}");

    // Audited as the plugin, in the workspace's own chain, which verifies.
    let events = expect(&admin.get("/api/v1/workspaces/ops/audit?limit=200"), 200).clone();
    let by_plugin: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["label"] == "plugin:fixture_host_calls")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "task.create",
        "task.update",
        "task.transition",
        "change.create",
    ] {
        assert!(by_plugin.contains(&action), "{action} in {by_plugin:?}");
    }
    let report = expect(&admin.get("/api/v1/workspaces/ops/audit/verify"), 200).clone();
    assert_eq!(report["intact"], true, "{report:#}");

    // The operator sees what it declared and what was refused.
    let plugin = expect(&admin.get("/api/v1/plugins/fixture_host_calls"), 200).clone();
    assert_eq!(
        plugin["capabilities"]["http_hosts"],
        json!(["allowed.example"])
    );
    assert_eq!(plugin["host_calls"]["capability_refusals"], 2, "{plugin:#}");
    let listed = vigilo_tests::Cli::with(&server.url, &server.admin_token, None)
        .run(&["plugin", "list"])
        .ok()
        .stdout
        .clone();
    let row = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{listed}"))
            .to_owned()
    };
    assert!(
        row("fixture_host_calls").contains("storage, log, http (allowed.example)"),
        "{listed}"
    );
    assert!(
        row("fixture_host_calls_legacy").contains("undeclared"),
        "{listed}"
    );

    // A plugin that declares nothing keeps what it had, and no more.
    let run = expect(
        &admin.post(
            "/api/v1/scheduler/tasks/fixture_host_calls_legacy/run",
            json!({}),
        ),
        200,
    )
    .clone();
    let a = answers(&run["output"]);
    assert_eq!(ok(&a[0])["incidents"]["open"], 3, "{}", a[0]);
    let refused = error(&a[1]);
    assert!(
        refused.starts_with("capability_not_declared:")
            && refused.contains("declares no capabilities"),
        "{refused}"
    );
}

fn a_tile_acts_only_in_its_workspace(db: TestDb) {
    let server = TestServer::with_plugins(db, &["host_calls_tile"]);
    let admin = server.admin();
    let secret = two_workspaces(&admin);
    let script = json!([
        call("work_items.list", json!({"workspace": "ops", "limit": 2})),
        call("work_items.list", json!({"workspace": "other"})),
        call("work_items.get", json!({"workspace": "ops", "id": secret})),
        call("work_items.count_by_status", json!({"workspace": "other"})),
        call("settings.get", json!({"workspace": "other"})),
        call("kv.set", json!({"key": "everywhere", "value": 1})),
        call(
            "kv.set",
            json!({"workspace": "other", "key": "k", "value": 1})
        ),
    ]);
    admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "fixture_host_calls_tile", "config": {"calls": script}}),
    );
    let dashboard = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    let tile = &dashboard["widgets"][0];
    assert!(tile["error"].is_null(), "{tile:#}");
    let a = answers(&tile["data"]);
    let page = ok(&a[0]);
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    assert!(page["next_before"].is_i64(), "{page}");
    for answer in &a[1..] {
        let refused = error(answer);
        assert!(!refused.contains("secret"), "{refused}");
    }
    assert!(
        error(&a[1]).contains("acts only in the workspace it is called in (`ops`)"),
        "{}",
        a[1]
    );
    assert!(
        error(&a[2]).contains("not found") || error(&a[2]).contains("no "),
        "{}",
        a[2]
    );
    assert!(error(&a[5]).contains("only a periodic task"), "{}", a[5]);
    assert!(!dashboard.to_string().contains("Other's secret"));

    // Compare-and-set under concurrent calls: four clients render a tile
    // that adds 1 ten times to one counter, three times each; no update is
    // lost, whatever races were.
    create_workspace(&admin, "race");
    let counter = admin.create(
        "/api/v1/workspaces/race/dashboard/widgets",
        json!({"widget": "fixture_host_calls_tile", "config": {"calls": [
            call("increment", json!({"workspace": "race", "key": "counter", "times": 10})),
        ]}}),
    );
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3 {
                    let dashboard =
                        expect(&admin.get("/api/v1/workspaces/race/dashboard"), 200).clone();
                    let tile = &dashboard["widgets"][0];
                    assert!(tile["error"].is_null(), "{tile:#}");
                    ok(&answers(&tile["data"])[0]);
                }
            });
        }
    });
    expect(
        &admin.delete(&format!(
            "/api/v1/workspaces/race/dashboard/widgets/{}",
            counter["id"]
        )),
        204,
    );
    admin.create(
        "/api/v1/workspaces/race/dashboard/widgets",
        json!({"widget": "fixture_host_calls_tile", "config": {"calls": [
            call("kv.get", json!({"workspace": "race", "key": "counter"})),
        ]}}),
    );
    let dashboard = expect(&admin.get("/api/v1/workspaces/race/dashboard"), 200).clone();
    let entry = ok(&answers(&dashboard["widgets"][0]["data"])[0]).clone();
    assert_eq!(entry["value"], 120, "{entry}");
    assert_eq!(entry["version"], 120, "{entry}");
}

/// The first-party `incident_autoresolve` task resolves the incidents left
/// mitigated and unchanged for `after_days`, in the workspaces it was
/// enabled for only, audited as itself, and keeps a summary per workspace.
fn the_autoresolve_task_writes_as_itself(db: TestDb) {
    let server = TestServer::with_plugins_and(db, &["incident_autoresolve"], |config| {
        config.task_settings.insert(
            "incident_autoresolve".into(),
            json!({"after_days": 3, "workspaces": ["ops"]}),
        );
    });
    let admin = server.admin();
    create_workspace(&admin, "ops");
    create_workspace(&admin, "other");
    let incident = |slug: &str, title: &str, moves: &[&str]| -> i64 {
        let id = admin.create(
            &format!("/api/v1/workspaces/{slug}/items"),
            json!({"kind": "incident", "title": title}),
        )["id"]
            .as_i64()
            .unwrap();
        for status in moves {
            expect(
                &admin.post(
                    &format!("/api/v1/workspaces/{slug}/items/{id}/transition"),
                    json!({"status": status}),
                ),
                200,
            );
        }
        id
    };
    let stale = incident(
        "ops",
        "Stale and mitigated",
        &["investigating", "mitigated"],
    );
    let fresh = incident("ops", "Mitigated today", &["investigating", "mitigated"]);
    let open = incident("ops", "Still open", &[]);
    let elsewhere = incident("other", "Elsewhere", &["investigating", "mitigated"]);
    server.db.execute(&format!(
        "UPDATE work_items SET updated_at = '2020-01-01T00:00:00.000000Z' WHERE id IN ({stale}, {open}, {elsewhere})"
    ));
    let run = expect(
        &admin.post(
            "/api/v1/scheduler/tasks/incident_autoresolve/run",
            json!({}),
        ),
        200,
    )
    .clone();
    assert_eq!(run["outcome"], "ok", "{run:#}");
    assert_eq!(run["output"]["resolved"], 1, "{run:#}");
    assert_eq!(run["output"]["workspaces"][0]["workspace"], "ops");
    assert_eq!(run["output"]["workspaces"][0]["resolved"], json!([stale]));
    assert_eq!(run["output"]["workspaces"].as_array().unwrap().len(), 1);
    let status = |slug: &str, id: i64| {
        expect(
            &admin.get(&format!("/api/v1/workspaces/{slug}/items/{id}")),
            200,
        )["status"]
            .clone()
    };
    assert_eq!(status("ops", stale), "resolved");
    assert_eq!(status("ops", fresh), "mitigated");
    assert_eq!(status("ops", open), "open");
    assert_eq!(status("other", elsewhere), "mitigated");
    let events = expect(
        &admin.get("/api/v1/workspaces/ops/audit?action=incident.transition"),
        200,
    )
    .clone();
    let by_task = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actor"]["label"] == "plugin:incident_autoresolve")
        .unwrap_or_else(|| panic!("no move by the task in {events:#}"))
        .clone();
    assert_eq!(by_task["target"], stale.to_string());
    assert_eq!(
        by_task["details"]["comment"],
        "Resolved automatically: mitigated and unchanged for 3 days."
    );
    assert_eq!(
        server.db.number(
            "SELECT COUNT(*) FROM plugin_kv WHERE plugin = 'incident_autoresolve' AND key = 'last-run'"
        ),
        1
    );
}

on_both_databases!(
    a_task_works_through_the_host_api,
    a_tile_acts_only_in_its_workspace,
    the_autoresolve_task_writes_as_itself
);
