//! The plugin host with real libraries: the failure corpus against the real
//! `vigilo-server` binary, `check-plugin`, the reference plugins through the
//! API and the CLI, frontend assets, and a plugin that keeps panicking.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use tempfile::TempDir;
use vigilo_host::plugins::Isolation;
use vigilo_tests::json::{find, strings};
use vigilo_tests::plugins::{fixture_plugin, installed, reference_plugin};
use vigilo_tests::process::{create_admin, free_port, server_command, ServerProcess};
use vigilo_tests::{
    cargo_bin, expect, on_both_databases, plugin_isolation, Api, Cli, TestDb, TestServer,
};

use crate::{create_workspace, join};

mod cli;

fn copy(from: &Path, to: &Path) -> PathBuf {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} → {}: {e}", from.display(), to.display()));
    to.to_path_buf()
}

/// A file of the corpus and the reason the server must give for it.
struct Expected {
    path: PathBuf,
    reason: &'static str,
    /// Text the reason's message must contain.
    says: &'static str,
}

/// Builds the corpus in `dir`: returns (installed_plugins, plugins_dir,
/// the failures expected).
fn corpus(dir: &Path) -> (Vec<PathBuf>, PathBuf, Vec<Expected>) {
    let plugins_dir = dir.join("plugins");
    let installed_dir = dir.join("installed");
    let insecure_dir = dir.join("insecure");
    for d in [&plugins_dir, &installed_dir, &insecure_dir] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let datepicker = copy(
        &reference_plugin("datepicker_with_holidays"),
        &installed_dir.join("libdatepicker_with_holidays.so"),
    );
    let kanban = copy(
        &reference_plugin("kanban_overview"),
        &installed_dir.join("libkanban_overview.so"),
    );
    let missing = installed_dir.join("libnot_there.so");
    let world_writable = copy(
        &fixture_plugin("upper"),
        &insecure_dir.join("libworld_writable.so"),
    );
    std::fs::set_permissions(&world_writable, std::fs::Permissions::from_mode(0o666)).unwrap();

    let text = plugins_dir.join("notes.so");
    std::fs::write(&text, "this is a text file, not a library\n").unwrap();
    let empty = plugins_dir.join("empty.so");
    std::fs::write(&empty, "").unwrap();
    let in_dir = |variant: &str| {
        copy(
            &fixture_plugin(variant),
            &plugins_dir.join(format!("{variant}.so")),
        )
    };
    // `upper.so` loads; `upper_twin.so` is the same plugin again.
    in_dir("upper");
    in_dir("call_panic");
    in_dir("slow");
    let twin = copy(&fixture_plugin("upper"), &plugins_dir.join("upper_twin.so"));
    let expected = vec![
        Expected {
            path: missing.clone(),
            reason: "not_found",
            says: "no such file",
        },
        Expected {
            path: world_writable.clone(),
            reason: "insecure_permissions",
            says: "writable by every user",
        },
        Expected {
            path: text,
            reason: "not_a_plugin",
            says: "not a shared library",
        },
        Expected {
            path: empty,
            reason: "not_a_plugin",
            says: "empty",
        },
        Expected {
            path: in_dir("not_a_plugin"),
            reason: "not_a_plugin",
            says: "not a Vigilo plugin",
        },
        Expected {
            path: in_dir("incompatible"),
            reason: "incompatible_version",
            says: "requires vigilo >=2.0, running 0.1.0",
        },
        Expected {
            path: in_dir("bad_semver"),
            reason: "invalid_manifest",
            says: "not a semver requirement",
        },
        Expected {
            path: twin,
            reason: "duplicate_name",
            says: "already loaded",
        },
        Expected {
            path: in_dir("register_panic"),
            reason: "register_panicked",
            says: "register blew up",
        },
        Expected {
            path: in_dir("register_failed"),
            reason: "register_failed",
            says: "registered twice",
        },
        Expected {
            path: in_dir("kind_mismatch"),
            reason: "register_failed",
            says: "declares kind field_type but registered a dashboard_widget",
        },
        Expected {
            path: in_dir("altered_abi"),
            reason: "abi_mismatch",
            says: "ABI layout does not match",
        },
        Expected {
            path: in_dir("panic_abort"),
            reason: "panic_abort_build",
            says: "panic = \"abort\"",
        },
    ];
    let installed = vec![datepicker, kanban, missing, world_writable];
    (installed, plugins_dir, expected)
}

