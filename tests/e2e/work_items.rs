//! Changes, incidents and tasks: workflows, who may approve, custom fields
//! with built-in types, and custom fields in exports and templates.

use serde_json::json;
use vigilo_tests::{expect, on_both_databases, Api, Response, TestDb, TestServer};

use crate::{create_workspace, join};

/// Asks to move the item at `item` (its API path) to `status`.
fn transition(api: &Api, item: &str, status: &str) -> Response {
    api.post(&format!("{item}/transition"), json!({"status": status}))
}

fn count_items(server: &TestServer) -> i64 {
    server.db.number("SELECT COUNT(*) FROM work_items")
}

fn workflows_and_approval(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    create_workspace(&admin, "other");
    let engineer = server.api(&join(&server, "ops", "eng@ops.com", "engineer", false));
    let approver = server.api(&join(&server, "ops", "appr@ops.com", "approver", false));
    let viewer = server.api(&join(&server, "ops", "view@ops.com", "viewer", false));
    admin.create(
        "/api/v1/workspaces/ops/roles",
        json!({"name": "release-manager", "base_role": "engineer", "add": ["change.approve"]}),
    );
    let release = server.api(&join(&server, "ops", "rm@ops.com", "release-manager", true));

    // Viewers read but do not write.
    let denied = viewer.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "x"}),
    );
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json["error"]["missing_permission"], "item.write");

    // A task walks its workflow; an illegal move is refused with the options.
    let task = engineer.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "Rotate keys"}),
    );
    assert_eq!(task["status"], "todo");
    assert_eq!(task["next_statuses"], json!(["doing"]));
    let path = format!("/api/v1/workspaces/ops/items/{}", task["id"]);
    let skip = transition(&engineer, &path, "done");
    assert_eq!(skip.status, 409, "{}", skip.text);
    assert!(
        skip.text.contains("from todo it can move to: doing"),
        "{}",
        skip.text
    );
    let unknown = transition(&engineer, &path, "finished");
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    expect(&transition(&engineer, &path, "doing"), 200);
    let done = expect(&transition(&engineer, &path, "done"), 200).clone();
    assert_eq!(done["status"], "done");

    // A change needs change.approve to be approved.
    let change = engineer.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "change", "title": "Upgrade PostgreSQL"}),
    );
    assert_eq!(change["status"], "draft");
    let cpath = format!("/api/v1/workspaces/ops/items/{}", change["id"]);
    expect(&transition(&engineer, &cpath, "pending_approval"), 200);
    let refused = transition(&engineer, &cpath, "approved");
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(
        refused.json["error"]["missing_permission"],
        "change.approve"
    );
    let still = expect(&engineer.get(&cpath), 200).clone();
    assert_eq!(
        still["status"], "pending_approval",
        "a refused approval changes nothing"
    );
    let approved = expect(
        &approver.post(
            &format!("{cpath}/transition"),
            json!({"status": "approved", "comment": "LGTM"}),
        ),
        200,
    )
    .clone();
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["next_statuses"], json!(["in_progress"]));

    // A custom role holding change.approve may reject.
    let second = engineer.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "change", "title": "Drop table"}),
    );
    let spath = format!("/api/v1/workspaces/ops/items/{}", second["id"]);
    expect(&transition(&engineer, &spath, "pending_approval"), 200);
    let rejected = expect(&transition(&release, &spath, "rejected"), 200).clone();
    assert_eq!(rejected["status"], "rejected");

    // The approval and rejection are audited under their own names.
    let audit = admin.workspace_audit("ops", "action=change.*&limit=100");
    let actions = audit.action_actors();
    assert!(
        actions.contains(&("change.approve", "appr@ops.com")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("change.reject", "rm@ops.com")),
        "{actions:?}"
    );

    // Listing filters by kind and status; another workspace sees none of it.
    let pending = expect(
        &engineer.get("/api/v1/workspaces/ops/items?kind=change&status=approved"),
        200,
    )
    .clone();
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    assert_eq!(pending["items"][0]["title"], "Upgrade PostgreSQL");
    let bad_status = engineer.get("/api/v1/workspaces/ops/items?kind=task&status=approved");
    assert_eq!(bad_status.status, 422);
    let elsewhere = admin.get(&format!("/api/v1/workspaces/other/items/{}", change["id"]));
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.text);
    let other_list = expect(&admin.get("/api/v1/workspaces/other/items"), 200).clone();
    assert_eq!(other_list["items"].as_array().unwrap().len(), 0);
}

