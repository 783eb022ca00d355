//! Each role is offered what it may do; the platform admin's pages and the
//! profile.

use super::*;

on_both_databases!(
    each_role_is_offered_what_it_may_do,
    the_platform_admins_pages_and_the_profile
);

fn each_role_is_offered_what_it_may_do(db: TestDb) {
    let server = server(db);
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    let admin = server.admin();
    admin.create(
        "/api/v1/workspaces/ops/playbooks",
        json!({"name": "hello", "steps": [{"type": "create_task", "title": "Hello"}]}),
    );
    let (pem, _) = certificate("www.ops.com", -1, 100);
    admin.create("/api/v1/workspaces/ops/certificates", json!({"pem": pem}));

    // What each page offers, by role.
    let offered = |browser: &Browser| -> Value {
        let mut seen = serde_json::Map::new();
        browser.goto("/w/ops/members");
        seen.insert(
            "invite".into(),
            browser.has("form[action='/w/ops/invites']").into(),
        );
        seen.insert("change roles".into(), browser.has("#members select").into());
        seen.insert(
            "remove".into(),
            browser.has("#members details.confirm").into(),
        );
        seen.insert(
            "audit tab".into(),
            browser.has("nav.tabs a[href='/w/ops/audit']").into(),
        );
        seen.insert(
            "settings tab".into(),
            browser.has("nav.tabs a[href='/w/ops/settings']").into(),
        );
        browser.goto("/w/ops/certificates");
        seen.insert(
            "add certificate".into(),
            browser
                .has("form[action='/w/ops/certificates'][method=post]")
                .into(),
        );
        browser.goto("/w/ops/playbooks/1");
        seen.insert("dry run".into(), browser.has("#dry-run").into());
        seen.insert("run".into(), browser.has("#run").into());
        seen.insert(
            "edit playbook".into(),
            browser.has("a[href='/w/ops/playbooks/1/edit']").into(),
        );
        browser.goto("/w/ops/settings/roles");
        seen.insert(
            "create role".into(),
            browser.has("form[action='/w/ops/settings/roles']").into(),
        );
        Value::Object(seen)
    };

    join_in_browser(&server, &browser, "viewer@ops.com", "viewer");
    assert_eq!(
        offered(&browser),
        json!({"invite": false, "change roles": false, "remove": false, "audit tab": false,
               "settings tab": false, "add certificate": false, "dry run": true, "run": false,
               "edit playbook": false, "create role": false})
    );
    // The matrix as the README has it: a viewer may not invite.
    assert_eq!(
        browser.script(
            "return [...document.querySelectorAll('#matrix tr[data-permission=\"member.invite\"] td')]
               .map(td => td.textContent.includes('yes'))"
        ),
        json!([true, false, false, false])
    );
    browser.check_page("roles-as-viewer");
    // And refused when tried directly, changing nothing.
    browser.goto("/w/ops/audit");
    assert_eq!(browser.text("h1"), "You cannot do this here");
    assert!(browser
        .text("main")
        .contains("You need permission to read the workspace audit log"));
    browser.goto("/w/ops/members");
    assert_eq!(
        browser.post_form("/w/ops/invites", "email=x%40ops.com&role=owner"),
        403
    );
    assert_eq!(browser.post_form("/w/ops/playbooks/1/run", "mode=run"), 403);
    assert_eq!(browser.post_form("/w/ops/certificates/1/remove", ""), 403);
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM invites WHERE email = 'x@ops.com'"),
        0
    );
    assert_eq!(server.db.number("SELECT COUNT(*) FROM playbook_runs"), 0);
    assert_eq!(server.db.number("SELECT COUNT(*) FROM certificates"), 1);
    browser.assert_clean(&[]);

    browser.sign_out();
    join_in_browser(&server, &browser, "eng@ops.com", "engineer");
    assert_eq!(
        offered(&browser),
        json!({"invite": false, "change roles": false, "remove": false, "audit tab": false,
               "settings tab": true, "add certificate": true, "dry run": true, "run": true,
               "edit playbook": true, "create role": false})
    );
    assert_eq!(
        browser.post_form("/w/ops/members/viewer%40ops.com/role", "role=owner"),
        403
    );
    browser.assert_clean(&[]);

    browser.sign_out();
    join_in_browser(&server, &browser, "owner@ops.com", "owner");
    assert_eq!(
        offered(&browser),
        json!({"invite": true, "change roles": true, "remove": true, "audit tab": true,
               "settings tab": true, "add certificate": true, "dry run": true, "run": true,
               "edit playbook": true, "create role": true})
    );
    // An owner makes a custom role from ticked permissions, and deletes it.
    browser.goto("/w/ops/settings/roles");
    browser.fill("#name", "auditor");
    // Choosing a base role ticks its permissions.
    let ticked = |browser: &Browser| {
        browser.script(
            "return [...document.querySelectorAll('input[name=permissions]:checked')].map(b => b.value)",
        )
    };
    browser
        .run(browser.find("#base_role").select_by_value("engineer"))
        .unwrap();
    assert!(ticked(&browser)
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "item.write"));
    browser
        .run(browser.find("#base_role").select_by_value("viewer"))
        .unwrap();
    assert_eq!(
        ticked(&browser),
        json!(["workspace.read", "member.read", "playbook.dry_run"])
    );
    browser.click("input[name=permissions][value='audit.read']");
    browser.click("form[action='/w/ops/settings/roles'] button[type=submit]");
    wait_notice(&browser, "The custom role was created");
    let role = expect(&server.admin().get("/api/v1/workspaces/ops/roles"), 200).clone();
    let auditor = role["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "auditor")
        .cloned()
        .expect("the role was created");
    let mut permissions: Vec<&str> = auditor["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    permissions.sort();
    assert_eq!(
        permissions,
        [
            "audit.read",
            "member.read",
            "playbook.dry_run",
            "workspace.read"
        ]
    );
    browser.check_page("roles");
    browser.click("li[data-role=auditor] details summary");
    browser.click("li[data-role=auditor] details button");
    wait_notice(&browser, "The custom role was deleted");
    assert!(!browser.has("li[data-role=auditor]"));
    browser.assert_clean(&[]);
}

fn the_platform_admins_pages_and_the_profile(db: TestDb) {
    let server = server(db);
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    crate::root_with_password(&server);
    browser.sign_in("root@example.com", PASSWORD);
    browser.click("a.toplink[href='/admin/workspaces']");

    // Create a workspace; a bad slug is refused next to the form.
    browser.fill("#name", "Lab");
    browser.fill("#slug", "Lab Space");
    browser.script("document.querySelector('#slug').removeAttribute('pattern')");
    browser.click("form[action='/admin/workspaces'] button[type=submit]");
    assert!(browser.text_of(".alert").contains("slug"));
    browser.fill("#slug", "lab");
    // The region is suggested, not typed in for the person: what they type
    // is all there is.
    assert_eq!(
        browser.script("return [document.querySelector('#region').value, document.querySelector('#region').placeholder]"),
        json!(["", "default"])
    );
    browser.fill("#region", "eu");
    browser.click("form[action='/admin/workspaces'] button[type=submit]");
    wait_notice(&browser, "lab: The workspace was created");
    assert!(browser.text("#workspaces").contains("lab"));

    // Its export is the same JSON as `vigilo workspace export`.
    server.admin().put(
        "/api/v1/workspaces/ops/settings/holidays",
        json!({"value": ["2026-12-25"]}),
    );
    let exported = browser.run(browser.client().execute_async(
        "const done = arguments[arguments.length - 1];
         fetch(document.querySelector('tr[data-workspace=ops] a[download]').href).then(r => r.text()).then(done);",
        vec![],
    ));
    let exported: Value = serde_json::from_str(exported.unwrap().as_str().unwrap()).unwrap();
    let cli = Cli::with(&server.url, &server.admin_token, Some("ops"));
    let from_cli = cli.run(&["--json", "workspace", "export"]).ok().json();
    assert_eq!(exported, from_cli);
    // A template from that file; a workspace made from the template has its
    // settings.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops-export.json");
    std::fs::write(&file, exported.to_string()).unwrap();
    browser.fill("#template-name", "standard");
    browser.upload("#template-file", &file);
    browser.click("form[action='/admin/templates'] button[type=submit]");
    wait_notice(&browser, "standard: The template was saved");
    assert!(browser.text("#templates").contains("standard"));
    browser.fill("#name", "Team B");
    browser.fill("#slug", "team-b");
    browser
        .run(browser.find("#template").select_by_value("standard"))
        .unwrap();
    browser.click("form[action='/admin/workspaces'] button[type=submit]");
    wait_notice(&browser, "team-b: The workspace was created");
    let settings = expect(&server.admin().get("/api/v1/workspaces/team-b"), 200).clone();
    assert_eq!(settings["settings"]["holidays"], json!(["2026-12-25"]));
    browser.check_page("admin-workspaces");

    // Periodic tasks: run one now and see it in its history.
    browser.goto("/admin/tasks");
    let task = browser
        .script("return document.querySelector('#tasks tr[data-task]').dataset.task")
        .as_str()
        .unwrap()
        .to_owned();
    browser.click(&format!("form[action='/admin/tasks/{task}/run'] button"));
    browser.wait_for(
        "the run",
        "return !!document.querySelector('#runs tr.fresh')",
    );
    assert!(browser.text("#runs tr.fresh").contains("ok"));
    browser.check_page("admin-task");
    browser.goto("/admin/audit");
    assert!(browser.text("#events").contains("task.run"));
    browser.check_page("admin-audit");

    // The profile: a wrong current password changes nothing; the right one
    // changes it and can end the other sessions.
    let other = WebSession::sign_in(&server.url, "root@example.com", PASSWORD);
    assert_eq!(other.get("/settings/profile").0, 200);
    browser.goto("/settings/profile");
    assert_eq!(
        browser.script("return document.querySelectorAll('#sessions tr[data-session]').length"),
        2
    );
    browser.fill("#name", "Root Admin");
    browser.click("form[action='/settings/profile/name'] button");
    wait_notice(&browser, "Your name was changed");
    assert!(browser.text("details.usermenu").contains("Root Admin"));
    browser.fill("#current_password", "not-my-password-at-all");
    browser.fill("#password", "oak-ember-violin-77");
    browser.fill("#confirm", "oak-ember-violin-77");
    browser.click("form[action='/settings/profile/password'] button[type=submit]");
    assert!(browser
        .text_of("#password-error")
        .contains("current password"));
    browser.fill("#current_password", PASSWORD);
    browser.fill("#password", "oak-ember-violin-77");
    browser.fill("#confirm", "oak-ember-violin-77");
    browser.click("form[action='/settings/profile/password'] button[type=submit]");
    wait_notice(&browser, "1 other session was signed out");
    let (status, location) = other.get("/settings/profile");
    assert_eq!(status, 303);
    assert!(location.unwrap_or_default().starts_with("/login"));
    browser.check_page("profile");
    browser.assert_clean(&[]);
}
