//! Members and invites a page at a time, both ways, through the API and the
//! CLI.

use super::*;

on_both_databases!(long_lists_are_paged_both_ways);

/// Walks a paged list of the API from its first page to its last, then
/// back; returns the keys (`key` of each row) in list order, checking that
/// both walks saw the same rows.
fn walk_api(
    api: &Api,
    path: &str,
    rows: &str,
    key: &str,
    next: (&str, &str),
    prev: (&str, &str),
) -> Vec<Value> {
    let get = |query: String| expect(&api.get(&format!("{path}?limit=100{query}")), 200).clone();
    let keys = |page: &Value| -> Vec<Value> {
        page[rows]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[key].clone())
            .collect()
    };
    // The key an answer gives under `name` (an email or an id), as text.
    let cursor = |page: &Value, name: &str| {
        page[name]
            .as_str()
            .map(str::to_owned)
            .or(page[name].as_i64().map(|i| i.to_string()))
    };
    let mut page = get(String::new());
    assert!(page[prev.1].is_null(), "no page before the first");
    let mut forward = vec![keys(&page)];
    while let Some(at) = cursor(&page, next.1) {
        page = get(format!("&{}={}", next.0, url_encode(&at)));
        forward.push(keys(&page));
    }
    let mut backward = vec![keys(&page)];
    while let Some(at) = cursor(&page, prev.1) {
        page = get(format!("&{}={}", prev.0, url_encode(&at)));
        backward.push(keys(&page));
    }
    backward.reverse();
    assert_eq!(forward, backward, "the same pages both ways");
    assert!(forward[..forward.len() - 1].iter().all(|p| p.len() == 100));
    forward.concat()
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Runs `base` (a `--json` list command), from `start` (a flag and its
/// value) if given, then follows the CLI's `hint` ("Next page:" or
/// "Previous page:") until there is none; returns each page's rows' `key`s.
fn walk_cli(
    cli: &Cli,
    base: &[&str],
    start: Option<(&str, &str)>,
    hint: &str,
    key: &str,
) -> Vec<Vec<Value>> {
    let mut from: Option<(String, String)> = start.map(|(f, v)| (f.to_owned(), v.to_owned()));
    let mut pages = Vec::new();
    loop {
        let mut argv: Vec<&str> = base.to_vec();
        if let Some((flag, value)) = &from {
            argv.push(flag);
            argv.push(value);
        }
        let out = cli.run(&argv);
        out.ok();
        pages.push(
            out.json()
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[key].clone())
                .collect(),
        );
        let Some(rest) = out.stderr.split(hint).nth(1) else {
            break;
        };
        // " vigilo invite list --before 123. ..."
        let words: Vec<&str> = rest.split_whitespace().collect();
        from = Some((
            words[3].to_owned(),
            words[4].trim_end_matches('.').to_owned(),
        ));
    }
    pages
}

