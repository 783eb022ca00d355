//! Reading the audit log: a workspace's chain (needs `audit.read`) or
//! every chain (platform admins), filtered by action, actor and target
//! (a trailing `*` matches a prefix), from a sequence number, a time or the
//! last N events, and followed by long polling: a read with `wait` is held
//! until a new event arrives, and a follower resumes from its cursor after
//! a dropped connection. Also verifying chains and their signed
//! checkpoints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{validate, DomainError, DomainResult};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::verify::ChainReport;
use crate::audit::AuditEvent;
use crate::domain::authz::{Access, Caller, Permission};
use crate::domain::Context;
use crate::store::audit::Verification;
use crate::store::{format_time, parse_time, Store};

/// Which events to read, and how long to wait for new ones.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Every-chain endpoint only: where each chain was left, `chain:seq,chain:seq`
    /// as returned in `cursor`.
    #[param(
        pattern = "^,*(?:[+-]?0*[0-9]{1,18}:[+-]?0*[0-9]{1,18}(?:,+[+-]?0*[0-9]{1,18}:[+-]?0*[0-9]{1,18})*)?,*$"
    )]
    pub cursor: Option<String>,
    /// Every-chain endpoint only: read just this chain.
    pub chain: Option<i64>,
    /// Only events after this sequence number.
    pub after: Option<i64>,
    /// Without `after`: start at the first event at or after this time
    /// (RFC 3339, such as `2026-12-24T09:00:00Z`; a space may stand for the
    /// `T`; in UTC it must fall within the years 0000 to 9999).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Without `after` or `since`: start this many events before the head.
    #[param(minimum = 0)]
    pub recent: Option<i64>,
    /// At most this many events scanned (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Seconds to wait for a new event when there is none yet (0–60, default 0).
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
    /// Only this action (a trailing `*` matches a prefix, such as `member.*`).
    pub action: Option<String>,
    /// Only this actor's email (or `system`); a trailing `*` matches a prefix.
    pub actor: Option<String>,
    /// Only this target; a trailing `*` matches a prefix.
    pub target: Option<String>,
}

fn matches(pattern: &Option<String>, value: &str) -> bool {
    match pattern.as_deref().filter(|p| !p.is_empty()) {
        None => true,
        Some(p) => match p.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => value == p,
        },
    }
}

impl EventQuery {
    /// Whether `e` passes the action, actor and target filters.
    pub fn keep(&self, e: &AuditEvent) -> bool {
        matches(&self.action, &e.action)
            && matches(&self.actor, &e.actor.label)
            && matches(&self.target, &e.target)
    }

    fn limits(&self) -> DomainResult<(i64, Duration)> {
        let limit = validate::limit(self.limit, 100, 1000)?;
        let wait = self.wait.unwrap_or(0);
        if wait > 60 {
            return Err(DomainError::invalid(
                "wait",
                "`wait` may be at most 60 seconds",
            ));
        }
        if self.recent.is_some_and(|n| n < 0) {
            return Err(DomainError::invalid(
                "recent",
                "`recent` must be a whole number, zero or more",
            ));
        }
        self.since_time()?;
        Ok((limit, Duration::from_secs(wait)))
    }

    fn since_time(&self) -> DomainResult<Option<String>> {
        match &self.since {
            None => Ok(None),
            Some(s) => parse_time(s).map(|t| Some(format_time(t))).ok_or_else(|| {
                DomainError::invalid("since", format!("`{s}` is not an RFC 3339 time"))
            }),
        }
    }

    /// Where reading one chain starts.
    async fn start_seq(&self, store: &Store, chain_id: i64) -> DomainResult<i64> {
        if let Some(a) = self.after {
            return Ok(a.max(0));
        }
        if let Some(since) = self.since_time()? {
            return Ok(store.first_seq_since(chain_id, &since).await? - 1);
        }
        if let Some(n) = self.recent {
            return Ok((store.chain_head(chain_id).await? - n.max(0)).max(0));
        }
        Ok(0)
    }
}

/// A page of one chain's events and where to continue.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// Matching events, oldest first.
    pub events: Vec<AuditEvent>,
    /// Pass as `after` to continue (covers events scanned but filtered out).
    pub next_after: i64,
}

