//! Members and invites through the CLI: one invite, accepting it, listing,
//! removing, and bulk invites from CSV.

use serde_json::{json, Value};
use vigilo_host::config::{SmtpConfig, SmtpTls};
use vigilo_tests::json::{find, strings};
use vigilo_tests::smtp::SmtpSink;
use vigilo_tests::{
    expect, on_both_databases, Api, Cli, CliOutput, TestDb, TestServer, WebSession,
};

use crate::{create_workspace, join};

mod paging;

mod privacy;

mod mail;

/// `vigilo [--json] member invite --email EMAIL --role ROLE`.
fn cli_invite(cli: &Cli, json: bool, email: &str, role: &str) -> CliOutput {
    let args = [
        "--json", "member", "invite", "--email", email, "--role", role,
    ];
    cli.run(if json { &args } else { &args[1..] })
}

/// `vigilo [--json] invite accept TOKEN --url URL --name NAME`.
fn cli_accept(cli: &Cli, json: bool, token: &str, url: &str, name: &str) -> CliOutput {
    let args = [
        "--json", "invite", "accept", token, "--url", url, "--name", name,
    ];
    cli.run(if json { &args } else { &args[1..] })
}

fn invite_accept_list_remove(db: TestDb) {
    let server = TestServer::start(db);
    create_workspace(&server.admin(), "acme");
    let owner_token = join(&server, "acme", "owner@acme.com", "owner", false);
    let owner = Cli::with(&server.url, &owner_token, Some("acme"));

    let invited = cli_invite(&owner, true, "Alice@Acme.com", "engineer")
        .ok()
        .json();
    assert_eq!(invited["email"], "alice@acme.com");
    assert_eq!(invited["status"], "pending");
    let accept_token = invited["accept_token"].as_str().unwrap().to_string();
    assert!(invited["accept_url"]
        .as_str()
        .unwrap()
        .ends_with(&accept_token));
    let text = cli_invite(&owner, false, "bob@acme.com", "viewer")
        .ok()
        .stdout
        .clone();
    assert!(
        text.contains("/invites/vgi_"),
        "the accept link is shown to the inviter: {text}"
    );

    // The accept link is queued in the outbox, sealed under the server's
    // key: neither it nor the audit log holds the token in the clear.
    let outbox = server
        .db
        .column("SELECT body FROM outbox WHERE recipient = 'alice@acme.com'");
    assert!(outbox[0].as_deref().unwrap().starts_with("v1:"));
    assert!(!server.db.dump_text().contains(&accept_token));

    // Alice accepts with the CLI alone and gets her first token.
    let alice_cli = Cli::new();
    let accepted = cli_accept(&alice_cli, true, &accept_token, &server.url, "Alice")
        .ok()
        .json();
    assert_eq!(accepted["workspace"], "acme");
    assert_eq!(accepted["role"], "engineer");
    let alice_token = accepted["token"]["token"].as_str().unwrap().to_string();
    let alice = Cli::with(&server.url, &alice_token, Some("acme"));
    let members = alice.run(&["--json", "member", "list"]).ok().json();
    let emails = strings(&members, "email");
    assert_eq!(emails, ["alice@acme.com", "owner@acme.com"]);
    // Having joined with the CLI alone, Alice sets a password for the web
    // app; changing it needs the current one and signs the browser out.
    let password = |input: &str| alice.run_with_stdin(&["password", "--password-stdin"], input);
    password("tram-ladle-quince-42\n").ok();
    let web = WebSession::sign_in(&server.url, "alice@acme.com", "tram-ladle-quince-42");
    assert_eq!(web.get("/w/acme").0, 200);
    password("oak-ember-violin-77\n").fails_with(6, "current password");
    password("oak-ember-violin-77\nnot-the-password-1\n").fails_with(6, "not right");
    password("oak-ember-violin-77\ntram-ladle-quince-42\n").ok();
    assert_eq!(web.get("/w/acme").0, 303, "the browser was signed out");
    WebSession::sign_in(&server.url, "alice@acme.com", "oak-ember-violin-77");
    // The token is one-time.
    let again = cli_accept(&Cli::new(), false, &accept_token, &server.url, "Eve");
    assert_eq!(again.code, 6, "{}", again.stderr);

    // An engineer cannot invite; the CLI names the missing permission.
    cli_invite(&alice, false, "carol@acme.com", "viewer").fails_with(4, "member.invite");

    // Invite listing; resending gives a new link and the old one stops
    // working; revocation.
    let invites = owner.run(&["--json", "invite", "list"]).ok().json();
    let bob = find(&invites, "email", "bob@acme.com").unwrap().clone();
    assert!(bob.get("accept_token").is_none());
    let resent = owner
        .run(&["--json", "invite", "resend", &bob["id"].to_string()])
        .ok()
        .json();
    assert_ne!(resent["id"], bob["id"]);
    assert_eq!(resent["role"], "viewer");
    let invites = owner.run(&["--json", "invite", "list"]).ok().json();
    let statuses: Vec<&str> = invites
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["email"] == "bob@acme.com")
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "revoked"], "newest first");
    owner
        .run(&["invite", "revoke", &resent["id"].to_string()])
        .ok();
    owner
        .run(&["invite", "resend", &resent["id"].to_string()])
        .fails_with(6, "revoked");

    // Roles: an owner gives Alice another role; an engineer cannot; the
    // last owner keeps the owner role.
    let changed = owner
        .run(&[
            "--json",
            "member",
            "role",
            "alice@acme.com",
            "--role",
            "approver",
        ])
        .ok()
        .json();
    assert_eq!(changed["role"], "approver");
    let audit = expect(
        &server
            .admin()
            .get("/api/v1/workspaces/acme/audit?action=member.role"),
        200,
    )
    .clone();
    assert_eq!(audit["events"][0]["details"]["from"]["role"], "engineer");
    assert_eq!(audit["events"][0]["details"]["to"]["role"], "approver");
    alice
        .run(&["member", "role", "owner@acme.com", "--role", "viewer"])
        .fails_with(4, "role.manage");
    owner
        .run(&["member", "role", "owner@acme.com", "--role", "viewer"])
        .fails_with(6, "last owner");

    // Removal, and the last owner stays.
    owner.run(&["member", "remove", "alice@acme.com"]).ok();
    let gone = alice.run(&["member", "list"]);
    assert_eq!(gone.code, 4, "{}", gone.stderr);
    owner
        .run(&["member", "remove", "owner@acme.com"])
        .fails_with(6, "last owner");
}

