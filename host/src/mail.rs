//! The outbox mailer: sends queued mail (invite links) over SMTP when
//! `[smtp]` is configured.
//!
//! Mail is queued in the `outbox` table in the same transaction as the
//! invite, so nothing is lost if the relay is down: the mailer retries each
//! message up to ten times, 30 s after the first failure and twice as long
//! after each next one (about 4 hours in all), recording the last error.
//! Message bodies hold accept links, so they are sealed with the server's
//! secrets key (see [`crate::secretbox`]) while queued, emptied once sent,
//! and never logged.
//!
//! The connection is encrypted by default: `tls = "starttls"` (the default,
//! for submission on port 587 or a relay on 25) upgrades with STARTTLS
//! before anything else is said and refuses to go on if the server does not
//! offer it; `tls = "tls"` speaks TLS from the first byte (port 465);
//! `tls = "none"` is for a relay on the same host or a trusted network. The
//! server's certificate is checked against the public web roots plus the
//! certificates in `ca_file`. Credentials go out only with `AUTH PLAIN`,
//! after the upgrade.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::config::{SmtpConfig, SmtpTls};
use crate::state::AppState;
use crate::store::OutboxMail;

/// How long connecting, and then each read or write, may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The mail settings with their TLS configuration, checked at startup.
pub struct Mailer {
    smtp: SmtpConfig,
    tls: Arc<ClientConfig>,
    /// The name the relay's certificate must hold (unless `tls = "none"`).
    server_name: Option<ServerName<'static>>,
}

impl Mailer {
    /// Checks `smtp` and loads the certificates it trusts; an unreadable
    /// `ca_file` is an error here, at startup, not at the first invite.
    pub fn new(smtp: SmtpConfig) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &smtp.ca_file {
            let text = std::fs::read(path)
                .with_context(|| format!("cannot read smtp.ca_file {}", path.display()))?;
            let mut added = 0;
            for block in x509_parser::pem::Pem::iter_from_buffer(&text) {
                let block = block.map_err(|e| {
                    anyhow::anyhow!("smtp.ca_file {} is not PEM: {e}", path.display())
                })?;
                if block.label == "CERTIFICATE" {
                    roots
                        .add(CertificateDer::from(block.contents))
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "smtp.ca_file {} holds a certificate that cannot be trusted: {e}",
                                path.display()
                            )
                        })?;
                    added += 1;
                }
            }
            if added == 0 {
                anyhow::bail!("smtp.ca_file {} holds no certificate", path.display());
            }
        }
        let server_name = match smtp.tls {
            SmtpTls::None => None,
            SmtpTls::StartTls | SmtpTls::Tls => {
                Some(ServerName::try_from(smtp.host.clone()).map_err(|_| {
                    anyhow::anyhow!(
                        "smtp.host `{}` cannot be checked against a TLS certificate",
                        smtp.host
                    )
                })?)
            }
        };
        let tls =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        if smtp.tls == SmtpTls::None && smtp.username.is_some() && !is_local(&smtp.host) {
            tracing::warn!(
                host = %smtp.host,
                "smtp.tls is \"none\": the SMTP password crosses the network unencrypted"
            );
        }
        Ok(Mailer {
            smtp,
            tls: Arc::new(tls),
            server_name,
        })
    }
}

