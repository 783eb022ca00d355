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
//! certificates in `ca_file`, for the name in `host`. Credentials go out only
//! with `AUTH PLAIN`, after the upgrade. The SMTP conversation and the
//! message's format are lettre's; rustls (with ring) does the TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::config::{SmtpConfig, SmtpTls};
use crate::secretbox::SecretBox;
use crate::store::invites::OutboxMail;
use crate::store::Store;

/// How long connecting may take.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The mail settings with their TLS configuration, checked at startup.
pub struct Mailer {
    smtp: SmtpConfig,
    /// The `From:` of every message.
    from: Mailbox,
    /// The relay's name its certificate must hold and the roots it is
    /// checked against (none with `tls = "none"`).
    tls: Option<TlsParameters>,
}

impl Mailer {
    /// Checks `smtp` and loads the certificates it trusts; an unreadable
    /// `ca_file`, a `from` that is no address or a `host` that no
    /// certificate can name is an error here, at startup, not at the first
    /// invite.
    pub fn new(smtp: SmtpConfig) -> anyhow::Result<Self> {
        let from: Mailbox = smtp.from.parse().map_err(|e| {
            anyhow::anyhow!("smtp.from `{}` is not an email address: {e}", smtp.from)
        })?;
        let tls = match smtp.tls {
            SmtpTls::None => None,
            SmtpTls::StartTls | SmtpTls::Tls => Some(tls_parameters(&smtp)?),
        };
        if smtp.tls == SmtpTls::None && smtp.username.is_some() && !is_local(&smtp.host) {
            tracing::warn!(
                host = %smtp.host,
                "smtp.tls is \"none\": the SMTP password crosses the network unencrypted"
            );
        }
        Ok(Mailer { smtp, from, tls })
    }
}