fn bulk_invite_reports_every_row(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "acme");
    admin.create(
        "/api/v1/workspaces/acme/roles",
        json!({"name": "release-manager", "base_role": "engineer"}),
    );
    let owner_token = join(&server, "acme", "owner@acme.com", "owner", false);
    admin.create(
        "/api/v1/workspaces/acme/invites",
        json!({"email": "pending@acme.com", "role": "viewer"}),
    );
    let owner = Cli::with(&server.url, &owner_token, Some("acme"));
    let csv = "email,role,custom_role_name\n\
               ann@acme.com,engineer,\n\
               not-an-email,viewer,\n\
               ben@acme.com,wizard,\n\
               cat@acme.com,,no-such-role\n\
               ann@acme.com,viewer,\n\
               owner@acme.com,viewer,\n\
               pending@acme.com,viewer,\n\
               dan@acme.com,,release-manager\n\
               eve@acme.com,viewer\n";
    let file = owner.home.path().join("invites.csv");
    std::fs::write(&file, csv).unwrap();
    let run = owner.run(&["member", "bulk-invite", "--csv", file.to_str().unwrap()]);
    assert_eq!(
        run.code, 8,
        "some rows failed: exit 8\n{}\n{}",
        run.stdout, run.stderr
    );
    for expected in [
        "not-an-email",
        "wizard",
        "no-such-role",
        "duplicate of row 2",
        "already a member",
        "already invited",
    ] {
        assert!(
            run.stdout.contains(expected),
            "report lacks {expected}:\n{}",
            run.stdout
        );
    }
    let report = owner
        .run(&[
            "--json",
            "member",
            "bulk-invite",
            "--csv",
            file.to_str().unwrap(),
        ])
        .json();
    // Second run: nobody is invited twice.
    assert_eq!(report["invited"], 0, "{report}");
    let rows = report["rows"].as_array().unwrap();
    let outcome = |row: u64| -> (String, String) {
        let r: &Value = rows.iter().find(|r| r["row"] == row).unwrap();
        (
            r["outcome"].as_str().unwrap().into(),
            r["reason"].as_str().unwrap_or("").into(),
        )
    };
    assert_eq!(outcome(2), ("skipped".into(), "already invited".into()));
    assert_eq!(outcome(3).0, "failed");
    assert!(
        outcome(10).1.contains("expected 3 columns"),
        "{:?}",
        outcome(10)
    );

    let open: Vec<String> = server
        .db
        .column("SELECT email FROM invites WHERE accepted_at IS NULL AND revoked_at IS NULL ORDER BY email")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(open, ["ann@acme.com", "dan@acme.com", "pending@acme.com"]);
    let dan = server
        .db
        .column("SELECT c.name FROM invites i JOIN custom_roles c ON c.id = i.custom_role_id");
    assert_eq!(dan, [Some("release-manager".to_string())]);

    // A wrong header refuses the whole file, naming the expected columns.
    std::fs::write(&file, "mail,role\nzed@acme.com,viewer\n").unwrap();
    owner
        .run(&["member", "bulk-invite", "--csv", file.to_str().unwrap()])
        .fails_with(6, "email,role,custom_role_name");
    assert_eq!(
        server
            .db
            .column("SELECT email FROM invites WHERE email = 'zed@acme.com'")
            .len(),
        0
    );
}

