//! The audit log's storage: appending to a chain, reading events, signed
//! checkpoints and recorded verifications; reading a chain back for
//! verification is in [`verify`].
//!
//! The hash encoding, the classes of break and the signing key live in
//! [`crate::audit`]; everything here is how they meet the database.

use sqlx::{AnyConnection, Row};

mod verify;

use super::{now, Store, StoreError, StoreResult, WriteTx};
use crate::audit::checkpoint::{Checkpoint, Signer};
use crate::audit::verify::ChainReport;
use crate::audit::{
    Actor, AuditActor, AuditEvent, HashInput, NewEvent, GENESIS_HASH, INSTALLATION_CHAIN,
};

/// Appends one event inside the caller's transaction and returns its
/// sequence number.
pub async fn append(tx: &mut WriteTx, actor: &Actor, event: NewEvent) -> StoreResult<i64> {
    let mut chain = ChainAppender::open(tx, event.workspace_id).await?;
    chain.append(tx, actor, event).await
}

/// Appends many events to one chain inside one transaction: the chain head
/// is locked and read once. (A trigger keeps `audit_chains` at the newest
/// event as each is inserted.)
///
/// On SQLite the head this process committed last is remembered (all
/// writers of the process queue behind one gate), which saves a statement
/// per append; if another process appended meanwhile, the insert hits the
/// `UNIQUE (chain_id, seq)` constraint, and the appender reads the real head
/// and tries again, in the same transaction.
pub struct ChainAppender {
    chain_id: i64,
    workspace_id: Option<i64>,
    seq: i64,
    hash: String,
    /// Whether `seq`/`hash` came from the process's memory rather than the
    /// database (and may be stale).
    remembered: bool,
}

impl ChainAppender {
    /// Locks the chain of `workspace_id` (None: the installation chain) for
    /// the rest of the transaction and reads its head.
    pub async fn open(tx: &mut WriteTx, workspace_id: Option<i64>) -> StoreResult<Self> {
        let chain_id = workspace_id.unwrap_or(INSTALLATION_CHAIN);
        if let Some((seq, hash)) = tx.cached_head(chain_id) {
            return Ok(Self {
                chain_id,
                workspace_id,
                seq,
                hash,
                remembered: true,
            });
        }
        let (seq, hash) = Self::read_head(tx.conn(), chain_id).await?;
        Ok(Self {
            chain_id,
            workspace_id,
            seq,
            hash,
            remembered: false,
        })
    }

    async fn read_head(conn: &mut AnyConnection, chain_id: i64) -> StoreResult<(i64, String)> {
        // One statement creates the chain's head row if needed, locks it for
        // the rest of the transaction (on PostgreSQL an upsert's DO UPDATE
        // takes the row lock; on SQLite the transaction holds the write lock)
        // and reads it.
        let head = sqlx::query(
            "INSERT INTO audit_chains (chain_id, head_seq, head_hash) VALUES ($1, 0, $2)
             ON CONFLICT (chain_id) DO UPDATE SET head_seq = audit_chains.head_seq
             RETURNING head_seq, head_hash",
        )
        .bind(chain_id)
        .bind(GENESIS_HASH)
        .fetch_one(&mut *conn)
        .await?;
        Ok((head.try_get("head_seq")?, head.try_get("head_hash")?))
    }

    /// Appends one event (which must belong to this chain) and returns its
    /// sequence number.
    pub async fn append(
        &mut self,
        tx: &mut WriteTx,
        actor: &Actor,
        event: NewEvent,
    ) -> StoreResult<i64> {
        // Another process may have appended since this one last did: then
        // the head is read again (this transaction holds the write lock,
        // so it cannot move again) and the event appended after it.
        Ok(self.append_many(tx, &[(actor, event)]).await?[0])
    }

