//! A team working from the item page: an assignee (a member of the
//! workspace), comments (plain text, links made clickable, changed or
//! removed by their author or an owner), "assigned to me" in lists and on
//! the dashboard; through the API, the CLI, the pages and a browser, every
//! change audited.

use serde_json::{json, Value};
use vigilo_tests::browser::Browser;
use vigilo_tests::{expect, on_both_databases, Api, Cli, TestDb, TestServer};

use crate::{admin_web_session, create_workspace, csrf_of, join, show};

on_both_databases!(
    assignees_and_comments_through_api_and_cli,
    assignees_and_comments_on_the_pages
);

/// The events of `ops`'s audit log with action `action`, oldest first.
fn events(admin: &Api, action: &str) -> Vec<Value> {
    let all = expect(&admin.get("/api/v1/workspaces/ops/audit?limit=500"), 200).clone();
    all["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

/// Makes the platform admin an owner of `slug` too (an invite it accepts
/// with its own token), so that items can be assigned to it.
fn admin_joins(server: &TestServer, slug: &str) {
    let admin = server.admin();
    let invite = admin.create(
        &format!("/api/v1/workspaces/{slug}/invites"),
        json!({"email": "admin@example.com", "role": "owner"}),
    );
    let token = invite["accept_token"].as_str().unwrap();
    let r = admin.post(
        &format!("/api/v1/invites/{token}/accept"),
        json!({"name": "Admin"}),
    );
    assert!(r.status < 300, "{}", r.text);
}

fn titles(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect()
}

fn assignees_and_comments_through_api_and_cli(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    create_workspace(&admin, "other");
    let eng = server.api(&join(&server, "ops", "eng@ops.com", "engineer", false));
    let eng2 = server.api(&join(&server, "ops", "eng2@ops.com", "engineer", false));
    let viewer = server.api(&join(&server, "ops", "view@ops.com", "viewer", false));
    let owner = server.api(&join(&server, "ops", "owner@ops.com", "owner", false));
    join(&server, "other", "elsewhere@other.com", "engineer", false);
    admin_joins(&server, "ops");
    let task = admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "Rotate the certificates"}),
    );
    let id = task["id"].as_i64().unwrap();
    assert_eq!(task["assignee"], Value::Null, "nobody at first");
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "Someone else's task"}),
    );
    let item = format!("/api/v1/workspaces/ops/items/{id}");

    // Assigning: a member, by email; anyone else is refused, naming the field.
    let assigned = expect(&eng.patch(&item, json!({"assignee": "ENG@ops.com"})), 200).clone();
    assert_eq!(assigned["assignee"], "eng@ops.com");
    assert_eq!(
        assigned["title"], "Rotate the certificates",
        "the rest stays"
    );
    for stranger in ["elsewhere@other.com", "nobody@example.com"] {
        let r = eng.patch(&item, json!({"assignee": stranger}));
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.json["error"]["field"], "assignee", "{}", r.text);
        assert!(
            r.text.contains("not a member of this workspace"),
            "{}",
            r.text
        );
    }
    let r = viewer.patch(&item, json!({"assignee": "view@ops.com"}));
    assert_eq!(r.status, 403, "a viewer may not assign: {}", r.text);
    assert_eq!(
        expect(&admin.get(&item), 200)["assignee"],
        "eng@ops.com",
        "a refused assignment leaves it as it was"
    );
    // The same assignee again changes nothing and records nothing.
    expect(&eng.patch(&item, json!({"assignee": "eng@ops.com"})), 200);
    let updates = events(&admin, "task.update");
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert_eq!(updates[0]["details"]["assignee"], "eng@ops.com");
    assert_eq!(updates[0]["details"]["previous"]["assignee"], Value::Null);
    assert_eq!(
        updates[0]["details"]["title"],
        Value::Null,
        "only the assignee changed"
    );

    // Assigned to me, and to a member by email.
    let mine = expect(&eng.get("/api/v1/workspaces/ops/items?assignee=me"), 200).clone();
    assert_eq!(titles(&mine), ["Rotate the certificates"]);
    let theirs = expect(
        &admin.get("/api/v1/workspaces/ops/items?assignee=eng%40ops.com"),
        200,
    )
    .clone();
    assert_eq!(titles(&theirs), ["Rotate the certificates"]);
    let none = expect(&viewer.get("/api/v1/workspaces/ops/items?assignee=me"), 200).clone();
    assert_eq!(titles(&none), Vec::<String>::new());
    let r = admin.get("/api/v1/workspaces/ops/items?assignee=nobody%40example.com");
    assert_eq!(r.status, 422, "{}", r.text);

    // Comments: written with item.write, read by anyone in the workspace.
    let comments = format!("{item}/comments");
    let first = expect(
        &eng.post(
            &comments,
            json!({"body": "  Renewed staging.\nSee https://status.example.com/certs  "}),
        ),
        201,
    )
    .clone();
    assert_eq!(first["author"], "eng@ops.com");
    assert_eq!(
        first["body"], "Renewed staging.\nSee https://status.example.com/certs",
        "trimmed, line breaks kept"
    );
    assert_eq!(first["edited_at"], Value::Null);
    let r = viewer.post(&comments, json!({"body": "me too"}));
    assert_eq!(r.status, 403, "{}", r.text);
    for (body, says) in [
        ("   ", "needs some text"),
        (&*"x".repeat(10_001), "at most 10000 characters"),
        ("bell \u{7}", "control characters"),
    ] {
        let r = eng.post(&comments, json!({ "body": body }));
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.json["error"]["field"], "body", "{}", r.text);
        assert!(r.text.contains(says), "{says}: {}", r.text);
    }
    let r = eng.post(
        "/api/v1/workspaces/ops/items/999999/comments",
        json!({"body": "lost"}),
    );
    assert_eq!(r.status, 404, "{}", r.text);
    // An item of another workspace is not found through this one.
    let elsewhere = admin.create(
        "/api/v1/workspaces/other/items",
        json!({"kind": "task", "title": "Not ops"}),
    );
    let r = eng.get(&format!(
        "/api/v1/workspaces/ops/items/{}/comments",
        elsewhere["id"]
    ));
    assert_eq!(r.status, 404, "{}", r.text);
    let listed = expect(&viewer.get(&comments), 200).clone();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["comments"][0]["id"], first["id"]);

    // Changed or removed by the author or an owner only.
    let this = format!("{comments}/{}", first["id"]);
    for other in [&eng2, &viewer] {
        let r = other.patch(&this, json!({"body": "not yours"}));
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(
            r.text.contains("author of a comment or an owner"),
            "{}",
            r.text
        );
        assert_eq!(other.delete(&this).status, 403);
    }
    let edited = expect(
        &eng.patch(&this, json!({"body": "Renewed staging and prod."})),
        200,
    )
    .clone();
    assert_eq!(edited["body"], "Renewed staging and prod.");
    assert!(edited["edited_at"].is_string(), "{edited:#}");
    let second = expect(&eng2.post(&comments, json!({"body": "Thanks!"})), 201).clone();
    let r = owner.delete(&format!("{comments}/{}", second["id"]));
    assert_eq!(
        r.status, 204,
        "an owner removes anyone's comment: {}",
        r.text
    );
    let listed = expect(&eng.get(&comments), 200).clone();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["comments"][0]["body"], "Renewed staging and prod.");

    // Every write audited; a removed comment's words stay in the log.
    let created = events(&admin, "comment.create");
    assert_eq!(created.len(), 2);
    assert_eq!(created[0]["details"]["item"], id);
    let updated = events(&admin, "comment.update");
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0]["details"]["previous"]["body"],
        "Renewed staging.\nSee https://status.example.com/certs"
    );
    let deleted = events(&admin, "comment.delete");
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0]["actor"]["label"], "owner@ops.com",
        "{:#}",
        deleted[0]
    );
    assert_eq!(deleted[0]["details"]["previous"]["body"], "Thanks!");
    assert_eq!(deleted[0]["details"]["author"], "eng2@ops.com");

    // The CLI: assign, filter, comment, list, remove.
    let cli = Cli::with(&server.url, &server.admin_token, Some("ops"));
    let shown = cli
        .run(&["task", "assign", &id.to_string(), "me"])
        .ok()
        .stdout
        .clone();
    assert!(shown.contains("admin@example.com"), "{shown}");
    let listed = cli
        .run(&["task", "list", "--assignee", "me", "--json"])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed[0]["assignee"], "admin@example.com");
    cli.run(&["task", "assign", &id.to_string(), "nobody"]).ok();
    assert_eq!(expect(&admin.get(&item), 200)["assignee"], Value::Null);
    cli.run(&["task", "assign", &id.to_string(), "stranger@example.com"])
        .fails_with(6, "not a member of this workspace");
    let said = cli
        .run(&[
            "task",
            "comment",
            &id.to_string(),
            "Done from the terminal.",
        ])
        .ok()
        .stdout
        .clone();
    assert!(
        said.starts_with("Comment ") && said.contains("added to task"),
        "{said}"
    );
    let piped = cli
        .run_with_stdin(
            &["task", "comment", &id.to_string(), "-"],
            "Line one\nLine two\n",
        )
        .ok()
        .stdout
        .clone();
    assert!(piped.contains("added to task"), "{piped}");
    let printed = cli
        .run(&["task", "comments", &id.to_string()])
        .ok()
        .stdout
        .clone();
    assert!(printed.contains("eng@ops.com"), "{printed}");
    assert!(printed.contains("(edited)"), "{printed}");
    assert!(printed.contains("    Done from the terminal."), "{printed}");
    assert!(printed.contains("    Line one\n    Line two"), "{printed}");
    let listed = cli
        .run(&["task", "comments", &id.to_string(), "--json"])
        .ok()
        .json();
    let last = listed["comments"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    cli.run(&[
        "task",
        "remove-comment",
        &id.to_string(),
        &last["id"].to_string(),
    ])
    .ok();
    assert_eq!(expect(&eng.get(&comments), 200)["total"], 2);

    // Times in this computer's time zone (here a POSIX TZ of UTC+5:30),
    // or in UTC with --utc; JSON keeps the stored UTC times.
    let created = task["created_at"].as_str().unwrap();
    let india = Cli::with(&server.url, &server.admin_token, Some("ops")).env("TZ", "IST-5:30");
    let shown = india
        .run(&["task", "show", &id.to_string()])
        .ok()
        .stdout
        .clone();
    assert!(shown.contains("+05:30"), "{shown}");
    let shown = india
        .run(&["task", "show", &id.to_string(), "--utc"])
        .ok()
        .stdout
        .clone();
    assert!(
        shown.contains(&created[..19]) && !shown.contains("+05:30"),
        "{shown}"
    );
    let json = india
        .run(&["task", "show", &id.to_string(), "--json"])
        .ok()
        .json();
    assert_eq!(json["created_at"], created);
}