/// Invites past their expiry are listed as `expired` (not `revoked`), and
/// closing them — before an address is invited again, or by the hourly
/// task — is audited for each one.
fn expired_invites_are_reported_and_audited(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "acme");
    let ids: Vec<i64> = ["a@acme.com", "b@acme.com", "c@acme.com"]
        .iter()
        .map(|email| invite(&server, email)["id"].as_i64().unwrap())
        .collect();
    expect(
        &admin.delete(&format!("/api/v1/workspaces/acme/invites/{}", ids[2])),
        200,
    );
    server.db.execute(
        "UPDATE invites SET expires_at = '2001-01-01T00:00:00.000000Z'
         WHERE email IN ('a@acme.com', 'b@acme.com')",
    );
    let statuses = || -> Vec<(String, String)> {
        let listed = expect(&admin.get("/api/v1/workspaces/acme/invites"), 200).clone();
        let mut out: Vec<(String, String)> = listed["invites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["email"].as_str().unwrap().to_owned(),
                    i["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let pair = |e: &str, s: &str| (e.to_owned(), s.to_owned());
    let expected = vec![
        pair("a@acme.com", "expired"),
        pair("b@acme.com", "expired"),
        pair("c@acme.com", "revoked"),
    ];
    assert_eq!(statuses(), expected);
    // Inviting a@ again closes a@'s expired invite; it stays `expired`.
    invite(&server, "a@acme.com");
    let mut after = expected.clone();
    after.insert(1, pair("a@acme.com", "pending"));
    assert_eq!(statuses(), after);
    let events = admin.workspace_audit("acme", "action=invite.expire");
    assert_eq!(events.targets(), ["a@acme.com"]);
    // The hourly task closes the other one, then finds nothing left.
    let run = || {
        expect(
            &admin.post("/api/v1/scheduler/tasks/invites.expire/run", json!({})),
            200,
        )
        .clone()
    };
    let first = run();
    assert_eq!(first["output"]["expired"], 1, "{first}");
    let events = admin.workspace_audit("acme", "action=invite.expire");
    assert_eq!(events.targets(), ["a@acme.com", "b@acme.com"]);
    assert_eq!(statuses(), after);
    let second = run();
    assert_eq!(second["output"]["expired"], 0, "{second}");
}

fn invite(server: &TestServer, email: &str) -> Value {
    server.admin().create(
        "/api/v1/workspaces/acme/invites",
        json!({"email": email, "role": "viewer"}),
    )
}

/// A bulk invite of the largest allowed file, cut short by `kill -9`:
/// every batch that committed is whole (each invite with its mail and its
/// audit event), and sending the same file again invites exactly the rest.
fn a_bulk_invite_cut_short_keeps_whole_batches_and_resumes(db: TestDb) {
    use vigilo_tests::process::{config_file, create_admin, server_command, ServerProcess};
    let dir = tempfile::TempDir::new().unwrap();
    let (config, port) = config_file(dir.path(), "vigilo", &db.url, "");
    let token = create_admin(&config, "root@example.com");
    let start = || {
        let server = ServerProcess::spawn(
            server_command(&config),
            port,
            &dir.path().join("server.log"),
        );
        server.wait_healthy();
        server
    };
    let server = start();
    let url = server.url().to_owned();
    Api::new(&url, Some(&token)).create(
        "/api/v1/workspaces",
        json!({"name": "Acme", "slug": "acme", "region": "us"}),
    );
    let rows = 49_999;
    let file = dir.path().join("everyone.csv");
    let mut csv = String::from("email,role,custom_role_name\n");
    for i in 0..rows {
        csv.push_str(&format!("person{i}@acme.com,viewer,\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let bulk = {
        let cli = Cli::with(&url, &token, Some("acme"));
        let file = file.clone();
        std::thread::spawn(move || {
            cli.run(&[
                "--json",
                "member",
                "bulk-invite",
                "--csv",
                file.to_str().unwrap(),
            ])
        })
    };
    let invited = || db.number("SELECT COUNT(*) FROM invites");
    let waited = std::time::Instant::now();
    while invited() < 2_000 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(120),
            "no batch committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(server); // kill -9
    let cut = bulk.join().unwrap();
    assert_ne!(cut.code, 0, "the client saw the server go: {}", cut.stderr);
    let done = invited();
    assert!(done < rows as i64, "the bulk invite was cut short ({done})");
    assert_eq!(
        db.number("SELECT COUNT(*) FROM outbox"),
        done,
        "a mail for each invite"
    );
    assert_eq!(
        db.number("SELECT COUNT(*) FROM audit_events WHERE action = 'member.invite'"),
        done,
        "an audit event for each invite"
    );

    // Sent again (here without an Idempotency-Key: the report of 49,999
    // rows is larger than a keyed response kept for replay).
    let server = start();
    let again = Api::new(server.url(), Some(&token))
        .patient(std::time::Duration::from_secs(240))
        .raw(
            "POST",
            "/api/v1/workspaces/acme/invites/bulk",
            Some("text/csv"),
            Some(&std::fs::read(&file).unwrap()),
        );
    let report = expect(&again, 200).clone();
    assert_eq!(report["invited"], rows as i64 - done);
    assert_eq!(report["skipped"], done);
    assert_eq!(report["failed"], 0);
    assert_eq!(invited(), rows as i64);
    assert_eq!(db.number("SELECT COUNT(*) FROM outbox"), rows as i64);
    let verified = expect(
        &Api::new(server.url(), Some(&token)).get("/api/v1/workspaces/acme/audit/verify?full=true"),
        200,
    )
    .clone();
    assert_eq!(verified["intact"], true, "{verified}");
}

on_both_databases!(
    invite_accept_list_remove,
    bulk_invite_reports_every_row,
    expired_invites_are_reported_and_audited,
    a_workspace_with_95000_invites_stays_small,
    a_bulk_invite_cut_short_keeps_whole_batches_and_resumes
);

/// Adds `n` pending invites (`{prefix}{i}@example.com`, i from 1) to
/// workspace `slug` straight in the database, the fastest way to a long
/// list.
pub fn fill_invites(db: &TestDb, slug: &str, prefix: &str, n: usize) {
    db.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
         INSERT INTO invites (workspace_id, email, role, token_hash, invited_by, created_at, expires_at)
         SELECT (SELECT id FROM workspaces WHERE slug = '{slug}'), '{prefix}' || i || '@example.com',
                'viewer', '{slug}-{prefix}-' || i, (SELECT id FROM users WHERE email = 'admin@example.com'),
                '2026-01-01T00:00:00.000000Z', '2999-01-01T00:00:00.000000Z'
         FROM n"
    ));
}

/// Adds `n` viewers (`{prefix}{i}@example.com`) to workspace `slug`
/// straight in the database.
pub fn fill_members(db: &TestDb, slug: &str, prefix: &str, n: usize) {
    db.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
         INSERT INTO users (email, name, created_at)
         SELECT '{prefix}' || i || '@example.com', 'Person ' || i, '2026-01-01T00:00:00.000000Z' FROM n"
    ));
    db.execute(&format!(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at)
         SELECT (SELECT id FROM workspaces WHERE slug = '{slug}'), id, 'viewer', '2026-01-01T00:00:00.000000Z'
         FROM users WHERE email LIKE '{prefix}%@example.com'"
    ));
}