fn is_local(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What a queued message's body is sealed to: its recipient, so a sealed
/// body copied onto another row does not open.
pub fn sealing_context(recipient: &str) -> String {
    format!("outbox:{recipient}")
}

/// Sends queued mail until `shutdown` resolves.
pub async fn run(
    state: AppState,
    mailer: Arc<Mailer>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match state.store.unsent_mail(50).await {
            Ok(batch) => {
                for mut mail in batch {
                    let id = mail.id;
                    let error = match state
                        .secrets
                        .open(&sealing_context(&mail.recipient), &mail.body)
                    {
                        Ok(body) => {
                            mail.body = body;
                            deliver(&mailer, mail).await
                        }
                        Err(e) => Some(format!(
                            "the queued message cannot be opened with this server's secrets_key: {e}"
                        )),
                    };
                    match &error {
                        None => tracing::info!(mail_id = id, "mail sent"),
                        Some(e) => {
                            tracing::warn!(mail_id = id, error = %e, "mail not sent; will retry")
                        }
                    }
                    if let Err(e) = state.store.mark_mail(id, error.as_deref()).await {
                        tracing::error!(error = %e, "cannot record mail delivery");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
        }
        tokio::select! {
            _ = state.mail_queued.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Sends one opened message off the async executor; the error, if any.
async fn deliver(mailer: &Arc<Mailer>, mail: OutboxMail) -> Option<String> {
    let sender = mailer.clone();
    let sending = tokio::task::spawn_blocking(move || send(&sender, &mail));
    match tokio::time::timeout(Duration::from_secs(120), sending).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(e),
        Ok(Err(e)) => Some(format!("the mail task failed: {e}")),
        Err(_) => Some("timed out talking to the SMTP server".to_string()),
    }
}

/// The connection, before or after the TLS upgrade.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Wraps `tcp` in TLS and completes the handshake, checking the server's
/// certificate against `host`.
fn handshake(mailer: &Mailer, mut tcp: TcpStream) -> Result<Stream, String> {
    let host = &mailer.smtp.host;
    let name = mailer
        .server_name
        .clone()
        .ok_or("TLS was asked for with smtp.tls = \"none\"")?;
    let mut conn = ClientConnection::new(mailer.tls.clone(), name)
        .map_err(|e| format!("cannot start TLS: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
    }
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
}

struct Session {
    io: BufReader<Stream>,
}

impl Session {
    /// Reads one (possibly multi-line) reply, checks its code class and
    /// returns the text of its lines (for EHLO, the extensions).
    fn expect(&mut self, class: u8, step: &str) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .io
                .read_line(&mut line)
                .map_err(|e| format!("{step}: {e}"))?;
            if n == 0 {
                return Err(format!("{step}: the SMTP server closed the connection"));
            }
            let bytes = line.as_bytes();
            let Some(text) = line.get(4..).filter(|_| bytes.len() >= 4) else {
                return Err(format!("{step}: malformed reply {:?}", line.trim_end()));
            };
            lines.push(text.trim_end().to_owned());
            if bytes[3] == b'-' {
                continue;
            }
            if bytes[0] != class {
                return Err(format!(
                    "{step}: the SMTP server answered {:?}",
                    line.trim_end()
                ));
            }
            return Ok(lines);
        }
    }

    fn write(&mut self, text: &str, step: &str) -> Result<(), String> {
        let stream = self.io.get_mut();
        stream
            .write_all(text.as_bytes())
            .and_then(|()| stream.flush())
            .map_err(|e| format!("{step}: {e}"))
    }

    fn command(&mut self, line: &str, class: u8, step: &str) -> Result<Vec<String>, String> {
        self.write(&format!("{line}\r\n"), step)?;
        self.expect(class, step)
    }

    /// Upgrades the connection after the server's go-ahead for STARTTLS.
    fn start_tls(self, mailer: &Mailer) -> Result<Session, String> {
        // Anything the server sent ahead of the handshake would be read as
        // if it came over TLS: refuse it (a known injection).
        if !self.io.buffer().is_empty() {
            return Err("STARTTLS: the SMTP server sent data before TLS began".into());
        }
        match self.io.into_inner() {
            Stream::Plain(tcp) => Ok(Session {
                io: BufReader::new(handshake(mailer, tcp)?),
            }),
            Stream::Tls(_) => Err("STARTTLS: the connection is already encrypted".into()),
        }
    }
}

fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(tcp) => {
                tcp.set_read_timeout(Some(IO_TIMEOUT))
                    .and_then(|()| tcp.set_write_timeout(Some(IO_TIMEOUT)))
                    .map_err(|e| format!("cannot set up the connection: {e}"))?;
                return Ok(tcp);
            }
            Err(e) => last = format!("cannot connect to {host}:{port}: {e}"),
        }
    }
    Err(last)
}

/// Delivers one message (blocking).
fn send(mailer: &Mailer, mail: &OutboxMail) -> Result<(), String> {
    let smtp = &mailer.smtp;
    let tcp = connect(&smtp.host, smtp.port)?;
    let stream = match smtp.tls {
        SmtpTls::Tls => handshake(mailer, tcp)?,
        SmtpTls::StartTls | SmtpTls::None => Stream::Plain(tcp),
    };
    let mut s = Session {
        io: BufReader::new(stream),
    };
    s.expect(b'2', "greeting")?;
    let extensions = s.command("EHLO vigilo", b'2', "EHLO")?;
    if smtp.tls == SmtpTls::StartTls {
        if !extensions
            .iter()
            .any(|e| e.eq_ignore_ascii_case("STARTTLS"))
        {
            return Err(format!(
                "{}:{} does not offer STARTTLS, so nothing was sent; set smtp.tls = \"tls\" \
                 for a TLS port, or \"none\" for a relay on a trusted network",
                smtp.host, smtp.port
            ));
        }
        s.command("STARTTLS", b'2', "STARTTLS")?;
        s = s.start_tls(mailer)?;
        s.command("EHLO vigilo", b'2', "EHLO")?;
    }
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        let credentials = base64(format!("\0{user}\0{password}").as_bytes());
        s.command(&format!("AUTH PLAIN {credentials}"), b'2', "AUTH")?;
    }
    s.command(&format!("MAIL FROM:<{}>", smtp.from), b'2', "MAIL FROM")?;
    s.command(&format!("RCPT TO:<{}>", mail.recipient), b'2', "RCPT TO")?;
    s.command("DATA", b'3', "DATA")?;
    let mut message = format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        smtp.from, mail.recipient, mail.subject
    );
    for line in mail.body.lines() {
        // Dot-stuffing (RFC 5321 §4.5.2).
        if line.starts_with('.') {
            message.push('.');
        }
        message.push_str(line);
        message.push_str("\r\n");
    }
    message.push_str(".\r\n");
    s.write(&message, "message")?;
    s.expect(b'2', "end of message")?;
    let _ = s.command("QUIT", b'2', "QUIT");
    Ok(())
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(input.as_bytes()), expected);
        }
    }
}
