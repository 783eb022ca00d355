//! Moving many items at once: each checked and audited as if moved alone,
//! and a report of what did not move and why; through the API, the CLI,
//! the list pages and a browser.

use serde_json::{json, Value};
use vigilo_tests::browser::Browser;
use vigilo_tests::{expect, on_both_databases, Api, Cli, TestDb, TestServer};

use crate::{admin_web_session, create_workspace, csrf_of, join};

on_both_databases!(many_items_move_at_once_with_a_report);

fn task(admin: &Api, title: &str) -> i64 {
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": title}),
    )["id"]
        .as_i64()
        .unwrap()
}

fn status(admin: &Api, id: i64) -> String {
    expect(
        &admin.get(&format!("/api/v1/workspaces/ops/items/{id}")),
        200,
    )["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}

fn many_items_move_at_once_with_a_report(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let eng = server.api(&join(&server, "ops", "eng@ops.com", "engineer", false));
    let viewer = server.api(&join(&server, "ops", "view@ops.com", "viewer", false));
    let t: Vec<i64> = (1..=6)
        .map(|n| task(&admin, &format!("Task {n}")))
        .collect();
    let change = admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "change", "title": "Upgrade"}),
    )["id"]
        .as_i64()
        .unwrap();
    admin.post(
        &format!("/api/v1/workspaces/ops/items/{}/transition", t[2]),
        json!({"status": "doing"}),
    );
    let bulk = "/api/v1/workspaces/ops/items/transitions";

    // Each item on its own: two move, one is already there, a change is
    // not a task, an unknown number is not found.
    let report = expect(
        &eng.post(
            bulk,
            json!({"kind": "task", "ids": [t[0], t[1], t[2], change, 999_999, t[0]], "status": "doing",
                   "comment": "sprint start"}),
        ),
        200,
    )
    .clone();
    assert_eq!(ids(&report["moved"]), [t[0], t[1]], "{report:#}");
    assert_eq!(report["moved"][0]["status"], "doing");
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(
        ids(&report["refused"]),
        [t[2], change, 999_999],
        "{report:#}"
    );
    assert_eq!(refused[0]["error"]["code"], "conflict");
    assert!(
        refused[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot move to doing"),
        "{report:#}"
    );
    assert_eq!(refused[1]["error"]["code"], "not_found");
    assert_eq!(refused[2]["error"]["code"], "not_found");
    // One audited move per item moved, with the comment.
    let events = expect(&admin.get("/api/v1/workspaces/ops/audit?limit=500"), 200).clone();
    let moves: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "task.transition" && e["details"]["comment"] == "sprint start")
        .collect();
    assert_eq!(moves.len(), 2, "{moves:#?}");

    // Permissions: a viewer moves nothing; an engineer cannot approve.
    let r = viewer.post(bulk, json!({"ids": [t[3]], "status": "doing"}));
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(status(&admin, t[3]), "todo");
    admin.post(
        &format!("/api/v1/workspaces/ops/items/{change}/transition"),
        json!({"status": "pending_approval"}),
    );
    let report = expect(
        &eng.post(bulk, json!({"ids": [change], "status": "approved"})),
        200,
    )
    .clone();
    assert_eq!(
        report["refused"][0]["error"]["code"], "forbidden",
        "{report:#}"
    );
    assert_eq!(
        report["refused"][0]["error"]["missing_permission"],
        "change.approve"
    );
    // Bad requests name the field.
    for body in [
        json!({"ids": [], "status": "doing"}),
        json!({"ids": (1..=501).collect::<Vec<i64>>(), "status": "doing"}),
    ] {
        let r = eng.post(bulk, body);
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.json["error"]["field"], "ids", "{}", r.text);
    }
    let r = eng.post(
        bulk,
        json!({"kind": "ship", "ids": [t[3]], "status": "doing"}),
    );
    assert_eq!(r.status, 422, "{}", r.text);

    // The CLI: a table of outcomes, a summary, exit 8 when some refused.
    let cli = Cli::with(&server.url, &server.admin_token, Some("ops"));
    let out = cli.run(&[
        "task",
        "move-many",
        "done",
        &t[0].to_string(),
        &t[1].to_string(),
        &t[3].to_string(),
    ]);
    assert_eq!(out.code, 8, "{out:?}");
    assert!(
        out.stdout.contains("Moved 2 of 3 to done."),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("refused"), "{}", out.stdout);
    assert_eq!(status(&admin, t[0]), "done");
    assert_eq!(status(&admin, t[3]), "todo");
    cli.run(&["task", "move-many", "doing", &t[3].to_string()])
        .ok();
    assert_eq!(status(&admin, t[3]), "doing");

    // The list page: tick, move, and the report on the list.
    let web = admin_web_session(&server);
    let (_, list) = web.page("/w/ops/tasks?q=Task");
    assert!(
        list.contains("name=\"back\" value=\"/w/ops/tasks?q=Task\""),
        "{list}"
    );
    assert!(list.contains(&format!("name=\"id\" value=\"{}\" form=\"bulk\"", t[4])));
    let csrf = csrf_of(&list);
    let (t4, t5, t3) = (t[4].to_string(), t[5].to_string(), t[3].to_string());
    let (status_code, page) = web.form_and_follow(
        "/w/ops/tasks/bulk-move",
        &[
            ("csrf", &csrf),
            ("back", "/w/ops/tasks?q=Task"),
            ("status", "doing"),
            ("id", &t4),
            ("id", &t5),
            ("id", &t3),
        ],
    );
    assert_eq!(status_code, 200, "{page}");
    assert!(
        page.contains("Moved 2 of 3 tasks to doing; 1 did not move."),
        "{page}"
    );
    assert!(page.contains("Not moved"), "{page}");
    assert!(
        page.contains(&format!("Task {}</a>: It is doing already.", t[3])),
        "{page}"
    );
    assert!(
        page.contains("value=\"Task\""),
        "the search is kept: {page}"
    );
    assert_eq!(status(&admin, t[4]), "doing");
    // Nothing ticked says so; a forged form moves nothing; a foreign
    // "back" leads to the list itself.
    let (_, page) = web.form_and_follow(
        "/w/ops/tasks/bulk-move",
        &[("csrf", &csrf), ("status", "done")],
    );
    assert!(
        page.contains("Nothing moved: tick the tasks to move first."),
        "{page}"
    );
    let (code, _) = web.form_and_follow(
        "/w/ops/tasks/bulk-move",
        &[("csrf", "forged"), ("status", "done"), ("id", &t4)],
    );
    assert_eq!(code, 403);
    assert_eq!(status(&admin, t[4]), "doing");
    let (code, page) = web.form_and_follow(
        "/w/ops/tasks/bulk-move",
        &[
            ("csrf", &csrf),
            ("back", "https://evil.example/"),
            ("status", "done"),
            ("id", &t4),
        ],
    );
    assert_eq!(code, 200);
    assert!(page.contains("Moved 1 task to done."), "{page}");
    let (code, page) = web.form_and_follow(
        "/w/ops/tasks/bulk-move",
        &[("csrf", &csrf), ("status", "done"), ("id", "seven")],
    );
    assert_eq!(code, 422, "{page}");
    assert!(
        page.contains("seven is not the number of an item."),
        "{page}"
    );

    // In a browser: tick every task on the page, move them, read the report.
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    browser.sign_in("admin@example.com", crate::web::PASSWORD);
    browser.goto("/w/ops/tasks");
    browser.click("input[data-select-all]");
    assert_eq!(
        browser.script("return document.querySelectorAll('input[name=id]:checked').length;"),
        6
    );
    browser.script("document.querySelector('#bulk-status').value = 'done'; return null;");
    browser.click("#bulk button[type=submit]");
    browser.wait_for(
        "the bulk report",
        "return !!document.querySelector('.bulk-refused') && !!document.querySelector('.notice');",
    );
    let notice = browser.text_of(".notice");
    assert!(notice.contains("did not move"), "{notice}");
    browser.check_page("tasks-bulk-moved");
    browser.resize(390, 844);
    browser.goto("/w/ops/tasks");
    assert_eq!(
        browser.script("return document.documentElement.scrollWidth <= window.innerWidth;"),
        true,
        "the list with its boxes fits a phone"
    );
}