fn assignees_and_comments_on_the_pages(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let eng = server.api(&join(&server, "ops", "eng@ops.com", "engineer", false));
    admin_joins(&server, "ops");
    let task = admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "Patch the load balancers"}),
    );
    let id = task["id"].as_i64().unwrap();
    let done = admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "Already finished"}),
    );
    let web = admin_web_session(&server);
    let page = format!("/w/ops/tasks/{id}");

    // Assign to me, from the item page; the notice says so.
    let html = show(&web, &page);
    assert!(
        html.contains("<span class=\"muted\">Nobody</span>"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"eng@ops.com\">"),
        "members are offered"
    );
    let token = csrf_of(&html);
    let (status, html) = web.form_and_follow(
        &format!("{page}/assign"),
        &[("csrf", &token), ("assignee", ""), ("me", "1")],
    );
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Assignee saved."), "{html}");
    assert!(
        html.contains("data-assignee>admin@example.com</dd>"),
        "{html}"
    );
    assert!(
        html.contains("assigned it to admin@example.com"),
        "the history says it"
    );
    // Someone who is not a member: the page again, with the reason and the text.
    let (status, html) = web.form_and_follow(
        &format!("{page}/assign"),
        &[("csrf", &token), ("assignee", "who@example.com")],
    );
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("who@example.com is not a member of this workspace"),
        "{html}"
    );
    assert!(
        html.contains("value=\"who@example.com\""),
        "what was typed stays"
    );
    // A forged form changes nothing.
    let (status, _) = web.form_and_follow(
        &format!("{page}/assign"),
        &[("csrf", "forged"), ("assignee", "eng@ops.com")],
    );
    assert_eq!(status, 403);
    assert_eq!(
        expect(
            &admin.get(&format!("/api/v1/workspaces/ops/items/{id}")),
            200
        )["assignee"],
        "admin@example.com"
    );

    // Assigned to me: the list's filter, and the dashboard (unfinished only).
    let finished = done["id"].as_i64().unwrap();
    admin.patch(
        &format!("/api/v1/workspaces/ops/items/{finished}"),
        json!({"assignee": "me"}),
    );
    for status in ["doing", "done"] {
        admin.post(
            &format!("/api/v1/workspaces/ops/items/{finished}/transition"),
            json!({"status": status}),
        );
    }
    let list = show(&web, "/w/ops/tasks?assigned=1");
    assert!(list.contains("Patch the load balancers") && list.contains("Already finished"));
    assert!(
        list.contains("name=\"assigned\" value=\"1\" checked"),
        "{list}"
    );
    let dashboard = show(&web, "/w/ops");
    assert!(dashboard.contains("Assigned to you"), "{dashboard}");
    assert!(
        dashboard.contains("Patch the load balancers"),
        "{dashboard}"
    );
    assert!(
        !dashboard.contains("Already finished"),
        "a finished item is not listed"
    );
    let everything = show(&web, "/w/ops/tasks");
    assert!(everything.contains("<td class=\"hide-narrow\">admin@example.com</td>"));

    // Comments: links made clickable, markup shown as text.
    let (status, html) = web.form_and_follow(
        &format!("{page}/comments"),
        &[
            ("csrf", &token),
            ("body", "Rolled out to eu-1, see https://status.example.com/lb?x=1&y=2.\n<script>alert(1)</script>"),
        ],
    );
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Comment added."), "{html}");
    assert!(
        html.contains(
            "<a href=\"https://status.example.com/lb?x=1&amp;y=2\" rel=\"nofollow noreferrer\">"
        ),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<script>alert(1)"),
        "no markup from a comment"
    );
    let (status, html) = web.form_and_follow(
        &format!("{page}/comments"),
        &[("csrf", &token), ("body", "  ")],
    );
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("A comment needs some text."), "{html}");
    let others = expect(
        &eng.post(
            &format!("/api/v1/workspaces/ops/items/{id}/comments"),
            json!({"body": "On it."}),
        ),
        201,
    )
    .clone();

    // In a browser: assign, comment, edit and remove with a confirmation.
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    browser.sign_in("admin@example.com", crate::web::PASSWORD);
    browser.goto(&page);
    browser.fill("#assignee", "eng@ops.com");
    browser.click("form.assign button[type=submit]:not([name])");
    browser.wait_for(
        "the new assignee",
        "return document.querySelector('[data-assignee]')?.textContent === 'eng@ops.com';",
    );
    assert!(browser.text("main").contains("Assignee saved."));
    browser.fill("#comment-body", "Checked the health probes: all green.");
    browser.click(".comment-form button[type=submit]");
    browser.wait_for(
        "the new comment",
        "return [...document.querySelectorAll('li.comment')].some(c => c.textContent.includes('all green'));",
    );
    assert!(browser.text("main").contains("Comment added."));
    browser.check_page("item-comments");
    // The engineer's comment: an owner may remove it, after a confirmation.
    let theirs = format!("#comment-{}", others["id"]);
    browser.click(&format!("{theirs} details.confirm summary"));
    browser.click(&format!("{theirs} details.confirm button.danger"));
    browser.wait_for(
        "the removal",
        &format!("return !document.querySelector('{theirs}');"),
    );
    assert!(browser.text("main").contains("Comment removed."));
    browser.resize(390, 844);
    browser.goto(&page);
    assert_eq!(
        browser.script("return document.documentElement.scrollWidth <= window.innerWidth;"),
        true,
        "the item page fits a phone's width"
    );
    browser.screenshot("item-comments-phone");
}
