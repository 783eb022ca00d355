//! The web app in a real browser (Chromium through chromedriver), against a
//! real server with the real reference plugins, on both databases: signing
//! in, the dashboard's plugin tiles (and a broken one), work items with the
//! holiday-aware date picker, Settings, API tokens, Admin → Plugins, and
//! what a viewer is offered. Every page is checked for console errors, CSP
//! violations and accessibility, and photographed.

use serde_json::json;
use vigilo_tests::browser::Browser;
use vigilo_tests::{expect, on_both_databases, Cli, TestDb, TestServer};

use crate::create_workspace;

mod settings;

on_both_databases!(
    signing_in_and_the_dashboard,
    work_items_with_the_plugin_date_picker
);

/// A password the rules accept.
pub(crate) const PASSWORD: &str = "tram-ladle-quince-42";

/// A server with the reference plugins and the broken-tile fixture, and a
/// workspace `ops` set up as a team would have it.
pub(crate) fn server(db: TestDb) -> TestServer {
    let server = TestServer::with_plugins(
        db,
        &["datepicker_with_holidays", "kanban_overview", "broken_tile"],
    );
    let admin = server.admin();
    create_workspace(&admin, "ops");
    expect(
        &admin.put(
            "/api/v1/workspaces/ops/settings/holidays",
            json!({"value": ["2026-12-24", "2026-12-25", "2026-12-31"]}),
        ),
        200,
    );
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "window", "label": "Change window", "type": "holiday_aware_date",
               "applies_to": ["change"], "required": true}),
    );
    let mut tiles = Vec::new();
    for widget in [
        json!({"widget": "kanban_overview"}),
        json!({"widget": "kanban_overview"}),
        // A tile whose element's module throws when the page loads it.
        json!({"widget": "fixture_broken_tile"}),
    ] {
        tiles.push(admin.create("/api/v1/workspaces/ops/dashboard/widgets", widget)["id"].clone());
    }
    // A tile whose render fails: its options name a kind the widget does
    // not know, as options stored before a widget's schema was tightened
    // would (the server refuses them now when a tile is added or changed).
    server.db.execute(&format!(
        r#"UPDATE dashboard_widgets SET config = '{{"kinds": ["bugs"]}}' WHERE id = {}"#,
        tiles[1]
    ));
    for (kind, title) in [
        ("change", "Rotate TLS keys"),
        ("change", "Upgrade PostgreSQL"),
        ("incident", "Checkout is slow"),
        ("task", "Renew certificate"),
        ("task", "Write runbook"),
        ("task", "Tidy alerts"),
    ] {
        let mut body = json!({"kind": kind, "title": title});
        if kind == "change" {
            body["fields"] = json!({"window": "2026-12-28"});
        }
        admin.create("/api/v1/workspaces/ops/items", body);
    }
    let first_change = 1;
    expect(
        &admin.post(
            &format!("/api/v1/workspaces/ops/items/{first_change}/transition"),
            json!({"status": "pending_approval"}),
        ),
        200,
    );
    server
}

/// Invites `email` as `role` and accepts in the browser, which signs them
/// in; returns nothing but leaves `browser` signed in as them.
pub(crate) fn join_in_browser(server: &TestServer, browser: &Browser, email: &str, role: &str) {
    let invite = server.admin().create(
        "/api/v1/workspaces/ops/invites",
        json!({"email": email, "role": role}),
    );
    let link = invite["accept_url"].as_str().unwrap();
    let path = &link[link.find("/invites/").unwrap()..];
    browser.goto(path);
    browser.fill("#name", email.split('@').next().unwrap());
    browser.fill("#password", PASSWORD);
    browser.fill("#confirm", PASSWORD);
    browser.click("form button[type=submit]");
    browser.wait_for("the dashboard", "return location.pathname === '/w/ops'");
}

/// The Kanban tile's count of `status` in the `kind` lane.
fn kanban_count(browser: &Browser, nth: usize, kind: &str, status: &str) -> String {
    browser
        .script(&format!(
            "const board = document.querySelectorAll('kanban_overview-board')[{nth}];
             const cell = board && board.shadowRoot.querySelector('[data-kind={kind}] [data-status={status}] .count');
             return cell ? cell.textContent : null;"
        ))
        .as_str()
        .unwrap_or("missing")
        .to_owned()
}

