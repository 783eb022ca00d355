//! The outbox mailer: sends queued mail (invite links) over SMTP when
//! `[smtp]` is configured.
//!
//! Mail is queued in the `outbox` table in the same transaction as the
//! invite, so nothing is lost if the relay is down: the mailer retries each
//! message up to ten times, recording the last error. The client speaks plain
//! SMTP with optional `AUTH PLAIN`; point it at a local relay (Postfix,
//! an SMTP sidecar) that handles TLS to the outside world. Message bodies may
//! hold accept links, so they are never logged.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::SmtpConfig;
use crate::state::AppState;
use crate::store::OutboxMail;

/// Sends queued mail until `shutdown` resolves.
pub async fn run(
    state: AppState,
    smtp: SmtpConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match state.store.unsent_mail(50).await {
            Ok(batch) => {
                for mail in batch {
                    let result =
                        tokio::time::timeout(Duration::from_secs(60), send(&smtp, &mail)).await;
                    let error = match result {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(_) => Some("timed out talking to the SMTP server".to_string()),
                    };
                    match &error {
                        None => tracing::info!(mail_id = mail.id, "mail sent"),
                        Some(e) => {
                            tracing::warn!(mail_id = mail.id, error = %e, "mail not sent; will retry")
                        }
                    }
                    if let Err(e) = state.store.mark_mail(mail.id, error.as_deref()).await {
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

struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Session {
    /// Reads one (possibly multi-line) reply and checks its code class.
    async fn expect(&mut self, class: u8, step: &str) -> Result<(), String> {
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .await
                .map_err(|e| format!("{step}: {e}"))?;
            if n == 0 {
                return Err(format!("{step}: the SMTP server closed the connection"));
            }
            let bytes = line.as_bytes();
            if bytes.len() < 4 {
                return Err(format!("{step}: malformed reply {:?}", line.trim_end()));
            }
            if bytes[3] == b'-' {
                continue;
            }
            if bytes[0] != class {
                return Err(format!(
                    "{step}: the SMTP server answered {:?}",
                    line.trim_end()
                ));
            }
            return Ok(());
        }
    }

    async fn command(&mut self, line: &str, class: u8, step: &str) -> Result<(), String> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| format!("{step}: {e}"))?;
        self.expect(class, step).await
    }
}

/// Delivers one message.
async fn send(smtp: &SmtpConfig, mail: &OutboxMail) -> Result<(), String> {
    let stream = TcpStream::connect((smtp.host.as_str(), smtp.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", smtp.host, smtp.port))?;
    let (read, write) = stream.into_split();
    let mut s = Session {
        reader: BufReader::new(read),
        writer: write,
    };
    s.expect(b'2', "greeting").await?;
    s.command("EHLO vigilo", b'2', "EHLO").await?;
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        let credentials = base64(format!("\0{user}\0{password}").as_bytes());
        s.command(&format!("AUTH PLAIN {credentials}"), b'2', "AUTH")
            .await?;
    }
    s.command(&format!("MAIL FROM:<{}>", smtp.from), b'2', "MAIL FROM")
        .await?;
    s.command(&format!("RCPT TO:<{}>", mail.recipient), b'2', "RCPT TO")
        .await?;
    s.command("DATA", b'3', "DATA").await?;
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
    s.writer
        .write_all(message.as_bytes())
        .await
        .map_err(|e| format!("message: {e}"))?;
    s.expect(b'2', "end of message").await?;
    let _ = s.command("QUIT", b'2', "QUIT").await;
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
