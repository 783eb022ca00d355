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

/// The invite page, seen by anyone holding the link (the inviter too),
/// with what varies between two invites (the address, the token, the
/// form's token) taken out.
fn invite_page_text(page: &str, email: &str, token: &str) -> String {
    let page = page.replace(email, "EMAIL").replace(token, "TOKEN");
    match page.split_once("name=\"form_token\" value=\"") {
        Some((head, rest)) => {
            let tail = rest.split_once('"').map_or("", |(_, t)| t);
            format!("{head}FORM_TOKEN{tail}")
        }
        None => page,
    }
}

fn anonymous_page(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// An inviter learns nothing of whether an address has an account
/// elsewhere: the invite page, the answers to the inviter, and accepting
/// with the inviter's own token read the same for an address that has an
/// account only in another workspace and for one that has none.
fn invites_do_not_tell_whether_an_address_has_an_account(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "mine");
    create_workspace(&admin, "theirs");
    let elsewhere_token = join(&server, "theirs", "known@example.com", "viewer", false);
    let owner_token = join(&server, "mine", "owner@mine.com", "owner", false);
    let owner = server.api(&owner_token);
    let known = owner.create(
        "/api/v1/workspaces/mine/invites",
        json!({"email": "known@example.com", "role": "viewer"}),
    );
    let fresh = owner.create(
        "/api/v1/workspaces/mine/invites",
        json!({"email": "fresh@example.com", "role": "viewer"}),
    );
    // The answers to the inviter have the same shape and say nothing more.
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&known), keys(&fresh));
    assert_eq!(known["status"], fresh["status"]);
    let token = |v: &Value| v["accept_token"].as_str().unwrap().to_owned();
    let (known_token, fresh_token) = (token(&known), token(&fresh));

    // The page behind the link reads the same, word for word.
    let page = |token: &str, email: &str| {
        let (status, page) = anonymous_page(&format!("{}/invites/{token}", server.url));
        assert_eq!(status, 200);
        assert!(!page.contains("already has"), "{page}");
        invite_page_text(&page, email, token)
    };
    assert_eq!(
        page(&known_token, "known@example.com"),
        page(&fresh_token, "fresh@example.com")
    );
    // Signed in, the inviter sees the same page for both, too.
    let inviter = crate::admin_web_session(&server);
    let signed_in_page = |token: &str, email: &str| {
        let (status, page) = inviter.page(&format!("/invites/{token}"));
        assert_eq!(status, 200);
        assert!(page.contains("You are signed in as admin@example.com"));
        invite_page_text(&page, email, token)
    };
    assert_eq!(
        signed_in_page(&known_token, "known@example.com"),
        signed_in_page(&fresh_token, "fresh@example.com")
    );
    // Accepting with the inviter's own token is refused alike, and
    // accepts nothing.
    for (token, email) in [
        (&known_token, "known@example.com"),
        (&fresh_token, "fresh@example.com"),
    ] {
        let r = owner.post(
            &format!("/api/v1/invites/{token}/accept"),
            json!({"name": "Probe"}),
        );
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(
            r.json["error"]["message"].as_str().unwrap().replace(email, "EMAIL"),
            "this invite is for EMAIL, and you are signed in as owner@mine.com: sign out (or use no token) to accept it"
        );
    }
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM users WHERE email = 'fresh@example.com'"),
        0
    );
    // The invitees themselves still join: the existing account with its
    // token, the new address with a name.
    let joined = server.api(&elsewhere_token).post(
        &format!("/api/v1/invites/{known_token}/accept"),
        json!({"name": "Known"}),
    );
    assert_eq!(expect(&joined, 201)["workspace"], "mine");
    let joined = server.anonymous().post(
        &format!("/api/v1/invites/{fresh_token}/accept"),
        json!({"name": "Fresh"}),
    );
    assert!(expect(&joined, 201)["token"]["token"].is_string());
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
    invites_are_mailed_when_smtp_is_configured,
    expired_invites_are_reported_and_audited,
    invites_are_mailed_over_starttls,
    mail_is_withheld_from_a_relay_without_starttls,
    long_lists_are_paged_both_ways,
    a_workspace_with_95000_invites_stays_small,
    invites_do_not_tell_whether_an_address_has_an_account,
    a_bulk_invite_cut_short_keeps_whole_batches_and_resumes,
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
