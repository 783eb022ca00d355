//! The web app's pages for running a workspace and the installation, in a
//! real browser against a real server, on both databases: members and
//! (bulk) invites, roles, the audit log live and verified, certificates,
//! playbooks, integrations delivering to a recording server, the platform
//! admin's workspaces, templates and tasks, each person's profile, and what
//! a viewer, an engineer and an owner are each offered.

use std::time::Duration;

use serde_json::{json, Value};
use vigilo_tests::browser::Browser;
use vigilo_tests::capture::CaptureServer;
use vigilo_tests::{expect, on_both_databases, Cli, TestDb, TestServer, WebSession};

use crate::certificates::certificate;
use crate::web::{join_in_browser, PASSWORD};
use crate::{create_workspace, join};

mod roles;

on_both_databases!(
    members_and_a_bulk_invite,
    the_audit_log_live_and_verified,
    certificates_integrations_and_playbooks
);

/// A server with workspace `ops`.
fn server(db: TestDb) -> TestServer {
    let server = TestServer::start(db);
    create_workspace(&server.admin(), "ops");
    server
}

/// Waits until the page's notice (after post, redirect, get) says `text`.
#[track_caller]
fn wait_notice(browser: &Browser, text: &str) {
    browser.wait_for(
        &format!("the notice “{text}”"),
        &format!(
            "const n = document.querySelector('.notice'); return !!n && n.textContent.includes({});",
            serde_json::to_string(text).unwrap()
        ),
    );
}

