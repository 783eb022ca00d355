//! The worker tier: plugins in confined processes of their own. A plugin
//! that segfaults, aborts, exits, loops, eats memory or overflows its stack
//! costs the one call it was making; what a plugin may not do (read the
//! server's files, connect, run programs, start threads) fails; the server
//! and every other request go on. Tiers are chosen per plugin, by
//! configuration and by the installation's stored policy.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use vigilo_host::audit::Actor;
use vigilo_host::config::{Config, PluginSettings};
use vigilo_host::plugins::Isolation;
use vigilo_tests::json::find;
use vigilo_tests::plugins::{fixture_plugin, reference_plugin};
use vigilo_tests::{
    block_on, cargo_bin, expect, on_both_databases, Api, TestDb, TestServer, WebSession,
};

use crate::create_workspace;
use crate::web::PASSWORD;

on_both_databases!(
    a_misbehaving_plugin_costs_one_call,
    a_plugin_whose_worker_keeps_crashing_is_disabled,
    each_plugin_runs_in_the_tier_chosen_for_it,
);

/// What a call with a hostile value must come to.
enum Outcome {
    /// The worker ends: 502 `plugin_crashed`, saying how.
    Crashed(&'static str),
    /// The call outlives its limit: 504 `plugin_timeout`.
    TimedOut,
    /// The forbidden action fails: the plugin reports the error (422 at
    /// the field) and nothing it tried happened.
    Refused,
}

fn post_item(api: &Api, slug: &str, fields: Value) -> vigilo_tests::Response {
    api.post(
        &format!("/api/v1/workspaces/{slug}/items"),
        json!({"kind": "task", "title": "t", "fields": fields}),
    )
}

/// Sets the flag when dropped: a failing assertion stops the steady stream
/// too, instead of leaving it running forever.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Requests made the whole time on other plugins and another workspace:
/// every one must succeed. Returns what failed, and how many were made.
fn steady_stream<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    api: Api,
    stop: &'s AtomicBool,
) -> std::thread::ScopedJoinHandle<'s, (Vec<String>, usize)> {
    scope.spawn(move || {
        let mut failures = Vec::new();
        let mut made = 0;
        while !stop.load(Ordering::Relaxed) {
            let created = api.post(
                "/api/v1/workspaces/other/items",
                json!({"kind": "change", "title": "c", "fields": {"window": "2026-12-24"}}),
            );
            let dashboard = api.get("/api/v1/workspaces/other/dashboard");
            let health = api.get("/healthz");
            made += 3;
            if created.status != 201 {
                failures.push(format!("create: {} {}", created.status, created.text));
            }
            if dashboard.status != 200 || !dashboard.json["widgets"][0]["error"].is_null() {
                failures.push(format!(
                    "dashboard: {} {}",
                    dashboard.status, dashboard.text
                ));
            }
            if health.status != 200 {
                failures.push(format!("healthz: {}", health.status));
            }
        }
        (failures, made)
    })
}

/// A server running the hostile fixture, the holiday field and the Kanban
/// tile in workers, with a workspace `ops` whose field `h` is hostile and a
/// workspace `other` the steady stream uses.
fn hostile_server(db: TestDb, configure: impl FnOnce(&mut Config)) -> TestServer {
    let server = TestServer::with_plugins_and(
        db,
        &["hostile", "datepicker_with_holidays", "kanban_overview"],
        |config| {
            config.plugin_isolation = Isolation::Worker;
            configure(config);
        },
    );
    let admin = server.admin();
    create_workspace(&admin, "ops");
    create_workspace(&admin, "other");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "h", "label": "Hostile", "type": "fixture_hostile", "applies_to": ["task"]}),
    );
    admin.create(
        "/api/v1/workspaces/other/fields",
        json!({"key": "window", "label": "Window", "type": "holiday_aware_date", "applies_to": ["change"]}),
    );
    admin.create(
        "/api/v1/workspaces/other/dashboard/widgets",
        json!({"widget": "kanban_overview"}),
    );
    server
}