fn signing_in_and_the_dashboard(db: TestDb) {
    let server = server(db);
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };

    // Signed out, every page leads to the sign-in page.
    browser.goto("/w/ops");
    assert!(
        browser.path().starts_with("/login?next="),
        "{}",
        browser.path()
    );
    browser.check_page("login");

    // The invite link asks for a name and a password, and refuses a weak
    // password or a mistyped confirmation with the reason, creating nothing.
    let invite = server.admin().create(
        "/api/v1/workspaces/ops/invites",
        json!({"email": "owner@ops.com", "role": "owner"}),
    );
    let link = invite["accept_url"].as_str().unwrap();
    let path = &link[link.find("/invites/").unwrap()..];
    browser.goto(path);
    assert!(browser.text("h1").contains("Join OPS"));
    browser.check_page("invite");
    browser.fill("#name", "Olive Owner");
    browser.fill("#password", "password2026");
    browser.fill("#confirm", "password2026");
    browser.click("form button[type=submit]");
    assert!(
        browser
            .text_of("#password-error")
            .contains("first a guesser tries"),
        "{}",
        browser.text("body")
    );
    assert_eq!(
        browser.script("return document.querySelector('#name').value"),
        "Olive Owner"
    );
    browser.fill("#password", PASSWORD);
    browser.fill("#confirm", "tram-ladle-quince-43");
    browser.click("form button[type=submit]");
    assert!(browser.text_of("#confirm-error").contains("not the same"));
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM users WHERE email = 'owner@ops.com'"),
        0,
        "nothing was created"
    );
    browser.fill("#password", PASSWORD);
    browser.fill("#confirm", PASSWORD);
    browser.click("form button[type=submit]");
    browser.wait_for("the dashboard", "return location.pathname === '/w/ops'");

    // The session cookie is HttpOnly and SameSite=Lax.
    let cookie = browser
        .cookies()
        .into_iter()
        .find(|c| c.name() == "vigilo_session")
        .expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Lax)");
    assert_eq!(
        browser.script("return document.cookie.includes('vigilo_session')"),
        false,
        "scripts cannot read the session"
    );

    // The dashboard: the Kanban tile counts by status, every status of each
    // workflow a column, in workflow order, with zeros.
    browser.wait_for(
        "the Kanban tile",
        "return !!document.querySelector('kanban_overview-board')",
    );
    assert_eq!(kanban_count(&browser, 0, "changes", "draft"), "1");
    assert_eq!(
        kanban_count(&browser, 0, "changes", "pending_approval"),
        "1"
    );
    assert_eq!(kanban_count(&browser, 0, "changes", "done"), "0");
    assert_eq!(kanban_count(&browser, 0, "incidents", "open"), "1");
    assert_eq!(kanban_count(&browser, 0, "tasks", "todo"), "3");
    let change_columns = browser.script(
        "return [...document.querySelector('kanban_overview-board').shadowRoot
                 .querySelectorAll('[data-kind=changes] [data-status]')].map(c => c.dataset.status)",
    );
    assert_eq!(
        change_columns,
        json!([
            "draft",
            "pending_approval",
            "approved",
            "rejected",
            "in_progress",
            "done"
        ])
    );
    // The tile whose render failed and the one whose module failed show an
    // error card each, naming the plugin and the reason.
    browser.wait_for(
        "the broken tile's card",
        "return document.querySelectorAll('.tile-error').length === 2",
    );
    let cards: Vec<String> = browser
        .script("return [...document.querySelectorAll('.tile-error')].map(e => e.textContent)")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        cards
            .iter()
            .any(|c| c.contains("kanban_overview") && c.contains("bugs")),
        "{cards:?}"
    );
    assert!(
        cards
            .iter()
            .any(|c| c.contains("fixture_broken_tile") && c.contains("could not be loaded")),
        "{cards:?}"
    );
    browser.assert_clean(&["fails on purpose", "broken_tile.js"]);
    browser.assert_accessible();
    browser.screenshot("dashboard");

    // A system in dark mode gets the dark colours, the Kanban tile's too,
    // and every text still reads (axe checks the contrast).
    browser.prefer_dark(true);
    browser.goto("/w/ops");
    browser.wait_for(
        "the Kanban tile in the dark",
        "return !!document.querySelector('.tile-body[data-ready] kanban_overview-board');",
    );
    assert_eq!(
        browser.script("return getComputedStyle(document.body).backgroundColor;"),
        "rgb(15, 19, 26)"
    );
    browser.assert_accessible();
    // Error cards speak in words: no backticks from the API's messages.
    assert!(
        !browser.text("main").contains('`'),
        "{}",
        browser.text("main")
    );
    browser.screenshot("dashboard-dark");
    browser.resize(390, 844);
    browser.screenshot("dashboard-dark-phone");
    browser.resize(1280, 900);
    browser.prefer_dark(false);
    browser.goto("/w/ops");
    browser.wait_for(
        "the Kanban tile",
        "return !!document.querySelector('.tile-body[data-ready] kanban_overview-board');",
    );
    browser.assert_clean(&["fails on purpose", "broken_tile.js"]);

    // Tiles refresh without a page load: a new item shows up when the tab
    // is shown again.
    server.admin().create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "incident", "title": "Disk filling up"}),
    );
    browser.script("window.__samePage = true");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    browser.script("document.dispatchEvent(new Event('visibilitychange'))");
    browser.wait_for(
        "the refreshed count",
        "const b = document.querySelector('kanban_overview-board');
         const c = b.shadowRoot.querySelector('[data-kind=incidents] [data-status=open] .count');
         return c.textContent === '2' && window.__samePage === true",
    );

    // At phone width the dashboard still works.
    browser.resize(390, 844);
    browser.goto("/w/ops");
    browser.wait_for(
        "the Kanban tile",
        "return !!document.querySelector('kanban_overview-board')",
    );
    browser.screenshot("dashboard-phone");
    browser.resize(1280, 900);

    // A state-changing request without the CSRF token changes nothing.
    let status = browser.run(browser.client().execute_async(
        "const done = arguments[arguments.length - 1];
         fetch('/w/ops/settings/fields', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
           body: 'key=sneaky&label=Sneaky&type=text&applies_to=change'}).then(r => done(r.status));",
        vec![],
    ));
    assert_eq!(status.unwrap(), json!(403));
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM custom_fields WHERE key = 'sneaky'"),
        0
    );

    // Sign out; a wrong password is refused without saying whether the
    // account exists; the right one signs in again.
    browser.sign_out();
    browser.goto("/w/ops");
    assert!(browser.path().starts_with("/login"));
    for email in ["owner@ops.com", "nobody@ops.com"] {
        browser.goto("/login");
        browser.fill("#email", email);
        browser.fill("#password", "not-the-password-at-all");
        browser.click("form button[type=submit]");
        assert_eq!(
            browser.text_of(".alert"),
            "The email or password is not right. Check both and try again."
        );
    }
    browser.assert_clean(&[]);
    browser.sign_in("owner@ops.com", PASSWORD);
    assert_eq!(browser.path(), "/w/ops");
    let audited = server.db.number(
        "SELECT COUNT(*) FROM audit_events WHERE action IN ('session.create', 'session.end', 'session.failed')",
    );
    assert!(
        audited >= 5,
        "sessions and failed sign-ins are audited ({audited})"
    );
}