fn custom_fields_with_builtin_types(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let engineer = server.api(&join(&server, "ops", "eng@ops.com", "engineer", false));
    let fields = [
        json!({"key": "points", "label": "Story points", "type": "number", "applies_to": ["task"]}),
        json!({"key": "severity", "label": "Severity", "type": "select", "applies_to": ["incident"], "required": true, "options": ["sev1", "sev2", "sev3"]}),
        json!({"key": "due", "label": "Due", "type": "date", "applies_to": ["task", "change"]}),
        json!({"key": "customer_facing", "label": "Customer facing", "type": "boolean", "applies_to": ["incident"]}),
    ];
    for f in &fields {
        admin.create("/api/v1/workspaces/ops/fields", f.clone());
    }
    // Engineers cannot define fields; bad definitions are refused.
    let denied = engineer.post("/api/v1/workspaces/ops/fields", fields[0].clone());
    assert_eq!(denied.status, 403);
    for (bad, field) in [
        (
            json!({"key": "x", "label": "X", "type": "colour", "applies_to": ["task"]}),
            "type",
        ),
        (
            json!({"key": "x", "label": "X", "type": "select", "applies_to": ["task"]}),
            "options",
        ),
        (
            json!({"key": "x", "label": "X", "type": "text", "applies_to": ["ticket"]}),
            "applies_to",
        ),
        (
            json!({"key": "x y", "label": "X", "type": "text", "applies_to": ["task"]}),
            "key",
        ),
    ] {
        let r = admin.post("/api/v1/workspaces/ops/fields", bad.clone());
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.json["error"]["field"], field, "{}", r.text);
    }
    let dup = admin.post("/api/v1/workspaces/ops/fields", fields[0].clone());
    assert_eq!(dup.status, 409);

    let before = count_items(&server);
    for (body, field, says) in [
        (
            json!({"kind": "task", "title": "t", "fields": {"points": "three"}}),
            "fields.points",
            "expected a number",
        ),
        (
            json!({"kind": "task", "title": "t", "fields": {"due": "next week"}}),
            "fields.due",
            "expected a date",
        ),
        (
            json!({"kind": "task", "title": "t", "fields": {"severity": "sev1"}}),
            "fields.severity",
            "no custom field `severity` for a task",
        ),
        (
            json!({"kind": "incident", "title": "i"}),
            "fields.severity",
            "is required",
        ),
        (
            json!({"kind": "incident", "title": "i", "fields": {"severity": "sev9"}}),
            "fields.severity",
            "not one of the options",
        ),
        (
            json!({"kind": "incident", "title": "i", "fields": {"severity": "sev2", "customer_facing": "yes"}}),
            "fields.customer_facing",
            "true or false",
        ),
    ] {
        let r = engineer.post("/api/v1/workspaces/ops/items", body.clone());
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.json["error"]["field"], field, "{}", r.text);
        assert!(r.text.contains(says), "{body}: {}", r.text);
    }
    assert_eq!(count_items(&server), before, "refused items store nothing");

    let task = engineer.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "t", "fields": {"points": 3, "due": "2026-12-24"}}),
    );
    assert_eq!(task["fields"], json!({"points": 3, "due": "2026-12-24"}));
    let path = format!("/api/v1/workspaces/ops/items/{}", task["id"]);
    // An update that fails validation leaves the stored values alone.
    let bad = engineer.patch(
        &path,
        json!({"title": "renamed", "fields": {"points": "many"}}),
    );
    assert_eq!(bad.status, 422);
    let kept = expect(&engineer.get(&path), 200).clone();
    assert_eq!(kept["title"], "t");
    assert_eq!(kept["fields"]["points"], 3);
    let updated = expect(
        &engineer.patch(&path, json!({"fields": {"points": 5, "due": null}})),
        200,
    )
    .clone();
    assert_eq!(updated["fields"], json!({"points": 5}));
    let incident = engineer.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "incident", "title": "i", "fields": {"severity": "sev2"}}),
    );
    let unset = engineer.patch(
        &format!("/api/v1/workspaces/ops/items/{}", incident["id"]),
        json!({"fields": {"severity": null}}),
    );
    assert_eq!(unset.status, 422, "{}", unset.text);

    // Custom fields travel in the export and come back from a template.
    let export = expect(&admin.get("/api/v1/workspaces/ops/export"), 200).clone();
    assert_eq!(
        export["custom_fields"].as_array().unwrap().len(),
        4,
        "{export:#}"
    );
    assert_eq!(
        export["custom_fields"][1]["options"],
        json!(["sev1", "sev2", "sev3"])
    );
    admin.copy_through_template(export, "ops-template", ("Ops 2", "ops-2", "eu"));
    let copied = expect(&admin.get("/api/v1/workspaces/ops-2/fields"), 200).clone();
    assert_eq!(
        copied["fields"],
        expect(&admin.get("/api/v1/workspaces/ops/fields"), 200)["fields"]
    );
    let again = admin.post(
        "/api/v1/workspaces/ops-2/items",
        json!({"kind": "incident", "title": "i"}),
    );
    assert_eq!(
        again.status, 422,
        "the required field came along: {}",
        again.text
    );

    // Deleting a definition is audited and stops validation of that key.
    let r = admin.delete("/api/v1/workspaces/ops/fields/points");
    assert_eq!(r.status, 204, "{}", r.text);
    let gone = engineer.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "t", "fields": {"points": 1}}),
    );
    assert_eq!(gone.status, 422);
}

