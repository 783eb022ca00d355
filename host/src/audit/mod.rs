//! The audit log: every state change, in the same transaction as the change,
//! appended to a hash chain.
//!
//! Each workspace has its own chain (`chain_id` = the workspace's id) and the
//! installation has one (`chain_id` = 0). An event stores the previous
//! event's hash and its own:
//!
//! ```text
//! hash = hex(SHA-256(canonical))
//! canonical = JSON array, compact, no whitespace:
//!   ["vigilo-audit-v1", chain_id, time, workspace_id, actor_user_id,
//!    actor_token_id, actor, action, target, details, prev_hash]
//! ```
//!
//! The sequence number is deliberately not hashed: an event's place in its
//! chain is fixed by the `prev_hash` links, and leaving `seq` out lets the
//! verifier tell an inserted or reordered event (a broken link whose hashes
//! are otherwise valid) from a modified one (a hash that does not match its
//! content). See [`verify`] for the classes of break it reports.
//!
//! where `time` is the stored text (RFC 3339, UTC, microseconds), `details`
//! is the stored JSON text (object keys sorted, compact) embedded as a
//! string, absent ids are `null`, and the first event's `prev_hash` is 64
//! zeros. Appends to one chain are serialised by a row lock on the chain's
//! head (PostgreSQL) or by SQLite's single writer, so concurrent writers never
//! fork a chain. No secret is ever written into an event.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::store::{now, Store, StoreError, StoreResult, WriteTx};

/// The `prev_hash` of a chain's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Chain id of the installation-wide chain.
pub const INSTALLATION_CHAIN: i64 = 0;

pub mod checkpoint;
pub mod verify;

/// Who made a change.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user, if a user acted.
    pub user_id: Option<i64>,
    /// The API token used, if any.
    pub token_id: Option<i64>,
    /// Readable label: the user's email, or `system`.
    pub label: String,
}

impl Actor {
    /// The server itself (startup tasks, plugin loading, `create-admin`).
    pub fn system() -> Self {
        Self {
            user_id: None,
            token_id: None,
            label: "system".into(),
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The workspace, or None for installation-level events.
    pub workspace_id: Option<i64>,
    /// Dotted action name such as `member.invite`.
    pub action: &'static str,
    /// What was acted on (an email, a slug, a token id...).
    pub target: String,
    /// Details (never secrets).
    pub details: Value,
}

impl NewEvent {
    /// An event in `workspace_id` (or the installation chain for None).
    pub fn new(
        workspace_id: Option<i64>,
        action: &'static str,
        target: impl Into<String>,
        details: Value,
    ) -> Self {
        Self {
            workspace_id,
            action,
            target: target.into(),
            details,
        }
    }
}

/// The parts of an event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    /// The chain (0 = installation).
    pub chain_id: i64,
    /// Stored time text.
    pub time: &'a str,
    /// Workspace, if any.
    pub workspace_id: Option<i64>,
    /// Acting user, if any.
    pub actor_user_id: Option<i64>,
    /// Token used, if any.
    pub actor_token_id: Option<i64>,
    /// Actor label.
    pub actor: &'a str,
    /// Action name.
    pub action: &'a str,
    /// Target.
    pub target: &'a str,
    /// Stored details JSON text.
    pub details: &'a str,
    /// The previous event's hash.
    pub prev_hash: &'a str,
}

impl HashInput<'_> {
    /// The canonical encoding (see the module docs).
    pub fn canonical(&self, out: &mut String) {
        use std::fmt::Write;
        fn opt(out: &mut String, v: Option<i64>) {
            match v {
                Some(v) => {
                    let _ = write!(out, "{v}");
                }
                None => out.push_str("null"),
            }
        }
        fn text(out: &mut String, s: &str) {
            // JSON string escaping, as serde_json writes it; most strings
            // need none and are copied as they are.
            if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
                out.push_str(&serde_json::to_string(s).expect("strings serialise"));
            } else {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
        }
        out.clear();
        out.push_str("[\"vigilo-audit-v1\",");
        let _ = write!(out, "{},", self.chain_id);
        text(out, self.time);
        out.push(',');
        opt(out, self.workspace_id);
        out.push(',');
        opt(out, self.actor_user_id);
        out.push(',');
        opt(out, self.actor_token_id);
        out.push(',');
        text(out, self.actor);
        out.push(',');
        text(out, self.action);
        out.push(',');
        text(out, self.target);
        out.push(',');
        text(out, self.details);
        out.push(',');
        text(out, self.prev_hash);
        out.push(']');
    }

    /// The event's hash: hex SHA-256 of the canonical encoding.
    pub fn hash(&self) -> String {
        let mut buf = String::with_capacity(256 + self.details.len());
        self.hash_with(&mut buf)
    }

    /// [`HashInput::hash`] reusing a buffer.
    pub fn hash_with(&self, buf: &mut String) -> String {
        hex::encode(self.digest_with(buf))
    }

