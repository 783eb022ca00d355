//! A tile's options after it was added: checked in full against the
//! widget's JSON Schema and by the widget itself, changed through the API,
//! the CLI and a form the web app draws from the schema; the Kanban tile's
//! `breakdown` option counts open incidents by a custom field through the
//! host API (`work_items.list`), and the change shows at the next refresh.

use serde_json::{json, Value};
use vigilo_tests::browser::Browser;
use vigilo_tests::{expect, on_both_databases, Cli, TestDb, TestServer};

use crate::create_workspace;
use crate::web::join_in_browser;

on_both_databases!(tile_options_are_checked_and_changed_everywhere);

fn tile_options_are_checked_and_changed_everywhere(db: TestDb) {
    let server = TestServer::with_plugins(db, &["kanban_overview"]);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "severity", "label": "Severity", "type": "select",
               "options": ["low", "high"], "applies_to": ["incident"]}),
    );
    for (title, severity) in [("Disk full", "high"), ("Slow", "low"), ("Down", "high")] {
        admin.create(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "incident", "title": title, "fields": {"severity": severity}}),
        );
    }
    let tile = admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "kanban_overview"}),
    );
    let id = tile["id"].as_i64().unwrap();
    let path = format!("/api/v1/workspaces/ops/dashboard/widgets/{id}");

    // Refused with the schema's reason, naming the option; nothing changes.
    for (config, field, says) in [
        (json!({"kinds": ["bugs"]}), "config.kinds.0", "bugs"),
        (json!({"surprise": true}), "config", "surprise"),
        (
            json!({"breakdown": "no spaces allowed"}),
            "config.breakdown",
            "does not match",
        ),
        (json!({"columns": "open"}), "config.columns", "array"),
    ] {
        let refused = admin.put(&path, json!({ "config": config }));
        assert_eq!(refused.status, 422, "{config}: {}", refused.text);
        assert_eq!(refused.json["error"]["field"], field, "{}", refused.text);
        assert!(refused.text.contains(says), "{config}: {}", refused.text);
    }
    // Refused by the widget itself: a rule its schema cannot state.
    let refused = admin.put(&path, json!({"config": {"columns": ["open", "open"]}}));
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        refused.json["error"]["field"], "config.columns",
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("the status open is pinned twice"),
        "{}",
        refused.text
    );
    // The same checks when a tile is added.
    let refused = admin.post(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "kanban_overview", "config": {"surprise": 1}}),
    );
    assert_eq!(refused.status, 422, "{}", refused.text);
    let dashboard = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    assert_eq!(dashboard["widgets"].as_array().unwrap().len(), 1);
    assert_eq!(dashboard["widgets"][0]["config"], json!({}));
    assert!(dashboard["widgets"][0]["data"]["breakdown"].is_null());

    // Changed through the API: the next render breaks incidents down.
    let changed = expect(
        &admin.put(&path, json!({"config": {"breakdown": "severity"}})),
        200,
    )
    .clone();
    assert_eq!(changed["config"], json!({"breakdown": "severity"}));
    let dashboard = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    assert_eq!(
        dashboard["widgets"][0]["data"]["breakdown"],
        json!({"field": "severity", "counts": {"high": 2, "low": 1}, "without": 0,
               "total": 3, "capped": false})
    );

    // Through the CLI: one option set, the others kept; a refusal explained.
    let cli = Cli::with(&server.url, &server.admin_token, Some("ops"));
    let out = cli
        .run(&[
            "dashboard",
            "update",
            &id.to_string(),
            "--set",
            r#"kinds=["incidents"]"#,
        ])
        .ok()
        .stdout
        .clone();
    assert!(out.contains("Changed the options of widget"), "{out}");
    let shown = cli.run(&["dashboard", "show", "--json"]).ok().json();
    assert_eq!(
        shown["widgets"][0]["config"],
        json!({"breakdown": "severity", "kinds": ["incidents"]})
    );
    let refused = cli.run(&[
        "dashboard",
        "update",
        &id.to_string(),
        "--set",
        "breakdown=a b",
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("does not match"),
        "{}",
        refused.stderr
    );

    // Audited with the options before and after.
    let events = expect(
        &admin.get("/api/v1/workspaces/ops/audit?action=dashboard.widget.update"),
        200,
    )
    .clone();
    let first = &events["events"][0];
    assert_eq!(first["details"]["previous"], json!({}), "{events:#}");
    assert_eq!(first["details"]["config"], json!({"breakdown": "severity"}));

    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    join_in_browser(&server, &browser, "owner@ops.com", "owner");
    let breakdown = |browser: &Browser| -> Value {
        browser.script(
            "const board = document.querySelector('kanban_overview-board');
             const rows = board && board.shadowRoot.querySelectorAll('.breakdown li');
             return rows ? Array.from(rows).map(li => li.dataset.value + ' ' + li.querySelector('.count').textContent) : null;",
        )
    };
    browser.goto("/w/ops");
    browser.wait_for(
        "the breakdown",
        "const b = document.querySelector('kanban_overview-board'); return !!(b && b.shadowRoot.querySelector('.breakdown'));",
    );
    assert_eq!(breakdown(&browser), json!(["high 2", "low 1"]));

    // The form drawn from the schema: a choice per kind, a text option.
    browser.goto("/w/ops/settings/dashboard");
    browser.click(&format!("a[href='/w/ops/settings/dashboard/{id}']"));
    browser.wait_for(
        "the options form",
        "return !!document.querySelector('#opt-breakdown')",
    );
    assert!(browser
        .text("main")
        .contains("Break open incidents down by"));
    assert!(browser
        .text("main")
        .contains("The key of a custom field of incidents"));
    browser.check_page("tile-options");
    // A value the schema refuses: shown beside the option, nothing saved.
    browser.fill("#opt-breakdown", "not a key");
    browser.click("form.form button[type=submit]");
    browser.wait_for(
        "the refusal",
        "return !!document.querySelector('#opt-breakdown-error')",
    );
    assert!(
        browser
            .text("#opt-breakdown-error")
            .contains("does not match"),
        "{}",
        browser.text("#opt-breakdown-error")
    );
    assert!(!browser.text("#opt-breakdown-error").contains('`'));
    browser.assert_clean(&[]);
    // The widget's own refusal, beside its option too.
    browser.fill("#opt-breakdown", "severity");
    browser.fill("#opt-columns", "open, open");
    browser.click("form.form button[type=submit]");
    browser.wait_for(
        "the widget's refusal",
        "return !!document.querySelector('#opt-columns-error')",
    );
    assert_eq!(
        browser.text("#opt-columns-error"),
        "The status open is pinned twice."
    );
    browser.fill("#opt-columns", "");
    // Untick incidents, tick tasks, clear the breakdown: saved, and the
    // tile shows it.
    browser.fill("#opt-breakdown", "");
    browser.click("input[name='opt.kinds'][value=incidents]");
    browser.click("input[name='opt.kinds'][value=tasks]");
    browser.click("form.form button[type=submit]");
    browser.wait_for("the notice", "return !!document.querySelector('.notice')");
    assert!(browser.text(".notice").contains("options were saved"));
    let shown = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    assert_eq!(shown["widgets"][0]["config"], json!({"kinds": ["tasks"]}));
    browser.goto("/w/ops");
    browser.wait_for(
        "the tasks lane alone",
        "const b = document.querySelector('kanban_overview-board');
         return !!(b && b.shadowRoot.querySelector('[data-kind=tasks]') && !b.shadowRoot.querySelector('[data-kind=incidents]'));",
    );
    assert_eq!(breakdown(&browser), json!([]));
    browser.resize(390, 844);
    browser.goto(&format!("/w/ops/settings/dashboard/{id}"));
    browser.check_page("tile-options-phone");
}
