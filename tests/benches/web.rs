//! How fast the web app's pages are, over a real server on loopback (so the
//! figures include the HTTP round trip and bound the server's own time):
//!
//! 1. the dashboard page (`GET /w/{slug}`) with the Kanban overview tile,
//!    over 100,000 work items (`WEB_ITEMS` to change), target under 5 ms;
//! 2. a work-item list page (`GET /w/{slug}/changes`, 50 rows), same target,
//!    and the same list searched, sorted by title, and paged deep into it
//!    (by keyset, as its Older/Next links do, and by page number alone).
//!
//! Run with `cargo bench -p vigilo-tests --bench web` (after
//! `cargo build --release -p kanban_overview`). The figures go into the
//! README.

use std::time::{Duration, Instant};

use serde_json::json;
use vigilo_tests::plugins::reference_plugin;
use vigilo_tests::{expect, TestDb, TestServer};

const PASSWORD: &str = "tram-ladle-quince-42";

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The value of cookie `name` set by `response`.
fn set_cookie(response: &ureq::Response, name: &str) -> Option<String> {
    response.all("set-cookie").into_iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    })
}

fn main() {
    let items: usize = std::env::var("WEB_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let kanban = reference_plugin("kanban_overview");
    let server = TestServer::start_with(TestDb::sqlite(), move |config| {
        config.installed_plugins = vec![kanban.into()];
        config.watch_plugins_dir = false;
    });
    let admin = server.admin();
    admin.create(
        "/api/v1/workspaces",
        json!({"name": "Ops", "slug": "ops", "region": "us"}),
    );
    server.db.seed_work_items("ops", items);
    // A number field on changes, with values 0 to 12, to sort by.
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "points", "label": "Points", "applies_to": ["change"], "type": "number"}),
    );
    server.db.execute(
        "UPDATE work_items SET fields = '{\"points\": ' || (id % 13) || '}' WHERE kind = 'change'",
    );
    admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "kanban_overview"}),
    );
    vigilo_tests::block_on(vigilo_host::create_admin_with_password(
        &server.config,
        "bench@example.com",
        Some("Bench"),
        Some(PASSWORD),
    ))
    .expect("an admin with a password");

    // Sign in as a browser does.
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let login = agent
        .get(&format!("{}/login", server.url))
        .call()
        .expect("login page");
    let form_cookie = set_cookie(&login, "vigilo_form").expect("a form cookie");
    let page = login.into_string().unwrap();
    let token = page
        .split("name=\"form_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form token")
        .to_owned();
    let signed_in = match agent
        .post(&format!("{}/login", server.url))
        .set("Cookie", &format!("vigilo_form={form_cookie}"))
        .send_form(&[
            ("form_token", &token),
            ("next", "/"),
            ("email", "bench@example.com"),
            ("password", PASSWORD),
        ]) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("sign in: {e}"),
    };
    let session = set_cookie(&signed_in, "vigilo_session").expect("a session cookie");
    let cookie = format!("vigilo_session={session}");

    let time = |path: &str, expect_text: &str| {
        let mut times = Vec::new();
        for run in 0..30 {
            let started = Instant::now();
            let response = agent
                .get(&format!("{}{path}", server.url))
                .set("Cookie", &cookie)
                .call()
                .expect("page");
            let body = response.into_string().unwrap();
            let elapsed = started.elapsed();
            assert!(body.contains(expect_text), "{path}: {body}");
            if run >= 5 {
                times.push(elapsed);
            }
        }
        median(times)
    };
    let dashboard = time("/w/ops", "kanban_overview-board");
    println!(
        "dashboard page over {items} work items (Kanban tile rendered by its plugin): median {:.2} ms (target < 5 ms)",
        dashboard.as_secs_f64() * 1e3
    );
    let list = time("/w/ops/changes", "item ");
    println!(
        "changes list page (50 of {} changes): median {:.2} ms (target < 5 ms)",
        items / 3,
        list.as_secs_f64() * 1e3
    );
    // Deep in the list: the change with id `deep` lies about half way.
    let deep = (items / 2 / 3 * 3 + 1) as i64;
    let pages = items / 3 / 50;
    for (what, path) in [
        (
            "searched (\"item 4999\")",
            "/w/ops/changes?q=item+4999".to_owned(),
        ),
        ("sorted by title", "/w/ops/changes?sort=title".to_owned()),
        (
            "half way down, by keyset",
            format!("/w/ops/changes?after={deep}&page={}", pages / 2),
        ),
        (
            "half way down sorted by title, by keyset",
            format!("/w/ops/changes?sort=title&after={deep}&page={}", pages / 2),
        ),
        ("sorted by status", "/w/ops/changes?sort=status".to_owned()),
        (
            "sorted by creator",
            "/w/ops/changes?sort=creator".to_owned(),
        ),
        (
            "sorted by a custom field",
            "/w/ops/changes?sort=field:points&col=points".to_owned(),
        ),
        (
            "half way down sorted by a custom field, by keyset",
            format!(
                "/w/ops/changes?sort=field:points&col=points&after={deep}&page={}",
                pages / 2
            ),
        ),
        (
            "half way down, by page number alone",
            format!("/w/ops/changes?page={}", pages / 2),
        ),
    ] {
        let took = time(&path, "item ");
        println!(
            "changes list page {what}: median {:.2} ms",
            took.as_secs_f64() * 1e3
        );
    }
    let _ = expect(&admin.get("/healthz"), 200);
}
