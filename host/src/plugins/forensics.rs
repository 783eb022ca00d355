//! What the server was calling when it died: a small file in the data
//! directory (`plugin-calls`) in which each in-process plugin call writes
//! one fixed-size record (plugin, call, start time) before it enters the
//! plugin and clears it when the plugin returns. A segfault or abort in
//! the plugin ends the process with the record still written; the kernel
//! keeps what was written, so the next start reads which plugin and which
//! call were running, and when they started ([`CallLog::interrupted`]).
//!
//! A record costs two `pwrite`s of a few bytes into a file the kernel
//! holds in memory, and claiming one of [`SLOTS`] slots is one atomic
//! operation: no lock, no allocation. When more than [`SLOTS`] in-process
//! calls run at once, the extra ones go unrecorded.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Calls recorded at once.
pub const SLOTS: usize = 64;
const SLOT_BYTES: usize = 128;
const NAME_AT: usize = 16;
const NAME_MAX: usize = 80;
const CALL_AT: usize = NAME_AT + NAME_MAX;
const CALL_MAX: usize = SLOT_BYTES - CALL_AT;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "plugin-calls";

/// An in-process call that was running when the server last stopped
/// without returning from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// The plugin's name.
    pub plugin: String,
    /// The call (`field_type.validate`, `widget.render`, ...).
    pub call: String,
    /// When it started, RFC 3339 (UTC).
    pub started_at: String,
}

/// The records of in-process calls being made (see the module docs).
#[derive(Debug)]
pub struct CallLog {
    file: File,
    used: AtomicU64,
}

impl CallLog {
    /// The calls an earlier process left recorded in the log at `path`:
    /// the calls it died in (none when there is no such file).
    pub fn interrupted(path: &Path) -> std::io::Result<Vec<Interrupted>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(bytes.chunks_exact(SLOT_BYTES).filter_map(parse).collect())
    }

    /// Opens the log at `path`, creating it or clearing what an earlier
    /// process left in it (read that first with [`CallLog::interrupted`]).
    pub fn open(path: &Path) -> std::io::Result<CallLog> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        file.write_all_at(&[0u8; SLOTS * SLOT_BYTES], 0)?;
        file.set_len((SLOTS * SLOT_BYTES) as u64)?;
        file.sync_all()?;
        Ok(CallLog {
            file,
            used: AtomicU64::new(0),
        })
    }

    /// Records that a call `call` into `plugin` starts; the slot to clear
    /// with [`CallLog::end`] (None when every slot is taken or the write
    /// failed).
    pub fn begin(&self, plugin: &str, call: &str) -> Option<usize> {
        let slot = self.claim()?;
        let mut record = [0u8; SLOT_BYTES];
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64)
            .max(1);
        let name = &plugin.as_bytes()[..plugin.len().min(NAME_MAX)];
        let call = &call.as_bytes()[..call.len().min(CALL_MAX)];
        record[..8].copy_from_slice(&started.to_le_bytes());
        record[8] = name.len() as u8;
        record[9] = call.len() as u8;
        record[NAME_AT..NAME_AT + name.len()].copy_from_slice(name);
        record[CALL_AT..CALL_AT + call.len()].copy_from_slice(call);
        if self
            .file
            .write_all_at(&record, (slot * SLOT_BYTES) as u64)
            .is_err()
        {
            self.release(slot);
            return None;
        }
        Some(slot)
    }

    /// Clears the record in `slot`: the call returned.
    pub fn end(&self, slot: usize) {
        // A zero start time marks the slot empty.
        let _ = self
            .file
            .write_all_at(&[0u8; 8], (slot * SLOT_BYTES) as u64);
        self.release(slot);
    }

    fn claim(&self) -> Option<usize> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let free = (!used).trailing_zeros() as usize;
            if free >= SLOTS {
                return None;
            }
            match self.used.compare_exchange_weak(
                used,
                used | (1 << free),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(free),
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, slot: usize) {
        self.used.fetch_and(!(1 << slot), Ordering::Release);
    }
}

/// The call a slot records, if it holds one.
fn parse(slot: &[u8]) -> Option<Interrupted> {
    let started = u64::from_le_bytes(slot[..8].try_into().ok()?);
    if started == 0 {
        return None;
    }
    let (name_len, call_len) = (slot[8] as usize, slot[9] as usize);
    let plugin = String::from_utf8_lossy(slot.get(NAME_AT..NAME_AT + name_len.min(NAME_MAX))?);
    let call = String::from_utf8_lossy(slot.get(CALL_AT..CALL_AT + call_len.min(CALL_MAX))?);
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(started) * 1_000_000)
        .ok()?
        .replace_nanosecond(0)
        .ok()?;
    Some(Interrupted {
        plugin: plugin.into_owned(),
        call: call.into_owned(),
        started_at: at
            .format(&time::format_description::well_known::Rfc3339)
            .ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_left_running_is_read_back_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert!(CallLog::interrupted(&path).unwrap().is_empty());
        let log = CallLog::open(&path).unwrap();
        let done = log.begin("quick", "widget.render").unwrap();
        let left = log.begin("fixture_hostile", "field_type.validate").unwrap();
        assert_ne!(done, left);
        log.end(done);
        drop(log);
        let found = CallLog::interrupted(&path).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].plugin, "fixture_hostile");
        assert_eq!(found[0].call, "field_type.validate");
        assert!(found[0].started_at.ends_with('Z'), "{found:?}");
        CallLog::open(&path).unwrap();
        let again = CallLog::interrupted(&path).unwrap();
        assert!(again.is_empty(), "cleared: {again:?}");
    }
}
