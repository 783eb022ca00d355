//! Plugins' dashboard tiles that fail in the browser, in a real browser: each
//! broken frontend half (the `bad_tiles` and `broken_tile` fixtures) shows
//! its error card at once while the other tiles keep working, and a failed
//! tile recovers in place, without a page load, once its plugin is fixed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use vigilo_tests::browser::Browser;
use vigilo_tests::plugins::fixture_plugin;
use vigilo_tests::{on_both_databases, Api, TestDb, TestServer};

use crate::create_workspace;
use crate::web::join_in_browser;

on_both_databases!(
    each_broken_tile_fails_alone_and_at_once,
    a_failed_tile_recovers_without_a_page_load,
);

/// How long a broken tile may take to show its card once the page has loaded.
const AT_ONCE: Duration = Duration::from_secs(2);

/// Adds a tile of `widget` to `ops`'s dashboard; returns its id.
fn add_tile(admin: &Api, widget: &str) -> i64 {
    admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({ "widget": widget }),
    )["id"]
        .as_i64()
        .expect("the new tile's id")
}

/// Script: the text of tile `id`'s error card, or null while it has none.
fn card_of(id: i64) -> String {
    format!(
        "const card = document.querySelector('[data-tile=\"{id}\"] .tile-error');
         return card ? card.textContent : null;"
    )
}

/// Script: whether tile `id` shows an error card.
fn has_card(id: i64) -> String {
    format!("return !!document.querySelector('[data-tile=\"{id}\"] .tile-error')")
}

/// The Kanban tile's count of open incidents.
fn open_incidents(browser: &Browser) -> Value {
    browser.script(
        "const board = document.querySelector('kanban_overview-board');
         const cell = board && board.shadowRoot.querySelector('[data-kind=incidents] [data-status=open] .count');
         return cell ? cell.textContent : null;",
    )
}

/// Asks the dashboard to refresh, as when its tab is shown again (the
/// page refreshes at most once in 2 s that way).
fn refresh_tiles(browser: &Browser) {
    std::thread::sleep(Duration::from_millis(2100));
    browser.script("document.dispatchEvent(new Event('visibilitychange'))");
}

/// What each of the broken tiles' cards must say (the plugin is named on
/// every card).
const CORPUS: [(&str, &str); 10] = [
    ("bad_tiles_style", "blocked an inline style"),
    ("bad_tiles_handler", "blocked an inline event handler"),
    ("bad_tiles_eval", "blocked eval()"),
    (
        "bad_tiles_tag",
        "did not define the element <fixture_bad_tiles-tag>",
    ),
    (
        "bad_tiles_throw",
        "this tile throws on purpose when connected",
    ),
    ("bad_tiles_missing", "could not be loaded"),
    ("bad_tiles_reports", "the tile reports its own error"),
    (
        "bad_tiles_later",
        "its code threw an error: this tile throws on purpose later",
    ),
    (
        "bad_tiles_rejects",
        "its code failed: this tile's promise fails on purpose",
    ),
    ("fixture_broken_tile", "could not be loaded"),
];