/// With 95,000 invites, the members page and the API's lists answer one
/// page each, with the count.
fn a_workspace_with_95000_invites_stays_small(db: TestDb) {
    let server = TestServer::start(db);
    create_workspace(&server.admin(), "huge");
    fill_invites(&server.db, "huge", "guest", 95_000);
    let web = crate::admin_web_session(&server);
    let (status, page) = web.page("/w/huge/members");
    assert_eq!(status, 200);
    assert!(
        page.len() < 100_000,
        "the members page is {} bytes",
        page.len()
    );
    assert!(
        page.contains("Invites <span class=\"muted\">(95000)</span>"),
        "the count is shown"
    );
    assert_eq!(page.matches("<tr data-invite=").count(), 50);
    assert!(page.contains("rel=\"next\""));
    let list = server.admin().get("/api/v1/workspaces/huge/invites");
    assert!(list.text.len() < 100_000, "{} bytes", list.text.len());
    assert_eq!(expect(&list, 200)["total"], 95_000);
    // A refused over-limit bulk file answers with the page, not every
    // invite.
    let csrf = crate::csrf_of(&page);
    let mut csv = String::from("email,role,custom_role_name\n");
    for i in 0..50_001 {
        csv.push_str(&format!("x{i}@huge.com,viewer,\n"));
    }
    let (status, refused) = web.upload(
        "/w/huge/invites/bulk",
        &csrf,
        "file",
        "big.csv",
        csv.as_bytes(),
    );
    assert_eq!(status, 422);
    assert!(
        refused.contains("more than 50000 rows"),
        "{}",
        &refused[..refused.len().min(2000)]
    );
    assert!(
        refused.len() < 100_000,
        "the refusal is {} bytes",
        refused.len()
    );
}