fn a_misbehaving_plugin_costs_one_call(db: TestDb) {
    let server = hostile_server(db, |config| {
        config.plugin_call_timeout_ms = 1000;
        config.plugin_crash_limit = 1000;
    });
    let admin = server.admin();
    let secrets_key = server.config.effective_secrets_key().display().to_string();
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let faults: Vec<(String, Outcome)> = vec![
        ("segfault".into(), Outcome::Crashed("SIGSEGV")),
        ("abort".into(), Outcome::Crashed("SIGABRT")),
        ("exit".into(), Outcome::Crashed("exited with status 0")),
        ("loop".into(), Outcome::TimedOut),
        ("allocate".into(), Outcome::Crashed("memory allocation of")),
        ("stack".into(), Outcome::Crashed("overflowed its stack")),
        ("read:/etc/passwd".into(), Outcome::Refused),
        (format!("read:{secrets_key}"), Outcome::Refused),
        (format!("connect:127.0.0.1:{port}"), Outcome::Refused),
        ("exec:/bin/sh".into(), Outcome::Refused),
        ("thread".into(), Outcome::Refused),
    ];
    let stop = AtomicBool::new(false);
    let (failures, made) = std::thread::scope(|scope| {
        let stream = steady_stream(scope, admin.clone(), &stop);
        let _stop = StopOnDrop(&stop);
        for (value, outcome) in &faults {
            let r = post_item(&admin, "ops", json!({"h": value}));
            let said = r.json["error"]["message"].as_str().unwrap_or("").to_owned();
            match outcome {
                Outcome::Crashed(how) => {
                    assert_eq!(
                        (r.status, r.code()),
                        (502, "plugin_crashed"),
                        "{value}: {}",
                        r.text
                    );
                    assert!(
                        said.contains("fixture_hostile") && said.contains(how),
                        "{value}: {said}"
                    );
                }
                Outcome::TimedOut => {
                    assert_eq!(
                        (r.status, r.code()),
                        (504, "plugin_timeout"),
                        "{value}: {}",
                        r.text
                    );
                    assert!(said.contains("fixture_hostile"), "{said}");
                }
                Outcome::Refused => {
                    assert_eq!(r.status, 422, "{value}: {}", r.text);
                    assert_eq!(r.json["error"]["field"], "fields.h");
                    assert!(said.contains("Operation not permitted"), "{value}: {said}");
                    for success in [" bytes of ", "connected to", "ran /", "started a thread"] {
                        assert!(!said.contains(success), "{value} succeeded: {said}");
                    }
                }
            }
            // The next call gets a worker that answers.
            let fine = post_item(&admin, "ops", json!({"h": "fine"}));
            assert_eq!(fine.status, 201, "after {value}: {}", fine.text);
            assert_eq!(fine.json["fields"]["h"], "FINE");
        }
        stop.store(true, Ordering::Relaxed);
        stream.join().unwrap()
    });
    assert!(
        failures.is_empty(),
        "other requests failed during the faults: {failures:#?}"
    );
    assert!(made > 30, "the steady stream made only {made} requests");

    // Nothing the failed calls sent was stored; the plugin is still loaded,
    // in its worker, after a restart per fault that ended one.
    let items = expect(&admin.get("/api/v1/workspaces/ops/items?kind=task"), 200).clone();
    assert_eq!(items["items"].as_array().unwrap().len(), faults.len());
    let plugin = expect(&admin.get("/api/v1/plugins/fixture_hostile"), 200).clone();
    assert_eq!(plugin["state"], "loaded");
    assert_eq!(plugin["isolation"], "worker");
    assert!(
        plugin["worker"]["restarts"].as_u64().unwrap() >= 6,
        "{plugin:#}"
    );
    let confinement = plugin["worker"]["confinement"].as_str().unwrap();
    assert!(confinement.contains("seccomp"), "{confinement}");
    if running_as_root() {
        assert!(confinement.contains("uid 65534"), "{confinement}");
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Kills or stops a process by id.
fn signal(pid: u64, which: &str) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {which} {pid}");
}

fn worker_pid(admin: &Api, name: &str) -> u64 {
    let plugin = expect(&admin.get(&format!("/api/v1/plugins/{name}")), 200).clone();
    plugin["worker"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} has no running worker: {plugin:#}"))
}

fn a_plugin_whose_worker_keeps_crashing_is_disabled(db: TestDb) {
    let server = hostile_server(db, |config| {
        config.plugin_call_timeout_ms = 1500;
        config.plugin_crash_limit = 3;
        config.plugin_crash_window_secs = 600;
    });
    let admin = server.admin();
    vigilo_tests::block_on(vigilo_host::create_admin_with_password(
        &server.config,
        "admin@example.com",
        None,
        Some(PASSWORD),
    ))
    .expect("a password for the admin");
    let web = WebSession::sign_in(&server.url, "admin@example.com", PASSWORD);

    // In the form, the crash shows at the field that was being checked.
    let (status, page) = web.submit(
        "/w/ops/tasks/new",
        &[("title", "from the form"), ("fields.h", "segfault")],
    );
    assert_eq!(status, 502, "{page}");
    let at_field = page
        .split("id=\"field-h-error\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no error at the field: {page}"));
    assert!(
        at_field[..at_field.find("</").unwrap()].contains("SIGSEGV"),
        "{at_field}"
    );

    // A tile whose worker dies while drawing it shows its error card; the
    // page is served.
    let kanban = worker_pid(&admin, "kanban_overview");
    signal(kanban, "-STOP");
    let dashboard = std::thread::scope(|scope| {
        let page = scope.spawn(|| web.page("/w/other"));
        std::thread::sleep(Duration::from_millis(300));
        signal(kanban, "-KILL");
        page.join().unwrap()
    });
    assert_eq!(dashboard.0, 200);
    let card = dashboard
        .1
        .split("class=\"tile-error\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no error card: {}", dashboard.1));
    assert!(
        card.contains("kanban_overview") && card.contains("SIGKILL"),
        "{card}"
    );
    // The next page has a fresh worker draw the tile.
    let tiles = expect(&admin.get("/api/v1/workspaces/other/dashboard"), 200).clone();
    assert!(tiles["widgets"][0]["error"].is_null(), "{tiles:#}");

    // Two more crashes within the window: the third disables the plugin,
    // and says so.
    let second = post_item(&admin, "ops", json!({"h": "abort"}));
    assert_eq!(second.code(), "plugin_crashed", "{}", second.text);
    assert!(!second.text.contains("disabled"), "{}", second.text);
    let third = post_item(&admin, "ops", json!({"h": "exit"}));
    assert_eq!(third.code(), "plugin_crashed", "{}", third.text);
    assert!(third.text.contains("has been disabled"), "{}", third.text);
    let after = post_item(&admin, "ops", json!({"h": "fine"}));
    assert_eq!(
        (after.status, after.code()),
        (503, "plugin_unavailable"),
        "{}",
        after.text
    );
    let plugin = expect(&admin.get("/api/v1/plugins/fixture_hostile"), 200).clone();
    assert_eq!(plugin["state"], "disabled", "{plugin:#}");
    assert_eq!(plugin["reason"], "disabled_after_crashes");
    let message = plugin["message"].as_str().unwrap();
    assert!(
        message.contains("stopped 3 times within 10 minutes")
            && message.contains("exited with status 0"),
        "{message}"
    );
    let disabled = admin.installation_audit_once("action=plugin.disable", "plugin.disable", 1);
    assert_eq!(disabled.count("plugin.disable"), 1);
    // The admin page says why, and offers to enable it again.
    let (_, page) = web.page("/admin/plugins");
    assert!(page.contains("disabled_after_crashes"), "{page}");
    assert!(page.contains("In a worker process of its own"), "{page}");

    // Enabled again, it runs in a fresh worker.
    expect(
        &admin.post("/api/v1/plugins/fixture_hostile/enable", json!({})),
        200,
    );
    let fine = post_item(&admin, "ops", json!({"h": "fine"}));
    assert_eq!(fine.status, 201, "{}", fine.text);
    expect(&admin.get("/healthz"), 200);
}

