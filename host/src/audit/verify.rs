//! Verifying audit chains.
//!
//! A chain is read in sequence order and every break is reported with the
//! sequence number where it is seen and one of these classes:
//!
//! | class | what the verifier saw |
//! | --- | --- |
//! | `modified` | an event's stored hash does not match its content |
//! | `deleted` | a gap in the sequence numbers, or an event that links to an event no longer in the chain |
//! | `inserted` | an event that is not linked into the chain: its neighbours link past it |
//! | `reordered` | two events whose links point at each other the wrong way round |
//! | `truncated` | the chain ends before a signed checkpoint (or the recorded head) says it should |
//! | `rewritten` | the chain's links and hashes are consistent, but no longer match a signed checkpoint, or a checkpoint's signature is invalid |
//!
//! A full verification reads the whole chain. An incremental one starts at
//! the newest checkpoint that still matches the chain (re-hashing that event)
//! and reads only what came after it, while still checking every checkpoint
//! against the stored hashes, which is one cheap query.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::checkpoint::Checkpoint;
use super::{HashInput, GENESIS_HASH};
use crate::store::{Store, StoreError, StoreResult};

/// One break in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Break {
    /// Where it was seen.
    pub seq: i64,
    /// `modified`, `deleted`, `inserted`, `reordered`, `truncated` or `rewritten`.
    pub class: String,
    /// What exactly is wrong.
    pub message: String,
}

fn brk(seq: i64, class: &str, message: String) -> Break {
    Break {
        seq,
        class: class.to_string(),
        message,
    }
}

/// The result of verifying one chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChainReport {
    /// The chain (the workspace's id; 0 for the installation).
    pub chain_id: i64,
    /// The workspace's slug (null for the installation chain).
    pub workspace: Option<String>,
    /// `full` or `incremental`.
    pub mode: String,
    /// First sequence number read.
    pub from_seq: i64,
    /// Events read and re-hashed.
    pub events_checked: u64,
    /// The last event's sequence number (0 for an empty chain).
    pub head_seq: i64,
    /// The last event's hash.
    pub head_hash: String,
    /// Checkpoints compared with the chain.
    pub checkpoints_checked: usize,
    /// True when nothing is broken.
    pub intact: bool,
    /// Every break found, in sequence order.
    pub breaks: Vec<Break>,
}

/// What the link analysis needs of each event.
#[derive(Debug, Clone)]
pub struct Link {
    /// Sequence number.
    pub seq: i64,
    /// Stored `prev_hash`.
    pub prev_hash: String,
    /// Stored `hash`.
    pub hash: String,
    /// Whether the stored hash matches the event's content.
    pub content_ok: bool,
}

/// Finds every break in `events` (sorted by seq), which should continue a
/// chain whose previous hash is `start_prev` and next seq is `start_seq`.
pub fn analyse(start_seq: i64, start_prev: &str, events: &[Link]) -> Vec<Break> {
    let mut breaks = Vec::new();
    let mut expected_seq = start_seq;
    let mut skip_link = vec![false; events.len()];
    let mut detached = vec![false; events.len()];
    for i in 0..events.len() {
        let e = &events[i];
        let prev_hash: &str = if i == 0 {
            start_prev
        } else {
            &events[i - 1].hash
        };
        let gap = e.seq > expected_seq;
        if gap {
            let missing = if e.seq - 1 == expected_seq {
                format!("event {expected_seq} is missing")
            } else {
                format!("events {expected_seq} to {} are missing", e.seq - 1)
            };
            breaks.push(brk(expected_seq, "deleted", missing));
        } else if e.seq < expected_seq {
            breaks.push(brk(
                e.seq,
                "inserted",
                format!("sequence number {} appears twice", e.seq),
            ));
        }
        if e.prev_hash != prev_hash && !gap && !skip_link[i] {
            let next = events.get(i + 1);
            if let Some(n) = next.filter(|n| e.prev_hash == n.hash && n.prev_hash == prev_hash) {
                breaks.push(brk(
                    e.seq,
                    "reordered",
                    format!("events {} and {} are in each other's place", e.seq, n.seq),
                ));
                skip_link[i + 1] = true;
                if events.get(i + 2).is_some_and(|nn| nn.prev_hash == e.hash) {
                    skip_link[i + 2] = true;
                }
            } else if next.is_some_and(|n| n.prev_hash == prev_hash) {
                breaks.push(brk(
                    e.seq,
                    "inserted",
                    format!(
                        "event {} is not part of the chain: its neighbours link past it",
                        e.seq
                    ),
                ));
                detached[i] = true;
                skip_link[i + 1] = true;
            } else if i >= 1
                && e.prev_hash
                    == if i >= 2 {
                        events[i - 2].hash.as_str()
                    } else {
                        start_prev
                    }
            {
                let inserted = &events[i - 1];
                breaks.push(brk(
                    inserted.seq,
                    "inserted",
                    format!(
                        "event {} is not part of the chain: its neighbours link past it",
                        inserted.seq
                    ),
                ));
                detached[i - 1] = true;
            } else {
                breaks.push(brk(
                    e.seq,
                    "deleted",
                    format!(
                        "event {} links to an event that is no longer in the chain (removed, or replaced before it)",
                        e.seq
                    ),
                ));
            }
        }
        expected_seq = expected_seq.max(e.seq + 1);
    }
    for (i, e) in events.iter().enumerate() {
        if !e.content_ok && !detached[i] {
            breaks.push(brk(
                e.seq,
                "modified",
                format!("event {}'s content does not match its hash", e.seq),
            ));
        }
    }
    breaks.sort_by_key(|b| b.seq);
    breaks
}

