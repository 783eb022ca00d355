//! The audit log over HTTP: reading and following chains (long polling, so a
//! follower resumes from its cursor after a dropped connection), verifying
//! them, and signed checkpoints.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery, Principal};
use crate::audit::checkpoint::key_id;
use crate::audit::verify::ChainReport;
use crate::audit::AuditEvent;
use crate::domain::audit::{self, CheckpointExport, EventQuery};
use crate::domain::authz::Permission;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

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
    let page = audit::events(&state, &access, &q).await?;
    Ok(Json(EventPage {
        events: page.events,
        next_after: page.next_after,
    }))
}

/// The workspace's reader refuses `cursor` and `chain` (they are the
/// every-chain reader's): its document leaves them out.
pub(super) fn leave_out_every_chain_parameters(doc: &mut serde_json::Value) {
    if let Some(params) = doc
        .pointer_mut("/paths/~1api~1v1~1workspaces~1{slug}~1audit/get/parameters")
        .and_then(serde_json::Value::as_array_mut)
    {
        params.retain(|p| !matches!(p["name"].as_str(), Some("cursor" | "chain")));
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
    let page = audit::all_events(&state, &principal.caller, &q).await?;
    Ok(Json(AllEventPage {
        events: page.events,
        cursor: page.cursor,
    }))
}

/// How much to verify.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
    Ok(Json(audit::verify(&state, &access, q.full).await?))
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
    let chains = audit::verify_all(&state, &principal.caller, q.full).await?;
    Ok(Json(AllReports {
        intact: chains.iter().all(|c| c.intact),
        chains,
    }))
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
    let cps = audit::checkpoints(&state, &access).await?;
    Ok(Json(audit::export(&state, cps)))
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
    let cp = audit::checkpoint(&state, &access).await?;
    Ok((
        StatusCode::CREATED,
        Json(audit::export(&state, cp.into_iter().collect())),
    ))
}

/// Every chain's checkpoints (platform admins only).
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = CheckpointExport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn all_checkpoints(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<CheckpointExport>> {
    let all = audit::all_checkpoints(&state, &principal.caller).await?;
    Ok(Json(audit::export(&state, all)))
}

/// Signs the head of every chain now (platform admins only).
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 201, body = CheckpointExport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn checkpoint_everything(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<(StatusCode, Json<CheckpointExport>)> {
    let cps = audit::checkpoint_all(&state, &principal.caller).await?;
    Ok((StatusCode::CREATED, Json(audit::export(&state, cps))))
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
        message_format: audit::MESSAGE_FORMAT,
    })
}
