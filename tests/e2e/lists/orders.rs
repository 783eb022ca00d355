//! Every column of a list sorts it: on the page, in the API and in the CLI.

use serde_json::json;
use vigilo_tests::{expect, on_both_databases, Cli, TestDb, TestServer};

use super::titles;
use crate::{admin_web_session, create_workspace, join, show};

on_both_databases!(lists_sort_by_any_column);

/// The ids of an API list's items, in order.
fn ids(list: &serde_json::Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

/// Every column of a list sorts it, on the page (its heading is a link), in
/// the API (`sort`, paged with `after`) and in the CLI (`--sort`).
fn lists_sort_by_any_column(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "points", "label": "Story points", "applies_to": ["task"], "type": "number"}),
    );
    join(&server, "ops", "eng@ops.com", "engineer", false);
    join(&server, "ops", "amy@ops.com", "engineer", false);
    // (title, points, assignee, status): two ties on points, one without.
    let tasks = [
        ("Alpha", Some(5), Some("eng@ops.com"), "done"),
        ("Bravo", Some(13), None, "todo"),
        ("Charlie", None, Some("amy@ops.com"), "doing"),
        ("Delta", Some(3), None, "doing"),
        ("Echo", Some(5), Some("eng@ops.com"), "todo"),
    ];
    let mut id_of = std::collections::HashMap::new();
    for (title, points, assignee, status) in tasks {
        let fields = points.map_or(json!({}), |p| json!({"points": p}));
        let item = admin.create(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "task", "title": title, "fields": fields}),
        );
        let path = format!("/api/v1/workspaces/ops/items/{}", item["id"]);
        if let Some(who) = assignee {
            expect(&admin.patch(&path, json!({"assignee": who})), 200);
        }
        for step in match status {
            "doing" => &["doing"][..],
            "done" => &["doing", "done"][..],
            _ => &[][..],
        } {
            expect(
                &admin.post(&format!("{path}/transition"), json!({"status": step})),
                200,
            );
        }
        id_of.insert(title, item["id"].as_i64().unwrap());
    }
    let web = admin_web_session(&server);
    let orders = [
        // Items without points first, then smallest; ties newest first.
        (
            "field:points",
            ["Charlie", "Delta", "Echo", "Alpha", "Bravo"],
        ),
        // Workflow order: todo, doing, done.
        ("status", ["Echo", "Bravo", "Delta", "Charlie", "Alpha"]),
        // Nobody first, then by email.
        ("assignee", ["Delta", "Bravo", "Charlie", "Echo", "Alpha"]),
        ("title", ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]),
        ("oldest", ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]),
    ];
    for (sort, expected) in orders {
        // The page, reached through its column heading.
        let list = show(&web, "/w/ops/tasks?col=points");
        let wanted = format!(
            "href=\"/w/ops/tasks?sort={}&#38;col=points\"",
            sort.replace(':', "%3A")
        );
        if sort != "oldest" {
            assert!(list.contains(&wanted), "{sort}: {list}");
        }
        let page = show(&web, &format!("/w/ops/tasks?sort={sort}&col=points"));
        assert_eq!(titles(&page), expected, "{sort}");
        // The API, two at a time, each page after the last one's item.
        let mut seen = Vec::new();
        let mut after = None::<i64>;
        loop {
            let path = match after {
                None => format!("/api/v1/workspaces/ops/items?kind=task&sort={sort}&limit=2"),
                Some(id) => {
                    format!("/api/v1/workspaces/ops/items?kind=task&sort={sort}&limit=2&after={id}")
                }
            };
            let list = expect(&admin.get(&path), 200).clone();
            seen.extend(ids(&list));
            assert_eq!(list["next_before"], serde_json::Value::Null);
            match list["next_after"].as_i64() {
                Some(id) => after = Some(id),
                None => break,
            }
        }
        let expected_ids: Vec<i64> = expected.iter().map(|t| id_of[t]).collect();
        assert_eq!(seen, expected_ids, "{sort}");
    }
    // The heading of the current order says so, and sorting by creation
    // turns newest first into oldest first.
    let page = show(&web, "/w/ops/tasks?sort=title");
    assert!(
        page.contains("aria-sort=\"ascending\"><a class=\"sort\" href=\"/w/ops/tasks?sort=title\""),
        "{page}"
    );
    assert!(
        page.contains("href=\"/w/ops/tasks\" title=\"Sort by number\""),
        "{page}"
    );
    let first = show(&web, "/w/ops/tasks");
    assert!(
        first.contains("href=\"/w/ops/tasks?sort=oldest\" title=\"Sort by number\""),
        "{first}"
    );
    // A stale order is left out on the page, refused in words in the API.
    assert_eq!(
        titles(&show(&web, "/w/ops/tasks?sort=field:gone"))[0],
        "Echo"
    );
    let refused = admin.get("/api/v1/workspaces/ops/items?sort=field:gone");
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("no custom field `gone` to sort by"),
        "{}",
        refused.text
    );
    let refused = admin.get("/api/v1/workspaces/ops/items?sort=title&before=3");
    assert_eq!(refused.status, 422, "{}", refused.text);
    // A cursor from another workspace says nothing about this one.
    create_workspace(&admin, "elsewhere");
    let other = admin.create(
        "/api/v1/workspaces/elsewhere/items",
        json!({"kind": "task", "title": "Zulu"}),
    );
    let refused = admin.get(&format!(
        "/api/v1/workspaces/ops/items?sort=title&after={}",
        other["id"]
    ));
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("\"after\""), "{}", refused.text);
    // A number field's value filters the API's list, given as text.
    let fives = expect(
        &admin.get("/api/v1/workspaces/ops/items?kind=task&field=points&value=5"),
        200,
    )
    .clone();
    assert_eq!(ids(&fives), [id_of["Echo"], id_of["Alpha"]]);

    // The CLI sorts, filters and says how to go on.
    let cli = Cli::with(&server.url, &server.admin_token, Some("ops"));
    let listed = cli
        .run(&["task", "list", "--sort", "field:points", "--limit", "2"])
        .ok()
        .stdout
        .clone();
    let charlie = listed.find("Charlie").expect("Charlie first");
    let delta = listed.find("Delta").expect("then Delta");
    assert!(charlie < delta && !listed.contains("Echo"), "{listed}");
    assert!(
        listed.contains(&format!("--after {}", id_of["Delta"])),
        "{listed}"
    );
    let listed = cli
        .run(&[
            "task", "list", "--field", "points=5", "--sort", "title", "--json",
        ])
        .ok()
        .json();
    let titles: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Alpha", "Echo"]);
    cli.run(&["task", "list", "--sort", "sideways"])
        .fails_with(6, "not an order");
}
