//! Every page of the web app at a phone's width (390 × 844): none may be
//! wider than the screen, so nothing needs scrolling sideways (wide tables
//! scroll inside their card instead), the tab strip shows where more tabs
//! are, and in dark mode every page still reads.

use serde_json::json;
use vigilo_tests::browser::Browser;
use vigilo_tests::{expect, on_both_databases, TestDb};

use crate::certificates::certificate;
use crate::{root_with_password, web};

on_both_databases!(no_page_is_wider_than_a_phone);

fn no_page_is_wider_than_a_phone(db: TestDb) {
    let server = web::server(db);
    let admin = server.admin();
    let playbook = admin.create(
        "/api/v1/workspaces/ops/playbooks",
        json!({"name": "page-the-on-call-engineer-of-the-database-team", "steps": [{"type": "create_task", "title": "Call the database team"}]}),
    );
    let run = expect(
        &admin.post(
            &format!("/api/v1/workspaces/ops/playbooks/{}/run", playbook["id"]),
            json!({}),
        ),
        200,
    )
    .clone();
    let (pem, _) = certificate("a-rather-long-name.internal.example.com", -1, 100);
    admin.create("/api/v1/workspaces/ops/certificates", json!({"pem": pem}));
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    browser.resize(390, 844);
    // Signed out.
    let mut wide = Vec::new();
    let mut visit = |path: &str| {
        browser.goto(path);
        let width = browser.script("return document.documentElement.scrollWidth;");
        if width.as_i64().unwrap_or(0) > 390 {
            browser.screenshot(&format!("too-wide{}", path.replace('/', "-")));
            wide.push(format!("{path}: {width} px"));
        }
    };
    visit("/login");
    root_with_password(&server);
    browser.sign_in("root@example.com", web::PASSWORD);
    let run_id = run["id"].as_i64().expect("the run's id");
    let dashboard =
        vigilo_tests::expect(&server.admin().get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    let tile = dashboard["widgets"][0]["id"].as_i64().expect("a tile");
    let pages = [
        "/w/ops".to_owned(),
        "/w/ops/changes".into(),
        "/w/ops/changes/new".into(),
        "/w/ops/changes/1".into(),
        "/w/ops/changes/1/edit".into(),
        "/w/ops/incidents".into(),
        "/w/ops/tasks".into(),
        "/w/ops/search?q=e".into(),
        "/w/ops/certificates".into(),
        "/w/ops/playbooks".into(),
        "/w/ops/playbooks/new".into(),
        format!("/w/ops/playbooks/{}", playbook["id"]),
        format!("/w/ops/playbooks/{}/edit", playbook["id"]),
        format!("/w/ops/playbooks/runs/{run_id}"),
        "/w/ops/members".into(),
        "/w/ops/audit".into(),
        "/w/ops/audit/verify".into(),
        "/w/ops/settings/general".into(),
        "/w/ops/settings/fields".into(),
        "/w/ops/settings/dashboard".into(),
        format!("/w/ops/settings/dashboard/{tile}"),
        "/w/ops/settings/roles".into(),
        "/w/ops/settings/integrations".into(),
        "/settings/profile".into(),
        "/settings/tokens".into(),
        "/admin/workspaces".into(),
        "/admin/plugins".into(),
        "/admin/tasks".into(),
        "/admin/audit".into(),
        "/admin/audit/verify".into(),
        "/w/ops/no-such-page".into(),
    ];
    for path in &pages {
        visit(path);
    }
    assert!(
        wide.is_empty(),
        "pages wider than a 390 px screen:\n{}",
        wide.join("\n")
    );

    // The tab strip scrolls sideways: it fades where more tabs are, and a
    // page's own tab is in view.
    let strip = |path: &str| {
        browser.goto(path);
        browser.script(
            "const s = document.querySelector('nav.tabs');
             const c = s.querySelector('[aria-current]').getBoundingClientRect();
             const b = s.getBoundingClientRect();
             return [s.dataset.more, c.left >= b.left && c.right <= b.right];",
        )
    };
    assert_eq!(strip("/w/ops"), json!(["right", true]));
    let settings = strip("/w/ops/settings/general");
    assert!(
        settings[0].as_str().unwrap_or_default().contains("left") && settings[1] == true,
        "{settings}"
    );
    browser.screenshot("settings-phone");

    // Dark mode: every page reads (axe checks the contrast of its text).
    browser.prefer_dark(true);
    for path in &pages {
        browser.goto(path);
        browser.assert_accessible();
        match path.as_str() {
            "/w/ops/changes" => drop(browser.screenshot("changes-dark-phone")),
            "/w/ops/changes/1" => drop(browser.screenshot("change-dark-phone")),
            _ => {}
        }
    }
    browser.resize(1280, 900);
    for (path, name) in [
        ("/w/ops/changes", "changes-dark"),
        ("/w/ops/changes/1", "change-dark"),
        ("/w/ops/changes/new", "change-form-dark"),
    ] {
        browser.goto(path);
        browser.screenshot(name);
    }
    browser.prefer_dark(false);
}