/// Compares checkpoints with the stored chain. `stored` maps seq → stored
/// hash for the checkpointed sequence numbers; `last_seq` is the chain's last.
pub fn check_checkpoints(
    checkpoints: &[Checkpoint],
    stored: &HashMap<i64, String>,
    last_seq: i64,
    key: &VerifyingKey,
) -> Vec<Break> {
    let mut breaks = Vec::new();
    let mut last_good = 0;
    let mut rewritten_reported = false;
    for cp in checkpoints {
        if !cp.signature_valid(key) {
            breaks.push(brk(
                cp.seq,
                "rewritten",
                format!("the checkpoint at seq {} has an invalid signature (forged, or signed by another key)", cp.seq),
            ));
            continue;
        }
        if cp.seq > last_seq {
            breaks.push(brk(
                last_seq + 1,
                "truncated",
                format!(
                    "a checkpoint signed at {} covers seq {}, but the chain ends at seq {last_seq}",
                    cp.signed_at, cp.seq
                ),
            ));
            break;
        }
        match stored.get(&cp.seq) {
            Some(h) if *h == cp.hash => last_good = cp.seq,
            _ if !rewritten_reported => {
                breaks.push(brk(
                    last_good + 1,
                    "rewritten",
                    format!(
                        "the chain no longer matches the checkpoint at seq {} (signed at {}); it was rewritten after seq {last_good}",
                        cp.seq, cp.signed_at
                    ),
                ));
                rewritten_reported = true;
            }
            _ => {}
        }
    }
    breaks
}

const EVENT_COLUMNS: &str =
    "seq, time, workspace_id, actor_user_id, actor_token_id, actor, action, target, details, prev_hash, hash";

/// An event as read for verification.
struct Raw {
    seq: i64,
    time: String,
    workspace_id: Option<i64>,
    actor_user_id: Option<i64>,
    actor_token_id: Option<i64>,
    actor: String,
    action: String,
    target: String,
    details: String,
    prev_hash: String,
    hash: String,
}