/// How often a waiting read looks for new events.
const POLL: Duration = Duration::from_millis(200);

/// Waits one poll interval, or ends the wait with
/// [`DomainError::ShuttingDown`] as soon as the server begins to stop, so a
/// long poll never holds a stopping server open.
async fn pause(state: &Context) -> DomainResult<()> {
    tokio::select! {
        _ = tokio::time::sleep(POLL) => Ok(()),
        _ = state.stopped() => Err(DomainError::ShuttingDown),
    }
}

/// Events of the workspace's chain (needs `audit.read`).
pub async fn events(state: &Context, access: &Access, q: &EventQuery) -> DomainResult<EventPage> {
    access.require(Permission::AuditRead)?;
    let (limit, wait) = q.limits()?;
    if q.cursor.is_some() || q.chain.is_some() {
        return Err(DomainError::invalid(
            "cursor",
            "`cursor` and `chain` are for /api/v1/audit/events; use `after` here",
        ));
    }
    let chain = access.workspace.id;
    let after = q.start_seq(&state.store, chain).await?;
    let deadline = Instant::now() + wait;
    loop {
        let scanned = state.store.audit_events(chain, after, limit).await?;
        if !scanned.is_empty() || Instant::now() >= deadline {
            let next_after = scanned.last().map(|e| e.seq).unwrap_or(after);
            let events = scanned.into_iter().filter(|e| q.keep(e)).collect();
            return Ok(EventPage { events, next_after });
        }
        pause(state).await?;
    }
}

/// A page of events from every chain.
#[derive(Debug, Clone)]
pub struct AllEventPage {
    /// Matching events, oldest first.
    pub events: Vec<AuditEvent>,
    /// Pass back as `cursor` to continue.
    pub cursor: String,
}

fn parse_cursor(s: &str) -> DomainResult<BTreeMap<i64, i64>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (c, q) = p.split_once(':').ok_or_else(|| {
                DomainError::invalid(
                    "cursor",
                    format!("bad cursor part `{p}` (expected chain:seq)"),
                )
            })?;
            Ok((
                c.parse()
                    .map_err(|_| DomainError::invalid("cursor", format!("bad chain in `{p}`")))?,
                q.parse()
                    .map_err(|_| DomainError::invalid("cursor", format!("bad seq in `{p}`")))?,
            ))
        })
        .collect()
}

/// Events of every chain, the installation's and each workspace's
/// (platform admins).
pub async fn all_events(
    state: &Context,
    caller: &Caller,
    q: &EventQuery,
) -> DomainResult<AllEventPage> {
    caller.require_platform_admin("read every audit chain")?;
    let (limit, wait) = q.limits()?;
    let given = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let deadline = Instant::now() + wait;
    let mut cursor: BTreeMap<i64, i64> = BTreeMap::new();
    let chains: Vec<i64> = state
        .store
        .chain_ids()
        .await?
        .into_iter()
        .filter(|c| q.chain.is_none_or(|only| only == *c))
        .collect();
    for chain in chains {
        let start = match &given {
            // A chain absent from a cursor is new since: read it from the start.
            Some(c) => c.get(&chain).copied().unwrap_or(0),
            None => q.start_seq(&state.store, chain).await?,
        };
        cursor.insert(chain, start);
    }
    loop {
        let mut scanned = Vec::new();
        for (chain, after) in cursor.iter_mut() {
            let events = state.store.audit_events(*chain, *after, limit).await?;
            if let Some(last) = events.last() {
                *after = last.seq;
            }
            scanned.extend(events);
        }
        if !scanned.is_empty() || Instant::now() >= deadline {
            scanned.sort_by(|a, b| {
                a.time
                    .cmp(&b.time)
                    .then(a.chain_id.cmp(&b.chain_id))
                    .then(a.seq.cmp(&b.seq))
            });
            let events = scanned.into_iter().filter(|e| q.keep(e)).collect();
            let cursor = cursor
                .iter()
                .map(|(c, s)| format!("{c}:{s}"))
                .collect::<Vec<_>>()
                .join(",");
            return Ok(AllEventPage { events, cursor });
        }
        pause(state).await?;
        for chain in state.store.chain_ids().await? {
            if q.chain.is_none_or(|only| only == chain) {
                cursor.entry(chain).or_insert(0);
            }
        }
    }
}