fn work_items_with_the_plugin_date_picker(db: TestDb) {
    let server = server(db);
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    join_in_browser(&server, &browser, "eng@ops.com", "engineer");
    let stored = || {
        server
            .db
            .number("SELECT COUNT(*) FROM work_items WHERE kind = 'change'")
    };

    // The list: newest first, with status, who and when, and a filter.
    browser.goto("/w/ops/changes");
    assert!(browser.text("table.list").contains("Upgrade PostgreSQL"));
    browser.check_page("changes");
    browser.goto("/w/ops/changes?status=pending_approval");
    let rows = browser.script("return document.querySelectorAll('table.list tbody tr').length");
    assert_eq!(rows, 1);

    // The form shows the plugin's date picker for the custom field.
    browser.goto("/w/ops/changes/new");
    browser.wait_for(
        "the date picker",
        "return !!document.querySelector('.plugin-editor[data-ready] datepicker_with_holidays-picker')",
    );
    let day = |date: &str| {
        format!(
            "document.querySelector('datepicker_with_holidays-picker').shadowRoot.querySelector('[data-date=\"{date}\"]')"
        )
    };
    // Go to December 2026 whatever month it opened on.
    browser.script(
        "const p = document.querySelector('datepicker_with_holidays-picker'); p.value = '2026-12-01'; p.value = '';",
    );
    // A holiday and a weekend cannot be picked; a working day can.
    assert_eq!(
        browser.script(&format!("return {}.disabled", day("2026-12-25"))),
        true
    );
    assert_eq!(
        browser.script(&format!("return {}.disabled", day("2026-12-26"))),
        true
    );
    assert_eq!(
        browser.script(&format!("return {}.disabled", day("2026-12-28"))),
        false
    );
    browser.fill("#title", "Patch the load balancers");
    browser.check_page("change-form");

    // A holiday forced into the form is refused by the plugin, next to the
    // field, with what was typed kept, and nothing stored.
    let before = stored();
    browser.script(
        "const form = document.querySelector('form.form'); form.noValidate = true;
         document.querySelector('datepicker_with_holidays-picker').value = '2026-12-25';
         form.requestSubmit();",
    );
    browser.wait_for(
        "the refusal",
        "return !!document.querySelector('#field-window-error')",
    );
    assert!(
        browser
            .text("#field-window-error")
            .contains("2026-12-25 is a holiday in this workspace"),
        "{}",
        browser.text("body")
    );
    // In words: no field key or backticks before the field's own message.
    let said = browser.text("#field-window-error");
    assert!(
        !said.contains('`') && !said.contains("field window"),
        "{said}"
    );
    assert_eq!(
        browser.script("return document.querySelector('#title').value"),
        "Patch the load balancers"
    );
    assert_eq!(stored(), before, "nothing was stored");
    browser.assert_clean(&[]);
    browser.screenshot("change-form-refused");

    // Picking a working day stores it.
    browser.wait_for(
        "the date picker",
        "return !!document.querySelector('.plugin-editor[data-ready] datepicker_with_holidays-picker')",
    );
    browser.script(
        "const p = document.querySelector('datepicker_with_holidays-picker'); p.value = '2026-12-01'; p.value = '';",
    );
    browser.script(&format!("{}.click()", day("2026-12-28")));
    assert_eq!(
        browser.script("return document.querySelector('datepicker_with_holidays-picker').value"),
        "2026-12-28"
    );
    browser.screenshot("change-form-picked");
    browser.click("form.form button[type=submit].primary");
    browser.wait_for(
        "the new change's page",
        "return /^\\/w\\/ops\\/changes\\/\\d+$/.test(location.pathname)",
    );
    assert_eq!(stored(), before + 1);
    assert!(browser.text_of(".notice").contains("Created."));
    assert!(browser.text("dl.props").contains("2026-12-28"));
    assert!(browser.text(".history").contains("created it as draft"));
    browser.check_page("change");

    // The moves the engineer may make: submit for approval, not approve.
    assert!(browser.text(".moves").contains("Move to pending approval"));
    browser.click(".moves form button");
    browser.wait_for("the move", "return location.search.startsWith('?moved=')");
    assert!(browser
        .text_of(".notice")
        .contains("Moved to pending approval"));
    let moves = browser.text(".moves");
    assert!(
        !moves.contains("Approve") && !moves.contains("Reject"),
        "{moves}"
    );
    assert!(browser
        .text(".history")
        .contains("moved it from draft to pending approval"));
    // Back shows the item as it is now, with live buttons.
    browser.script("history.back()");
    browser.wait_for(
        "the page before the move",
        "return location.search === '?done=created' && !!document.querySelector('.moves')",
    );
    assert!(browser
        .text(".history")
        .contains("moved it from draft to pending approval"));
    assert_eq!(
        browser
            .script("return [...document.querySelectorAll('.moves button')].some(b => b.disabled)"),
        serde_json::json!(false)
    );
    browser.script("history.forward()");
    browser.wait_for(
        "the page after the move",
        "return location.search.startsWith('?moved=')",
    );

    // Editing keeps the plugin's editor and its value.
    let id = browser
        .path()
        .split('/')
        .nth(4)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    browser.goto(&format!("/w/ops/changes/{id}/edit"));
    browser.wait_for(
        "the date picker",
        "return document.querySelector('datepicker_with_holidays-picker')?.value === '2026-12-28'",
    );
    browser.fill("#title", "Patch the load balancers (both)");
    browser.click("form.form button[type=submit].primary");
    browser.wait_for(
        "the saved change",
        &format!("return location.pathname === '/w/ops/changes/{id}'"),
    );
    assert_eq!(browser.text("h1"), "Patch the load balancers (both)");
    assert!(browser.text_of(".notice").contains("Changes saved."));
}