/// The real server with the whole corpus and both reference plugins: it
/// serves, the reference plugins work, every failure is listed with its
/// reason and logged in one line, and the loads and skips are audited.
fn plugin_failure_corpus(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let (installed, plugins_dir, expected) = corpus(dir.path());
    let port = free_port();
    let config = dir.path().join("vigilo.toml");
    let installed_toml: Vec<String> = installed
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:{port}\"\ndata_dir = {:?}\ndatabase_url = {:?}\nplugins_dir = {:?}\n\
             installed_plugins = [{}]\nplugin_panic_limit = 3\nplugin_panic_policy = \"disable\"\n\
             plugin_call_timeout_ms = 500\nplugin_crash_limit = 100\n",
            dir.path().join("data").display().to_string(),
            db.url,
            plugins_dir.display().to_string(),
            installed_toml.join(", ")
        ),
    )
    .unwrap();
    let token = create_admin(&config, "root@example.com");
    let log_path = dir.path().join("server.log");
    let mut command = server_command(&config);
    command.env("RUST_LOG", "info");
    let server = ServerProcess::spawn(command, port, &log_path);
    server.wait_healthy();
    let url = server.url().to_owned();
    let admin = Api::new(&url, Some(&token));

    // Every failure is listed with its reason code and a plain message.
    let all = expect(&admin.get("/api/v1/plugins?all=true"), 200).clone();
    let listed = all["plugins"].as_array().unwrap();
    for e in &expected {
        let path = e.path.display().to_string();
        let entry = listed
            .iter()
            .find(|p| p["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{path} is not listed: {all:#}"));
        assert_eq!(entry["state"], "skipped", "{entry:#}");
        assert_eq!(entry["reason"], e.reason, "{entry:#}");
        let message = entry["message"].as_str().unwrap();
        assert!(
            message.contains(e.says),
            "{path}: {message:?} should say {:?}",
            e.says
        );
        assert!(!message.contains('\n'), "one line: {message:?}");
    }
    let loaded: Vec<&str> = listed
        .iter()
        .filter(|p| p["state"] == "loaded")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        loaded,
        [
            "datepicker_with_holidays",
            "kanban_overview",
            "fixture_call_panic",
            "fixture_slow",
            "fixture_upper"
        ],
        "{all:#}"
    );
    assert_eq!(listed.len(), expected.len() + loaded.len());
    // Without ?all only loaded plugins show, with their frontend assets.
    let plain = expect(&admin.get("/api/v1/plugins"), 200).clone();
    let plain = plain["plugins"].as_array().unwrap();
    assert_eq!(plain.len(), 5);
    let datepicker = plain
        .iter()
        .find(|p| p["name"] == "datepicker_with_holidays")
        .unwrap();
    assert_eq!(datepicker["kind"], "field_type");
    assert_eq!(datepicker["compatible_with"], ">=0.1, <0.2");
    assert_eq!(datepicker["sha256"].as_str().unwrap().len(), 64);
    // Frontend files are listed at the loaded build's address.
    assert_eq!(
        datepicker["assets"][0]["url"],
        format!(
            "/plugins/datepicker_with_holidays/v/{}/holiday_aware_date.js",
            &datepicker["sha256"].as_str().unwrap()[..16]
        )
    );

    // The log has exactly one plain WARN line per failure, naming the file.
    let log = std::fs::read_to_string(&log_path).unwrap();
    for e in &expected {
        let path = e.path.display().to_string();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(&path))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{path}: expected one WARN line, got {lines:#?}\nlog:\n{log}"
        );
        assert!(
            lines[0].contains(e.reason) && lines[0].contains("plugin skipped"),
            "{}",
            lines[0]
        );
    }
    let incompatible = log.lines().find(|l| l.contains("incompatible.so")).unwrap();
    assert!(
        incompatible.contains("requires vigilo >=2.0, running 0.1.0"),
        "{incompatible}"
    );

    // Both reference plugins work through the API.
    create_workspace(&admin, "ops");
    expect(
        &admin.put(
            "/api/v1/workspaces/ops/settings/holidays",
            json!({"value": ["2026-12-25"]}),
        ),
        200,
    );
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "window", "label": "Change window", "type": "holiday_aware_date", "applies_to": ["change"]}),
    );
    let saturday = admin.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "change", "title": "x", "fields": {"window": "2026-12-26"}}),
    );
    assert_eq!(saturday.status, 422, "{}", saturday.text);
    assert_eq!(saturday.json["error"]["field"], "fields.window");
    assert!(saturday.text.contains("Saturday"), "{}", saturday.text);
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "change", "title": "ok", "fields": {"window": "2026-12-24"}}),
    );
    admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "kanban_overview"}),
    );
    let dashboard = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    assert!(dashboard["widgets"][0]["error"].is_null(), "{dashboard:#}");
    assert_eq!(dashboard["widgets"][0]["data"]["total"], 1, "{dashboard:#}");

    // A plugin that panics in a call fails that request, the server keeps
    // serving, and after three panics in a row it is disabled.
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "shout", "label": "Shout", "type": "fixture_call_panic", "applies_to": ["task"]}),
    );
    for attempt in 1..=3 {
        let r = admin.post(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "task", "title": "t", "fields": {"shout": "hi"}}),
        );
        assert_eq!(r.status, 502, "attempt {attempt}: {}", r.text);
        assert_eq!(r.code(), "plugin_panicked");
        // The message keeps the panic's place in the plugin's source.
        assert!(
            r.text
                .contains("validate blew up (at tests/fixtures/plugin/src/lib.rs:"),
            "{}",
            r.text
        );
        expect(&admin.get("/healthz"), 200);
    }
    let after = admin.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "t", "fields": {"shout": "hi"}}),
    );
    assert_eq!(after.status, 503, "{}", after.text);
    assert_eq!(after.code(), "plugin_unavailable");
    let all = expect(&admin.get("/api/v1/plugins?all=true"), 200).clone();
    let panicky = find(&all["plugins"], "name", "fixture_call_panic")
        .unwrap()
        .clone();
    assert_eq!(panicky["state"], "disabled");
    assert_eq!(panicky["reason"], "disabled_after_panics");
    // Nothing was stored by the failed requests.
    let tasks = expect(&admin.get("/api/v1/workspaces/ops/items?kind=task"), 200).clone();
    assert_eq!(tasks["items"].as_array().unwrap().len(), 0);

    // A plugin that does not answer in time fails the request with 504
    // while the server keeps answering others.
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "slow", "label": "Slow", "type": "fixture_slow", "applies_to": ["incident"]}),
    );
    let slow = admin.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "incident", "title": "i", "fields": {"slow": "x"}}),
    );
    assert_eq!(slow.status, 504, "{}", slow.text);
    assert_eq!(slow.code(), "plugin_timeout");
    assert!(slow.text.contains("fixture_slow"), "{}", slow.text);
    expect(&admin.get("/api/v1/workspaces/ops/items"), 200);
    let slow_item = json!({"kind": "incident", "title": "i", "fields": {"slow": "x"}});
    if plugin_isolation() == Isolation::InProcess {
        // In process, calls past their limit keep running; once a plugin
        // holds four of them, further calls are refused at once (503, busy)
        // instead of taking more of the server's threads, until they return.
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| admin.post("/api/v1/workspaces/ops/items", slow_item.clone()));
            }
        });
        let busy = admin.post("/api/v1/workspaces/ops/items", slow_item.clone());
        assert_eq!(busy.status, 503, "{}", busy.text);
        assert_eq!(busy.code(), "plugin_unavailable");
        assert!(busy.text.contains("busy"), "{}", busy.text);
        expect(&admin.get("/healthz"), 200);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let again = admin.post("/api/v1/workspaces/ops/items", slow_item.clone());
            if again.status == 504 {
                break;
            }
            assert_eq!(again.status, 503, "{}", again.text);
            assert!(
                std::time::Instant::now() < deadline,
                "the stuck calls never returned"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    } else {
        // In a worker, a call past its limit has its worker stopped: the
        // calls it was serving fail with it, nothing is left running, and
        // the next call gets a fresh worker (and its own 504), never busy.
        let outcomes: Vec<String> = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| admin.post("/api/v1/workspaces/ops/items", slow_item.clone()))
                })
                .collect();
            calls
                .into_iter()
                .map(|c| c.join().unwrap().code().to_owned())
                .collect()
        });
        for code in &outcomes {
            assert!(
                code == "plugin_timeout" || code == "plugin_crashed",
                "{outcomes:?}"
            );
        }
        expect(&admin.get("/healthz"), 200);
        let again = admin.post("/api/v1/workspaces/ops/items", slow_item.clone());
        assert_eq!(again.status, 504, "{}", again.text);
    }

    // Loads, skips and the disable are in the installation's audit chain,
    // by the system actor.
    let events = admin.installation_audit("action=plugin.*&limit=1000");
    assert_eq!(events.count("plugin.load"), 5, "{events:#?}");
    assert_eq!(events.count("plugin.skip"), expected.len());
    assert_eq!(events.count("plugin.disable"), 1);
    assert!(events.iter().all(|e| e.actor == "system"), "{events:#?}");

    // The CLI lists them too.
    let cli = Cli::with(&url, &token, None);
    let table = cli.run(&["plugin", "list"]).ok().stdout.clone();
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .to_lowercase()
            .contains("compatible_with"),
        "{table}"
    );
    assert!(
        table.contains("datepicker_with_holidays") && table.contains("kanban_overview"),
        "{table}"
    );
    assert!(!table.contains("incompatible"), "{table}");
    let table = cli.run(&["plugin", "list", "--all"]).ok().stdout.clone();
    assert!(
        table.contains("incompatible_version: requires vigilo >=2.0, running 0.1.0"),
        "{table}"
    );
    assert!(table.contains("disabled_after_panics"), "{table}");
    let json_list = cli.run(&["plugin", "list", "--all", "--json"]).ok().json();
    assert_eq!(json_list.as_array().unwrap().len(), listed.len());
    for key in [
        "name",
        "kind",
        "version",
        "compatible_with",
        "state",
        "path",
        "sha256",
    ] {
        assert!(
            json_list[0].get(key).is_some(),
            "{key} missing: {json_list:#}"
        );
    }
}

