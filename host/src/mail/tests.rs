use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::*;

/// How the test relay starts its conversation.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    /// Plain, offering STARTTLS.
    Upgrade,
    /// Plain, offering STARTTLS, with a made-up EHLO reply sent right
    /// behind the go-ahead, in the clear.
    InjectedAfterGoAhead,
    /// TLS from the first byte.
    Tls,
}

/// A relay on 127.0.0.1 for one conversation, with a certificate for
/// 127.0.0.1. Returns its port, what it heard over TLS, and its
/// certificate (PEM).
fn relay(start: Start) -> (u16, Arc<Mutex<Vec<String>>>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(tls)).unwrap();
        if start == Start::Tls {
            let mut io = rustls::StreamOwned::new(conn, tcp);
            io.write_all(b"220 relay\r\n").unwrap();
            return converse_over_tls(io, &log);
        }
        tcp.write_all(b"220 relay\r\n").unwrap();
        let mut plain = BufReader::new(tcp.try_clone().unwrap());
        let mut line = String::new();
        plain.read_line(&mut line).unwrap();
        tcp.write_all(b"250-relay\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")
            .unwrap();
        line.clear();
        plain.read_line(&mut line).unwrap();
        assert_eq!(line, "STARTTLS\r\n");
        let mut go_ahead = b"220 go ahead\r\n".to_vec();
        if start == Start::InjectedAfterGoAhead {
            go_ahead.extend_from_slice(b"250-relay\r\n250 AUTH PLAIN\r\n");
        }
        tcp.write_all(&go_ahead).unwrap();
        converse_over_tls(rustls::StreamOwned::new(conn, tcp), &log);
    });
    (port, heard, cert.pem())
}