/// A workspace has at most 100 custom fields: the 101st is a 422 through
/// the API, the CLI and the settings page, also when two are added at once,
/// and a template with more is refused.
fn custom_fields_are_capped(db: TestDb) {
    use vigilo_host::domain::fields::MAX_FIELDS;
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let field = |i: usize| json!({"key": format!("f{i}"), "label": format!("Field {i}"), "type": "text", "applies_to": ["task"]});
    for i in 0..MAX_FIELDS - 2 {
        admin.create("/api/v1/workspaces/ops/fields", field(i));
    }
    // Four at once for the last two places: two are added, two refused.
    let racers: Vec<_> = (0..4)
        .map(|i| {
            let api = server.admin();
            let body = field(1000 + i);
            std::thread::spawn(move || api.post("/api/v1/workspaces/ops/fields", body).status)
        })
        .collect();
    let mut statuses: Vec<u16> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 201, 422, 422]);
    let count = || server.db.number("SELECT COUNT(*) FROM custom_fields");
    assert_eq!(count(), MAX_FIELDS as i64);
    let refused = admin.post("/api/v1/workspaces/ops/fields", field(2000));
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        refused.json["error"]["code"], "validation_failed",
        "{}",
        refused.text
    );
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100 custom fields"),
        "{}",
        refused.text
    );
    // The CLI says the same, with the exit code of a refused request.
    let cli = vigilo_tests::Cli::with(&server.url, &server.admin_token, Some("ops"));
    cli.run(&[
        "field", "add", "--key", "more", "--label", "More", "--type", "text",
    ])
    .fails_with(6, "at most 100 custom fields");
    // The settings page shows the count and why nothing more can be added.
    let web = crate::admin_web_session(&server);
    let (status, page) = web.page("/w/ops/settings/fields");
    assert_eq!(status, 200);
    assert!(page.contains("(100 of at most 100)"), "the count is shown");
    assert!(
        page.contains("id=\"fields-full\""),
        "and that the list is full"
    );
    let csrf = crate::csrf_of(&page);
    let (status, page) = web.form(
        "/w/ops/settings/fields",
        &[
            ("csrf", csrf.as_str()),
            ("label", "More"),
            ("key", "more"),
            ("type", "text"),
            ("applies_to", "task"),
        ],
    );
    assert_eq!(status, 422);
    assert!(page.contains("at most 100 custom fields"));
    assert_eq!(count(), MAX_FIELDS as i64, "nothing was added");
    // Removing one makes room again.
    expect(&admin.delete("/api/v1/workspaces/ops/fields/f0"), 204);
    admin.create("/api/v1/workspaces/ops/fields", field(3000));
    // A template with more fields than a workspace may have is refused.
    let mut snapshot = expect(&admin.get("/api/v1/workspaces/ops/export"), 200).clone();
    snapshot["custom_fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "extra", "label": "Extra", "type": "text", "applies_to": ["task"]}));
    let refused = admin.post(
        "/api/v1/templates",
        json!({"name": "too-many", "snapshot": snapshot}),
    );
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        refused.json["error"]["field"], "snapshot.custom_fields",
        "{}",
        refused.text
    );
}

