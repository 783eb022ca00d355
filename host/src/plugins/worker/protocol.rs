//! What the server and a worker say to each other over their socket.
//!
//! Each message is one frame: a 4-byte little-endian length, then that many
//! bytes: a one-byte tag and the tag's fields (integers little-endian, texts
//! and byte strings as a 4-byte length and the bytes). Calls carry the
//! plugin's own contract unchanged, a method name and JSON text, so a call
//! in a worker is the call in process, relayed:
//!
//! ```text
//! on the control socket (the worker's standard input and output):
//! server -> worker   Init(json)                      once, first
//! worker -> server   Loaded(manifest, registrations, assets) | Refused(...)
//! server -> worker   Confine(memory limit)           once the server knows the plugin's name,
//!                    then one byte carrying a socket per call thread (SCM_RIGHTS)
//! worker -> server   Confined(summary) | Unconfined(why)
//!
//! on each call connection, one call at a time:
//! server -> worker   Call(id, method, input)
//! worker -> server   HostCall(id, method, input)     the plugin calls back, within the call
//! server -> worker   HostAnswer(id, ok, text)        the server's answer to it
//! worker -> server   Reply(id, outcome)              the call's answer
//! ```
//!
//! Nothing here does I/O beyond reading and writing one frame; a frame the
//! reader cannot make sense of is an error, and the server stops a worker
//! that sends one.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use vigilo_sdk::loader::PluginErrorKind;

/// The largest frame either side accepts (a widget's data or an asset can be
/// large; anything bigger is a broken or hostile peer).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// The first frame a worker reads: what to load and how to confine itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Init {
    /// The library to load (the server's private copy).
    pub library: String,
    /// The server's version, checked against the plugin's `compatible_with`.
    pub vigilo_version: String,
    /// The user and group to run as, when the server runs as root.
    pub run_as: Option<(u32, u32)>,
    /// The server's process id: the worker ends if its parent is another.
    pub server_pid: u32,
    /// Threads that run calls (started before confinement; no more can be).
    pub threads: usize,
}

/// What a worker found loading the library: the same refusal a server
/// loading it in process would report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refused {
    /// The reason code (`abi_mismatch`, `incompatible_version`, ...).
    pub reason: super::super::Reason,
    /// One line for operators.
    pub message: String,
    /// The loader's full report, when there is one.
    pub detail: Option<String>,
    /// The manifest, when it could be read.
    pub manifest: Option<vigilo_sdk::loader::Manifest>,
}

/// A message from the server to a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum ToWorker {
    /// What to load, as JSON ([`Init`]).
    Init(String),
    /// Confine yourself and serve: the plugin may use this many bytes of
    /// address space beyond what the worker needed to start.
    Confine(u64),
    /// Call `method` with JSON `input`; answer with [`FromWorker::Reply`] `id`.
    Call {
        /// Chosen by the server, unique among the calls in flight.
        id: u64,
        /// The plugin method.
        method: String,
        /// Its JSON input.
        input: String,
    },
    /// The answer to the plugin's host call made within call `id`.
    HostAnswer {
        /// The call.
        id: u64,
        /// JSON text, or the server's refusal.
        answer: Result<String, String>,
    },
}

/// A message from a worker to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum FromWorker {
    /// The library loaded and passed every check.
    Loaded {
        /// The manifest, as JSON.
        manifest: String,
        /// The registrations, as JSON.
        registrations: String,
        /// Every frontend file the manifest lists, with its bytes.
        assets: Vec<(String, Vec<u8>)>,
    },
    /// The library was refused ([`Refused`] as JSON).
    Refused(String),
    /// The worker confined itself as described and serves calls.
    Confined(String),
    /// The worker could not confine itself, and serves nothing.
    Unconfined(String),
    /// The plugin calls the host within call `id`.
    HostCall {
        /// The call.
        id: u64,
        /// The host method.
        method: String,
        /// Its JSON input.
        input: String,
    },
    /// The answer to call `id`.
    Reply {
        /// The call.
        id: u64,
        /// JSON text, or the plugin's error.
        outcome: Result<String, (PluginErrorKind, String)>,
    },
}

const INIT: u8 = 1;
const CONFINE: u8 = 5;
const CALL: u8 = 2;
const HOST_ANSWER_OK: u8 = 3;
const HOST_ANSWER_ERR: u8 = 4;
const LOADED: u8 = 10;
const REFUSED: u8 = 11;
const CONFINED: u8 = 12;
const UNCONFINED: u8 = 13;
const HOST_CALL: u8 = 14;
const REPLY_OK: u8 = 15;
const REPLY_ERR: u8 = 16;

/// A frame being built.
struct Out(Vec<u8>);