    /// Appends `events` (each with who acted, all of this chain) after the
    /// head, in order, with one statement; their sequence numbers.
    pub async fn append_many(
        &mut self,
        tx: &mut WriteTx,
        events: &[(&Actor, NewEvent)],
    ) -> StoreResult<Vec<i64>> {
        debug_assert!(events
            .iter()
            .all(|(_, e)| e.workspace_id == self.workspace_id));
        let refs: Vec<(&Actor, &NewEvent)> = events.iter().map(|(a, e)| (*a, e)).collect();
        let mut chains = [(self.clone_head(), refs)];
        let seqs = append_to_chains(tx, &mut chains).await?;
        *self = chains[0].0.clone_head();
        Ok(seqs)
    }

    fn clone_head(&self) -> Self {
        Self {
            chain_id: self.chain_id,
            workspace_id: self.workspace_id,
            seq: self.seq,
            hash: self.hash.clone(),
            remembered: self.remembered,
        }
    }

    /// The rows that append `events` after this chain's head, moving the
    /// head past them.
    fn rows<'a>(&mut self, time: &str, events: &[(&'a Actor, &'a NewEvent)]) -> Vec<EventRow<'a>> {
        events
            .iter()
            .map(|(actor, event)| {
                let details = event.details.to_string();
                let hash = HashInput {
                    chain_id: self.chain_id,
                    time,
                    workspace_id: self.workspace_id,
                    actor_user_id: actor.user_id,
                    actor_token_id: actor.token_id,
                    actor: &actor.label,
                    action: event.action,
                    target: &event.target,
                    details: &details,
                    prev_hash: &self.hash,
                }
                .hash();
                self.seq += 1;
                EventRow {
                    chain_id: self.chain_id,
                    workspace_id: self.workspace_id,
                    seq: self.seq,
                    actor,
                    event,
                    details,
                    prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
                    hash,
                }
            })
            .collect()
    }
}

/// One event as it is inserted.
struct EventRow<'a> {
    chain_id: i64,
    workspace_id: Option<i64>,
    seq: i64,
    actor: &'a Actor,
    event: &'a NewEvent,
    details: String,
    prev_hash: String,
    hash: String,
}

/// Appends events to several chains (each with its opened appender) with
/// one statement; the sequence numbers, in the order given. A chain whose
/// head this process remembered but another process moved is read again
/// (the transaction holds the write lock, so it cannot move again) and the
/// events appended after it.
pub async fn append_to_chains(
    tx: &mut WriteTx,
    chains: &mut [(ChainAppender, Vec<(&Actor, &NewEvent)>)],
) -> StoreResult<Vec<i64>> {
    match insert_rows(tx, chains).await {
        Err(StoreError::Database(e))
            if chains.iter().any(|(c, _)| c.remembered)
                && crate::store::is_unique_violation(&e) =>
        {
            for (chain, _) in chains.iter_mut() {
                tx.forget_head(chain.chain_id);
                let (seq, hash) = ChainAppender::read_head(tx.conn(), chain.chain_id).await?;
                chain.seq = seq;
                chain.hash = hash;
                chain.remembered = false;
            }
            insert_rows(tx, chains).await
        }
        other => other,
    }
}

async fn insert_rows(
    tx: &mut WriteTx,
    chains: &mut [(ChainAppender, Vec<(&Actor, &NewEvent)>)],
) -> StoreResult<Vec<i64>> {
    let time = now();
    // Work on copies, so that a failed insert leaves the heads as they were.
    let mut heads: Vec<ChainAppender> = chains.iter().map(|(c, _)| c.clone_head()).collect();
    let rows: Vec<EventRow<'_>> = heads
        .iter_mut()
        .zip(chains.iter())
        .flat_map(|(head, (_, events))| head.rows(&time, events))
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "INSERT INTO audit_events (chain_id, seq, time, workspace_id, actor_user_id, actor_token_id, actor, action, target, details, prev_hash, hash)
         VALUES {}",
        super::values_list(tx.backend(), rows.len(), 12)
    );
    let mut query = sqlx::query(&sql);
    for row in &rows {
        query = query
            .bind(row.chain_id)
            .bind(row.seq)
            .bind(&time)
            .bind(row.workspace_id)
            .bind(row.actor.user_id)
            .bind(row.actor.token_id)
            .bind(&row.actor.label)
            .bind(row.event.action)
            .bind(&row.event.target)
            .bind(&row.details)
            .bind(&row.prev_hash)
            .bind(&row.hash);
    }
    query.execute(tx.conn()).await?;
    let seqs = rows.iter().map(|r| r.seq).collect();
    drop(rows);
    for ((chain, _), head) in chains.iter_mut().zip(heads) {
        tx.note_head(head.chain_id, head.seq, &head.hash);
        *chain = head;
    }
    Ok(seqs)
}

