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
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::checkpoint::Checkpoint;

/// One break in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Break {
    /// Where it was seen.
    pub seq: i64,
    /// `modified`, `deleted`, `inserted`, `reordered`, `truncated` or `rewritten`.
    pub class: String,
    /// What exactly is wrong.
    pub message: String,
}

pub(crate) fn brk(seq: i64, class: &str, message: String) -> Break {
    Break {
        seq,
        class: class.to_string(),
        message,
    }
}

/// The result of verifying one chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// The newest checkpoint with a valid signature that the chain was
    /// compared with (null when the chain has none).
    #[serde(default)]
    pub latest_checkpoint: Option<CheckpointRef>,
    /// True when nothing is broken.
    pub intact: bool,
    /// Every break found, in sequence order.
    pub breaks: Vec<Break>,
}

/// Which checkpoint a verification was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointRef {
    /// The checkpointed sequence number.
    pub seq: i64,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::GENESIS_HASH;

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