impl Out {
    fn new(tag: u8) -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[0, 0, 0, 0, tag]);
        Out(bytes)
    }

    fn u64(mut self, value: u64) -> Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn bytes(mut self, value: &[u8]) -> Self {
        self.0
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.0.extend_from_slice(value);
        self
    }

    fn text(self, value: &str) -> Self {
        self.bytes(value.as_bytes())
    }

    fn send(mut self, to: &mut impl Write) -> io::Result<()> {
        let len = self.0.len() - 4;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a message of {len} bytes is larger than the {MAX_FRAME} allowed"),
            ));
        }
        self.0[..4].copy_from_slice(&(len as u32).to_le_bytes());
        to.write_all(&self.0)?;
        to.flush()
    }
}

/// A frame being read.
struct In<'a>(&'a [u8]);

impl In<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(malformed("a message ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> io::Result<u64> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize;
        Ok(self.take(len)?.to_vec())
    }

    fn text(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| malformed("a text is not UTF-8"))
    }

    fn end(self) -> io::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(malformed("a message has bytes left over"))
        }
    }
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads one frame: its tag and body. `Ok(None)` at a clean end of stream.
fn read_frame(from: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match from.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(malformed("a message has an impossible length"));
    }
    let mut tag = [0u8; 1];
    from.read_exact(&mut tag)?;
    let mut body = vec![0u8; len - 1];
    from.read_exact(&mut body)?;
    Ok(Some((tag[0], body)))
}

fn error_kind_code(kind: PluginErrorKind) -> u8 {
    match kind {
        PluginErrorKind::Failed => 0,
        PluginErrorKind::Panicked => 1,
        PluginErrorKind::UnknownMethod => 2,
        PluginErrorKind::BadInput => 3,
    }
}

fn error_kind(code: u8) -> io::Result<PluginErrorKind> {
    Ok(match code {
        0 => PluginErrorKind::Failed,
        1 => PluginErrorKind::Panicked,
        2 => PluginErrorKind::UnknownMethod,
        3 => PluginErrorKind::BadInput,
        _ => return Err(malformed("an unknown error kind")),
    })
}

impl ToWorker {
    /// Writes this message as one frame.
    pub fn send(&self, to: &mut impl Write) -> io::Result<()> {
        match self {
            ToWorker::Init(json) => Out::new(INIT).text(json),
            ToWorker::Confine(bytes) => Out::new(CONFINE).u64(*bytes),
            ToWorker::Call { id, method, input } => {
                Out::new(CALL).u64(*id).text(method).text(input)
            }
            ToWorker::HostAnswer { id, answer } => match answer {
                Ok(text) => Out::new(HOST_ANSWER_OK).u64(*id).text(text),
                Err(why) => Out::new(HOST_ANSWER_ERR).u64(*id).text(why),
            },
        }
        .send(to)
    }

    /// Reads one message; `Ok(None)` when the server closed the socket.
    pub fn read(from: &mut impl Read) -> io::Result<Option<Self>> {
        let Some((tag, body)) = read_frame(from)? else {
            return Ok(None);
        };
        let mut body = In(&body);
        let message = match tag {
            INIT => ToWorker::Init(body.text()?),
            CONFINE => ToWorker::Confine(body.u64()?),
            CALL => ToWorker::Call {
                id: body.u64()?,
                method: body.text()?,
                input: body.text()?,
            },
            HOST_ANSWER_OK => ToWorker::HostAnswer {
                id: body.u64()?,
                answer: Ok(body.text()?),
            },
            HOST_ANSWER_ERR => ToWorker::HostAnswer {
                id: body.u64()?,
                answer: Err(body.text()?),
            },
            _ => return Err(malformed("an unknown message")),
        };
        body.end()?;
        Ok(Some(message))
    }
}

impl FromWorker {
    /// Writes this message as one frame.
    pub fn send(&self, to: &mut impl Write) -> io::Result<()> {
        match self {
            FromWorker::Loaded {
                manifest,
                registrations,
                assets,
            } => {
                let mut out = Out::new(LOADED)
                    .text(manifest)
                    .text(registrations)
                    .u64(assets.len() as u64);
                for (path, bytes) in assets {
                    out = out.text(path).bytes(bytes);
                }
                out
            }
            FromWorker::Refused(json) => Out::new(REFUSED).text(json),
            FromWorker::Confined(summary) => Out::new(CONFINED).text(summary),
            FromWorker::Unconfined(why) => Out::new(UNCONFINED).text(why),
            FromWorker::HostCall { id, method, input } => {
                Out::new(HOST_CALL).u64(*id).text(method).text(input)
            }
            FromWorker::Reply { id, outcome } => match outcome {
                Ok(text) => Out::new(REPLY_OK).u64(*id).text(text),
                Err((kind, message)) => {
                    let mut out = Out::new(REPLY_ERR).u64(*id);
                    out.0.push(error_kind_code(*kind));
                    out.text(message)
                }
            },
        }
        .send(to)
    }