fn each_broken_tile_fails_alone_and_at_once(db: TestDb) {
    let server = TestServer::with_plugins(db, &["kanban_overview", "bad_tiles", "broken_tile"]);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    add_tile(&admin, "kanban_overview");
    let tiles: Vec<(i64, &str)> = CORPUS
        .iter()
        .map(|(widget, said)| (add_tile(&admin, widget), *said))
        .collect();
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "incident", "title": "Checkout is slow"}),
    );
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    join_in_browser(&server, &browser, "owner@ops.com", "owner");

    for width in [1280, 390] {
        browser.resize(width, if width == 390 { 844 } else { 900 });
        browser.goto("/w/ops");
        for (id, said) in &tiles {
            let took = browser.wait_at_most(AT_ONCE, &has_card(*id));
            let card = browser.script(&card_of(*id));
            assert!(
                took.is_some(),
                "tile {id} ({said}) showed no error card within {AT_ONCE:?}: {card}"
            );
            let card = card.as_str().unwrap_or_default().to_owned();
            assert!(
                card.contains(said) && card.contains("This tile could not be shown."),
                "tile {id}: {card}"
            );
        }
        // The Kanban tile works all the while, and only the broken tiles
        // show cards.
        assert_eq!(open_incidents(&browser), json!("1"));
        assert_eq!(
            browser.script("return document.querySelectorAll('.tile-error').length"),
            json!(CORPUS.len())
        );
        browser.screenshot(&format!("dashboard-broken-tiles-{width}"));
        // The cards further down, the longest reason among them.
        let (missing, _) = tiles[5];
        browser.script(&format!(
            "document.querySelector('[data-tile=\"{missing}\"]').scrollIntoView()"
        ));
        browser.screenshot(&format!("dashboard-broken-tiles-{width}-further"));
    }
    browser.resize(1280, 900);

    // A refresh tries each broken tile again: still the cards, and the
    // Kanban tile's new count.
    browser.script("window.__samePage = true");
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "incident", "title": "Disk filling up"}),
    );
    refresh_tiles(&browser);
    browser.wait_for(
        "the refreshed count",
        "const board = document.querySelector('kanban_overview-board');
         const cell = board && board.shadowRoot.querySelector('[data-kind=incidents] [data-status=open] .count');
         return !!cell && cell.textContent === '2' && window.__samePage === true",
    );
    for (id, said) in &tiles {
        let shown = browser.wait_at_most(AT_ONCE, &has_card(*id));
        assert!(shown.is_some(), "tile {id} ({said}) after the refresh");
        let card = browser.script(&card_of(*id));
        assert!(
            card.as_str().unwrap_or_default().contains(said),
            "tile {id}: {card}"
        );
    }
    // What the browser logged is what the corpus provoked, nothing else.
    browser.assert_clean(&[
        "fixture_bad_tiles",
        "Content Security Policy",
        "on purpose",
        "broken_tile.js",
    ]);
    browser.assert_accessible();
}