fn log_report(r: &ChainReport) {
    if !r.intact {
        tracing::warn!(chain = r.chain_id, workspace = ?r.workspace, breaks = r.breaks.len(), "audit chain verification found breaks");
    }
}

/// Verifies the workspace's chain, from its newest matching checkpoint or
/// (`full`) from the start (needs `audit.read`), and records the result as
/// the chain's latest verification.
pub async fn verify(state: &Context, access: &Access, full: bool) -> DomainResult<ChainReport> {
    access.require(Permission::AuditRead)?;
    let report = state
        .store
        .verify_chain(access.workspace.id, full, &state.signer.verifying_key())
        .await?;
    log_report(&report);
    state
        .store
        .record_verification(&report, &access.caller.user.email)
        .await?;
    Ok(report)
}

/// The workspace chain's latest verification, by anyone (needs `audit.read`).
pub async fn last_verification(
    state: &Context,
    access: &Access,
) -> DomainResult<Option<Verification>> {
    access.require(Permission::AuditRead)?;
    Ok(state.store.last_verification(access.workspace.id).await?)
}

/// Every chain's latest verification, by chain (platform admins).
pub async fn last_verifications(
    state: &Context,
    caller: &Caller,
) -> DomainResult<Vec<(i64, Option<Verification>)>> {
    caller.require_platform_admin("read every audit chain")?;
    let mut all = Vec::new();
    for chain in state.store.chain_ids().await? {
        all.push((chain, state.store.last_verification(chain).await?));
    }
    Ok(all)
}

/// Verifies every chain (platform admins).
pub async fn verify_all(
    state: &Context,
    caller: &Caller,
    full: bool,
) -> DomainResult<Vec<ChainReport>> {
    caller.require_platform_admin("verify every audit chain")?;
    let key = state.signer.verifying_key();
    let mut chains = Vec::new();
    for chain in state.store.chain_ids().await? {
        let report = state.store.verify_chain(chain, full, &key).await?;
        log_report(&report);
        state
            .store
            .record_verification(&report, &caller.user.email)
            .await?;
        chains.push(report);
    }
    Ok(chains)
}

/// The workspace chain's signed checkpoints (needs `audit.read`).
pub async fn checkpoints(state: &Context, access: &Access) -> DomainResult<Vec<Checkpoint>> {
    access.require(Permission::AuditRead)?;
    Ok(state.store.checkpoints(access.workspace.id).await?)
}

/// Signs the workspace chain's head now (needs `audit.read`); None when the
/// chain is empty.
pub async fn checkpoint(state: &Context, access: &Access) -> DomainResult<Option<Checkpoint>> {
    access.require(Permission::AuditRead)?;
    Ok(state
        .store
        .checkpoint_chain(&state.signer, access.workspace.id)
        .await?)
}

/// Every chain's checkpoints (platform admins).
pub async fn all_checkpoints(state: &Context, caller: &Caller) -> DomainResult<Vec<Checkpoint>> {
    caller.require_platform_admin("export every audit checkpoint")?;
    let mut all = Vec::new();
    for chain in state.store.chain_ids().await? {
        all.extend(state.store.checkpoints(chain).await?);
    }
    Ok(all)
}

/// Signs the head of every chain now (platform admins).
pub async fn checkpoint_all(state: &Context, caller: &Caller) -> DomainResult<Vec<Checkpoint>> {
    caller.require_platform_admin("sign every audit chain")?;
    Ok(state.store.checkpoint_all(&state.signer).await?)
}

/// The format of the message each checkpoint signs.
pub const MESSAGE_FORMAT: &str = "vigilo-checkpoint-v1\\n{chain_id}\\n{seq}\\n{hash}\\n{signed_at}";

/// Checkpoints with what checking them needs: the public key and the
/// signed message's format (what `vigilo audit checkpoints` saves).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckpointExport {
    /// `ed25519`.
    pub algorithm: &'static str,
    /// Hex public key (32 bytes).
    pub public_key: String,
    /// The key's identifier.
    pub key_id: String,
    /// The signed message format.
    pub message_format: &'static str,
    /// The checkpoints.
    pub checkpoints: Vec<Checkpoint>,
}