fn long_lists_are_paged_both_ways(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "big");
    fill_invites(&server.db, "big", "guest", 1_030);
    fill_members(&server.db, "big", "person", 240);
    let owner_token = join(&server, "big", "owner@big.com", "owner", false);
    let viewer_token = join(&server, "big", "viewer@big.com", "viewer", false);
    let invites_total = 1_032;
    let members_total = 242;

    // The API: every invite once, newest first, the same pages both ways;
    // the members by email.
    let viewer = server.api(&viewer_token);
    let ids = walk_api(
        &viewer,
        "/api/v1/workspaces/big/invites",
        "invites",
        "id",
        ("before", "next_before"),
        ("after", "prev_after"),
    );
    assert_eq!(ids.len(), invites_total);
    let ids: Vec<i64> = ids.iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    let emails = walk_api(
        &viewer,
        "/api/v1/workspaces/big/members",
        "members",
        "email",
        ("after", "next_after"),
        ("before", "prev_before"),
    );
    assert_eq!(emails.len(), members_total);
    let emails: Vec<&str> = emails.iter().map(|v| v.as_str().unwrap()).collect();
    assert!(
        emails.windows(2).all(|w| w[0] < w[1]),
        "by email, no repeats"
    );
    // The count, the default page and the bounds.
    let first = expect(&viewer.get("/api/v1/workspaces/big/invites"), 200).clone();
    assert_eq!(first["total"], invites_total);
    assert_eq!(
        first["invites"].as_array().unwrap().len(),
        100,
        "100 by default"
    );
    let most = expect(&viewer.get("/api/v1/workspaces/big/invites?limit=500"), 200).clone();
    assert_eq!(most["invites"].as_array().unwrap().len(), 500);
    for (bad, status) in [
        ("limit=0", 422),
        ("limit=501", 422),
        ("limit=x", 400),
        ("before=x", 400),
        ("page=2", 400),
    ] {
        let r = viewer.get(&format!("/api/v1/workspaces/big/invites?{bad}"));
        assert_eq!(r.status, status, "{bad}: {}", r.text);
    }
    let r = viewer.get("/api/v1/workspaces/big/members?limit=501");
    assert_eq!(r.status, 422, "{}", r.text);
    // Both keys: the rows between them.
    let between = expect(
        &viewer.get(&format!(
            "/api/v1/workspaces/big/invites?before={}&after={}",
            ids[10], ids[20]
        )),
        200,
    )
    .clone();
    let got: Vec<i64> = between["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids[11..20].to_vec());
    let between = expect(
        &viewer.get(&format!(
            "/api/v1/workspaces/big/members?after={}&before={}",
            url_encode(emails[3]),
            url_encode(emails[7])
        )),
        200,
    )
    .clone();
    let got: Vec<&str> = between["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(got, emails[4..7].to_vec());

    // The CLI: a page of 100 with how to go on; --limit over several
    // pages; --all; and the pages walked both ways by following its hints.
    let cli = Cli::with(&server.url, &owner_token, Some("big"));
    let page = cli.run(&["invite", "list"]);
    page.ok();
    assert_eq!(page.stdout.lines().count(), 101, "a header and 100 rows");
    assert!(
        page.stderr.contains(&format!(
            "Showing 100 of {invites_total} invites. Next page: vigilo invite list --before {}",
            ids[99]
        )),
        "{}",
        page.stderr
    );
    let limited = cli.run(&["--json", "invite", "list", "--limit", "777"]);
    let limited: Vec<i64> = limited
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(limited, ids[..777].to_vec());
    let all = cli.run(&["--json", "invite", "list", "--all"]);
    assert_eq!(all.ok().json().as_array().unwrap().len(), invites_total);
    assert!(
        all.stderr.is_empty(),
        "nothing left to hint at: {}",
        all.stderr
    );
    let forward = walk_cli(
        &cli,
        &["--json", "invite", "list", "--limit", "250"],
        None,
        "Next page:",
        "id",
    );
    assert_eq!(forward.len(), 5);
    let last = forward
        .last()
        .unwrap()
        .last()
        .unwrap()
        .as_i64()
        .unwrap()
        .to_string();
    let mut backward = walk_cli(
        &cli,
        &["--json", "invite", "list", "--limit", "250"],
        Some(("--after", &last)),
        "Previous page:",
        "id",
    );
    assert_eq!(backward.len(), 5);
    let forward_ids: Vec<i64> = forward
        .concat()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(forward_ids, ids);
    backward.reverse();
    let backward_ids: Vec<i64> = backward
        .concat()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(
        backward_ids,
        ids[..ids.len() - 1].to_vec(),
        "every invite newer than the last, in list order"
    );
    let listed = |args: &[&str]| -> Vec<String> {
        cli.run(args)
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["email"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&["--json", "member", "list", "--all"]), emails);
    assert_eq!(
        listed(&["--json", "member", "list", "--before", emails[50], "--limit", "20"]),
        emails[30..50].to_vec()
    );
    cli.run(&["member", "list", "--limit", "0"])
        .fails_with(2, "--limit");
    cli.run(&["member", "list", "--limit", "5", "--all"])
        .fails_with(2, "--all");
}
