//! Reading a chain back for verification: every event re-hashed and linked,
//! compared with the signed checkpoints. On SQLite the scan reads the file
//! directly on two blocking threads; on PostgreSQL it streams rows, a long
//! chain in two halves at once.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use futures_util::TryStreamExt;
use sqlx::Row;

use crate::audit::checkpoint::Checkpoint;
use crate::audit::verify::{
    analyse, brk, check_checkpoints, Break, ChainReport, CheckpointRef, Link,
};
use crate::audit::{HashInput, GENESIS_HASH};
use crate::store::{Store, StoreError, StoreResult};

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
        "SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events WHERE chain_id = ?1 AND seq >= ?2",
        rusqlite::params![chain_id, from_seq],
        |r| Ok((r.get("lo")?, r.get("hi")?)),
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

/// Where each of [`EVENT_COLUMNS`] sits in a statement's rows, found by
/// name once per statement rather than on every row.
struct EventIndexes {
    seq: usize,
    time: usize,
    workspace_id: usize,
    actor_user_id: usize,
    actor_token_id: usize,
    actor: usize,
    action: usize,
    target: usize,
    details: usize,
    prev_hash: usize,
    hash: usize,
}

impl EventIndexes {
    fn of(stmt: &rusqlite::Statement<'_>) -> rusqlite::Result<Self> {
        let at = |name: &str| stmt.column_index(name);
        Ok(Self {
            seq: at("seq")?,
            time: at("time")?,
            workspace_id: at("workspace_id")?,
            actor_user_id: at("actor_user_id")?,
            actor_token_id: at("actor_token_id")?,
            actor: at("actor")?,
            action: at("action")?,
            target: at("target")?,
            details: at("details")?,
            prev_hash: at("prev_hash")?,
            hash: at("hash")?,
        })
    }
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
    let at = EventIndexes::of(&stmt)?;
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
        let prev_hash = text(at.prev_hash)?;
        let hash = text(at.hash)?;
        let digest = HashInput {
            chain_id,
            time: text(at.time)?,
            workspace_id: r.get(at.workspace_id)?,
            actor_user_id: r.get(at.actor_user_id)?,
            actor_token_id: r.get(at.actor_token_id)?,
            actor: text(at.actor)?,
            action: text(at.action)?,
            target: text(at.target)?,
            details: text(at.details)?,
            prev_hash,
        }
        .digest_with(&mut buf);
        let mut hex_digest = [0u8; 64];
        hex::encode_to_slice(digest, &mut hex_digest).expect("64 hex digits");
        links.push(Link {
            seq: r.get(at.seq)?,
            content_ok: hex_digest == hash.as_bytes(),
            prev_hash: prev_hash.to_string(),
            hash: hash.to_string(),
        });
    }
    Ok(links)
}

impl Store {
    /// Reads a chain through sqlx (PostgreSQL): a long chain in two halves
    /// at once, each read and hashed by a task of its own, so that decoding
    /// and hashing use both of the server's cores while the database sends.
    async fn scan(&self, chain_id: i64, from_seq: i64) -> StoreResult<Vec<Link>> {
        let (lo, hi): (Option<i64>, Option<i64>) = {
            let row = sqlx::query(
                "SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events WHERE chain_id = $1 AND seq >= $2",
            )
            .bind(chain_id)
            .bind(from_seq)
            .fetch_one(self.pool())
            .await?;
            (row.try_get("lo")?, row.try_get("hi")?)
        };
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(Vec::new());
        };
        if hi - lo < 20_000 {
            return self.scan_range(chain_id, lo, i64::MAX).await;
        }
        let mid = lo + (hi - lo) / 2;
        let store = self.clone();
        let second = tokio::spawn(async move { store.scan_range(chain_id, mid, i64::MAX).await });
        let mut links = self.scan_range(chain_id, lo, mid).await?;
        links.extend(
            second
                .await
                .map_err(|e| StoreError::Corrupt(format!("verification task failed: {e}")))??,
        );
        Ok(links)
    }

    /// Reads and hashes the events with `from <= seq < to` (PostgreSQL).
    async fn scan_range(&self, chain_id: i64, from: i64, to: i64) -> StoreResult<Vec<Link>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE chain_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq"
        );
        let mut rows = sqlx::query(&sql)
            .bind(chain_id)
            .bind(from)
            .bind(to)
            .fetch(self.pool());
        let mut links = Vec::new();
        let mut buf = String::with_capacity(1024);
        while let Some(r) = rows.try_next().await? {
            let raw = Raw {
                seq: r.try_get("seq")?,
                time: r.try_get("time")?,
                workspace_id: r.try_get("workspace_id")?,
                actor_user_id: r.try_get("actor_user_id")?,
                actor_token_id: r.try_get("actor_token_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                details: r.try_get("details")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
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
        let (stored, last_seq, recorded_head) = self.chain_ends(chain_id, &checkpoints).await?;

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
        let from_seq = start.as_ref().map_or(1, |cp| cp.seq);
        let links = self.links_from(chain_id, from_seq).await?;
        let events_checked = links.len() as u64;
        let mut breaks = breaks_from(start.as_ref(), &links);
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
            latest_checkpoint: checkpoints
                .iter()
                .rev()
                .find(|cp| cp.signature_valid(key))
                .map(|cp| CheckpointRef {
                    seq: cp.seq,
                    signed_at: cp.signed_at.clone(),
                }),
            intact: breaks.is_empty(),
            breaks,
        })
    }

    /// The stored hash of each checkpointed event, the chain's last seq, and
    /// the head its chain row records.
    async fn chain_ends(
        &self,
        chain_id: i64,
        checkpoints: &[Checkpoint],
    ) -> StoreResult<(HashMap<i64, String>, i64, Option<i64>)> {
        let mut stored = HashMap::new();
        for cp in checkpoints {
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
        Ok((stored, last_seq, recorded_head))
    }

    /// The chain's links from `from_seq` on, read straight from the SQLite
    /// file when there is one.
    async fn links_from(&self, chain_id: i64, from_seq: i64) -> StoreResult<Vec<Link>> {
        match self.sqlite_path() {
            Some(path) => {
                let path = path.to_path_buf();
                tokio::task::spawn_blocking(move || scan_sqlite(&path, chain_id, from_seq))
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("verification task failed: {e}")))?
                    .map_err(|e| {
                        StoreError::Database(sqlx::Error::Protocol(format!(
                            "reading the audit log: {e}"
                        )))
                    })
            }
            None => self.scan(chain_id, from_seq).await,
        }
    }
}

/// The breaks in `links`: from the genesis, or from `start`, a checkpoint
/// whose event is re-hashed and whose stored hash the analysis continues
/// from.
fn breaks_from(start: Option<&Checkpoint>, links: &[Link]) -> Vec<Break> {
    match start {
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
            let rest = if links.is_empty() { links } else { &links[1..] };
            b.extend(analyse(cp.seq + 1, &cp.hash, rest));
            b
        }
        None => analyse(1, GENESIS_HASH, links),
    }
}