/// A panic inside a call made through the SDK's test harness, on the built
/// library, reports where it happened: its file and line in the plugin's
/// source.
#[test]
fn a_panic_in_a_harness_call_keeps_its_place() {
    use vigilo_sdk::harness::PluginTestHarness;
    use vigilo_sdk::loader::{NoHost, PluginErrorKind};
    let plugin = PluginTestHarness::load(fixture_plugin("call_panic")).unwrap();
    let error = plugin
        .call(
            "field_type.validate",
            &json!({"name": "fixture_call_panic", "value": "hi",
                    "context": {"workspace": "test", "settings": {}}}),
            &NoHost,
        )
        .unwrap_err();
    assert_eq!(error.kind(), Some(PluginErrorKind::Panicked), "{error}");
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/plugin/src/lib.rs"),
    )
    .unwrap();
    let line = source
        .lines()
        .position(|l| l.contains("panic!(\"fixture: validate blew up\")"))
        .unwrap()
        + 1;
    assert_eq!(
        error.message(),
        format!("fixture: validate blew up (at tests/fixtures/plugin/src/lib.rs:{line}:13)")
    );
    // The typed helper fails the test with the same place.
    let typed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        plugin.validate("fixture_call_panic", json!("hi"), Value::Null)
    }))
    .unwrap_err();
    let said = typed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        said.contains(&format!("tests/fixtures/plugin/src/lib.rs:{line}")),
        "{said}"
    );
}

on_both_databases!(plugin_failure_corpus);