impl Raw {
    fn link(self, chain_id: i64, buf: &mut String) -> Link {
        let computed = HashInput {
            chain_id,
            time: &self.time,
            workspace_id: self.workspace_id,
            actor_user_id: self.actor_user_id,
            actor_token_id: self.actor_token_id,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            details: &self.details,
            prev_hash: &self.prev_hash,
        }
        .digest_with(buf);
        let mut hex_digest = [0u8; 64];
        hex::encode_to_slice(computed, &mut hex_digest).expect("64 hex digits");
        Link {
            seq: self.seq,
            content_ok: hex_digest == self.hash.as_bytes(),
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// Reads a chain straight from the SQLite file. sqlx hands rows over one at
/// a time between threads, which costs about 10 µs a row; here two threads
/// each read and hash half of the chain through their own connection.
fn scan_sqlite(
    path: &std::path::Path,
    chain_id: i64,
    from_seq: i64,
) -> rusqlite::Result<Vec<Link>> {
    let conn = open_sqlite(path)?;
    let (lo, hi): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT MIN(seq), MAX(seq) FROM audit_events WHERE chain_id = ?1 AND seq >= ?2",
        rusqlite::params![chain_id, from_seq],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(Vec::new());
    };
    if hi - lo < 20_000 {
        return read_range(&conn, chain_id, lo, i64::MAX);
    }
    let mid = lo + (hi - lo) / 2;
    std::thread::scope(|scope| {
        let second =
            scope.spawn(|| open_sqlite(path).and_then(|c| read_range(&c, chain_id, mid, i64::MAX)));
        let mut links = read_range(&conn, chain_id, lo, mid)?;
        links.extend(second.join().expect("reading thread")?);
        Ok(links)
    })
}

fn open_sqlite(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A verification reads the chain once, front to back.
    conn.execute_batch("PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536;")?;
    Ok(conn)
}

/// Reads and hashes the events with `from <= seq < to`.
fn read_range(
    conn: &rusqlite::Connection,
    chain_id: i64,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<Link>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events WHERE chain_id = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq"
    ))?;
    let mut rows = stmt.query(rusqlite::params![chain_id, from, to])?;
    let mut links = Vec::new();
    let mut buf = String::with_capacity(1024);
    while let Some(r) = rows.next()? {
        let text = |i: usize| -> rusqlite::Result<&str> {
            r.get_ref(i)?.as_str().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    i,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })
        };
        let prev_hash = text(9)?;
        let hash = text(10)?;
        let digest = HashInput {
            chain_id,
            time: text(1)?,
            workspace_id: r.get(2)?,
            actor_user_id: r.get(3)?,
            actor_token_id: r.get(4)?,
            actor: text(5)?,
            action: text(6)?,
            target: text(7)?,
            details: text(8)?,
            prev_hash,
        }
        .digest_with(&mut buf);
        let mut hex_digest = [0u8; 64];
        hex::encode_to_slice(digest, &mut hex_digest).expect("64 hex digits");
        links.push(Link {
            seq: r.get(0)?,
            content_ok: hex_digest == hash.as_bytes(),
            prev_hash: prev_hash.to_string(),
            hash: hash.to_string(),
        });
    }
    Ok(links)
}