/// The TLS settings for the relay: its name, checked here once, and the
/// public web roots plus the certificates in `ca_file`.
fn tls_parameters(smtp: &SmtpConfig) -> anyhow::Result<TlsParameters> {
    ServerName::try_from(smtp.host.clone()).map_err(|_| {
        anyhow::anyhow!(
            "smtp.host `{}` cannot be checked against a TLS certificate",
            smtp.host
        )
    })?;
    let mut builder =
        TlsParameters::builder(smtp.host.clone()).certificate_store(CertificateStore::WebpkiRoots);
    if let Some(path) = &smtp.ca_file {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read smtp.ca_file {}", path.display()))?;
        // Each certificate is checked as a trust anchor here, so a bad one
        // is named; lettre builds the same store from them.
        let mut check = RootCertStore::empty();
        let mut added = 0;
        for block in x509_parser::pem::Pem::iter_from_buffer(&text) {
            let block = block
                .map_err(|e| anyhow::anyhow!("smtp.ca_file {} is not PEM: {e}", path.display()))?;
            if block.label == "CERTIFICATE" {
                check
                    .add(CertificateDer::from(block.contents.clone()))
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "smtp.ca_file {} holds a certificate that cannot be trusted: {e}",
                            path.display()
                        )
                    })?;
                let certificate = Certificate::from_der(block.contents).map_err(|e| {
                    anyhow::anyhow!(
                        "smtp.ca_file {} holds a certificate that cannot be trusted: {e}",
                        path.display()
                    )
                })?;
                builder = builder.add_root_certificate(certificate);
                added += 1;
            }
        }
        if added == 0 {
            anyhow::bail!("smtp.ca_file {} holds no certificate", path.display());
        }
    }
    builder
        .build_rustls()
        .map_err(|e| anyhow::anyhow!("cannot set up TLS for the SMTP relay: {e}"))
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
    store: Store,
    secrets: Arc<SecretBox>,
    queued: Arc<Notify>,
    mailer: Arc<Mailer>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match store.unsent_mail(50).await {
            Ok(batch) => {
                for mut mail in batch {
                    let id = mail.id;
                    let error = match secrets.open(&sealing_context(&mail.recipient), &mail.body)
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
                    if let Err(e) = store.mark_mail(id, error.as_deref()).await {
                        tracing::error!(error = %e, "cannot record mail delivery");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
        }
        tokio::select! {
            _ = queued.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Sends one opened message; the error, if any.
async fn deliver(mailer: &Mailer, mail: OutboxMail) -> Option<String> {
    match tokio::time::timeout(Duration::from_secs(120), send(mailer, &mail)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some("timed out talking to the SMTP server".to_string()),
    }
}

/// Delivers one message.
async fn send(mailer: &Mailer, mail: &OutboxMail) -> Result<(), String> {
    let smtp = &mailer.smtp;
    let relay = format!("{}:{}", smtp.host, smtp.port);
    let to: Mailbox = mail
        .recipient
        .parse()
        .map_err(|e| format!("cannot send to `{}`: {e}", mail.recipient))?;
    let message = Message::builder()
        .from(mailer.from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(format!(
            "<{}.{:016x}@{}>",
            mail.id,
            rand::random::<u64>(),
            mailer.from.email.domain()
        )))
        .header(ContentType::TEXT_PLAIN)
        .body(body(&mail.body))
        .map_err(|e| format!("cannot compose the message: {e}"))?;
    let hello = ClientId::Domain("vigilo".to_owned());
    let connected = match smtp.tls {
        SmtpTls::StartTls => {
            let tcp = tokio::time::timeout(
                IO_TIMEOUT,
                TcpStream::connect((smtp.host.as_str(), smtp.port)),
            )
            .await
            .map_err(|_| format!("cannot connect to {relay}: timed out"))?
            .map_err(|e| format!("cannot connect to {relay}: {e}"))?;
            AsyncSmtpConnection::connect_with_transport(Box::new(LineByLine::new(tcp)), &hello)
                .await
        }
        SmtpTls::Tls | SmtpTls::None => {
            AsyncSmtpConnection::connect_tokio1(
                (smtp.host.as_str(), smtp.port),
                Some(IO_TIMEOUT),
                &hello,
                // Some: TLS from the first byte.
                mailer.tls.clone().filter(|_| smtp.tls == SmtpTls::Tls),
                None,
            )
            .await
        }
    };
    let mut conn = connected.map_err(|e| format!("{relay}: {e}"))?;
    match converse(mailer, &mut conn, &hello, &message, &relay).await {
        Ok(()) => {
            let _ = conn.quit().await;
            Ok(())
        }
        Err(Failed::Said(e)) => {
            conn.abort().await;
            Err(e)
        }
        // Nothing more can be said on it: it is dropped.
        Err(Failed::ConnectionLost(e)) => Err(e),
    }
}

/// Why a conversation stopped.
enum Failed {
    /// The connection still carries a QUIT.
    Said(String),
    /// The TLS upgrade failed and took the connection with it.
    ConnectionLost(String),
}

/// The text of a message. Plain ASCII goes as it is (7bit, lines up to
/// the 998 characters RFC 5322 allows), so a link stays whole on its line
/// for every reader; anything else is encoded as lettre sees fit
/// (quoted-printable or base64).
fn body(text: &str) -> Body {
    let plain = text.is_ascii()
        && !text.contains(['\0', '\r'])
        && text.lines().all(|line| line.len() <= 998);
    if plain {
        let crlf: String = text.lines().flat_map(|line| [line, "\r\n"]).collect();
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text.to_owned())
    }
}

/// Everything after the greeting: the upgrade, the login, the message.
async fn converse(
    mailer: &Mailer,
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
    message: &Message,
    relay: &str,
) -> Result<(), Failed> {
    let smtp = &mailer.smtp;
    if smtp.tls == SmtpTls::StartTls {
        if !conn.can_starttls() {
            return Err(Failed::Said(format!(
                "{relay} does not offer STARTTLS, so nothing was sent; set smtp.tls = \"tls\" \
                 for a TLS port, or \"none\" for a relay on a trusted network"
            )));
        }
        let tls = mailer.tls.clone().ok_or_else(|| {
            Failed::Said("STARTTLS was asked for without TLS settings".to_owned())
        })?;
        conn.starttls(tls, hello)
            .await
            .map_err(|e| Failed::ConnectionLost(format!("STARTTLS with {relay}: {e}")))?;
    }
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        conn.auth(
            &[Mechanism::Plain],
            &Credentials::new(user.clone(), password.clone()),
        )
        .await
        .map_err(|e| Failed::Said(format!("AUTH with {relay}: {e}")))?;
    }
    conn.send(message.envelope(), &message.formatted())
        .await
        .map_err(|e| Failed::Said(format!("sending to {relay}: {e}")))?;
    Ok(())
}

/// The relay's connection as lettre reads it when STARTTLS is to come:
/// every read ends at the end of a line. So when the relay's go-ahead for
/// STARTTLS has been read, nothing it sent after that waits in lettre's
/// buffer to be taken later for what the relay said over TLS (a known
/// injection); such bytes go to the TLS handshake instead, which fails,
/// and nothing is sent.
#[derive(Debug)]
struct LineByLine {
    tcp: TcpStream,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
}

impl LineByLine {
    fn new(tcp: TcpStream) -> Self {
        LineByLine {
            tcp,
            buffer: vec![0; 8192].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }
}

impl AsyncRead for LineByLine {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            let mut read = ReadBuf::new(&mut this.buffer);
            match Pin::new(&mut this.tcp).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    this.start = 0;
                    this.end = read.filled().len();
                }
                other => return other,
            }
        }
        let available = &this.buffer[this.start..this.end];
        let line = available
            .iter()
            .position(|&b| b == b'\n')
            .map_or(available.len(), |i| i + 1);
        let n = line.min(out.remaining());
        out.put_slice(&available[..n]);
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for LineByLine {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for LineByLine {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp.peer_addr()
    }
}

#[cfg(test)]
mod tests;
