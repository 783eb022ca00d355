//! The certificate inventory: upload, list (soonest expiry first, or only
//! those expiring within N days), show and remove.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Principal};
use crate::certs::days_left;
use crate::domain::authz::Permission;
use crate::domain::certificates;
use crate::domain::schemas::Line200;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::certificates::Certificate;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_certificates, add_certificate))
        .routes(routes!(get_certificate, remove_certificate))
}

/// A certificate in the inventory.
#[derive(Serialize, ToSchema)]
struct CertificateView {
    id: i64,
    /// Display name (default: the leaf's common name).
    name: String,
    /// The leaf's subject.
    subject: String,
    /// The leaf's issuer.
    issuer: String,
    /// The leaf's serial number.
    serial: String,
    /// Subject alternative names (`DNS:...`, `IP:...`).
    sans: Vec<String>,
    /// RFC 3339.
    not_before: String,
    /// RFC 3339: the earliest expiry in the chain.
    not_after: String,
    /// Whole days until `not_after` (negative once expired).
    days_left: i64,
    /// Whether `not_after` has passed.
    expired: bool,
    /// SHA-256 of the leaf certificate (`AB:CD:...`).
    fingerprint_sha256: String,
    /// Certificates in the uploaded chain.
    chain_length: i64,
    /// The PEM text (only when showing one certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pem: Option<String>,
    created_by: Option<String>,
    created_at: String,
}

fn view(cert: Certificate, now: OffsetDateTime, with_pem: bool) -> CertificateView {
    let days = days_left(&cert.not_after, now).unwrap_or(i64::MIN);
    let expired = crate::store::parse_time(&cert.not_after).is_none_or(|t| t <= now);
    CertificateView {
        id: cert.id,
        name: cert.name,
        subject: cert.subject,
        issuer: cert.issuer,
        serial: cert.serial,
        sans: cert.sans,
        not_before: cert.not_before,
        not_after: cert.not_after,
        days_left: days,
        expired,
        fingerprint_sha256: cert.fingerprint_sha256,
        chain_length: cert.chain_length,
        pem: with_pem.then_some(cert.pem),
        created_by: cert.created_by,
        created_at: cert.created_at,
    }
}

#[derive(Serialize, ToSchema)]
struct CertificateList {
    certificates: Vec<CertificateView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only certificates that expire within this many days (already expired
    /// ones included), 0–36500.
    #[param(minimum = 0, maximum = 36500)]
    expiring_within: Option<i64>,
}

/// The workspace's certificates, soonest expiry first.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/certificates", tag = "certificates", security(("bearer" = [])),
    params(("slug" = String, Path), ListQuery),
    responses((status = 200, body = CertificateList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_certificates(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<CertificateList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let now = OffsetDateTime::now_utc();
    let certificates = certificates::list(&state, &access, query.expiring_within)
        .await?
        .into_iter()
        .map(|c| view(c, now, false))
        .collect();
    Ok(Json(CertificateList { certificates }))
}

/// A certificate (or chain) to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddCertificate {
    /// PEM text: one certificate, or a chain with the leaf first.
    pem: String,
    /// Display name (default: the leaf's common name, else its first SAN;
    /// 1–200 characters).
    #[schema(value_type = Option<Line200>)]
    name: Option<String>,
}

/// Adds a certificate (or a chain) to the inventory. Anything that is not a
/// valid certificate is refused with the reason.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/certificates", tag = "certificates", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = AddCertificate,
    responses((status = 201, body = CertificateView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_certificate(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<AddCertificate>, ApiError>,
) -> ApiResult<(StatusCode, Json<CertificateView>)> {
    let access = principal
        .workspace(&state, &slug, Permission::CertManage)
        .await?;
    let ApiJson(body) = body?;
    let cert = certificates::add(&state, &access, &body.pem, body.name.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(cert, OffsetDateTime::now_utc(), false)),
    ))
}

/// One certificate, with its PEM text.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/certificates/{id}", tag = "certificates", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = CertificateView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_certificate(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<CertificateView>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let cert = certificates::get(&state, &access, id).await?;
    Ok(Json(view(cert, OffsetDateTime::now_utc(), true)))
}

/// Removes a certificate from the inventory.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/certificates/{id}", tag = "certificates", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_certificate(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::CertManage)
        .await?;
    certificates::remove(&state, &access, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