/// An update records exactly what changed, with the values before and
/// after; an update that changes nothing records nothing; the item's page
/// tells it as a sentence with the fields' labels.
fn updates_record_what_changed(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "points", "label": "Story points", "type": "number", "applies_to": ["task"]}),
    );
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "due", "label": "Due", "type": "date", "applies_to": ["task"]}),
    );
    let task = admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "first", "description": "d",
               "fields": {"points": 3, "due": "2026-12-24"}}),
    );
    let path = format!("/api/v1/workspaces/ops/items/{}", task["id"]);
    let updates = || admin.workspace_audit("ops", "action=task.update&limit=100");

    // Only the title, though the request repeats the other values.
    expect(
        &admin.patch(
            &path,
            json!({"title": "second", "description": "d", "fields": {"points": 3}}),
        ),
        200,
    );
    let events = updates();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].details,
        json!({"title": "second", "description_changed": false, "fields": {},
               "previous": {"title": "first"}})
    );

    // Nothing differs: nothing is recorded, and the item is as it was.
    let same = expect(
        &admin.patch(&path, json!({"title": "second", "fields": {"points": 3}})),
        200,
    )
    .clone();
    assert_eq!(same["title"], "second");
    assert_eq!(updates().len(), 1);

    // Two fields: one set, one cleared, each with its value before.
    expect(
        &admin.patch(&path, json!({"fields": {"points": 5, "due": null}})),
        200,
    );
    let events = updates();
    assert_eq!(events.len(), 2, "{events:?}");
    let newest = events
        .iter()
        .find(|e| e.details["title"].is_null())
        .expect("the field update");
    assert_eq!(newest.details["fields"], json!({"points": 5, "due": null}));
    assert_eq!(
        newest.details["previous"],
        json!({"fields": {"points": 3, "due": "2026-12-24"}})
    );

    let web = crate::admin_web_session(&server);
    let (status, page) = web.page(&format!("/w/ops/tasks/{}", task["id"]));
    assert_eq!(status, 200);
    assert!(
        page.contains("changed the title from “first” to “second”"),
        "{page}"
    );
    assert!(
        page.contains("cleared Due and set Story points to 5"),
        "{page}"
    );
    assert!(!page.contains("`points`"), "{page}");
}

/// With `four_eyes` on, a change's author may not approve it (one rule, in
/// the domain, so the CLI and the page refuse it too); someone else may. The setting takes only true or false, and holidays only dates.
fn four_eyes_keeps_authors_from_approving(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let author = server.api(&join(&server, "ops", "rm@ops.com", "approver", false));
    let other = server.api(&join(&server, "ops", "appr@ops.com", "approver", false));
    let change = |api: &Api| {
        let item = api.create(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "change", "title": "Upgrade"}),
        );
        let path = format!("/api/v1/workspaces/ops/items/{}", item["id"]);
        expect(&transition(api, &path, "pending_approval"), 200);
        path
    };
    // Off (the default): the author may approve.
    let first = change(&author);
    expect(&transition(&author, &first, "approved"), 200);

    for (value, says) in [(json!("yes"), "true"), (json!(1), "true")] {
        let r = admin.put(
            "/api/v1/workspaces/ops/settings/four_eyes",
            json!({"value": value}),
        );
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.json["error"]["field"], "value", "{}", r.text);
        assert!(r.text.contains(says), "{}", r.text);
    }
    let r = admin.put(
        "/api/v1/workspaces/ops/settings/holidays",
        json!({"value": ["2026-12-25", "Christmas"]}),
    );
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("Christmas"), "{}", r.text);
    expect(
        &admin.put(
            "/api/v1/workspaces/ops/settings/four_eyes",
            json!({"value": true}),
        ),
        200,
    );

    // On: the author is refused; another approver approves. Rejecting one's own change stays allowed.
    let second = change(&author);
    let refused = transition(&author, &second, "approved");
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("approved by someone other than its author"),
        "{}",
        refused.text
    );
    assert_eq!(
        expect(&author.get(&second), 200)["status"],
        "pending_approval"
    );
    expect(&transition(&other, &second, "approved"), 200);
    let third = change(&author);
    expect(&transition(&author, &third, "rejected"), 200);
}

on_both_databases!(
    workflows_and_approval,
    custom_fields_with_builtin_types,
    custom_fields_are_capped,
    updates_record_what_changed,
    four_eyes_keeps_authors_from_approving
);