/// Decides `name`'s tier in the installation's policy, before a server
/// starts on `db`.
fn store_tier(db: &TestDb, name: &str, isolation: Isolation) {
    let data = tempfile::TempDir::new().unwrap();
    let config = Config {
        data_dir: data.path().to_path_buf(),
        database_url: db.url.clone(),
        ..Config::default()
    };
    block_on(async {
        let store = vigilo_host::open_store(&config).await.unwrap();
        vigilo_host::domain::plugins::record_isolation(
            &store,
            &Actor::system(),
            name,
            Some(isolation),
            "its worker kept crashing",
        )
        .await
        .unwrap();
        store.close().await;
    });
}

fn each_plugin_runs_in_the_tier_chosen_for_it(db: TestDb) {
    // The installation's policy runs the webhook adapter in process; the
    // configuration sets the holiday field in process; the rest follow the
    // default, worker.
    store_tier(&db, "webhook", Isolation::InProcess);
    let configure = |config: &mut Config| {
        config.plugin_isolation = Isolation::Worker;
        config.plugin_settings.insert(
            "datepicker_with_holidays".into(),
            PluginSettings {
                isolation: Some(Isolation::InProcess),
                memory_limit_mb: None,
            },
        );
        config.plugin_settings.insert(
            "kanban_overview".into(),
            PluginSettings {
                isolation: None,
                memory_limit_mb: Some(64),
            },
        );
    };
    let plugins = ["datepicker_with_holidays", "kanban_overview", "webhook"];
    let server = TestServer::with_plugins_and(db, &plugins, configure);
    let admin = server.admin();
    let tiers = |admin: &Api| -> Vec<(String, String, String)> {
        let listed = expect(&admin.get("/api/v1/plugins?all=true"), 200).clone();
        plugins
            .iter()
            .map(|name| {
                let p = find(&listed["plugins"], "name", *name)
                    .filter(|p| p["state"] == "loaded")
                    .unwrap_or_else(|| panic!("{name} is not loaded: {listed:#}"));
                (
                    name.to_string(),
                    p["isolation"].as_str().unwrap().to_owned(),
                    p["isolation_source"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let expected = vec![
        (
            "datepicker_with_holidays".to_owned(),
            "in_process".to_owned(),
            "plugin_settings".to_owned(),
        ),
        (
            "kanban_overview".to_owned(),
            "worker".to_owned(),
            "default".to_owned(),
        ),
        (
            "webhook".to_owned(),
            "in_process".to_owned(),
            "policy".to_owned(),
        ),
    ];
    assert_eq!(tiers(&admin), expected);
    let kanban = expect(&admin.get("/api/v1/plugins/kanban_overview"), 200).clone();
    assert!(kanban["worker"]["pid"].as_u64().is_some(), "{kanban:#}");
    let datepicker = expect(&admin.get("/api/v1/plugins/datepicker_with_holidays"), 200).clone();
    assert!(datepicker.get("worker").is_none(), "{datepicker:#}");
    // Both tiers serve: the in-process field and the worker's tile.
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "window", "label": "Window", "type": "holiday_aware_date", "applies_to": ["change"]}),
    );
    let saturday = admin.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "change", "title": "x", "fields": {"window": "2026-12-26"}}),
    );
    assert_eq!(saturday.status, 422, "{}", saturday.text);
    admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "kanban_overview"}),
    );
    let dashboard = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    assert_eq!(dashboard["widgets"][0]["data"]["total"], 0, "{dashboard:#}");
    // The stored decision is in the audit chain.
    let events = admin.installation_audit("action=plugin.isolation");
    assert_eq!(events.count("plugin.isolation"), 1);

    // A second server on the same database (a replica, or this one
    // restarted) applies the same stored decision.
    let replica = TestServer::with_plugins_and(server.db.shared(), &plugins, configure);
    assert_eq!(tiers(&replica.admin()), expected);
}

