//! Times on pages in the reader's time zone: their browser's, or the one
//! they chose in their profile.

use serde_json::json;
use vigilo_tests::browser::Browser;
use vigilo_tests::{on_both_databases, TestDb, TestServer};

use crate::{admin_web_session, create_workspace, csrf_of};

on_both_databases!(a_chosen_time_zone_rules_the_pages);

fn a_chosen_time_zone_rules_the_pages(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "Check the clocks"}),
    );
    let web = admin_web_session(&server);
    let (_, profile) = web.page("/settings/profile");
    assert!(profile.contains("<option value=\"\">This browser's</option>"));
    assert!(profile.contains("<option value=\"Asia/Tokyo\">Asia/Tokyo</option>"));
    let csrf = csrf_of(&profile);

    // A zone that is not one is refused in words; nothing changes.
    let (status, page) = web.form_and_follow(
        "/settings/profile/time-zone",
        &[("csrf", &csrf), ("time_zone", "Mars/Olympus_Mons")],
    );
    assert_eq!(status, 422, "{page}");
    assert!(
        page.contains("Mars/Olympus_Mons is not a time zone"),
        "{page}"
    );
    assert!(!page.contains("data-time-zone="), "{page}");

    // A chosen zone is on every page, and the profile shows it chosen.
    let (status, page) = web.form_and_follow(
        "/settings/profile/time-zone",
        &[("csrf", &csrf), ("time_zone", "Asia/Tokyo")],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your time zone was saved."), "{page}");
    assert!(
        page.contains("<option value=\"Asia/Tokyo\" selected>"),
        "{page}"
    );
    let (_, tasks) = web.page("/w/ops/tasks");
    assert!(tasks.contains("<html lang=\"en\" data-time-zone=\"Asia/Tokyo\">"));

    // In a browser whose own zone is UTC, times read in Tokyo's.
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    browser.sign_in("admin@example.com", crate::web::PASSWORD);
    browser.goto("/w/ops/tasks");
    browser.wait_for(
        "a time read in Tokyo",
        "return document.querySelector('table.list time')?.title.endsWith('(Asia/Tokyo)');",
    );
    // Back to the browser's own zone.
    browser.goto("/settings/profile");
    browser.script("document.querySelector('#time_zone').value = ''; return null;");
    browser.click("#time-zone-form button[type=submit]");
    browser.wait_for(
        "the saved choice",
        "return !document.documentElement.dataset.timeZone && !!document.querySelector('.notice');",
    );
    browser.goto("/w/ops/tasks");
    let title = browser.script("return document.querySelector('table.list time').title;");
    let zone = browser.script("return Intl.DateTimeFormat().resolvedOptions().timeZone;");
    assert!(
        title
            .as_str()
            .unwrap()
            .ends_with(&format!("({})", zone.as_str().unwrap())),
        "{title} in {zone}"
    );
}
