//! The certificate inventory.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, reading, Reads, Store, StoreError, StoreResult, WriteTx};
use crate::certs::ParsedCertificate;

/// A stored certificate (chain).
#[derive(Debug, Clone)]
pub struct Certificate {
    /// Identifier.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Leaf subject.
    pub subject: String,
    /// Leaf issuer.
    pub issuer: String,
    /// Leaf serial.
    pub serial: String,
    /// Leaf subject alternative names.
    pub sans: Vec<String>,
    /// Latest notBefore in the chain.
    pub not_before: String,
    /// Earliest notAfter in the chain.
    pub not_after: String,
    /// Leaf SHA-256 fingerprint.
    pub fingerprint_sha256: String,
    /// Certificates in the chain.
    pub chain_length: i64,
    /// The PEM text.
    pub pem: String,
    /// Who added it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: String,
}

const COLUMNS: &str =
    "c.id, c.name, c.subject, c.issuer, c.serial, c.sans, c.not_before, c.not_after, \
     c.fingerprint_sha256, c.chain_length, c.pem, u.email AS created_by, c.created_at";
const FROM: &str = "certificates c LEFT JOIN users u ON u.id = c.created_by";

fn from_row(row: &AnyRow) -> StoreResult<Certificate> {
    let sans: String = row.try_get("sans")?;
    Ok(Certificate {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        subject: row.try_get("subject")?,
        issuer: row.try_get("issuer")?,
        serial: row.try_get("serial")?,
        sans: serde_json::from_str(&sans)
            .map_err(|e| StoreError::Corrupt(format!("certificate SANs: {e}")))?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        fingerprint_sha256: row.try_get("fingerprint_sha256")?,
        chain_length: row.try_get("chain_length")?,
        pem: row.try_get("pem")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Stores a parsed certificate under `name`.
pub async fn insert_certificate(
    tx: &mut WriteTx,
    workspace_id: i64,
    name: &str,
    cert: &ParsedCertificate,
    created_by: i64,
) -> StoreResult<Certificate> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO certificates (workspace_id, name, subject, issuer, serial, sans, not_before, not_after,
             fingerprint_sha256, chain_length, pem, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
    )
    .bind(workspace_id)
    .bind(name)
    .bind(&cert.subject)
    .bind(&cert.issuer)
    .bind(&cert.serial)
    .bind(serde_json::to_string(&cert.sans).unwrap_or_else(|_| "[]".into()))
    .bind(&cert.not_before)
    .bind(&cert.not_after)
    .bind(&cert.fingerprint_sha256)
    .bind(cert.chain_length as i64)
    .bind(&cert.pem)
    .bind(created_by)
    .bind(now())
    .fetch_one(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::Certificate(
            cert.fingerprint_sha256.clone(),
        ))
    }))?;
    certificate_in(tx, workspace_id, id).await
}

/// One certificate of `workspace_id`.
pub async fn certificate_in(
    conn: &mut impl Reads,
    workspace_id: i64,
    id: i64,
) -> StoreResult<Certificate> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE c.workspace_id = $1 AND c.id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(reading(conn))
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::Certificate(id)))?;
    from_row(&row)
}

/// Deletes a certificate and returns what it was.
pub async fn delete_certificate(
    tx: &mut WriteTx,
    workspace_id: i64,
    id: i64,
) -> StoreResult<Certificate> {
    let cert = certificate_in(tx, workspace_id, id).await?;
    sqlx::query("DELETE FROM certificates WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(cert)
}

impl Store {
    /// One certificate of `workspace_id`.
    pub async fn certificate(&self, workspace_id: i64, id: i64) -> StoreResult<Certificate> {
        let mut conn = self.pool().acquire().await?;
        certificate_in(&mut conn, workspace_id, id).await
    }

    /// The certificates of `workspace_id`, soonest expiry first; only those
    /// expiring before `before` (RFC 3339) when given.
    pub async fn list_certificates(
        &self,
        workspace_id: i64,
        before: Option<&str>,
    ) -> StoreResult<Vec<Certificate>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE c.workspace_id = $1 AND ($2 = '' OR c.not_after < $2)
             ORDER BY c.not_after, c.id"
        ))
        .bind(workspace_id)
        .bind(before.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }
}

use vigilo_sdk::{ExpiringCertificate, ExpiringWorkspace};

impl Store {
    /// Certificates expiring within `days` days (expired ones included) in
    /// every workspace, grouped by workspace, soonest first: the answer of
    /// the plugins' host method `certificates.expiring`.
    pub async fn certificates_expiring_everywhere(
        &self,
        days: i64,
    ) -> StoreResult<Vec<ExpiringWorkspace>> {
        let now_t = time::OffsetDateTime::now_utc();
        let before = super::format_time(now_t + time::Duration::days(days));
        let rows = sqlx::query(
            "SELECT w.slug AS workspace, c.id, c.name, c.subject, c.not_after
             FROM certificates c JOIN workspaces w ON w.id = c.workspace_id
             WHERE c.not_after <= $1 ORDER BY w.slug, c.not_after, c.id",
        )
        .bind(&before)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<ExpiringWorkspace> = Vec::new();
        for row in rows {
            let slug: String = row.try_get("workspace")?;
            let not_after: String = row.try_get("not_after")?;
            let cert = ExpiringCertificate {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                subject: row.try_get("subject")?,
                days_left: crate::certs::days_left(&not_after, now_t).unwrap_or(i64::MIN),
                expired: super::parse_time(&not_after).is_none_or(|t| t <= now_t),
                not_after,
            };
            match out.last_mut() {
                Some(group) if group.workspace == slug => group.certificates.push(cert),
                _ => out.push(ExpiringWorkspace {
                    workspace: slug,
                    certificates: vec![cert],
                }),
            }
        }
        Ok(out)
    }
}