    /// The raw SHA-256 digest, reusing a buffer.
    pub fn digest_with(&self, buf: &mut String) -> [u8; 32] {
        self.canonical(buf);
        Sha256::digest(buf.as_bytes()).into()
    }
}

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
        let (seq, hash) = Self::read_head(tx, chain_id).await?;
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
        Ok((head.try_get(0)?, head.try_get(1)?))
    }

    /// Appends one event (which must belong to this chain) and returns its
    /// sequence number.
    pub async fn append(
        &mut self,
        tx: &mut WriteTx,
        actor: &Actor,
        event: NewEvent,
    ) -> StoreResult<i64> {
        debug_assert_eq!(event.workspace_id, self.workspace_id);
        match self.insert(tx, actor, &event).await {
            Err(StoreError::Database(e))
                if self.remembered && crate::store::is_unique_violation(&e) =>
            {
                // Another process appended since this one last did: read
                // the real head (this transaction holds the write lock, so
                // it cannot move again) and append after it.
                tx.forget_head(self.chain_id);
                let (seq, hash) = Self::read_head(tx, self.chain_id).await?;
                self.seq = seq;
                self.hash = hash;
                self.remembered = false;
                self.insert(tx, actor, &event).await
            }
            other => other,
        }
    }

    async fn insert(
        &mut self,
        tx: &mut WriteTx,
        actor: &Actor,
        event: &NewEvent,
    ) -> StoreResult<i64> {
        let seq = self.seq + 1;
        let time = now();
        let details = event.details.to_string();
        let hash = HashInput {
            chain_id: self.chain_id,
            time: &time,
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
        sqlx::query(
            "INSERT INTO audit_events (chain_id, seq, time, workspace_id, actor_user_id, actor_token_id, actor, action, target, details, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(self.chain_id)
        .bind(seq)
        .bind(&time)
        .bind(self.workspace_id)
        .bind(actor.user_id)
        .bind(actor.token_id)
        .bind(&actor.label)
        .bind(event.action)
        .bind(&event.target)
        .bind(&details)
        .bind(&self.hash)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
        tx.note_head(self.chain_id, seq, &hash);
        self.seq = seq;
        self.hash = hash;
        Ok(seq)
    }
}

/// An audit event as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    /// The chain (the workspace's id; 0 for the installation).
    pub chain_id: i64,
    /// The workspace's slug (null for installation events).
    pub workspace: Option<String>,
    /// Position in its chain, from 1.
    pub seq: i64,
    /// When it was recorded.
    pub time: String,
    /// Who acted.
    pub actor: AuditActor,
    /// Dotted action name.
    pub action: String,
    /// What was acted on.
    pub target: String,
    /// Details.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Hash of the previous event in the chain.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// Who acted, as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditActor {
    /// The user, if a user acted.
    pub user_id: Option<i64>,
    /// The token used.
    pub token_id: Option<i64>,
    /// The user's email, or `system`.
    pub label: String,
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
        let rows = sqlx::query(
            "SELECT e.seq, e.time, e.actor_user_id, e.actor_token_id, e.actor, e.action, e.target, e.details, e.prev_hash, e.hash, e.chain_id, w.slug
             FROM audit_events e LEFT JOIN workspaces w ON w.id = e.workspace_id
             WHERE e.chain_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
        )
        .bind(chain_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    chain_id: r.try_get(10)?,
                    workspace: r.try_get(11)?,
                    seq: r.try_get(0)?,
                    time: r.try_get(1)?,
                    actor: AuditActor {
                        user_id: r.try_get(2)?,
                        token_id: r.try_get(3)?,
                        label: r.try_get(4)?,
                    },
                    action: r.try_get(5)?,
                    target: r.try_get(6)?,
                    details: crate::store::json_column(
                        &r.try_get::<String, _>(7)?,
                        "audit details",
                    )?,
                    prev_hash: r.try_get(8)?,
                    hash: r.try_get(9)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(details: &'a str, prev: &'a str) -> HashInput<'a> {
        HashInput {
            chain_id: 1,
            time: "2026-01-01T00:00:00.000000Z",
            workspace_id: Some(1),
            actor_user_id: Some(3),
            actor_token_id: None,
            actor: "a@b.c",
            action: "x.y",
            target: "t\"q",
            details,
            prev_hash: prev,
        }
    }

    #[test]
    fn canonical_encoding_is_the_documented_json_array() {
        let mut buf = String::new();
        input("{}", GENESIS_HASH).canonical(&mut buf);
        let expected = serde_json::json!([
            "vigilo-audit-v1",
            1,
            "2026-01-01T00:00:00.000000Z",
            1,
            3,
            null,
            "a@b.c",
            "x.y",
            "t\"q",
            "{}",
            GENESIS_HASH
        ]);
        assert_eq!(buf, expected.to_string());
    }

    #[test]
    fn hash_covers_every_field() {
        let h = input("{}", GENESIS_HASH).hash();
        assert_eq!(h.len(), 64);
        assert_eq!(h, input("{}", GENESIS_HASH).hash());
        assert_ne!(h, input("{\"a\":1}", GENESIS_HASH).hash());
        assert_ne!(h, input("{}", &"1".repeat(64)).hash());
        assert_ne!(
            h,
            HashInput {
                workspace_id: None,
                ..input("{}", GENESIS_HASH)
            }
            .hash()
        );
        assert_ne!(
            h,
            HashInput {
                actor_token_id: Some(0),
                ..input("{}", GENESIS_HASH)
            }
            .hash()
        );
    }
}
