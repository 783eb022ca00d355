//! A local SMTP relay on 127.0.0.1 that accepts every message, one
//! connection at a time. It can offer STARTTLS and continue over a TLS
//! stream the test supplies (holding the certificate the mailer must
//! trust). It records every command with the phase it arrived in
//! (`plain: AUTH PLAIN ...`, `tls: MAIL FROM:<...>`), and each message as
//! (RCPT TO line, data).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A stream a conversation is served over: the TCP connection, or a TLS
/// stream on it.
pub trait Stream: Read + Write {}

impl<T: Read + Write> Stream for T {}

/// Turns the relay's side of a connection into a TLS stream, once the
/// client asked for STARTTLS and was told to go ahead.
type Upgrade = Box<dyn Fn(TcpStream) -> Box<dyn Stream> + Send>;

/// The relay; it serves until the test process ends.
pub struct SmtpSink {
    /// The port it listens on.
    pub port: u16,
    received: Receiver<(String, String)>,
    commands: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    /// A relay that does not offer STARTTLS.
    pub fn start() -> Self {
        Self::serve(None)
    }

    /// A relay that offers STARTTLS and, when asked, goes on over
    /// `upgrade(connection)`.
    pub fn with_starttls<S: Stream + 'static>(
        upgrade: impl Fn(TcpStream) -> S + Send + 'static,
    ) -> Self {
        Self::serve(Some(Box::new(move |tcp| {
            Box::new(upgrade(tcp)) as Box<dyn Stream>
        })))
    }

    fn serve(tls: Option<Upgrade>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, received) = mpsc::channel();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let log = commands.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let mut greeting = &tcp;
                let _ = greeting.write_all(b"220 sink ready\r\n");
                let upgrade = session(&tcp, "plain", tls.is_some(), &log, &tx);
                if let (true, Some(tls)) = (upgrade, &tls) {
                    session(tls(tcp), "tls", false, &log, &tx);
                }
            }
        });
        SmtpSink {
            port,
            received,
            commands,
        }
    }

    /// Every command so far, prefixed with its phase.
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    /// The next message, waiting up to 20 s (panics when none arrives).
    pub fn next_message(&self) -> (String, String) {
        self.received
            .recv_timeout(Duration::from_secs(20))
            .expect("no mail arrived")
    }

    /// A message that has arrived and was not taken yet, without waiting.
    pub fn arrived(&self) -> Option<(String, String)> {
        self.received.try_recv().ok()
    }
}

/// Serves one SMTP conversation; true when the client asked for STARTTLS
/// (and was told to go ahead).
fn session<S: Read + Write>(
    stream: S,
    phase: &str,
    offer_starttls: bool,
    log: &Mutex<Vec<String>>,
    tx: &Sender<(String, String)>,
) -> bool {
    let mut reader = BufReader::new(stream);
    let (mut rcpt, mut data, mut in_data) = (String::new(), String::new(), false);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if !in_data {
            log.lock()
                .unwrap()
                .push(format!("{phase}: {}", line.trim_end()));
        }
        let reply: &[u8] = if in_data {
            if line == ".\r\n" {
                in_data = false;
                let _ = tx.send((rcpt.clone(), data.clone()));
                b"250 queued\r\n"
            } else {
                data.push_str(&line);
                b""
            }
        } else if line.starts_with("EHLO") {
            if offer_starttls {
                b"250-sink\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"
            } else {
                b"250-sink\r\n250 AUTH PLAIN\r\n"
            }
        } else if line.starts_with("STARTTLS") && offer_starttls {
            let _ = reader.get_mut().write_all(b"220 go ahead\r\n");
            let _ = reader.get_mut().flush();
            return true;
        } else if line.starts_with("RCPT TO:") {
            rcpt = line.trim_end().to_string();
            b"250 ok\r\n"
        } else if line.starts_with("DATA") {
            in_data = true;
            b"354 go ahead\r\n"
        } else if line.starts_with("QUIT") {
            let _ = reader.get_mut().write_all(b"221 bye\r\n");
            let _ = reader.get_mut().flush();
            break;
        } else {
            b"250 ok\r\n"
        };
        let _ = reader.get_mut().write_all(reply);
        let _ = reader.get_mut().flush();
        line.clear();
    }
    false
}
