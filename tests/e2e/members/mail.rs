//! Invites by mail: sent when SMTP is configured, over STARTTLS, and withheld
//! from a relay that does not offer it.

use super::*;

on_both_databases!(
    invites_are_mailed_when_smtp_is_configured,
    invites_are_mailed_over_starttls,
    mail_is_withheld_from_a_relay_without_starttls
);

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