/// A plugins directory the server may trust (not writable by others).
fn plugins_dir(base: &Path) -> std::path::PathBuf {
    let dir = base.join("plugins");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Moves the fixture `variant` into `dir` as the plugin's one file.
fn install(variant: &str, dir: &Path) {
    let temporary = dir.join(".libfixture_broken_tile.so.partial");
    std::fs::copy(fixture_plugin(variant), &temporary).unwrap();
    std::fs::rename(&temporary, dir.join("libfixture_broken_tile.so")).unwrap();
}

/// Waits until `GET /api/v1/plugins` lists `fixture_broken_tile` at
/// `version` (None: not at all).
fn until_loaded(admin: &Api, version: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let loaded = admin
            .loaded_plugin("fixture_broken_tile")
            .and_then(|p| p["version"].as_str().map(str::to_owned));
        if loaded.as_deref() == version {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "fixture_broken_tile is {loaded:?}, not {version:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a_failed_tile_recovers_without_a_page_load(db: TestDb) {
    let base = TempDir::new().unwrap();
    let dir = plugins_dir(base.path());
    install("broken_tile", &dir);
    let watched = dir.clone();
    let server = TestServer::with_plugins_and(db, &["kanban_overview"], move |config| {
        config.plugins_dir = Some(watched);
        config.watch_plugins_dir = true;
    });
    let admin = server.admin();
    create_workspace(&admin, "ops");
    until_loaded(&admin, Some("0.1.0"));
    add_tile(&admin, "kanban_overview");
    let broken = add_tile(&admin, "fixture_broken_tile");
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "incident", "title": "Checkout is slow"}),
    );
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    join_in_browser(&server, &browser, "owner@ops.com", "owner");
    assert!(
        browser.wait_at_most(AT_ONCE, &has_card(broken)).is_some(),
        "the broken tile's card"
    );
    assert!(browser
        .script(&card_of(broken))
        .as_str()
        .unwrap_or_default()
        .contains("could not be loaded"));
    assert_eq!(open_incidents(&browser), json!("1"));
    browser.script("window.__samePage = true");

    // The plugin is removed: the server says so in the tile.
    std::fs::remove_file(dir.join("libfixture_broken_tile.so")).unwrap();
    until_loaded(&admin, None);
    refresh_tiles(&browser);
    browser.wait_for(
        "the server's word in the tile",
        &format!(
            "const card = document.querySelector('[data-tile=\"{broken}\"] .tile-error');
             return !!card && card.textContent.includes('no loaded plugin provides the widget')"
        ),
    );

    // A fixed version is installed: the next refresh draws the tile with
    // the new version's element, in the same page, and the Kanban tile
    // keeps counting.
    install("broken_tile_fixed", &dir);
    until_loaded(&admin, Some("0.2.0"));
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "incident", "title": "Disk filling up"}),
    );
    refresh_tiles(&browser);
    let drawn = format!("fixed: ops tile {broken}: {{\"fine\":true}}");
    browser.wait_for(
        "the fixed tile",
        &format!(
            "const tile = document.querySelector('[data-tile=\"{broken}\"]');
             const element = tile.querySelector('fixture_broken_tile-tile');
             return !!element && element.textContent === {drawn:?} && !tile.querySelector('.tile-error')"
        ),
    );
    assert_eq!(
        browser.script("return window.__samePage === true"),
        json!(true)
    );
    browser.wait_for(
        "the Kanban tile's new count",
        "const board = document.querySelector('kanban_overview-board');
         const cell = board && board.shadowRoot.querySelector('[data-kind=incidents] [data-status=open] .count');
         return !!cell && cell.textContent === '2'",
    );

    // The element API: its workspace and tile id, and a `refresh()` that
    // fetches the tile's data afresh.
    assert_eq!(
        browser.script(
            "const element = document.querySelector('fixture_broken_tile-tile');
             return [element.workspace, element.tileId]"
        ),
        json!(["ops", broken])
    );
    let fresh = browser.run(browser.client().execute_async(
        "const done = arguments[arguments.length - 1];
         document.querySelector('fixture_broken_tile-tile').refresh()
           .then((data) => done({data}), (error) => done({error: String(error)}));",
        vec![],
    ));
    assert_eq!(fresh.unwrap(), json!({"data": {"fine": true}}));
    assert_eq!(
        browser.script("return window.__samePage === true"),
        json!(true)
    );

    // The page has defined the tag with version 0.2.0's class, which it
    // keeps. The plugin goes away (the tile fails), and another version
    // comes: the tile cannot get that version's class in this page, and
    // says so with a way to reload it.
    std::fs::remove_file(dir.join("libfixture_broken_tile.so")).unwrap();
    until_loaded(&admin, None);
    refresh_tiles(&browser);
    browser.wait_for("the fixed tile's card", &has_card(broken));
    install("broken_tile", &dir);
    until_loaded(&admin, Some("0.1.0"));
    refresh_tiles(&browser);
    let reload = format!("[data-tile=\"{broken}\"] .tile-error button");
    browser.wait_for(
        "the offer to reload",
        &format!("return !!document.querySelector('{reload}')"),
    );
    assert!(
        browser
            .script(&card_of(broken))
            .as_str()
            .unwrap_or_default()
            .contains("another version of it is installed; reload the page to use it"),
        "{}",
        browser.script(&card_of(broken))
    );
    assert_eq!(
        browser.script("return window.__samePage === true"),
        json!(true)
    );
    browser.click(&reload);
    browser.wait_for(
        "the page reloaded, with version 0.1.0's card",
        &format!(
            "return window.__samePage === undefined && !!document.querySelector('[data-tile=\"{broken}\"] .tile-error')"
        ),
    );
    assert!(browser
        .script(&card_of(broken))
        .as_str()
        .unwrap_or_default()
        .contains("could not be loaded"));
    browser.assert_clean(&["fails on purpose", "broken_tile.js"]);
}
