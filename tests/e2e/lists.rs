//! The web app's lists of work items with more than a page of them: a
//! total, pages both ways, search in titles, a status filter, "created by
//! me" and four orders, with links that keep the search.

use serde_json::json;
use vigilo_tests::browser::Browser;
use vigilo_tests::{expect, on_both_databases, Cli, TestDb, TestServer};

use crate::{admin_web_session, create_workspace, join, show};

on_both_databases!(
    lists_search_sort_and_page_both_ways,
    lists_filter_on_custom_fields_and_show_them,
    a_wrong_address_is_a_page_in_words
);

mod orders;

/// 125 tasks in `ops`: 118 by the admin (among them four about the
/// database, one with `50%` and one with `snake_case` in its title), then
/// 7 by an engineer.
fn server(db: TestDb) -> TestServer {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let mut titles: Vec<String> = (1..=112).map(|n| format!("Routine task {n:03}")).collect();
    titles.extend([
        "Database failover drill".to_owned(),
        "Vacuum the database".to_owned(),
        "Check DATABASE backups".to_owned(),
        "Rotate database passwords".to_owned(),
        "Raise the pool to 50% (db)".to_owned(),
        "Rename snake_case settings".to_owned(),
    ]);
    for title in &titles {
        admin.create(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "task", "title": title}),
        );
    }
    let engineer = server.api(&join(&server, "ops", "eng@ops.com", "engineer", false));
    for n in 1..=7 {
        engineer.create(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "task", "title": format!("Engineer's task {n}")}),
        );
    }
    server
}

/// The page's text between `start` and the next `end`.
fn between<'a>(page: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = page.find(start)? + start.len();
    let to = page[from..].find(end)? + from;
    Some(&page[from..to])
}

/// The pager's link marked `rel`, as a path.
fn link(page: &str, rel: &str) -> Option<String> {
    between(page, &format!("rel=\"{rel}\" href=\""), "\"")
        .map(|href| href.replace("&amp;", "&").replace("&#38;", "&"))
}

/// The titles of the list's rows, in order.
fn titles(page: &str) -> Vec<String> {
    page.split("<td><a href=\"/w/ops/tasks/")
        .skip(1)
        .filter_map(|row| between(row, "\">", "</a>"))
        .map(|t| t.replace("&#x27;", "'").replace("&#39;", "'"))
        .collect()
}

fn summary(page: &str) -> String {
    between(page, "data-summary>", "</p>")
        .unwrap_or("")
        .replace("&#x2013;", "–")
}