impl Store {
    /// Reads a chain through sqlx (PostgreSQL).
    async fn scan(&self, chain_id: i64, from_seq: i64) -> StoreResult<Vec<Link>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE chain_id = $1 AND seq >= $2 ORDER BY seq");
        let mut rows = sqlx::query(&sql)
            .bind(chain_id)
            .bind(from_seq)
            .fetch(self.pool());
        let mut links = Vec::new();
        let mut buf = String::with_capacity(1024);
        while let Some(r) = rows.try_next().await? {
            let raw = Raw {
                seq: r.try_get(0)?,
                time: r.try_get(1)?,
                workspace_id: r.try_get(2)?,
                actor_user_id: r.try_get(3)?,
                actor_token_id: r.try_get(4)?,
                actor: r.try_get(5)?,
                action: r.try_get(6)?,
                target: r.try_get(7)?,
                details: r.try_get(8)?,
                prev_hash: r.try_get(9)?,
                hash: r.try_get(10)?,
            };
            links.push(raw.link(chain_id, &mut buf));
        }
        Ok(links)
    }

    /// Verifies one chain, fully or from its newest matching checkpoint.
    pub async fn verify_chain(
        &self,
        chain_id: i64,
        full: bool,
        key: &VerifyingKey,
    ) -> StoreResult<ChainReport> {
        let checkpoints = self.checkpoints(chain_id).await?;
        // Stored hashes at every checkpointed seq, and the chain's end.
        let mut stored = HashMap::new();
        for cp in &checkpoints {
            if let Some(h) = sqlx::query_scalar::<_, String>(
                "SELECT hash FROM audit_events WHERE chain_id = $1 AND seq = $2",
            )
            .bind(chain_id)
            .bind(cp.seq)
            .fetch_optional(self.pool())
            .await?
            {
                stored.insert(cp.seq, h);
            }
        }
        let last_seq: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) FROM audit_events WHERE chain_id = $1",
        )
        .bind(chain_id)
        .fetch_one(self.pool())
        .await?;
        let recorded_head: Option<i64> =
            sqlx::query_scalar("SELECT head_seq FROM audit_chains WHERE chain_id = $1")
                .bind(chain_id)
                .fetch_optional(self.pool())
                .await?;

        // Where to start: the newest valid checkpoint whose event still
        // carries its hash (incremental), or the beginning.
        let start = if full {
            None
        } else {
            checkpoints
                .iter()
                .rev()
                .find(|cp| cp.signature_valid(key) && stored.get(&cp.seq) == Some(&cp.hash))
                .cloned()
        };
        let (from_seq, start_prev) = match &start {
            Some(cp) => (cp.seq, None),
            None => (1, Some(GENESIS_HASH.to_string())),
        };
        let links = match self.sqlite_path() {
            Some(path) => {
                let path = path.to_path_buf();
                tokio::task::spawn_blocking(move || scan_sqlite(&path, chain_id, from_seq))
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("verification task failed: {e}")))?
                    .map_err(|e| {
                        StoreError::Database(sqlx::Error::Protocol(format!(
                            "reading the audit log: {e}"
                        )))
                    })?
            }
            None => self.scan(chain_id, from_seq).await?,
        };
        let events_checked = links.len() as u64;
        let mut breaks = match &start {
            // The checkpointed event itself is re-hashed; the analysis
            // continues from its stored hash.
            Some(cp) => {
                let mut b = Vec::new();
                if let Some(first) = links.first() {
                    if !first.content_ok {
                        b.push(brk(
                            first.seq,
                            "modified",
                            format!("event {}'s content does not match its hash", first.seq),
                        ));
                    }
                }
                let rest = if links.is_empty() {
                    &links[..]
                } else {
                    &links[1..]
                };
                b.extend(analyse(cp.seq + 1, &cp.hash, rest));
                b
            }
            None => analyse(1, start_prev.as_deref().unwrap_or(GENESIS_HASH), &links),
        };
        breaks.extend(check_checkpoints(&checkpoints, &stored, last_seq, key));
        if let Some(head) = recorded_head.filter(|h| *h > last_seq) {
            if !breaks.iter().any(|b| b.class == "truncated") {
                breaks.push(brk(
                    last_seq + 1,
                    "truncated",
                    format!("the chain's recorded head is seq {head}, but its events end at seq {last_seq}"),
                ));
            }
        }
        breaks.sort_by_key(|b| b.seq);
        breaks.dedup();
        let (head_seq, head_hash) = links
            .last()
            .map(|l| (l.seq, l.hash.clone()))
            .unwrap_or_else(|| {
                (
                    last_seq,
                    start.as_ref().map(|c| c.hash.clone()).unwrap_or_default(),
                )
            });
        let workspace = if chain_id == 0 {
            None
        } else {
            sqlx::query_scalar("SELECT slug FROM workspaces WHERE id = $1")
                .bind(chain_id)
                .fetch_optional(self.pool())
                .await?
        };
        Ok(ChainReport {
            chain_id,
            workspace,
            mode: if full || start.is_none() {
                "full"
            } else {
                "incremental"
            }
            .into(),
            from_seq,
            events_checked,
            head_seq,
            head_hash,
            checkpoints_checked: checkpoints.len(),
            intact: breaks.is_empty(),
            breaks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean chain of `n` events with fake hashes h1..hn.
    fn chain(n: i64) -> Vec<Link> {
        (1..=n)
            .map(|i| Link {
                seq: i,
                prev_hash: if i == 1 {
                    GENESIS_HASH.into()
                } else {
                    format!("h{}", i - 1)
                },
                hash: format!("h{i}"),
                content_ok: true,
            })
            .collect()
    }

    fn classes(b: &[Break]) -> Vec<(i64, &str)> {
        b.iter().map(|b| (b.seq, b.class.as_str())).collect()
    }

    #[test]
    fn clean_chain_has_no_breaks() {
        assert!(analyse(1, GENESIS_HASH, &chain(10)).is_empty());
    }

    #[test]
    fn each_tampering_gets_its_class() {
        let mut c = chain(10);
        c[4].content_ok = false;
        assert_eq!(classes(&analyse(1, GENESIS_HASH, &c)), [(5, "modified")]);

        let mut c = chain(10);
        c.remove(4);
        assert_eq!(classes(&analyse(1, GENESIS_HASH, &c)), [(5, "deleted")]);

        // Insert a forged event at 5 (valid link to 4), renumbering the rest.
        let mut c = chain(10);
        c.insert(
            4,
            Link {
                seq: 5,
                prev_hash: "h4".into(),
                hash: "forged".into(),
                content_ok: true,
            },
        );
        for (i, l) in c.iter_mut().enumerate() {
            l.seq = i as i64 + 1;
        }
        assert_eq!(classes(&analyse(1, GENESIS_HASH, &c)), [(5, "inserted")]);

        // The same with a forged link and hash.
        let mut c = chain(10);
        c.insert(
            4,
            Link {
                seq: 5,
                prev_hash: "bogus".into(),
                hash: "forged".into(),
                content_ok: false,
            },
        );
        for (i, l) in c.iter_mut().enumerate() {
            l.seq = i as i64 + 1;
        }
        assert_eq!(classes(&analyse(1, GENESIS_HASH, &c)), [(5, "inserted")]);

        // Swap 5 and 6.
        let mut c = chain(10);
        c.swap(4, 5);
        c[4].seq = 5;
        c[5].seq = 6;
        assert_eq!(classes(&analyse(1, GENESIS_HASH, &c)), [(5, "reordered")]);
    }
}