/// The relay's side once TLS is on: records each command, accepts all.
fn converse_over_tls(
    stream: rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>,
    log: &Mutex<Vec<String>>,
) {
    let mut io = BufReader::new(stream);
    let mut line = String::new();
    let mut in_data = false;
    loop {
        line.clear();
        if io.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let reply: &[u8] = if in_data {
            if line != ".\r\n" {
                continue;
            }
            in_data = false;
            b"250 queued\r\n"
        } else {
            log.lock().unwrap().push(line.trim_end().to_owned());
            match line.get(..4) {
                Some("EHLO") => b"250-relay\r\n250 AUTH PLAIN\r\n",
                Some("AUTH") => b"235 welcome\r\n",
                Some("DATA") => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                Some("QUIT") => b"221 bye\r\n",
                _ => b"250 ok\r\n",
            }
        };
        let stream = io.get_mut();
        if stream
            .write_all(reply)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

fn mailer(port: u16, tls: SmtpTls, ca: &str, dir: &tempfile::TempDir) -> Mailer {
    let ca_file = dir.path().join("relay.pem");
    std::fs::write(&ca_file, ca).unwrap();
    Mailer::new(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "Vigilo <vigilo@example.com>".into(),
        username: Some("vigilo".into()),
        password: Some("smtp-secret".into()),
        tls,
        ca_file: Some(ca_file),
    })
    .unwrap()
}

fn invite() -> OutboxMail {
    OutboxMail {
        id: 1,
        recipient: "alice@example.com".into(),
        subject: "You are invited".into(),
        body: "Accept here:\nhttps://vigilo.example.com/invites/abc\n".into(),
    }
}

/// What the relay heard over TLS: the login and the envelope.
fn assert_logged_in_and_sent(heard: &Mutex<Vec<String>>) {
    let heard = heard.lock().unwrap().clone();
    assert_eq!(heard[0], "EHLO vigilo", "{heard:?}");
    assert!(heard[1].starts_with("AUTH PLAIN "), "{heard:?}");
    assert_eq!(heard[2], "MAIL FROM:<vigilo@example.com>", "{heard:?}");
    assert_eq!(heard[3], "RCPT TO:<alice@example.com>", "{heard:?}");
}

#[tokio::test]
async fn starttls_then_login_and_mail_over_tls() {
    let (port, heard, ca) = relay(Start::Upgrade);
    let dir = tempfile::TempDir::new().unwrap();
    let mailer = mailer(port, SmtpTls::StartTls, &ca, &dir);
    send(&mailer, &invite()).await.unwrap();
    assert_logged_in_and_sent(&heard);
}

#[tokio::test]
async fn implicit_tls_from_the_first_byte() {
    let (port, heard, ca) = relay(Start::Tls);
    let dir = tempfile::TempDir::new().unwrap();
    let mailer = mailer(port, SmtpTls::Tls, &ca, &dir);
    send(&mailer, &invite()).await.unwrap();
    assert_logged_in_and_sent(&heard);
}

#[tokio::test]
async fn a_certificate_not_in_ca_file_is_refused() {
    let (port, heard, _) = relay(Start::Upgrade);
    let (_, _, other) = relay(Start::Upgrade);
    let dir = tempfile::TempDir::new().unwrap();
    let mailer = mailer(port, SmtpTls::StartTls, &other, &dir);
    let error = send(&mailer, &invite()).await.unwrap_err();
    assert!(error.contains("STARTTLS"), "{error}");
    assert!(heard.lock().unwrap().is_empty());
}

#[tokio::test]
async fn nothing_sent_in_the_clear_after_the_go_ahead_is_believed() {
    let (port, heard, ca) = relay(Start::InjectedAfterGoAhead);
    let dir = tempfile::TempDir::new().unwrap();
    let mailer = mailer(port, SmtpTls::StartTls, &ca, &dir);
    let error = send(&mailer, &invite()).await.unwrap_err();
    assert!(error.contains("STARTTLS"), "{error}");
    assert!(!error.contains("smtp-secret"), "{error}");
    assert!(heard.lock().unwrap().is_empty());
}

#[test]
fn ascii_bodies_keep_long_links_whole() {
    let link = format!("https://vigilo.example.com/invites/{}", "a".repeat(120));
    let message = Message::builder()
        .from(Mailbox::new(None, "a@example.com".parse().unwrap()))
        .to(Mailbox::new(None, "b@example.com".parse().unwrap()))
        .subject("s")
        .header(ContentType::TEXT_PLAIN)
        .body(body(&format!("Accept:\n{link}\n")))
        .unwrap();
    let text = String::from_utf8(message.formatted()).unwrap();
    assert!(text.contains("Content-Transfer-Encoding: 7bit"), "{text}");
    assert!(text.contains(&format!("\r\n{link}\r\n")), "{text}");
    let accented = String::from_utf8(
        Message::builder()
            .from(Mailbox::new(None, "a@example.com".parse().unwrap()))
            .to(Mailbox::new(None, "b@example.com".parse().unwrap()))
            .subject("s")
            .body(body("Équipe\n"))
            .unwrap()
            .formatted(),
    )
    .unwrap();
    assert!(
        accented.contains("Content-Transfer-Encoding: quoted-printable")
            || accented.contains("Content-Transfer-Encoding: base64"),
        "{accented}"
    );
}

#[test]
fn bad_settings_stop_startup() {
    let base = SmtpConfig {
        host: "127.0.0.1".into(),
        port: 25,
        from: "vigilo@example.com".into(),
        username: None,
        password: None,
        tls: SmtpTls::StartTls,
        ca_file: None,
    };
    let refused = |smtp: SmtpConfig| Mailer::new(smtp).err().unwrap().to_string();
    assert!(refused(SmtpConfig {
        from: "not an address".into(),
        ..base.clone()
    })
    .contains("smtp.from"));
    assert!(refused(SmtpConfig {
        host: "bad host".into(),
        ..base.clone()
    })
    .contains("cannot be checked against a TLS certificate"));
    let dir = tempfile::TempDir::new().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(refused(SmtpConfig {
        ca_file: Some(empty),
        ..base.clone()
    })
    .contains("holds no certificate"));
    assert!(refused(SmtpConfig {
        ca_file: Some(dir.path().join("missing.pem")),
        ..base
    })
    .contains("cannot read smtp.ca_file"));
}
