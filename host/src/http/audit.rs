//! Reading a workspace's audit log.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery, Principal};
use crate::audit::AuditEvent;
use crate::authz::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// Paging through a chain.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    /// Only events with a sequence number above this (default 0).
    after: Option<i64>,
    /// At most this many events (1–1000, default 100).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct EventList {
    events: Vec<AuditEvent>,
}

/// Events of the workspace's audit chain, oldest first (needs `audit.read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/audit", tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path), EventQuery),
    responses((status = 200, body = EventList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventList>> {
    let access = principal
        .workspace(&state, &slug, Permission::AuditRead)
        .await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "`limit` must be between 1 and 1000",
        ));
    }
    let events = state
        .store
        .audit_events(access.workspace.id, q.after.unwrap_or(0).max(0), limit)
        .await?;
    Ok(Json(EventList { events }))
}
