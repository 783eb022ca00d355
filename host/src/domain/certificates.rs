//! The certificate inventory: adding certificates (or chains) from PEM,
//! listing them soonest expiry first (or only those expiring within N
//! days), and removing them. Anything that is not a valid certificate is
//! refused with the reason and nothing is stored. Audited as `cert.add` and
//! `cert.remove`.

use serde_json::json;
use time::OffsetDateTime;

use super::{record, validate, DomainError, DomainResult};
use crate::certs::parse_pem;
use crate::domain::authz::{Access, Permission};
use crate::domain::Context;
use crate::store::certificates::Certificate;
use crate::store::{self, format_time};

/// The longest "expiring within" filter, in days.
pub const MAX_WITHIN_DAYS: i64 = 36_500;

/// The workspace's certificates, soonest expiry first; with
/// `expiring_within`, only those that expire within that many days
/// (already expired ones included). Needs `workspace.read`.
pub async fn list(
    state: &Context,
    access: &Access,
    expiring_within: Option<i64>,
) -> DomainResult<Vec<Certificate>> {
    access.require(Permission::WorkspaceRead)?;
    let now = OffsetDateTime::now_utc();
    let before = match expiring_within {
        Some(days) if (0..=MAX_WITHIN_DAYS).contains(&days) => {
            Some(format_time(now + time::Duration::days(days)))
        }
        Some(_) => {
            return Err(DomainError::invalid(
                "expiring_within",
                "expiring_within is a number of days between 0 and 36500",
            ))
        }
        None => None,
    };
    Ok(state
        .store
        .list_certificates(access.workspace.id, before.as_deref())
        .await?)
}

/// One certificate (needs `workspace.read`).
pub async fn get(state: &Context, access: &Access, id: i64) -> DomainResult<Certificate> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state.store.certificate(access.workspace.id, id).await?)
}

/// Adds a certificate or chain (leaf first) from PEM text (needs
/// `cert.manage`). Without a name, the leaf's common name (else its first
/// SAN, else the start of its fingerprint) names it.
pub async fn add(
    state: &Context,
    access: &Access,
    pem: &str,
    name: Option<&str>,
) -> DomainResult<Certificate> {
    access.require(Permission::CertManage)?;
    let parsed = parse_pem(pem).map_err(|reason| DomainError::invalid("pem", reason))?;
    let name = match name {
        Some(name) => validate::text("name", name, 200)?,
        // From the certificate: printable characters only, at most 200;
        // else the start of the fingerprint.
        None => parsed
            .common_name
            .clone()
            .or_else(|| {
                parsed
                    .sans
                    .first()
                    .map(|s| s.split_once(':').map_or(s.clone(), |(_, v)| v.to_owned()))
            })
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| parsed.fingerprint_sha256[..23].to_owned()),
    };
    let mut tx = state.store.begin_write().await?;
    let cert = store::certificates::insert_certificate(
        &mut tx,
        access.workspace.id,
        &name,
        &parsed,
        access.caller.user.id,
    )
    .await?;
    record(
        &mut tx,
        access,
        "cert.add",
        cert.id.to_string(),
        json!({"name": cert.name, "subject": cert.subject, "not_after": cert.not_after,
               "fingerprint_sha256": cert.fingerprint_sha256}),
    )
    .await?;
    tx.commit().await?;
    Ok(cert)
}

/// Removes a certificate from the inventory (needs `cert.manage`).
pub async fn remove(state: &Context, access: &Access, id: i64) -> DomainResult<Certificate> {
    access.require(Permission::CertManage)?;
    let mut tx = state.store.begin_write().await?;
    let cert = store::certificates::delete_certificate(&mut tx, access.workspace.id, id).await?;
    record(
        &mut tx,
        access,
        "cert.remove",
        cert.id.to_string(),
        json!({"name": cert.name, "fingerprint_sha256": cert.fingerprint_sha256}),
    )
    .await?;
    tx.commit().await?;
    Ok(cert)
}