fn lists_search_sort_and_page_both_ways(db: TestDb) {
    let server = server(db);
    let web = admin_web_session(&server);

    // Newest first, 50 a page, with the total and the way on.
    let first = show(&web, "/w/ops/tasks");
    assert_eq!(summary(&first), "Showing 1–50 of 125 tasks");
    assert!(first.contains("Page 1 of 3"), "{first}");
    assert_eq!(titles(&first)[0], "Engineer's task 7");
    assert_eq!(titles(&first).len(), 50);
    assert_eq!(link(&first, "prev"), None);
    let older = link(&first, "next").expect("a link to older tasks");
    // Pages on from the last task shown (keyset paging): the 50th newest.
    assert_eq!(older, "/w/ops/tasks?after=76&page=2");
    assert!(first.contains("Older →"), "{first}");

    // The second page goes both ways.
    let second = show(&web, &older);
    assert_eq!(summary(&second), "Showing 51–100 of 125 tasks");
    assert_eq!(link(&second, "prev").as_deref(), Some("/w/ops/tasks"));
    assert!(second.contains("← Newer"), "{second}");
    let last = show(&web, &link(&second, "next").unwrap());
    assert_eq!(summary(&last), "Showing 101–125 of 125 tasks");
    assert_eq!(titles(&last).last().unwrap(), "Routine task 001");
    assert_eq!(link(&last, "next"), None);

    // A page past the end shows the last; a page that is no number, the
    // first; an unknown order or status is left out, not refused.
    assert_eq!(
        summary(&show(&web, "/w/ops/tasks?page=99")),
        "Showing 101–125 of 125 tasks"
    );
    assert_eq!(
        summary(&show(
            &web,
            "/w/ops/tasks?page=abc&sort=sideways&status=lost"
        )),
        "Showing 1–50 of 125 tasks"
    );

    // Search in titles, whatever the case; `%` and `_` are plain text.
    let found = show(&web, "/w/ops/tasks?q=DataBase");
    assert_eq!(summary(&found), "4 tasks");
    assert_eq!(
        titles(&found),
        [
            "Rotate database passwords",
            "Check DATABASE backups",
            "Vacuum the database",
            "Database failover drill"
        ]
    );
    assert!(
        found.contains("value=\"DataBase\""),
        "the box keeps the words"
    );
    assert_eq!(summary(&show(&web, "/w/ops/tasks?q=50%25")), "1 task");
    assert_eq!(
        titles(&show(&web, "/w/ops/tasks?q=_")),
        ["Rename snake_case settings"]
    );
    let none = show(&web, "/w/ops/tasks?q=zebra");
    assert!(none.contains("No tasks match"), "{none}");
    assert!(none.contains("href=\"/w/ops/tasks\">show every task</a>"));

    // Orders, and links that keep the search.
    let by_title = show(&web, "/w/ops/tasks?sort=title&q=task");
    assert_eq!(summary(&by_title), "Showing 1–50 of 119 tasks");
    assert_eq!(titles(&by_title)[0], "Engineer's task 1");
    let next = link(&by_title, "next").unwrap();
    assert!(
        next.contains("q=task") && next.contains("sort=title") && next.contains("page=2"),
        "{next}"
    );
    assert!(by_title.contains("Next →"), "{by_title}");
    // Keyset pages both ways in a sorted list: on, then back to the same rows.
    let second_by_title = show(&web, &next);
    assert_eq!(summary(&second_by_title), "Showing 51–100 of 119 tasks");
    let mut seen = titles(&by_title);
    seen.extend(titles(&second_by_title));
    let mut sorted = seen.clone();
    sorted.sort_by_key(|t| t.to_lowercase());
    assert_eq!(seen, sorted, "A to Z across the pages");
    let back = show(&web, &link(&second_by_title, "prev").unwrap());
    assert_eq!(titles(&back), titles(&by_title));
    let recent = show(&web, "/w/ops/tasks?sort=updated");
    let on = show(&web, &link(&recent, "next").unwrap());
    let again = show(&web, &link(&on, "prev").unwrap());
    assert_eq!(titles(&again), titles(&recent));
    assert!(!titles(&on).iter().any(|t| titles(&recent).contains(t)));
    assert_eq!(
        titles(&show(&web, "/w/ops/tasks?sort=oldest"))[0],
        "Routine task 001"
    );

    // Created by me: the admin's, not the engineer's.
    let mine = show(&web, "/w/ops/tasks?mine=1&sort=newest");
    assert_eq!(summary(&mine), "Showing 1–50 of 118 tasks");
    assert!(!titles(&mine).iter().any(|t| t.starts_with("Engineer")));

    // A status with nothing in it says so, with a way back.
    let done = show(&web, "/w/ops/tasks?status=done");
    assert!(done.contains("No tasks match"), "{done}");

    // The same search in the API and the CLI.
    let admin = server.admin();
    let titles_of = |answer: &serde_json::Value| -> Vec<String> {
        answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let found = expect(
        &admin.get("/api/v1/workspaces/ops/items?kind=task&q=DataBase"),
        200,
    )
    .clone();
    assert_eq!(titles_of(&found).len(), 4, "{found:#}");
    let found = expect(
        &admin.get("/api/v1/workspaces/ops/items?q=50%25&limit=10"),
        200,
    )
    .clone();
    assert_eq!(titles_of(&found), ["Raise the pool to 50% (db)"]);
    let mine = expect(
        &admin.get("/api/v1/workspaces/ops/items?created_by=me&limit=500"),
        200,
    )
    .clone();
    assert_eq!(titles_of(&mine).len(), 118);
    // Keyset pages keep the search: 4 matches, 3 a page.
    let first = expect(
        &admin.get("/api/v1/workspaces/ops/items?q=database&limit=3"),
        200,
    )
    .clone();
    let next = first["next_before"].as_i64().expect("a next page");
    let rest = expect(
        &admin.get(&format!(
            "/api/v1/workspaces/ops/items?q=database&limit=3&before={next}"
        )),
        200,
    )
    .clone();
    assert_eq!(titles_of(&rest), ["Database failover drill"]);
    assert_eq!(
        admin
            .get("/api/v1/workspaces/ops/items?created_by=someone")
            .status,
        422
    );
    let long = "x".repeat(201);
    assert_eq!(
        admin
            .get(&format!("/api/v1/workspaces/ops/items?q={long}"))
            .status,
        422
    );
    let cli = Cli::with(&server.url, &server.admin_token, Some("ops"));
    let listed = cli
        .run(&["task", "list", "--search", "database", "--json"])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed:#}");
    let listed = cli
        .run(&["task", "list", "--mine", "--limit", "500", "--json"])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 118);

    // In a browser, on a desktop and on a phone.
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    browser.sign_in("admin@example.com", crate::web::PASSWORD);
    browser.goto("/w/ops/tasks");
    browser.fill("#q", "database");
    browser.click(".list-search button[type=submit]");
    browser.wait_for(
        "the search's answer",
        "return document.querySelector('[data-summary]')?.textContent === '4 tasks';",
    );
    browser.check_page("tasks-search");
    // Times read in the reader's zone, recent ones as how long ago, the
    // full time in the tooltip; the machine time stays in the markup.
    let time = browser.script(
        "const t = document.querySelector('table.list time');
         return [t.textContent, t.title, t.dateTime];",
    );
    let [text, title, machine] = [0, 1, 2].map(|i| time[i].as_str().unwrap_or("").to_owned());
    assert!(
        text == "just now" || text.ends_with(" ago"),
        "{text:?} is not how long ago"
    );
    assert!(title.ends_with(')') && title.contains('('), "{title:?}");
    assert!(
        machine.starts_with("20") && machine.contains('T'),
        "{machine:?}"
    );
    // Quick search: `/` from any page of the workspace, words or a number.
    let key = |key: &str, ctrl: bool| {
        browser.script(&format!(
            "document.body.dispatchEvent(new KeyboardEvent('keydown', {{key: '{key}', ctrlKey: {ctrl}, bubbles: true}})); return null;"
        ));
    };
    key("/", false);
    browser.wait_for(
        "the search page",
        "return location.pathname === '/w/ops/search' && document.activeElement?.id === 'q';",
    );
    browser.fill("#q", "database");
    browser.click(".list-search button[type=submit]");
    browser.wait_for(
        "the matches",
        "return document.querySelector('[data-summary]')?.textContent === '4 matches';",
    );
    browser.check_page("quick-search");
    browser.fill("#q", "#7");
    browser.click(".list-search button[type=submit]");
    browser.wait_for(
        "item 7 itself",
        "return location.pathname === '/w/ops/tasks/7';",
    );
    key("k", true);
    browser.wait_for(
        "the search page again",
        "return location.pathname === '/w/ops/search';",
    );
    browser.goto("/w/ops/search?q=zebra");
    assert!(browser.text("main").contains("Nothing matches"));
    // A slug and a key are suggested from the name and the label, until
    // the person writes their own.
    browser.goto("/admin/workspaces");
    browser.fill("#name", "Platform Team (EU)");
    assert_eq!(
        browser.script("return document.querySelector('#slug').value;"),
        "platform-team-eu"
    );
    browser.fill("#slug", "plat");
    browser.fill("#name", "Something else");
    assert_eq!(
        browser.script("return document.querySelector('#slug').value;"),
        "plat"
    );
    browser.goto("/w/ops/settings/fields");
    browser.fill("#label", "Change window");
    assert_eq!(
        browser.script("return document.querySelector('#key').value;"),
        "change_window"
    );
    browser.goto("/w/ops/tasks?page=2");
    browser.check_page("tasks-page-2");
    browser.resize(390, 844);
    browser.goto("/w/ops/tasks?page=2");
    assert_eq!(
        browser.script("return document.documentElement.scrollWidth <= window.innerWidth;"),
        true,
        "the list fits a phone's width"
    );
    browser.screenshot("tasks-page-2-phone");
}

