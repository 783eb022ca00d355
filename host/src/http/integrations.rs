//! Integrations: a workspace's configured adapters. Owners (holders of
//! `integration.manage`) add, change, remove and test them; members see
//! them without their secrets, which the API never returns.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Principal};
use crate::domain::authz::Permission;
use crate::domain::integrations::{self, IntegrationChanges};
use crate::domain::schemas::Line2000;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::integrations::{AdapterInfo, DeliveryOutcome};
use crate::state::AppState;
use crate::store::integrations::{Delivery, Integration};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_adapters))
        .routes(routes!(list_integrations, create_integration))
        .routes(routes!(
            get_integration,
            update_integration,
            delete_integration
        ))
        .routes(routes!(test_integration))
        .routes(routes!(list_deliveries))
}

#[derive(Serialize, ToSchema)]
struct AdapterList {
    adapters: Vec<AdapterInfo>,
}

/// The integration adapters loaded plugins provide (what Settings →
/// Integrations → Add offers), with their configuration schemas.
#[utoipa::path(get, path = "/api/v1/adapters", tag = "integrations", security(("bearer" = [])),
    responses((status = 200, body = AdapterList), (status = 401, body = ErrorBody)))]
async fn list_adapters(
    State(state): State<AppState>,
    _principal: Principal,
) -> ApiResult<Json<AdapterList>> {
    Ok(Json(AdapterList {
        adapters: state.integrations.adapters(),
    }))
}

/// An integration as the API shows it: never its secrets.
#[derive(Serialize, ToSchema)]
struct IntegrationView {
    id: i64,
    name: String,
    adapter: String,
    /// Settings that are not secret.
    #[schema(value_type = Object)]
    config: Map<String, Value>,
    /// Secret settings that have a value (their values are never shown).
    secrets_set: Vec<String>,
    enabled: bool,
    /// Whether a loaded plugin provides the adapter now.
    adapter_loaded: bool,
    created_by: Option<String>,
    created_at: String,
    updated_at: String,
}

fn view(state: &AppState, integration: Integration) -> IntegrationView {
    IntegrationView {
        adapter_loaded: state.integrations.adapter(&integration.adapter).is_some(),
        id: integration.id,
        name: integration.name,
        adapter: integration.adapter,
        config: integration.config,
        secrets_set: integration.sealed_secrets.keys().cloned().collect(),
        enabled: integration.enabled,
        created_by: integration.created_by,
        created_at: integration.created_at,
        updated_at: integration.updated_at,
    }
}

#[derive(Serialize, ToSchema)]
struct IntegrationList {
    integrations: Vec<IntegrationView>,
}

/// The workspace's integrations (without secrets).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/integrations", tag = "integrations", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = IntegrationList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_integrations(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<IntegrationList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let integrations = integrations::list(&state, &access)
        .await?
        .into_iter()
        .map(|i| view(&state, i))
        .collect();
    Ok(Json(IntegrationList { integrations }))
}

/// A new integration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateIntegration {
    /// Unique name in the workspace: letters, digits, `_`, `-`, `.`.
    #[schema(pattern = "^(?![0-9]+$)[A-Za-z0-9_.-]{1,64}$")]
    name: String,
    /// The adapter (see `GET /api/v1/adapters`).
    adapter: String,
    /// Its settings, secrets included; checked by the adapter.
    #[serde(default)]
    #[schema(value_type = Object)]
    config: Map<String, Value>,
}

/// Adds an integration. The adapter checks the configuration; secret
/// settings are sealed at rest and never returned.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/integrations", tag = "integrations", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = CreateIntegration,
    responses((status = 201, body = IntegrationView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_integration(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<CreateIntegration>, ApiError>,
) -> ApiResult<(StatusCode, Json<IntegrationView>)> {
    let access = principal
        .workspace(&state, &slug, Permission::IntegrationManage)
        .await?;
    let ApiJson(body) = body?;
    let integration =
        integrations::create(&state, &access, &body.name, &body.adapter, body.config).await?;
    Ok((StatusCode::CREATED, Json(view(&state, integration))))
}

/// One integration (without secrets).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/integrations/{name}", tag = "integrations", security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = IntegrationView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_integration(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<IntegrationView>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let integration = integrations::get(&state, &access, &name).await?;
    Ok(Json(view(&state, integration)))
}

/// Changes to an integration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateIntegration {
    /// Settings to set (merged over the stored ones; `null` removes one).
    /// Secret settings left out keep their stored values, unless the update
    /// sets a secret: then every stored secret must be given again.
    #[serde(default)]
    #[schema(value_type = Object)]
    config: Map<String, Value>,
    /// Turn delivery on or off.
    enabled: Option<bool>,
}

/// Changes an integration's settings or turns it on or off.
#[utoipa::path(patch, path = "/api/v1/workspaces/{slug}/integrations/{name}", tag = "integrations", security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path)), request_body = UpdateIntegration,
    responses((status = 200, body = IntegrationView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_integration(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, name)): ApiPath<(String, String)>,
    body: Result<ApiJson<UpdateIntegration>, ApiError>,
) -> ApiResult<Json<IntegrationView>> {
    let access = principal
        .workspace(&state, &slug, Permission::IntegrationManage)
        .await?;
    let ApiJson(body) = body?;
    let integration = integrations::update(
        &state,
        &access,
        &name,
        &IntegrationChanges {
            config: body.config,
            enabled: body.enabled,
        },
    )
    .await?;
    Ok(Json(view(&state, integration)))
}

/// Removes an integration (its delivery log stays).
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/integrations/{name}", tag = "integrations", security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_integration(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::IntegrationManage)
        .await?;
    integrations::delete(&state, &access, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A test message.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct TestMessage {
    /// Text to send (default: a short greeting naming the workspace;
    /// 1–2000 characters).
    #[schema(value_type = Option<Line2000>)]
    text: Option<String>,
}

/// Sends a test message through the integration and answers with the
/// outcome (a failed delivery is 200 with `ok: false` and the reason; it
/// is recorded in the delivery log either way).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/integrations/{name}/test", tag = "integrations", security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path)), request_body = TestMessage,
    responses((status = 200, body = DeliveryOutcome), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn test_integration(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, name)): ApiPath<(String, String)>,
    body: Result<ApiJson<TestMessage>, ApiError>,
) -> ApiResult<Json<DeliveryOutcome>> {
    let access = principal
        .workspace(&state, &slug, Permission::IntegrationManage)
        .await?;
    let ApiJson(body) = body?;
    Ok(Json(
        integrations::test(&state, &access, &name, body.text.as_deref()).await?,
    ))
}

#[derive(Serialize, ToSchema)]
struct DeliveryList {
    deliveries: Vec<Delivery>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    /// At most this many, newest first (1–1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The integration's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/integrations/{name}/deliveries", tag = "integrations", security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path), DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    Ok(Json(DeliveryList {
        deliveries: integrations::deliveries(&state, &access, &name, query.limit).await?,
    }))
}