impl Store {
    /// The sequence number of the last event in a chain (0 when empty).
    pub async fn chain_head(&self, chain_id: i64) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar(
                "SELECT COALESCE(MAX(seq), 0) FROM audit_events WHERE chain_id = $1",
            )
            .bind(chain_id)
            .fetch_one(self.pool())
            .await?,
        )
    }

    /// The first sequence number at or after `time` (head + 1 when none).
    pub async fn first_seq_since(&self, chain_id: i64, time: &str) -> StoreResult<i64> {
        let first: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(seq) FROM audit_events WHERE chain_id = $1 AND time >= $2",
        )
        .bind(chain_id)
        .bind(time)
        .fetch_one(self.pool())
        .await?;
        match first {
            Some(s) => Ok(s),
            None => Ok(self.chain_head(chain_id).await? + 1),
        }
    }

    /// Events of one chain after `after_seq`, oldest first.
    pub async fn audit_events(
        &self,
        chain_id: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_LISTING} WHERE e.chain_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3"
        ))
        .bind(chain_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Events of one chain before `before_seq` (from the head when None),
    /// newest first.
    pub async fn audit_events_before(
        &self,
        chain_id: i64,
        before_seq: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_LISTING} WHERE e.chain_id = $1 AND e.seq < $2 ORDER BY e.seq DESC LIMIT $3"
        ))
        .bind(chain_id)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Records `report` as its chain's latest verification, made by `by`.
    pub async fn record_verification(&self, report: &ChainReport, by: &str) -> StoreResult<()> {
        let text = serde_json::to_string(report)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode a verification: {e}")))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO audit_verifications (chain_id, verified_at, verified_by, intact, report)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (chain_id) DO UPDATE SET verified_at = excluded.verified_at,
                 verified_by = excluded.verified_by, intact = excluded.intact, report = excluded.report",
        )
        .bind(report.chain_id)
        .bind(now())
        .bind(by)
        .bind(i64::from(report.intact))
        .bind(text)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A chain's latest verification, if it was ever verified.
    pub async fn last_verification(&self, chain_id: i64) -> StoreResult<Option<Verification>> {
        let row = sqlx::query(
            "SELECT verified_at, verified_by, report FROM audit_verifications WHERE chain_id = $1",
        )
        .bind(chain_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let report: String = r.try_get("report")?;
            Ok(Verification {
                verified_at: r.try_get("verified_at")?,
                verified_by: r.try_get("verified_by")?,
                report: serde_json::from_str(&report).map_err(|e| {
                    StoreError::Corrupt(format!("a stored verification is unreadable: {e}"))
                })?,
            })
        })
        .transpose()
    }

    /// The newest `limit` events of one chain about `target` whose action
    /// starts with `action_prefix`, newest first (a work item's history).
    pub async fn audit_events_about(
        &self,
        chain_id: i64,
        target: &str,
        action_prefix: &str,
        limit: i64,
    ) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_LISTING} WHERE e.chain_id = $1 AND e.target = $2 AND e.action LIKE $3
             ORDER BY e.seq DESC LIMIT $4"
        ))
        .bind(chain_id)
        .bind(target)
        .bind(format!("{action_prefix}%"))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

