//! The reference plugins through the `vigilo` CLI, and `check-plugin`'s
//! preflight of the fixture libraries.

use super::*;

on_both_databases!(reference_plugins_through_the_cli);

/// `vigilo-server check-plugin` loads a file as the server would.
#[test]
fn check_plugin_preflight() {
    let server_bin = cargo_bin("vigilo-server");
    let run = |path: &Path| {
        let out = Command::new(&server_bin)
            .arg("check-plugin")
            .arg(path)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(&reference_plugin("datepicker_with_holidays"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("name:            datepicker_with_holidays"),
        "{out}"
    );
    assert!(
        out.contains("registers:       field_type `holiday_aware_date`"),
        "{out}"
    );
    assert!(out.contains("the server would load this plugin"), "{out}");
    assert!(
        out.contains("capabilities:    none\n"),
        "the date picker never calls the server: {out}"
    );
    let (code, out) = run(&fixture_plugin("host_calls"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "capabilities:    work_items.read, work_items.write, settings.read, storage, log, \
             http (allowed.example)"
        ),
        "{out}"
    );
    let (_, out) = run(&fixture_plugin("host_calls_legacy"));
    assert!(out.contains("capabilities:    none declared"), "{out}");

    let (code, out) = run(&fixture_plugin("incompatible"));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "would skip this plugin: incompatible_version: requires vigilo >=2.0, running 0.1.0"
        ),
        "{out}"
    );

    let (code, out) = run(&fixture_plugin("panic_abort"));
    assert_ne!(code, 0);
    assert!(out.contains("panic_abort_build"), "{out}");

    // A bare file name is a file in the current directory.
    let kanban = reference_plugin("kanban_overview");
    let out = Command::new(&server_bin)
        .args(["check-plugin", "--json"])
        .arg(kanban.file_name().unwrap())
        .current_dir(kanban.parent().unwrap())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["would_load"], true, "{report:#}");
    // Each registration with its element, options schema and schedule.
    let tile = &report["registrations"][0];
    assert_eq!(tile["kind"], "dashboard_widget", "{report:#}");
    assert_eq!(
        tile["element"]["tag"], "kanban_overview-board",
        "{report:#}"
    );
    assert_eq!(
        tile["element"]["module"], "kanban_overview.js",
        "{report:#}"
    );
    assert_eq!(tile["options_schema"]["type"], "object", "{report:#}");
    assert!(tile["schedule"].is_null(), "{report:#}");
    assert_eq!(report["frontend_problems"], json!([]), "{report:#}");
    let out = Command::new(&server_bin)
        .args(["check-plugin", "--json"])
        .arg(fixture_plugin("ticker"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let task = &report["registrations"][0];
    assert_eq!(task["name"], "fixture_tick", "{report:#}");
    assert_eq!(task["schedule"], json!({"every_seconds": 1}), "{report:#}");
    assert!(task["element"].is_null(), "{report:#}");
    assert!(task["options_schema"].is_object(), "{report:#}");

    let out = Command::new(&server_bin)
        .args(["check-plugin", "--json"])
        .arg(fixture_plugin("altered_abi"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["would_load"], false);
    assert_eq!(report["reason"], "abi_mismatch");
    assert!(
        report["detail"]
            .as_str()
            .unwrap()
            .contains("incompatible type size"),
        "{report:#}"
    );
}

/// The acceptance path through the CLI: a `holiday_aware_date` field refuses
/// a Saturday and a configured holiday and accepts a working day; the Kanban
/// overview counts what is there.
fn reference_plugins_through_the_cli(db: TestDb) {
    // These plugins installed; the plugins directory stays watched, as by
    // default.
    let plugins = installed(&["datepicker_with_holidays", "kanban_overview"]);
    let server = TestServer::start_with(db, move |config| config.installed_plugins = plugins);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    create_workspace(&admin, "other");
    let owner = join(&server, "ops", "owner@ops.com", "owner", false);
    let cli = Cli::with(&server.url, &owner, Some("ops"));

    let types = cli.run(&["field", "types", "--json"]).ok().json();
    let names = strings(&types, "name");
    assert_eq!(
        names,
        [
            "text",
            "number",
            "boolean",
            "date",
            "select",
            "holiday_aware_date"
        ]
    );

    cli.run(&[
        "workspace",
        "settings",
        "set",
        "holidays",
        "2026-12-25,2026-12-28",
    ])
    .ok();
    cli.run(&[
        "field",
        "add",
        "--key",
        "window",
        "--label",
        "Change window",
        "--type",
        "holiday_aware_date",
        "--applies-to",
        "change",
    ])
    .ok();
    // `vigilo change create --title "Upgrade db" --field window=DATE ARGS...`
    let create_change = |window: &str, args: &[&str]| {
        let window = format!("window={window}");
        let mut all = vec![
            "change",
            "create",
            "--title",
            "Upgrade db",
            "--field",
            &window,
        ];
        all.extend_from_slice(args);
        cli.run(&all)
    };
    create_change("2026-12-26", &[]).fails_with(6, "2026-12-26 is a Saturday");
    create_change("2026-12-28", &[]).fails_with(6, "2026-12-28 is a holiday");
    let listed = cli.run(&["change", "list", "--json"]).ok().json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "refused values store nothing"
    );
    let created = create_change("2026-12-24", &["--json"]).ok().json();
    assert_eq!(created["fields"]["window"], "2026-12-24");
    assert_eq!(created["status"], "draft");
    // The plugin normalises what it accepts.
    let id = created["id"].to_string();
    let updated = cli
        .run(&[
            "change",
            "update",
            &id,
            "--field",
            "window=2026-12-3",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(updated["fields"]["window"], "2026-12-03");

    // Kanban overview: counts by status across the workspace's items only.
    for (kind, title) in [
        ("task", "a"),
        ("task", "b"),
        ("task", "c"),
        ("incident", "outage"),
    ] {
        cli.run(&[kind, "create", "--title", title]).ok();
    }
    let tasks = cli.run(&["task", "list", "--json"]).ok().json();
    let first_task = tasks[0]["id"].to_string();
    cli.run(&["task", "move", &first_task, "doing"]).ok();
    cli.run(&["change", "move", &id, "pending_approval"]).ok();
    // Items elsewhere do not count.
    admin.create(
        "/api/v1/workspaces/other/items",
        json!({"kind": "task", "title": "elsewhere"}),
    );

    let widgets = cli.run(&["dashboard", "widgets", "--json"]).ok().json();
    assert_eq!(widgets[0]["name"], "kanban_overview");
    cli.run(&["dashboard", "add", "kanban_overview"]).ok();
    let dashboard = cli.run(&["dashboard", "show", "--json"]).ok().json();
    let data = &dashboard["widgets"][0]["data"];
    assert_eq!(data["total"], 5, "{dashboard:#}");
    let column = |status: &str| data["column_totals"][status].clone();
    assert_eq!(column("todo"), 2, "{data:#}");
    assert_eq!(column("doing"), 1, "{data:#}");
    assert_eq!(column("open"), 1, "{data:#}");
    assert_eq!(column("pending_approval"), 1, "{data:#}");
    let text = cli.run(&["dashboard", "show"]).ok().stdout.clone();
    assert!(text.contains("kanban_overview (kanban_overview)"), "{text}");

    // Frontend halves are served while loaded, with their content types,
    // and nothing outside the manifest is reachable.
    let anon = server.anonymous();
    let js = anon.get("/plugins/datepicker_with_holidays/assets/holiday_aware_date.js");
    assert_eq!(js.status, 200);
    assert_eq!(js.content_type, "text/javascript");
    assert!(
        js.text.contains("datepicker_with_holidays-picker"),
        "{}",
        js.text
    );
    // The plain address leads to the loaded build's, which is immutable.
    assert!(
        js.header("cache-control")
            .unwrap_or_default()
            .contains("immutable"),
        "{:?}",
        js.header("cache-control")
    );
    let plain = ureq::AgentBuilder::new()
        .redirects(0)
        .build()
        .get(&format!(
            "{}/plugins/datepicker_with_holidays/assets/holiday_aware_date.js",
            server.url
        ))
        .call()
        .expect("a redirect");
    assert_eq!(plain.status(), 307);
    let location = plain.header("location").unwrap_or_default().to_owned();
    assert!(
        location.starts_with("/plugins/datepicker_with_holidays/v/")
            && location.ends_with("/holiday_aware_date.js"),
        "{location}"
    );
    // Another build's address is a 404 in the error shape.
    let stale =
        anon.get("/plugins/datepicker_with_holidays/v/0000000000000000/holiday_aware_date.js");
    assert_eq!(stale.status, 404, "{}", stale.text);
    assert_eq!(stale.json["error"]["code"], "not_found", "{}", stale.text);
    let css = anon.get("/plugins/kanban_overview/assets/kanban_overview.css");
    assert_eq!(css.status, 200, "{}", css.text);
    assert_eq!(css.content_type, "text/css");
    for bad in [
        "/plugins/datepicker_with_holidays/assets/..%2F..%2FCargo.toml",
        "/plugins/datepicker_with_holidays/assets/../../../etc/passwd",
        "/plugins/datepicker_with_holidays/assets/missing.js",
        "/plugins/no_such_plugin/assets/holiday_aware_date.js",
    ] {
        let r = anon.get(bad);
        assert_eq!(r.status, 404, "{bad}: {}", r.text);
    }
}
