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
use utoipa::ToSchema;

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
    /// The user's email, `plugin:NAME`, or `system`.
    pub label: String,
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