/// The decoded text of a `data:` URL.
fn data_url_text(url: &str) -> String {
    let (_, encoded) = url.split_once(',').expect("a data: URL");
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The outcome and reason of line `line` of the bulk preview or report.
fn bulk_row(browser: &Browser, line: u64) -> (String, String) {
    let row = browser.script(&format!(
        "const tr = document.querySelector('#rows tr[data-line=\"{line}\"]');
         return tr ? [tr.dataset.outcome, tr.querySelector('.reason-cell').textContent] : null;"
    ));
    (
        row[0].as_str().unwrap_or("missing").to_owned(),
        row[1].as_str().unwrap_or("").to_owned(),
    )
}

fn members_and_a_bulk_invite(db: TestDb) {
    let server = server(db);
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    let admin = server.admin();
    join(&server, "ops", "eng@ops.com", "engineer", false);
    admin.create(
        "/api/v1/workspaces/ops/invites",
        json!({"email": "pending@ops.com", "role": "viewer"}),
    );
    join_in_browser(&server, &browser, "owner@ops.com", "owner");
    let invites = |email: &str| {
        server.db.number(&format!(
            "SELECT COUNT(*) FROM invites WHERE email = '{email}'"
        ))
    };

    // A file with the wrong header is refused as a whole, naming the columns.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("people.csv");
    std::fs::write(&wrong, "mail,role\nnew@ops.com,viewer\n").unwrap();
    browser.goto("/w/ops/members");
    browser.upload("#file", &wrong);
    browser.click("form[action='/w/ops/invites/bulk'] button[type=submit]");
    let refusal = browser.text_of("#bulk-error");
    assert!(refusal.contains("email,role,custom_role_name"), "{refusal}");
    assert_eq!(invites("new@ops.com"), 0);

    // A file with every kind of row: the preview shows each row's outcome
    // and reason, and sends nothing.
    let file = dir.path().join("invites.csv");
    std::fs::write(
        &file,
        "email,role,custom_role_name\n\
         ana@ops.com,engineer,\n\
         not-an-email,viewer,\n\
         ben@ops.com,wizard,\n\
         cy@ops.com,,night-shift\n\
         ana@ops.com,viewer,\n\
         eng@ops.com,viewer,\n\
         pending@ops.com,viewer,\n\
         dee@ops.com,viewer,\n",
    )
    .unwrap();
    browser.goto("/w/ops/members");
    browser.upload("#file", &file);
    browser.click("form[action='/w/ops/invites/bulk'] button[type=submit]");
    browser.find("#confirm");
    assert_eq!(bulk_row(&browser, 2).0, "would_invite");
    let expected = [
        (3, "failed", "malformed email"),
        (4, "failed", "unknown role `wizard`"),
        (5, "failed", "unknown custom role `night-shift`"),
        (6, "failed", "duplicate of row 2"),
        (7, "skipped", "already a member"),
        (8, "skipped", "already invited"),
    ];
    for (line, outcome, reason) in expected {
        let (got, why) = bulk_row(&browser, line);
        assert_eq!(got, outcome, "line {line}");
        assert!(why.contains(reason), "line {line}: {why}");
    }
    assert_eq!(bulk_row(&browser, 9).0, "would_invite");
    assert_eq!(browser.text("#confirm"), "Send 2 invites");
    assert_eq!(invites("ana@ops.com") + invites("dee@ops.com"), 0);
    browser.check_page("members-bulk-preview");

    // Confirmed: only the good rows are invited; the failed rows can be
    // downloaded as a CSV with exactly them, ready to fix.
    browser.click("#confirm");
    browser.find("#failed-rows");
    assert_eq!(browser.text("[data-count=invited]"), "2");
    assert_eq!(browser.text("[data-count=failed]"), "4");
    assert_eq!(bulk_row(&browser, 2).0, "invited");
    assert_eq!(invites("ana@ops.com"), 1);
    assert_eq!(invites("dee@ops.com"), 1);
    assert_eq!(invites("ben@ops.com") + invites("cy@ops.com"), 0);
    assert_eq!(invites("pending@ops.com"), 1, "no second invite");
    // This server sends no mail: the report says so and gives each invited
    // row its link to pass on (and none to a failed row).
    assert!(browser.text_of("#no-mail").contains("sends no mail"));
    assert!(browser
        .text("tr[data-line='2'] [data-role=invite-link]")
        .contains("/invites/vgi_"));
    assert_eq!(
        browser.script("return document.querySelectorAll('tr[data-line=\"3\"] [data-role=invite-link]').length"),
        json!(0)
    );
    let href = browser.script("return document.querySelector('#failed-rows').href");
    assert_eq!(
        data_url_text(href.as_str().unwrap()),
        "email,role,custom_role_name\n\
         not-an-email,viewer,\n\
         ben@ops.com,wizard,\n\
         cy@ops.com,,night-shift\n\
         ana@ops.com,viewer,\n"
    );
    browser.check_page("members-bulk-report");

    // The members page: change a role, see and revoke invites, invite one.
    browser.goto("/w/ops/members");
    browser
        .run(
            browser
                .find("tr[data-member='eng@ops.com'] select")
                .select_by_value("approver"),
        )
        .unwrap();
    browser.click("tr[data-member='eng@ops.com'] form button");
    wait_notice(&browser, "The role was changed");
    assert_eq!(
        server.db.column(
            "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = 'eng@ops.com'"
        ),
        vec![Some("approver".to_owned())]
    );
    // The last owner cannot be demoted; the refusal says why.
    browser
        .run(
            browser
                .find("tr[data-member='owner@ops.com'] select")
                .select_by_value("viewer"),
        )
        .unwrap();
    browser.click("tr[data-member='owner@ops.com'] form button");
    assert!(browser.text_of(".alert").contains("last owner"));
    let pending = browser.script(
        "return [...document.querySelectorAll('#invites tr[data-invite]')]
           .map(r => r.cells[0].textContent + ':' + r.cells[2].textContent.trim())",
    );
    for expected in [
        "pending@ops.com:pending",
        "ana@ops.com:pending",
        "dee@ops.com:pending",
    ] {
        assert!(
            pending.as_array().unwrap().iter().any(|v| v == expected),
            "{expected} in {pending}"
        );
    }
    let dee = server
        .db
        .number("SELECT id FROM invites WHERE email = 'dee@ops.com'");
    browser.click(&format!("tr[data-invite='{dee}'] details.confirm summary"));
    browser.click(&format!("tr[data-invite='{dee}'] details.confirm button"));
    wait_notice(&browser, "The invite was revoked");
    assert!(browser
        .text(&format!("tr[data-invite='{dee}']"))
        .contains("revoked"));
    // Resending gives a new link, shown once; the old invite is closed.
    let ana = server
        .db
        .number("SELECT id FROM invites WHERE email = 'ana@ops.com'");
    browser.click(&format!(
        "form[action='/w/ops/invites/{ana}/resend'] button"
    ));
    assert!(browser
        .text_of("[data-role=invite-link]")
        .contains("/invites/vgi_"));
    assert!(browser
        .text_of("#no-mail")
        .contains("pass this link on yourself"));
    assert_eq!(
        server.db.number(
            "SELECT COUNT(*) FROM invites WHERE email = 'ana@ops.com' AND revoked_at IS NULL AND accepted_at IS NULL"
        ),
        1
    );
    browser.fill("#email", "fay@ops.com");
    browser.click("form[action='/w/ops/invites'] button[type=submit]");
    browser.wait_for(
        "the new invite's link",
        "const h = document.querySelector('#created-h'); return !!h && h.textContent.includes('fay@ops.com');",
    );
    browser.check_page("members");
    browser.assert_clean(&[]);

    // Long lists come 50 at a time, with the count and Previous / Next;
    // each list keeps its place while the other is paged.
    crate::members::fill_members(&server.db, "ops", "person", 60);
    crate::members::fill_invites(&server.db, "ops", "guest", 120);
    let in_db = |table: &str| {
        server.db.number(&format!(
            "SELECT COUNT(*) FROM {table} WHERE workspace_id = (SELECT id FROM workspaces WHERE slug = 'ops')"
        ))
    };
    let (members, invites) = (in_db("memberships"), in_db("invites"));
    browser.goto("/w/ops/members");
    let rows = |list: &str| {
        browser.script(&format!(
            "return [...document.querySelectorAll('#{list} tbody tr')].map(r => r.dataset.member || r.dataset.invite)"
        ))
    };
    let first_members = rows("members");
    let first_invites = rows("invites");
    assert_eq!(first_members.as_array().unwrap().len(), 50);
    assert_eq!(first_invites.as_array().unwrap().len(), 50);
    assert!(browser.text("#members-h").contains(&format!("({members})")));
    assert!(browser.text("#invites-h").contains(&format!("({invites})")));
    assert_eq!(
        browser.text("[data-pager=members] .muted"),
        format!("50 of {members} shown")
    );
    assert!(
        !browser.has("[data-pager=members] a[rel=prev]"),
        "no page before the first"
    );
    let show_pager = || {
        browser.script(
            "document.querySelector('[data-pager=members]').scrollIntoView({block: 'center'})",
        );
    };
    show_pager();
    browser.check_page("members-paged");
    browser.resize(390, 844);
    show_pager();
    browser.screenshot("members-paged-phone");
    browser.resize(1280, 900);
    browser.click("[data-pager=members] a[rel=next]");
    browser.wait_for(
        "the next page of members",
        "return location.search.includes('after=')",
    );
    let second_members = rows("members");
    let last_of_first = first_members[49].as_str().unwrap().to_owned();
    let first_of_second = second_members[0].as_str().unwrap().to_owned();
    assert!(
        first_of_second > last_of_first,
        "{first_of_second} after {last_of_first}"
    );
    assert_eq!(
        rows("invites"),
        first_invites,
        "the invites stay on their page"
    );
    browser.click("[data-pager=invites] a[rel=next]");
    browser.wait_for(
        "the next page of invites",
        "return location.search.includes('invites_before=')",
    );
    assert_eq!(
        rows("members"),
        second_members,
        "the members stay on their page"
    );
    let second_invites = rows("invites");
    assert_ne!(second_invites, first_invites);
    browser.click("[data-pager=invites] a[rel=prev]");
    browser.wait_for(
        "the first page of invites",
        "return location.search.includes('invites_after=')",
    );
    assert_eq!(rows("invites"), first_invites);
    browser.click("[data-pager=members] a[rel=prev]");
    browser.wait_for(
        "the first page of members",
        "return location.search.includes('before=')",
    );
    assert_eq!(rows("members"), first_members);
    browser.assert_clean(&[]);
}

fn the_audit_log_live_and_verified(db: TestDb) {
    let server = server(db);
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    join_in_browser(&server, &browser, "owner@ops.com", "owner");
    let cli = Cli::with(&server.url, &server.admin_token, Some("ops"));

    // Newest first, filtered by an action prefix in the URL.
    browser.goto("/w/ops/audit");
    let first =
        browser.script("return document.querySelector('#events tbody tr code').textContent");
    assert_eq!(first, "member.join", "the newest event is on top");
    browser.fill("#action", "member.*");
    browser.click(".audit-filters button[type=submit]");
    browser.wait_for(
        "the filter",
        "return location.search.includes('action=member.')",
    );
    let actions = browser.script(
        "return [...document.querySelectorAll('#events tbody tr td:nth-child(3)')].map(td => td.textContent)",
    );
    let actions = actions.as_array().unwrap();
    assert!(!actions.is_empty());
    assert!(
        actions
            .iter()
            .all(|a| a.as_str().unwrap().starts_with("member.")),
        "{actions:?}"
    );

    // Live: an event made with the CLI appears at the top within 2 s.
    browser.goto("/w/ops/audit?live=1");
    browser.wait_for(
        "the live view",
        "return document.querySelector('#live-status').textContent.startsWith('Live')",
    );
    cli.run(&[
        "member",
        "invite",
        "--email",
        "live@ops.com",
        "--role",
        "viewer",
    ])
    .ok();
    let seen = browser.wait_at_most(
        Duration::from_secs(2),
        "const top = document.querySelector('#events tbody tr');
         return !!top && top.textContent.includes('live@ops.com') && top.textContent.includes('member.invite');",
    );
    assert!(seen.is_some(), "the CLI's event did not appear within 2 s");
    browser.check_page("audit-log");

    // Verify: intact, then an edited row is a `modified` break where it is,
    // and the page says who verified when, against which checkpoint.
    browser.goto("/w/ops/audit/verify");
    assert!(browser.text("main").contains("Not verified yet"));
    browser.click("form[action='/w/ops/audit/checkpoints'] button");
    wait_notice(&browser, "signed as a new checkpoint");
    browser.click("#verify");
    browser.wait_for(
        "the result",
        "return !!document.querySelector('.verify-result')",
    );
    assert!(browser.text(".verify-result").contains("intact"));
    let ws = server
        .db
        .number("SELECT id FROM workspaces WHERE slug = 'ops'");
    server.db.allow_audit_tampering();
    server.db.execute(&format!(
        "UPDATE audit_events SET details = '{{\"role\":\"owner\"}}' WHERE chain_id = {ws} AND seq = 2"
    ));
    browser.click("input[name=full]");
    browser.click("#verify");
    browser.wait_for(
        "the breaks",
        "return !!document.querySelector('.verify-result.broken')",
    );
    let result = browser.text(".verify-result");
    assert!(result.contains("owner@ops.com"), "{result}");
    assert!(
        result.contains("Checked against the checkpoint at #"),
        "{result}"
    );
    assert_eq!(
        browser.script("return document.querySelector('.breaks tr[data-class]').dataset.class"),
        "modified"
    );
    assert!(browser.text(".breaks").contains("#2"));
    browser.goto("/w/ops/audit");
    assert!(browser.text("#last-verified").contains("breaks found"));
    browser.goto("/w/ops/audit/verify");
    browser.check_page("audit-verify");

    // The checkpoints download is the signed export.
    let export = browser.run(browser.client().execute_async(
        "const done = arguments[arguments.length - 1];
         fetch('/w/ops/audit/checkpoints.json').then(r => r.json()).then(done);",
        vec![],
    ));
    let export = export.unwrap();
    assert_eq!(export["algorithm"], "ed25519");
    assert!(!export["checkpoints"].as_array().unwrap().is_empty());
    browser.assert_clean(&[]);
}

fn certificates_integrations_and_playbooks(db: TestDb) {
    let server = TestServer::with_plugins_and(db, &["webhook"], |config| {
        config.webhook_allowed_hosts = vec!["127.0.0.1".into()];
    });
    create_workspace(&server.admin(), "ops");
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    let far = CaptureServer::start();
    join_in_browser(&server, &browser, "owner@ops.com", "owner");
    let admin = server.admin();
    for (host, from, until) in [
        ("old.ops.com", -90, -3),
        ("soon.ops.com", -30, 12),
        ("later.ops.com", -30, 200),
    ] {
        let (pem, _) = certificate(host, from, until);
        admin.create("/api/v1/workspaces/ops/certificates", json!({"pem": pem}));
    }

    // Certificates: filtered to those expiring within 30 days, in the URL.
    browser.goto("/w/ops/certificates");
    browser.fill("#within", "30");
    browser.click("form.filters button[type=submit]");
    browser.wait_for("the filter", "return location.search.includes('within=30')");
    let names = browser.script(
        "return [...document.querySelectorAll('#certificates tbody tr strong')].map(s => s.textContent)",
    );
    assert_eq!(names, json!(["old.ops.com", "soon.ops.com"]));
    assert!(browser
        .text("tr.cert-expired")
        .contains("expired 3 days ago"));
    assert!(browser.text("tr.cert-soon").contains("days left"));
    browser.check_page("certificates");
    // A bad PEM is refused with the reason; nothing is stored.
    let before = server.db.number("SELECT COUNT(*) FROM certificates");
    browser.fill(
        "#pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    browser.click("form[action='/w/ops/certificates'][method=post] button[type=submit]");
    assert!(!browser.text_of(".alert").is_empty());
    assert_eq!(
        server.db.number("SELECT COUNT(*) FROM certificates"),
        before
    );

    // An integration configured from its adapter's schema, with a
    // write-only secret, sends a test message to the recording server.
    browser.goto("/w/ops/settings/integrations");
    browser.click("a[href='/w/ops/settings/integrations/new?adapter=webhook']");
    browser.fill("#name", "ops-hook");
    browser.fill("#config-url", &format!("{}/hook", far.url));
    browser.fill("#config-secret", "a-secret-of-twenty-chars");
    browser.click("form[action='/w/ops/settings/integrations'] button[type=submit]");
    browser.wait_for(
        "the integration",
        "return location.pathname.endsWith('/ops-hook')",
    );
    assert_eq!(browser.text("[data-secret=secret]"), "set");
    assert!(!browser
        .script("return document.documentElement.outerHTML")
        .as_str()
        .unwrap()
        .contains("a-secret-of-twenty-chars"));
    browser.click("#send-test");
    assert!(browser.text_of("#outcome").contains("was delivered"));
    let received = far.to("/hook");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].json()["type"], "integration.test");
    assert!(browser.text("#deliveries").contains("delivered"));
    browser.check_page("integration");

    // A playbook written as JSON: a mistake is pointed at by step and field.
    browser.goto("/w/ops/playbooks/new");
    browser.fill(
        "#definition",
        r#"{"name": "page", "steps": [{"type": "notify", "integration": "ops-hook"}]}"#,
    );
    browser.click("form.card button[type=submit]");
    let error = browser.text_of("#definition-error");
    assert!(error.contains("steps[1].message"), "{error}");
    browser.fill(
        "#definition",
        &json!({
            "name": "page",
            "description": "Tell the hook and open a follow-up.",
            "steps": [
                {"type": "notify", "integration": "ops-hook", "message": "Incident {{input.incident}}"},
                {"type": "create_task", "title": "Follow up {{input.incident}}"},
                {"type": "webhook", "url": format!("{}/pb", far.url)},
            ]
        })
        .to_string(),
    );
    browser.click("form.card button[type=submit]");
    browser.wait_for(
        "the playbook",
        "return !!document.querySelector('#dry-run')",
    );
    browser.fill("#input-incident", "INC-7");
    browser.click("#dry-run");
    browser.wait_for(
        "the run",
        "return location.pathname.includes('/playbooks/runs/')",
    );
    let statuses = browser.script(
        "return [...document.querySelectorAll('ol.outcomes li')].map(li => li.dataset.status)",
    );
    assert_eq!(
        statuses,
        json!(["would_run", "would_run", "cannot_simulate"])
    );
    assert!(browser.text("main").contains("cannot be simulated"));
    assert_eq!(far.to("/hook").len(), 1, "a dry run sends nothing");
    assert!(far.to("/pb").is_empty(), "a dry run calls no webhook");
    browser.check_page("playbook-dry-run");
    browser.click("a.button[href^='/w/ops/playbooks/']");
    browser.fill("#input-incident", "INC-7");
    browser.click("#run");
    browser.wait_for(
        "the run",
        "return location.pathname.includes('/playbooks/runs/')",
    );
    let statuses = browser.script(
        "return [...document.querySelectorAll('ol.outcomes li')].map(li => li.dataset.status)",
    );
    assert_eq!(statuses, json!(["succeeded", "succeeded", "succeeded"]));
    assert_eq!(far.to("/pb").len(), 1);
    assert_eq!(browser.text("#run-status"), "succeeded");
    assert!(String::from_utf8_lossy(&far.to("/hook")[1].body).contains("Incident INC-7"));
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM work_items WHERE title = 'Follow up INC-7'"),
        1
    );
    browser.check_page("playbook-run");
    browser.assert_clean(&[]);
}