/// A chain's latest verification.
#[derive(Debug, Clone)]
pub struct Verification {
    /// When (RFC 3339).
    pub verified_at: String,
    /// Who (an email, or `system`).
    pub verified_by: String,
    /// What was found.
    pub report: ChainReport,
}

/// The columns and joins of a listed audit event.
const EVENT_LISTING: &str =
    "e.seq, e.time, e.actor_user_id, e.actor_token_id, e.actor, e.action, e.target, \
     e.details, e.prev_hash, e.hash, e.chain_id, w.slug AS workspace
     FROM audit_events e LEFT JOIN workspaces w ON w.id = e.workspace_id";

fn event_from_row(r: &sqlx::any::AnyRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        chain_id: r.try_get("chain_id")?,
        workspace: r.try_get("workspace")?,
        seq: r.try_get("seq")?,
        time: r.try_get("time")?,
        actor: AuditActor {
            user_id: r.try_get("actor_user_id")?,
            token_id: r.try_get("actor_token_id")?,
            label: r.try_get("actor")?,
        },
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        details: crate::store::json_column(&r.try_get::<String, _>("details")?, "audit details")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl Store {
    /// Signs and stores the current head of `chain_id`, unless the latest
    /// checkpoint already covers it. Returns the checkpoint now in force
    /// (None for a chain with no events).
    pub async fn checkpoint_chain(
        &self,
        signer: &Signer,
        chain_id: i64,
    ) -> StoreResult<Option<Checkpoint>> {
        let mut tx = self.begin_write().await?;
        let head = sqlx::query(
            "SELECT seq, hash FROM audit_events WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(chain_id)
        .fetch_optional(tx.conn())
        .await?;
        let Some(head) = head else { return Ok(None) };
        let (seq, hash): (i64, String) = (head.try_get("seq")?, head.try_get("hash")?);
        if let Some(latest) = self.checkpoints(chain_id).await?.pop() {
            if latest.seq == seq && latest.hash == hash && latest.key_id == signer.key_id() {
                return Ok(Some(latest));
            }
        }
        let signed_at = now();
        let cp = Checkpoint {
            chain_id,
            seq,
            signature: signer.sign(chain_id, seq, &hash, &signed_at),
            hash,
            signed_at,
            key_id: signer.key_id().to_owned(),
        };
        sqlx::query(
            "INSERT INTO audit_checkpoints (chain_id, seq, hash, signed_at, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(cp.chain_id)
        .bind(cp.seq)
        .bind(&cp.hash)
        .bind(&cp.signed_at)
        .bind(&cp.key_id)
        .bind(&cp.signature)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Some(cp))
    }

    /// Checkpoints of one chain, oldest first.
    pub async fn checkpoints(&self, chain_id: i64) -> StoreResult<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT chain_id, seq, hash, signed_at, key_id, signature FROM audit_checkpoints
             WHERE chain_id = $1 ORDER BY seq, id",
        )
        .bind(chain_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    chain_id: r.try_get("chain_id")?,
                    seq: r.try_get("seq")?,
                    hash: r.try_get("hash")?,
                    signed_at: r.try_get("signed_at")?,
                    key_id: r.try_get("key_id")?,
                    signature: r.try_get("signature")?,
                })
            })
            .collect()
    }

    /// Every chain that has events, checkpoints or a recorded head.
    pub async fn chain_ids(&self) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT chain_id FROM audit_chains
             UNION SELECT chain_id FROM audit_events
             UNION SELECT chain_id FROM audit_checkpoints
             ORDER BY 1",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Signs the head of every chain.
    pub async fn checkpoint_all(&self, signer: &Signer) -> StoreResult<Vec<Checkpoint>> {
        let mut out = Vec::new();
        for chain in self.chain_ids().await? {
            if let Some(cp) = self.checkpoint_chain(signer, chain).await? {
                out.push(cp);
            }
        }
        Ok(out)
    }
}
