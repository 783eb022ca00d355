//! The audit log over HTTP: reading and following chains (long polling, so a
//! follower resumes from its cursor after a dropped connection), verifying
//! them, and signed checkpoints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery, Principal};
use super::validate;
use crate::audit::checkpoint::{key_id, Checkpoint};
use crate::audit::verify::ChainReport;
use crate::audit::AuditEvent;
use crate::authz::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::{parse_time, Store};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(all_events))
        .routes(routes!(verify_workspace))
        .routes(routes!(verify_all))
        .routes(routes!(workspace_checkpoints, checkpoint_workspace))
        .routes(routes!(all_checkpoints, checkpoint_everything))
        .routes(routes!(public_key))
}

/// Which events to read, and how long to wait for new ones.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    /// Every-chain endpoint only: where each chain was left, `chain:seq,chain:seq`
    /// as returned in `cursor`.
    cursor: Option<String>,
    /// Every-chain endpoint only: read just this chain.
    chain: Option<i64>,
    /// Only events after this sequence number.
    after: Option<i64>,
    /// Without `after`: start at the first event at or after this time (RFC 3339).
    since: Option<String>,
    /// Without `after` or `since`: start this many events before the head.
    recent: Option<i64>,
    /// At most this many events scanned (1–1000, default 100).
    limit: Option<i64>,
    /// Seconds to wait for a new event when there is none yet (0–60, default 0).
    wait: Option<u64>,
    /// Only this action (a trailing `*` matches a prefix, such as `member.*`).
    action: Option<String>,
    /// Only this actor's email (or `system`); a trailing `*` matches a prefix.
    actor: Option<String>,
    /// Only this target; a trailing `*` matches a prefix.
    target: Option<String>,
}

struct Filters {
    action: Option<String>,
    actor: Option<String>,
    target: Option<String>,
}

fn matches(pattern: &Option<String>, value: &str) -> bool {
    match pattern {
        None => true,
        Some(p) => match p.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => value == p,
        },
    }
}

impl Filters {
    fn from(q: &EventQuery) -> Self {
        Self {
            action: q.action.clone(),
            actor: q.actor.clone(),
            target: q.target.clone(),
        }
    }

    fn keep(&self, e: &AuditEvent) -> bool {
        matches(&self.action, &e.action)
            && matches(&self.actor, &e.actor.label)
            && matches(&self.target, &e.target)
    }
}

fn limits(q: &EventQuery) -> ApiResult<(i64, Duration)> {
    let limit = validate::limit(q.limit, 100, 1000)?;
    let wait = q.wait.unwrap_or(0);
    if wait > 60 {
        return Err(ApiError::invalid(
            "wait",
            "`wait` may be at most 60 seconds",
        ));
    }
    if let Some(s) = &q.since {
        parse_time(s)
            .ok_or_else(|| ApiError::invalid("since", format!("`{s}` is not an RFC 3339 time")))?;
    }
    Ok((limit, Duration::from_secs(wait)))
}

/// Where reading one chain starts, from the query.
async fn start_seq(store: &Store, chain_id: i64, q: &EventQuery) -> ApiResult<i64> {
    if let Some(a) = q.after {
        return Ok(a.max(0));
    }
    if let Some(since) = &q.since {
        let since = crate::store::format_time(parse_time(since).expect("checked"));
        return Ok(store.first_seq_since(chain_id, &since).await? - 1);
    }
    if let Some(n) = q.recent {
        return Ok((store.chain_head(chain_id).await? - n.max(0)).max(0));
    }
    Ok(0)
}

/// A page of events and where to continue.
#[derive(Serialize, ToSchema)]
struct EventPage {
    /// Matching events, oldest first.
    events: Vec<AuditEvent>,
    /// Pass as `after` to continue (covers events scanned but filtered out).
    next_after: i64,
}