/// Addresses that name nothing get the app's own page, with its header and
/// a sentence, never the framework's text.
fn a_wrong_address_is_a_page_in_words(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let web = admin_web_session(&server);
    for path in [
        "/w/ops/tasks/abc",
        "/w/ops/tasks/99999",
        "/w/ops/nothing-here",
        "/w/ops/tasks/abc/edit",
    ] {
        let (status, page) = web.page(path);
        assert_eq!(status, 404, "{path}: {page}");
        assert!(
            page.contains("class=\"topbar\""),
            "{path} keeps the header: {page}"
        );
        assert!(
            !page.contains("Invalid URL") && !page.contains("i64") && !page.contains('`'),
            "{path}: {page}"
        );
    }
    let (status, page) = web.page("/w/ops/tasks?page=abc");
    assert_eq!(status, 200, "{page}");
}

/// A custom field's value as a filter, and chosen custom fields as columns,
/// all in the address.
fn lists_filter_on_custom_fields_and_show_them(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    for (key, label, kind) in [
        ("points", "Story points", "number"),
        ("area", "Area", "text"),
    ] {
        admin.create(
            "/api/v1/workspaces/ops/fields",
            json!({"key": key, "label": label, "applies_to": ["task"], "type": kind}),
        );
    }
    for (title, points, area) in [
        ("Small fix", 3, "api"),
        ("Big rewrite", 13, "web"),
        ("Another small fix", 3, "web"),
    ] {
        admin.create(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "task", "title": title, "fields": {"points": points, "area": area}}),
        );
    }
    let web = admin_web_session(&server);
    let all = show(&web, "/w/ops/tasks");
    assert!(
        all.contains("<option value=\"points\">Story points</option>"),
        "{all}"
    );
    assert!(all.contains("name=\"col\" value=\"area\""), "{all}");

    // A number field matches numbers; the chosen columns show in order.
    let page = show(
        &web,
        "/w/ops/tasks?field=points&value=3&col=area&col=points",
    );
    assert_eq!(summary(&page), "2 tasks");
    assert_eq!(titles(&page), ["Another small fix", "Small fix"]);
    let head = between(&page, "<thead>", "</thead>").unwrap();
    let (area, points) = (
        head.find(">Area<").unwrap(),
        head.find(">Story points<").unwrap(),
    );
    assert!(area < points, "{head}");
    assert!(
        page.contains("<td>web</td>") && page.contains("<td>3</td>"),
        "{page}"
    );
    assert!(
        page.contains("name=\"col\" value=\"points\" checked"),
        "{page}"
    );
    // Text matches exactly; the filter and columns stay in the pager's and
    // the bulk form's addresses.
    let page = show(&web, "/w/ops/tasks?field=area&value=web&col=points");
    assert_eq!(titles(&page), ["Another small fix", "Big rewrite"]);
    assert!(
        page.contains(
            "name=\"back\" value=\"/w/ops/tasks?field=area&#38;value=web&#38;col=points\""
        ),
        "{page}"
    );
    // What cannot be a filter is left out, not refused.
    for stale in [
        "/w/ops/tasks?field=points&value=three",
        "/w/ops/tasks?field=nope&value=1&col=nope",
    ] {
        let page = show(&web, stale);
        assert_eq!(summary(&page), "3 tasks", "{stale}");
        assert!(!page.contains(">nope<"), "{stale}");
    }
}
