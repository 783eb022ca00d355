//! Members and invites through the CLI: one invite, accepting it, listing,
//! removing, and bulk invites from CSV.

use serde_json::{json, Value};
use vigilo_host::config::{SmtpConfig, SmtpTls};
use vigilo_tests::json::{find, strings};
use vigilo_tests::smtp::SmtpSink;
use vigilo_tests::{expect, on_both_databases, Cli, CliOutput, TestDb, TestServer, WebSession};

use crate::{create_workspace, join};

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
    // Inviting a@ again closes both expired invites; they stay `expired`.
    invite(&server, "a@acme.com");
    let mut after = expected.clone();
    after.insert(1, pair("a@acme.com", "pending"));
    assert_eq!(statuses(), after);
    let events = admin.workspace_audit("acme", "action=invite.expire");
    assert_eq!(events.targets(), ["a@acme.com", "b@acme.com"]);
    // The hourly task finds nothing left to close.
    let run = expect(
        &admin.post("/api/v1/scheduler/tasks/invites.expire/run", json!({})),
        200,
    )
    .clone();
    assert_eq!(run["output"]["expired"], 0, "{run}");
}

fn smtp(port: u16, tls: SmtpTls, ca_file: Option<std::path::PathBuf>) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "vigilo@example.com".into(),
        username: Some("vigilo".into()),
        password: Some("smtp-secret".into()),
        tls,
        ca_file,
    }
}

fn invite(server: &TestServer, email: &str) -> Value {
    server.admin().create(
        "/api/v1/workspaces/acme/invites",
        json!({"email": email, "role": "viewer"}),
    )
}

/// Waits for the outbox row of `email` to record a delivery (`sent_at`) or
/// an error (`last_error`), and returns both.
fn outbox_outcome(server: &TestServer, email: &str) -> (Option<String>, Option<String>) {
    for _ in 0..200 {
        let row = server.db.rows(&format!(
            "SELECT sent_at, last_error FROM outbox WHERE recipient = '{email}'"
        ));
        if row[0][0].is_some() || row[0][1].is_some() {
            return (row[0][0].clone(), row[0][1].clone());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the outbox never recorded an attempt for {email}");
}

/// A relay on this host without TLS (`tls = "none"`).
fn invites_are_mailed_when_smtp_is_configured(db: TestDb) {
    let sink = SmtpSink::start();
    let server = TestServer::start_with(db, |config| {
        config.smtp = Some(smtp(sink.port, SmtpTls::None, None));
    });
    create_workspace(&server.admin(), "acme");
    let invite = invite(&server, "mail@acme.com");
    let (rcpt, data) = sink.next_message();
    assert_eq!(rcpt, "RCPT TO:<mail@acme.com>");
    assert!(
        data.contains(invite["accept_url"].as_str().unwrap()),
        "{data}"
    );
    assert!(
        data.contains("Subject: You are invited to ACME on Vigilo"),
        "{data}"
    );
    // The outbox records the delivery and keeps no copy of the link.
    let (sent, error) = outbox_outcome(&server, "mail@acme.com");
    assert!(sent.is_some() && error.is_none(), "{error:?}");
    assert_eq!(
        server
            .db
            .column("SELECT body FROM outbox WHERE recipient = 'mail@acme.com'"),
        [Some(String::new())]
    );
}

/// By default the mailer upgrades with STARTTLS, checks the relay's
/// certificate against `ca_file`, and only then logs in and sends.
fn invites_are_mailed_over_starttls(db: TestDb) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let ca_file = dir.path().join("relay.pem");
    std::fs::write(&ca_file, cert.pem()).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let tls = std::sync::Arc::new(tls);
    let sink = SmtpSink::with_starttls(move |tcp| {
        rustls::StreamOwned::new(rustls::ServerConnection::new(tls.clone()).unwrap(), tcp)
    });
    let server = TestServer::start_with(db, |config| {
        config.smtp = Some(smtp(sink.port, SmtpTls::default(), Some(ca_file)));
    });
    create_workspace(&server.admin(), "acme");
    let invite = invite(&server, "tls@acme.com");
    let (rcpt, data) = sink.next_message();
    assert_eq!(rcpt, "RCPT TO:<tls@acme.com>");
    assert!(data.contains(invite["accept_url"].as_str().unwrap()));
    let (sent, error) = outbox_outcome(&server, "tls@acme.com");
    assert!(sent.is_some(), "{error:?}");
    let commands = sink.commands();
    assert_eq!(
        commands[..3],
        ["plain: EHLO vigilo", "plain: STARTTLS", "tls: EHLO vigilo"],
        "{commands:?}"
    );
    // Nothing after the upgrade went in the clear.
    assert!(
        commands[3..].iter().all(|c| c.starts_with("tls: ")),
        "{commands:?}"
    );
    assert!(commands.iter().any(|c| c.starts_with("tls: AUTH PLAIN")));
}

/// A relay that does not offer STARTTLS gets neither the password nor the
/// message, and the outbox says why.
fn mail_is_withheld_from_a_relay_without_starttls(db: TestDb) {
    let sink = SmtpSink::start();
    let server = TestServer::start_with(db, |config| {
        config.smtp = Some(smtp(sink.port, SmtpTls::default(), None));
    });
    create_workspace(&server.admin(), "acme");
    invite(&server, "plain@acme.com");
    let (sent, error) = outbox_outcome(&server, "plain@acme.com");
    assert!(sent.is_none());
    let error = error.unwrap();
    assert!(error.contains("does not offer STARTTLS"), "{error}");
    assert!(!error.contains("smtp-secret"), "{error}");
    let commands = sink.commands();
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("AUTH") || c.contains("MAIL FROM")),
        "{commands:?}"
    );
    assert!(sink.arrived().is_none());
    // The next try waits (30 s after a first failure), not the next poll.
    let row = server.db.rows(
        "SELECT attempts, created_at, next_attempt_at FROM outbox WHERE recipient = 'plain@acme.com'",
    );
    assert_eq!(row[0][0].as_deref(), Some("1"));
    assert!(row[0][2] > row[0][1], "{row:?}");
}

on_both_databases!(
    invite_accept_list_remove,
    bulk_invite_reports_every_row,
    invites_are_mailed_when_smtp_is_configured,
    expired_invites_are_reported_and_audited,
    invites_are_mailed_over_starttls,
    mail_is_withheld_from_a_relay_without_starttls
);