/// `checkpoints` as an export, with this server's public key.
pub fn export(state: &Context, checkpoints: Vec<Checkpoint>) -> CheckpointExport {
    let key = state.signer.verifying_key();
    CheckpointExport {
        algorithm: "ed25519",
        public_key: hex::encode(key.as_bytes()),
        key_id: crate::audit::checkpoint::key_id(&key),
        message_format: MESSAGE_FORMAT,
        checkpoints,
    }
}

/// A page of the audit log, newest first, for reading (the web app's list).
#[derive(Debug, Clone)]
pub struct NewestFirst {
    /// Matching events, newest first.
    pub events: Vec<AuditEvent>,
    /// The chain's head when read (for following from there).
    pub head: i64,
    /// Where to continue towards older events (None at the start of the
    /// chain).
    pub older: Option<i64>,
}

/// How many events one newest-first page scans at most.
const SCAN_LIMIT: i64 = 5_000;

/// Reads `chain` backwards from `before` (the head when None) until
/// `limit` events match `q`'s filters and time range, scanning at most
/// [`SCAN_LIMIT`] events.
async fn newest_first_in(
    store: &Store,
    chain: i64,
    q: &EventQuery,
    until: Option<&str>,
    before: Option<i64>,
    limit: usize,
) -> DomainResult<NewestFirst> {
    let since = q.since_time()?;
    let head = store.chain_head(chain).await?;
    let mut events = Vec::new();
    let mut cursor = before;
    let mut scanned = 0;
    let older = loop {
        let batch = store.audit_events_before(chain, cursor, 500).await?;
        let Some(last) = batch.last() else {
            break None;
        };
        cursor = Some(last.seq);
        scanned += batch.len() as i64;
        let mut reached_since = false;
        for e in batch {
            if since.as_deref().is_some_and(|s| e.time.as_str() < s) {
                reached_since = true;
                break;
            }
            if until.is_some_and(|u| e.time.as_str() > u) || !q.keep(&e) {
                continue;
            }
            events.push(e);
            if events.len() == limit {
                break;
            }
        }
        if reached_since {
            break None;
        }
        if events.len() == limit || scanned >= SCAN_LIMIT {
            let next = events
                .last()
                .map(|e| e.seq)
                .filter(|_| events.len() == limit);
            break next.or(cursor).filter(|s| *s > 1);
        }
    };
    Ok(NewestFirst {
        events,
        head,
        older,
    })
}

/// Checks `until` (RFC 3339) and returns it normalised.
fn until_time(until: Option<&str>) -> DomainResult<Option<String>> {
    match until.filter(|u| !u.is_empty()) {
        None => Ok(None),
        Some(u) => parse_time(u)
            .map(|t| Some(format_time(t)))
            .ok_or_else(|| DomainError::invalid("until", format!("`{u}` is not an RFC 3339 time"))),
    }
}

/// The workspace's events newest first, filtered like [`events`], between
/// `q.since` and `until`, older than `before` (needs `audit.read`).
pub async fn newest_first(
    state: &Context,
    access: &Access,
    q: &EventQuery,
    until: Option<&str>,
    before: Option<i64>,
    limit: usize,
) -> DomainResult<NewestFirst> {
    access.require(Permission::AuditRead)?;
    let until = until_time(until)?;
    newest_first_in(
        &state.store,
        access.workspace.id,
        q,
        until.as_deref(),
        before,
        limit,
    )
    .await
}

/// One chain's events newest first, for a platform admin (chain 0 is the
/// installation's).
pub async fn newest_first_of_chain(
    state: &Context,
    caller: &Caller,
    chain: i64,
    q: &EventQuery,
    until: Option<&str>,
    before: Option<i64>,
    limit: usize,
) -> DomainResult<NewestFirst> {
    caller.require_platform_admin("read every audit chain")?;
    let until = until_time(until)?;
    newest_first_in(&state.store, chain, q, until.as_deref(), before, limit).await
}