    /// Reads one message; `Ok(None)` when the worker closed the socket.
    pub fn read(from: &mut impl Read) -> io::Result<Option<Self>> {
        let Some((tag, body)) = read_frame(from)? else {
            return Ok(None);
        };
        let mut body = In(&body);
        let message = match tag {
            LOADED => {
                let manifest = body.text()?;
                let registrations = body.text()?;
                let count = body.u64()?;
                let mut assets = Vec::new();
                for _ in 0..count {
                    assets.push((body.text()?, body.bytes()?));
                }
                FromWorker::Loaded {
                    manifest,
                    registrations,
                    assets,
                }
            }
            REFUSED => FromWorker::Refused(body.text()?),
            CONFINED => FromWorker::Confined(body.text()?),
            UNCONFINED => FromWorker::Unconfined(body.text()?),
            HOST_CALL => FromWorker::HostCall {
                id: body.u64()?,
                method: body.text()?,
                input: body.text()?,
            },
            REPLY_OK => FromWorker::Reply {
                id: body.u64()?,
                outcome: Ok(body.text()?),
            },
            REPLY_ERR => FromWorker::Reply {
                id: body.u64()?,
                outcome: Err((error_kind(body.u8()?)?, body.text()?)),
            },
            _ => return Err(malformed("an unknown message")),
        };
        body.end()?;
        Ok(Some(message))
    }
}

/// How long a side that expects a message soon looks for it before it
/// sleeps: a field check is answered in microseconds, and being woken from
/// sleep costs about as much again.
pub const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Waits up to `within` for `reader` to have something to read, without
/// sleeping (a sleeping thread is woken late); returns when it has, or when
/// the time is up. The read that follows blocks as usual.
pub fn spin_for_message(
    reader: &std::io::BufReader<std::os::unix::net::UnixStream>,
    within: std::time::Duration,
) {
    use rustix::net::{recv, RecvFlags};
    if !reader.buffer().is_empty() {
        return;
    }
    let until = std::time::Instant::now() + within;
    let mut byte = [0u8; 1];
    while std::time::Instant::now() < until {
        match recv(
            reader.get_ref(),
            &mut byte,
            RecvFlags::PEEK | RecvFlags::DONTWAIT,
        ) {
            Err(rustix::io::Errno::AGAIN) => std::thread::yield_now(),
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_reads_back_as_written() {
        let to_worker = [
            ToWorker::Init("{\"library\":\"/x.so\"}".into()),
            ToWorker::Confine(256 << 20),
            ToWorker::Call {
                id: 7,
                method: "field_type.validate".into(),
                input: "{\"value\":\"ä\"}".into(),
            },
            ToWorker::HostAnswer {
                id: 7,
                answer: Ok("{}".into()),
            },
            ToWorker::HostAnswer {
                id: u64::MAX,
                answer: Err("no".into()),
            },
        ];
        let mut wire = Vec::new();
        for m in &to_worker {
            m.send(&mut wire).unwrap();
        }
        let mut reader = &wire[..];
        for m in &to_worker {
            assert_eq!(ToWorker::read(&mut reader).unwrap().as_ref(), Some(m));
        }
        assert_eq!(ToWorker::read(&mut reader).unwrap(), None);

        let from_worker = [
            FromWorker::Loaded {
                manifest: "{}".into(),
                registrations: "[]".into(),
                assets: vec![("a.js".into(), vec![0, 1, 2]), ("b.css".into(), vec![])],
            },
            FromWorker::Refused("{}".into()),
            FromWorker::Confined("seccomp".into()),
            FromWorker::Unconfined("no seccomp".into()),
            FromWorker::HostCall {
                id: 1,
                method: "http.request".into(),
                input: "{}".into(),
            },
            FromWorker::Reply {
                id: 1,
                outcome: Ok("{\"value\":1}".into()),
            },
            FromWorker::Reply {
                id: 2,
                outcome: Err((PluginErrorKind::BadInput, "a weekend".into())),
            },
        ];
        let mut wire = Vec::new();
        for m in &from_worker {
            m.send(&mut wire).unwrap();
        }
        let mut reader = &wire[..];
        for m in &from_worker {
            assert_eq!(FromWorker::read(&mut reader).unwrap().as_ref(), Some(m));
        }
    }

    #[test]
    fn nonsense_is_an_error_not_a_message() {
        // A length beyond the limit, an unknown tag, a truncated body.
        let huge = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert!(FromWorker::read(&mut &huge[..]).is_err());
        let unknown = [1, 0, 0, 0, 99];
        assert!(FromWorker::read(&mut &unknown[..]).is_err());
        let short = [9, 0, 0, 0, REPLY_OK, 1, 2];
        assert!(FromWorker::read(&mut &short[..]).is_err());
        let bad_kind = {
            let mut wire = Vec::new();
            FromWorker::Reply {
                id: 1,
                outcome: Err((PluginErrorKind::Failed, "x".into())),
            }
            .send(&mut wire)
            .unwrap();
            wire[13] = 42;
            wire
        };
        assert!(FromWorker::read(&mut &bad_kind[..]).is_err());
    }
}