/// Events of the workspace's chain (needs `audit.read`). With `wait`, the
/// request is held until a new event arrives or the wait ends, so a follower
/// polls cheaply and resumes from `next_after` after a dropped connection.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/audit", tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path), EventQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let access = principal
        .workspace(&state, &slug, Permission::AuditRead)
        .await?;
    let (limit, wait) = limits(&q)?;
    if q.cursor.is_some() || q.chain.is_some() {
        return Err(ApiError::invalid(
            "cursor",
            "`cursor` and `chain` are for /api/v1/audit/events; use `after` here",
        ));
    }
    let chain = access.workspace.id;
    let after = start_seq(&state.store, chain, &q).await?;
    let filters = Filters::from(&q);
    let deadline = Instant::now() + wait;
    loop {
        let scanned = state.store.audit_events(chain, after, limit).await?;
        if !scanned.is_empty() || Instant::now() >= deadline {
            let next_after = scanned.last().map(|e| e.seq).unwrap_or(after);
            let events = scanned.into_iter().filter(|e| filters.keep(e)).collect();
            return Ok(Json(EventPage { events, next_after }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A page of events from every chain.
#[derive(Serialize, ToSchema)]
struct AllEventPage {
    /// Matching events, oldest first.
    events: Vec<AuditEvent>,
    /// Pass back as `cursor` to continue.
    cursor: String,
}

fn parse_cursor(s: &str) -> ApiResult<BTreeMap<i64, i64>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (c, q) = p.split_once(':').ok_or_else(|| {
                ApiError::invalid(
                    "cursor",
                    format!("bad cursor part `{p}` (expected chain:seq)"),
                )
            })?;
            Ok((
                c.parse()
                    .map_err(|_| ApiError::invalid("cursor", format!("bad chain in `{p}`")))?,
                q.parse()
                    .map_err(|_| ApiError::invalid("cursor", format!("bad seq in `{p}`")))?,
            ))
        })
        .collect()
}

/// Events of every chain, the installation's and each workspace's
/// (platform admins only). Follows like the workspace endpoint, with a cursor.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", security(("bearer" = [])),
    params(EventQuery),
    responses((status = 200, body = AllEventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn all_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<AllEventPage>> {
    principal.require_platform_admin("read every audit chain")?;
    let (limit, wait) = limits(&q)?;
    let given = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let filters = Filters::from(&q);
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
            None => start_seq(&state.store, chain, &q).await?,
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
            let events = scanned.into_iter().filter(|e| filters.keep(e)).collect();
            let cursor = cursor
                .iter()
                .map(|(c, s)| format!("{c}:{s}"))
                .collect::<Vec<_>>()
                .join(",");
            return Ok(Json(AllEventPage { events, cursor }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for chain in state.store.chain_ids().await? {
            if q.chain.is_none_or(|only| only == chain) {
                cursor.entry(chain).or_insert(0);
            }
        }
    }
}

/// How much to verify.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    /// Re-read the whole chain instead of starting at the newest matching checkpoint.
    #[serde(default)]
    full: bool,
}

/// Verifies the workspace's chain (needs `audit.read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/audit/verify", tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path), VerifyQuery),
    responses((status = 200, body = ChainReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn verify_workspace(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> ApiResult<Json<ChainReport>> {
    let access = principal
        .workspace(&state, &slug, Permission::AuditRead)
        .await?;
    let report = state
        .store
        .verify_chain(access.workspace.id, q.full, &state.signer.verifying_key())
        .await?;
    log_report(&report);
    Ok(Json(report))
}

fn log_report(r: &ChainReport) {
    if !r.intact {
        tracing::warn!(chain = r.chain_id, workspace = ?r.workspace, breaks = r.breaks.len(), "audit chain verification found breaks");
    }
}

/// Every chain's verification.
#[derive(Serialize, ToSchema)]
struct AllReports {
    /// True when every chain is intact.
    intact: bool,
    chains: Vec<ChainReport>,
}

/// Verifies every chain (platform admins only).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    params(VerifyQuery),
    responses((status = 200, body = AllReports), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn verify_all(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> ApiResult<Json<AllReports>> {
    principal.require_platform_admin("verify every audit chain")?;
    let key = state.signer.verifying_key();
    let mut chains = Vec::new();
    for chain in state.store.chain_ids().await? {
        let report = state.store.verify_chain(chain, q.full, &key).await?;
        log_report(&report);
        chains.push(report);
    }
    Ok(Json(AllReports {
        intact: chains.iter().all(|c| c.intact),
        chains,
    }))
}

/// Checkpoints and the key that signed them, for independent checking.
#[derive(Serialize, ToSchema)]
struct CheckpointExport {
    /// `ed25519`.
    algorithm: &'static str,
    /// Hex public key (32 bytes).
    public_key: String,
    /// The key's identifier.
    key_id: String,
    /// The signed message format.
    message_format: &'static str,
    checkpoints: Vec<Checkpoint>,
}

const MESSAGE_FORMAT: &str = "vigilo-checkpoint-v1\\n{chain_id}\\n{seq}\\n{hash}\\n{signed_at}";

fn export(state: &AppState, checkpoints: Vec<Checkpoint>) -> CheckpointExport {
    let key = state.signer.verifying_key();
    CheckpointExport {
        algorithm: "ed25519",
        public_key: hex::encode(key.as_bytes()),
        key_id: key_id(&key),
        message_format: MESSAGE_FORMAT,
        checkpoints,
    }
}

/// The workspace chain's signed checkpoints (needs `audit.read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = CheckpointExport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn workspace_checkpoints(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<CheckpointExport>> {
    let access = principal
        .workspace(&state, &slug, Permission::AuditRead)
        .await?;
    let cps = state.store.checkpoints(access.workspace.id).await?;
    Ok(Json(export(&state, cps)))
}

/// Signs the workspace chain's head now (needs `audit.read`).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 201, body = CheckpointExport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn checkpoint_workspace(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<CheckpointExport>)> {
    let access = principal
        .workspace(&state, &slug, Permission::AuditRead)
        .await?;
    let cp = state
        .store
        .checkpoint_chain(&state.signer, access.workspace.id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(export(&state, cp.into_iter().collect())),
    ))
}

/// Every chain's checkpoints (platform admins only).
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = CheckpointExport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn all_checkpoints(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<CheckpointExport>> {
    principal.require_platform_admin("export every audit checkpoint")?;
    let mut all = Vec::new();
    for chain in state.store.chain_ids().await? {
        all.extend(state.store.checkpoints(chain).await?);
    }
    Ok(Json(export(&state, all)))
}

/// Signs the head of every chain now (platform admins only).
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 201, body = CheckpointExport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn checkpoint_everything(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<(StatusCode, Json<CheckpointExport>)> {
    principal.require_platform_admin("sign every audit chain")?;
    let cps = state.store.checkpoint_all(&state.signer).await?;
    Ok((StatusCode::CREATED, Json(export(&state, cps))))
}

/// The public key.
#[derive(Serialize, ToSchema)]
struct PublicKey {
    /// `ed25519`.
    algorithm: &'static str,
    /// Hex public key (32 bytes).
    public_key: String,
    /// The key's identifier.
    key_id: String,
    /// The signed message format.
    message_format: &'static str,
}

/// The public key that signs audit checkpoints (no authentication needed).
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = PublicKey)))]
async fn public_key(State(state): State<AppState>) -> Json<PublicKey> {
    let key = state.signer.verifying_key();
    Json(PublicKey {
        algorithm: "ed25519",
        public_key: hex::encode(key.as_bytes()),
        key_id: key_id(&key),
        message_format: MESSAGE_FORMAT,
    })
}
