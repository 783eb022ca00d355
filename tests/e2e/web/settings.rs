//! Settings, tokens and plugins in the browser, and what a viewer is
//! offered.

use super::*;

on_both_databases!(
    settings_tokens_and_plugins,
    viewers_are_offered_only_what_they_may_do
);

fn settings_tokens_and_plugins(db: TestDb) {
    let server = server(db);
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    join_in_browser(&server, &browser, "owner@ops.com", "owner");

    // Settings → Custom fields: the type picker lists built-in types and
    // every loaded plugin's, labelled with the plugin.
    browser.goto("/w/ops/settings");
    browser.check_page("settings");
    browser.goto("/w/ops/settings/fields");
    let label = browser.script(
        "return [...document.querySelectorAll('#type option')].find(o => o.value === 'holiday_aware_date')?.textContent",
    );
    assert_eq!(
        label,
        "Date (skips weekends and holidays) — from datepicker_with_holidays"
    );
    browser.fill("#label", "Go-live");
    browser.fill("#key", "golive");
    browser.script("document.querySelector('#type').value = 'holiday_aware_date'");
    browser
        .script("document.querySelector('input[name=applies_to][value=change]').checked = false");
    browser
        .script("document.querySelector('input[name=applies_to][value=incident]').checked = true");
    browser.click("form[action$='/settings/fields'] button[type=submit]");
    browser.wait_for("the notice", "return !!document.querySelector('.notice')");
    let listed = browser.text("table.list");
    assert!(
        listed.contains("Go-live") && listed.contains("datepicker_with_holidays"),
        "{listed}"
    );
    let fields = expect(&server.admin().get("/api/v1/workspaces/ops/fields"), 200).clone();
    assert!(fields["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["key"] == "golive"
            && f["type"] == "holiday_aware_date"
            && f["applies_to"] == json!(["incident"])));
    // A key already taken is refused next to the field.
    browser.fill("#label", "Window again");
    browser.fill("#key", "window");
    browser.click("form[action$='/settings/fields'] button[type=submit]");
    assert!(
        browser.text_of("#key-error").contains("already exists"),
        "{}",
        browser.text("body")
    );
    browser.check_page("settings-fields");

    // Settings → Dashboard: add a widget, move it up, remove one.
    browser.goto("/w/ops/settings/dashboard");
    assert!(browser.text(".choice").contains("Kanban overview"));
    browser.click("form[action$='/settings/dashboard'] button[type=submit]");
    browser.wait_for("the notice", "return !!document.querySelector('.notice')");
    let order = |server: &TestServer| -> Vec<i64> {
        expect(&server.admin().get("/api/v1/workspaces/ops/dashboard"), 200)["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(order(&server), vec![1, 2, 3, 4]);
    let shown = "return [...document.querySelectorAll('li[data-widget]')].map(li => li.dataset.widget).join(',')";
    browser.click("li[data-widget='4'] form[action$='/up'] button");
    browser.wait_for(
        "the new order",
        &format!("{{ const o = (() => {{ {shown} }})(); return o === '1,2,4,3'; }}"),
    );
    assert_eq!(order(&server), vec![1, 2, 4, 3]);
    // Removing asks first.
    browser.click("li[data-widget='2'] details.confirm summary");
    browser.click("li[data-widget='2'] form[action$='/remove'] button");
    browser.wait_for(
        "the removal",
        &format!("{{ const o = (() => {{ {shown} }})(); return o === '1,4,3'; }}"),
    );
    assert_eq!(order(&server), vec![1, 4, 3]);
    browser.check_page("settings-dashboard");

    // Settings → General: the holidays the date picker reads.
    browser.goto("/w/ops/settings/general");
    browser.fill("#holidays", "2026-12-24\n2026-12-25\nnot a date");
    browser.click("form:has(#holidays) button[type=submit]");
    assert!(browser.text_of("#holidays-error").contains("not a date"));
    browser.fill("#holidays", "2026-12-24\n2026-12-25\n2027-01-01");
    browser.click("form:has(#holidays) button[type=submit]");
    browser.wait_for("the notice", "return !!document.querySelector('.notice')");
    let settings = expect(&server.admin().get("/api/v1/workspaces/ops/settings"), 200).clone();
    assert_eq!(
        settings["settings"]["holidays"],
        json!(["2026-12-24", "2026-12-25", "2027-01-01"])
    );
    browser.check_page("settings-general");

    // Settings → API tokens → New token: shown once; it works with the CLI;
    // revoked, it stops working.
    browser.goto("/settings/tokens");
    let count_tokens = "return document.querySelectorAll('tr[data-token]').length";
    let before = browser.script(count_tokens);
    browser.fill("#name", "laptop");
    browser.click("form[action='/settings/tokens'] button[type=submit]");
    browser.wait_for(
        "the new token",
        "return (document.querySelector('#new-token')?.textContent || '').trim().startsWith('vgl_')",
    );
    let token = browser.text("#new-token");
    assert!(token.starts_with("vgl_"), "{token}");
    assert!(browser.text(".created").contains("will not be shown again"));
    browser.check_page("tokens-created");
    // The form's answer was a redirect: reloading shows the list, creates
    // nothing, and does not show the secret again.
    assert_eq!(browser.path(), "/settings/tokens?done=created");
    browser.script("location.reload()");
    browser.wait_for(
        "the reloaded list",
        "return !document.querySelector('#new-token') && !!document.querySelector('.notice')",
    );
    assert!(browser.text(".notice").contains("shown only once"));
    assert!(!browser.text("body").contains(&token));
    assert_eq!(
        browser.script(count_tokens).as_u64(),
        before.as_u64().map(|n| n + 1),
        "a reload created a token"
    );
    let cli = Cli::with(&server.url, &token, Some("ops"));
    let whoami = cli.run(&["--json", "whoami"]).ok().json();
    assert_eq!(whoami["user"]["email"], "owner@ops.com");
    browser.goto("/settings/tokens");
    assert!(
        !browser.text("body").contains(&token),
        "the secret is not shown again"
    );
    browser.click("tr[data-token] details.confirm summary");
    browser.click("tr[data-token] details.confirm button.danger");
    browser.wait_for("the notice", "return !!document.querySelector('.notice')");
    assert!(browser.text("table.list").contains("revoked"));
    let refused = cli.run(&["whoami"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);

    // Admin → Plugins, as a platform admin with a password.
    crate::root_with_password(&server);
    browser.sign_out();
    browser.sign_in("root@example.com", PASSWORD);
    browser.goto("/admin/plugins");
    let page = browser.text("main");
    for expected in [
        "datepicker_with_holidays",
        "kanban_overview",
        "fixture_broken_tile",
        "holiday_aware_date.js",
        // What each may ask of the server, in words.
        "read work items",
        "Nothing: it never calls the server.",
    ] {
        assert!(page.contains(expected), "{expected} missing:\n{page}");
    }
    browser.check_page("admin-plugins");
    // Each plugin's tier is shown, with what confines a worker.
    let tier = vigilo_tests::plugin_isolation();
    let badge = match tier {
        vigilo_host::plugins::Isolation::Worker => "worker",
        vigilo_host::plugins::Isolation::InProcess => "in process",
    };
    assert_eq!(browser.text("article .badge.tier"), badge);
    if tier == vigilo_host::plugins::Isolation::Worker {
        assert!(page.contains("seccomp"), "{page}");
    }
    browser.resize(390, 844);
    browser.check_page("admin-plugins-narrow");
    browser.resize(1280, 900);
    // Disable the Kanban plugin: its tiles show error cards; enable it back.
    // Disabling asks first.
    browser.click("article:has(form[action='/admin/plugins/kanban_overview/disable']) details.confirm summary");
    browser.click("article:has(h2) form[action='/admin/plugins/kanban_overview/disable'] button");
    browser.wait_for("the notice", "return !!document.querySelector('.notice')");
    assert!(browser
        .text("article.state-disabled")
        .contains("disabled_by_admin"));
    browser.goto("/w/ops");
    assert!(browser.text(".tile-error").contains("kanban_overview"));
    let audit = expect(
        &server
            .admin()
            .get("/api/v1/audit/events?chain=0&action=plugin.disable"),
        200,
    )
    .clone();
    assert_eq!(audit["events"][0]["actor"]["label"], "root@example.com");
    browser.goto("/admin/plugins");
    browser.click("form[action='/admin/plugins/kanban_overview/enable'] button");
    browser.wait_for("the notice", "return !!document.querySelector('.notice')");
    browser.goto("/w/ops");
    browser.wait_for(
        "the Kanban tile",
        "return !!document.querySelector('kanban_overview-board')",
    );
}

fn viewers_are_offered_only_what_they_may_do(db: TestDb) {
    let server = server(db);
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    join_in_browser(&server, &browser, "viewer@ops.com", "viewer");
    // No Settings, no Admin, no "New change", no moves, no edit.
    assert!(!browser.text("nav.tabs").contains("Settings"));
    assert!(!browser.has("a[href^='/admin']"));
    browser.goto("/w/ops/changes");
    assert!(!browser.has("a[href='/w/ops/changes/new']"));
    browser.goto("/w/ops/changes/1");
    assert!(!browser.has(".moves"));
    assert!(!browser.has("a[href$='/edit']"));
    browser.check_page("change-as-viewer");
    // And refused when tried anyway.
    browser.goto("/w/ops/changes/new");
    assert_eq!(browser.text("h1"), "You cannot do this here");
    assert!(browser
        .text("main")
        .contains("You need permission to create, edit and move changes, incidents and tasks"));
    assert!(
        browser.text("main").contains("; your role is Viewer."),
        "{}",
        browser.text("main")
    );
    // The refusal keeps the person's own header.
    assert!(browser.has("form[action=\"/logout\"]"));
    browser.goto("/admin/plugins");
    assert_eq!(browser.text("h1"), "Only platform admins can do this");
    assert!(browser.text("main").contains("Ask a platform admin"));
    // A workspace one is not in looks like one that does not exist.
    create_workspace(&server.admin(), "hr");
    browser.goto("/w/hr");
    assert_eq!(browser.text("h1"), "Not found");
    let not_member = browser.text("main");
    browser.goto("/w/no-such-workspace");
    assert_eq!(browser.text("main"), not_member);
    // (Those two pages answered 404 on purpose.)
    browser.assert_clean(&["/w/hr - Failed", "/w/no-such-workspace - Failed"]);
    browser.goto("/w/ops/settings/fields");
    assert_eq!(browser.text("h1"), "You cannot do this here");
    browser.goto("/w/ops/changes/1");
    let csrf = browser
        .script("return document.querySelector('form[action=\"/logout\"] input[name=csrf]').value");
    let status = browser.run(browser.client().execute_async(
        "const [csrf, done] = [arguments[0], arguments[arguments.length - 1]];
         fetch('/w/ops/changes/1/move', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
           body: 'status=approved&csrf=' + csrf}).then(r => done(r.status));",
        vec![csrf],
    ));
    assert_eq!(status.unwrap(), json!(403));
    let item = expect(&server.admin().get("/api/v1/workspaces/ops/items/1"), 200).clone();
    assert_eq!(
        item["status"], "pending_approval",
        "the refused move changed nothing"
    );
    browser.assert_clean(&[]);
}
