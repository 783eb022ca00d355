//! What each plugin costs: calls, errors and latency per plugin and call
//! kind, in `GET /api/v1/plugins/{name}`, `vigilo plugin list --wide`, the
//! admin plugins page and the Prometheus `GET /metrics`, which promtool
//! accepts and which only platform admins and the metrics token may read.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use vigilo_host::plugins::Isolation;
use vigilo_tests::browser::Browser;
use vigilo_tests::{expect, on_both_databases, Api, Cli, TestDb, TestServer, WebSession};

use crate::web::PASSWORD;
use crate::{create_workspace, join};

on_both_databases!(each_plugins_calls_are_counted_and_exposed);

/// The token whose SHA-256 the server is configured with for `/metrics`.
const SCRAPER_TOKEN: &str = "scrape-me-7f3a9c1e5b2d4f60";

/// The value of the sample `series` (name and labels exactly as exposed),
/// 0 when it is not there.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Pipes `text` into `promtool check metrics`; None when promtool is not
/// installed (a failure instead when browser-level checks are required).
fn promtool_check(text: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(_) => {
            assert!(
                std::env::var_os("VIGILO_REQUIRE_BROWSER").is_none(),
                "VIGILO_REQUIRE_BROWSER is set but promtool is not installed (apt-get install prometheus)"
            );
            eprintln!("skipped: promtool is not installed (apt-get install prometheus), so the exposition was not checked");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

fn each_plugins_calls_are_counted_and_exposed(db: TestDb) {
    let digest: String = <sha2::Sha256 as sha2::Digest>::digest(SCRAPER_TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let server = TestServer::with_plugins_and(
        db,
        &["datepicker_with_holidays", "kanban_overview"],
        |config| config.metrics_token_sha256 = Some(digest),
    );
    let admin = server.admin();
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "window", "label": "Window", "type": "holiday_aware_date", "applies_to": ["change"]}),
    );
    let scraper = Api::new(&server.url, Some(SCRAPER_TOKEN));
    let validate = "{plugin=\"datepicker_with_holidays\",call=\"field_type.validate\"}";
    let first = scraper.get("/metrics");
    assert_eq!(first.status, 200, "{}", first.text);
    let text = first.text;
    let calls_before = sample(&text, &format!("vigilo_plugin_calls_total{validate}"));

    // Five valid dates and one Saturday, which the plugin refuses.
    for day in [
        "2026-12-21",
        "2026-12-22",
        "2026-12-23",
        "2026-12-24",
        "2026-12-28",
    ] {
        let r = admin.post(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "change", "title": "c", "fields": {"window": day}}),
        );
        expect(&r, 201);
    }
    let weekend = admin.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "change", "title": "c", "fields": {"window": "2026-12-26"}}),
    );
    assert_eq!(weekend.status, 422, "{}", weekend.text);

    // The exposition: promtool accepts it, and the counters moved by what
    // was done.
    let scraped = scraper.get("/metrics");
    assert_eq!(scraped.status, 200, "{}", scraped.text);
    assert!(
        scraped
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        scraped.header("content-type")
    );
    let text = scraped.text.clone();
    if let Some((ok, said)) = promtool_check(&text) {
        assert!(
            ok,
            "promtool check metrics refused the exposition:\n{said}\n{text}"
        );
    }
    let calls = sample(&text, &format!("vigilo_plugin_calls_total{validate}"));
    assert_eq!(calls - calls_before, 6.0, "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("vigilo_plugin_call_rejections_total{validate}")
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("vigilo_plugin_call_errors_total{validate}")),
        0.0,
        "{text}"
    );
    let count = format!("vigilo_plugin_call_duration_seconds_count{validate}");
    assert_eq!(sample(&text, &count), calls, "{text}");
    let tier = vigilo_tests::plugin_isolation();
    assert!(
        text.contains(&format!(
            "vigilo_plugin_info{{plugin=\"datepicker_with_holidays\",version=\"{}\",tier=\"{}\",state=\"loaded\"}} 1",
            admin.loaded_plugin("datepicker_with_holidays").unwrap()["version"].as_str().unwrap(),
            tier.as_str()
        )),
        "{text}"
    );
    // The tile has been called by nobody: its counter is there, at zero.
    assert!(
        text.contains(
            "vigilo_plugin_calls_total{plugin=\"kanban_overview\",call=\"widget.render\"} 0"
        ),
        "{text}"
    );

    // The API shows the same figures, with latency and, for a worker, its
    // process and memory.
    let shown = expect(&admin.get("/api/v1/plugins/datepicker_with_holidays"), 200).clone();
    let figures = &shown["calls"][0];
    assert_eq!(figures["call"], "field_type.validate", "{shown:#}");
    assert_eq!(figures["calls"].as_f64().unwrap(), calls, "{shown:#}");
    assert_eq!(figures["rejected"], 1, "{shown:#}");
    assert_eq!(figures["errors"], 0, "{shown:#}");
    let (p50, p99) = (
        figures["p50_ms"].as_f64().unwrap(),
        figures["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{shown:#}");
    if tier == Isolation::Worker {
        let pid = shown["worker"]["pid"].as_u64().unwrap();
        let rss = shown["worker"]["resident_bytes"].as_u64().unwrap();
        assert!(rss > 1 << 20, "{shown:#}");
        assert!(
            text.contains(&format!(
                "vigilo_plugin_worker_process_id{{plugin=\"datepicker_with_holidays\"}} {pid}"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "vigilo_plugin_worker_resident_memory_bytes{plugin=\"datepicker_with_holidays\"}"
            ),
            "{text}"
        );
    }

    // The CLI's wide view: one row per plugin and call kind.
    let cli = Cli::with(&server.url, &server.admin_token, None);
    let wide = cli.run(&["plugin", "list", "--wide"]).ok().stdout.clone();
    let row = wide
        .lines()
        .find(|l| l.contains("datepicker_with_holidays") && l.contains("field_type.validate"))
        .unwrap_or_else(|| panic!("{wide}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[3].parse::<f64>().unwrap(), calls, "{wide}");
    assert!(wide.lines().next().unwrap().contains("P99_MS"), "{wide}");
    let listed = cli.run(&["--json", "plugin", "list"]).ok().json();
    let entry = vigilo_tests::json::find(&listed, "name", "datepicker_with_holidays").unwrap();
    assert_eq!(entry["calls"][0]["rejected"], 1, "{listed:#}");

    // Who may read /metrics: platform admins and the metrics token; not
    // anonymous callers, not workspace members; the metrics token opens
    // nothing else.
    expect(&admin.get("/metrics"), 200);
    let anonymous = server.anonymous().get("/metrics");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    let member = join(&server, "ops", "eve@example.com", "owner", false);
    let refused = server.api(&member).get("/metrics");
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("platform admin"), "{}", refused.text);
    assert_eq!(scraper.get("/api/v1/me").status, 401);
    assert_eq!(
        Api::new(&server.url, Some("scrape-me-wrong"))
            .get("/metrics")
            .status,
        401
    );

    // The admin page says the same, and stays within a phone's width.
    crate::root_with_password(&server);
    let web = WebSession::sign_in(&server.url, "root@example.com", PASSWORD);
    let (status, page) = web.page("/admin/plugins");
    assert_eq!(status, 200);
    assert!(page.contains("field_type.validate"), "{page}");
    assert!(
        page.contains(&format!("{calls} calls, 0 errors, 1 refused input; p50")),
        "{page}"
    );
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    browser.sign_in("root@example.com", PASSWORD);
    browser.resize(390, 844);
    browser.goto("/admin/plugins");
    // The page's own content (the header is every page's).
    let wider: Value = browser.script(
        "const width = document.documentElement.clientWidth;
         return [...document.querySelectorAll('main *')]
           .filter(e => e.getBoundingClientRect().right > width + 0.5)
           .map(e => e.tagName.toLowerCase() + '.' + e.className + ': ' + (e.textContent || '').slice(0, 60));",
    );
    assert_eq!(wider, json!([]), "the plugins page is wider than a phone");
    browser.check_page("admin-plugins-phone");
}