/// `vigilo-server check-plugin --isolation worker` loads a file as a worker
/// does, with the same refusals as in process, and calls what it
/// registers once, confined.
#[test]
fn check_plugin_in_the_worker_tier() {
    let run = |path: &std::path::Path, json: bool| {
        let mut command = Command::new(cargo_bin("vigilo-server"));
        command.args(["check-plugin", "--isolation", "worker"]);
        if json {
            command.arg("--json");
        }
        let out = command.arg(path).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(&reference_plugin("kanban_overview"), false);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tier:            worker"), "{out}");
    assert!(out.contains("confinement:     "), "{out}");
    assert!(out.contains("no new privileges"), "{out}");
    // The tile asks the server for counts; the check answers no host call,
    // and the plugin says so: an answer, not a failure.
    assert!(
        out.contains("smoke call:      dashboard_widget `kanban_overview`: answered with error"),
        "{out}"
    );
    assert!(out.contains("the server would load this plugin"), "{out}");

    // The same refusal, with the same reason, as in process.
    let (code, out) = run(&fixture_plugin("incompatible"), false);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "would skip this plugin: incompatible_version: requires vigilo >=2.0, running 0.1.0"
        ),
        "{out}"
    );

    // A plugin whose call panics loads, but is reported broken.
    let (code, out) = run(&fixture_plugin("call_panic"), true);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["isolation"], "worker");
    assert_eq!(report["smoke_calls"][0]["name"], "fixture_call_panic");
    assert_eq!(report["smoke_calls"][0]["outcome"], "broken", "{report:#}");
    assert!(
        report["smoke_calls"][0]["message"]
            .as_str()
            .unwrap()
            .contains("validate blew up"),
        "{report:#}"
    );

    // The hostile build answers an ordinary value in its worker.
    let (code, out) = run(&fixture_plugin("hostile"), true);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["smoke_calls"][0]["outcome"], "answered",
        "{report:#}"
    );
    assert!(
        report["confinement"].as_str().unwrap().contains("seccomp"),
        "{report:#}"
    );
}
