//! Invites to a workspace and the mail outbox that carries them.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

use super::{
    now, now_plus, reading, Keyset, Page, PageAt, Reads, Store, StoreError, StoreResult, WriteTx,
};
use crate::model::roles::Role;
use crate::secrets;

crate::model::words::words! {
    /// Where an invite stands: worked out from when it was accepted,
    /// revoked and when it expires.
    pub enum InviteStatus ("invite status") {
        /// It can be accepted.
        Pending = "pending",
        /// Someone accepted it.
        Accepted = "accepted",
        /// It was revoked before it expired.
        Revoked = "revoked",
        /// It expired.
        Expired = "expired",
    }
}

/// An invite as listed (never its accept token).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invite {
    /// Identifier, used to revoke it.
    pub id: i64,
    /// Invited address.
    pub email: String,
    /// Built-in role granted (for a custom role: its base role).
    pub role: Role,
    /// Custom role granted, if any.
    pub custom_role: Option<String>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    #[schema(value_type = String)]
    pub status: InviteStatus,
    /// When it was sent.
    pub created_at: String,
    /// When it stops working.
    pub expires_at: String,
    /// Who sent it.
    pub invited_by: String,
}

const INVITE_SELECT: &str = "SELECT i.id, i.email, i.role, c.name AS custom_role, i.created_at, i.expires_at, i.accepted_at, i.revoked_at, u.email AS invited_by, i.workspace_id, i.custom_role_id
     FROM invites i JOIN users u ON u.id = i.invited_by
     LEFT JOIN custom_roles c ON c.id = i.custom_role_id";

/// An invite with what accepting it needs.
#[derive(Debug, Clone)]
pub struct InviteRecord {
    /// The listing.
    pub invite: Invite,
    /// The workspace it is for.
    pub workspace_id: i64,
    /// The custom role it grants, if any.
    pub custom_role_id: Option<i64>,
}

fn invite_from_row(row: &AnyRow, now: &str) -> StoreResult<InviteRecord> {
    let expires_at: String = row.try_get("expires_at")?;
    let accepted: Option<String> = row.try_get("accepted_at")?;
    let revoked: Option<String> = row.try_get("revoked_at")?;
    // An invite closed at or after its expiry (by the expiry task, or
    // before the address is invited again) expired; one closed before it
    // was revoked.
    let status = if accepted.is_some() {
        InviteStatus::Accepted
    } else if revoked
        .as_deref()
        .is_some_and(|at| at < expires_at.as_str())
    {
        InviteStatus::Revoked
    } else if revoked.is_some() || expires_at.as_str() <= now {
        InviteStatus::Expired
    } else {
        InviteStatus::Pending
    };
    let role: String = row.try_get("role")?;
    Ok(InviteRecord {
        invite: Invite {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            role: role.parse().map_err(StoreError::Corrupt)?,
            custom_role: row.try_get("custom_role")?,
            status,
            created_at: row.try_get("created_at")?,
            expires_at,
            invited_by: row.try_get("invited_by")?,
        },
        workspace_id: row.try_get("workspace_id")?,
        custom_role_id: row.try_get("custom_role_id")?,
    })
}

/// A newly created invite and its one-time accept token.
pub struct NewInvite {
    /// The listing.
    pub invite: Invite,
    /// The accept token (shown to the inviter, mailed, never logged).
    pub accept_token: String,
}

/// Which open invites past their expiry [`close_expired_invites`] closes.
#[derive(Debug, Clone, Copy)]
pub enum Expiring<'a> {
    /// Every workspace's.
    Everywhere,
    /// One workspace's.
    Workspace(i64),
    /// One address's in one workspace.
    Address(i64, &'a str),
}

/// An open invite closed because it expired.
#[derive(Debug, Clone)]
pub struct ExpiredInvite {
    /// Its id.
    pub id: i64,
    /// Its workspace.
    pub workspace_id: i64,
    /// The address it was for.
    pub email: String,
}

/// Closes at most `limit` open invites past their expiry, oldest first, so
/// their addresses can be invited again, and returns them; fewer than
/// `limit` means none are left (unless another server closed some
/// meanwhile).
pub async fn close_expired_invites(
    tx: &mut super::WriteTx,
    which: Expiring<'_>,
    limit: i64,
) -> StoreResult<Vec<ExpiredInvite>> {
    let at = now();
    const OPEN_AND_EXPIRED: &str = "SELECT id, workspace_id, email FROM invites
         WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= $1";
    let rows = match which {
        Expiring::Everywhere => {
            sqlx::query(&format!("{OPEN_AND_EXPIRED} ORDER BY id LIMIT $2"))
                .bind(&at)
                .bind(limit)
                .fetch_all(tx.conn())
                .await?
        }
        Expiring::Workspace(ws) => {
            sqlx::query(&format!(
                "{OPEN_AND_EXPIRED} AND workspace_id = $2 ORDER BY id LIMIT $3"
            ))
            .bind(&at)
            .bind(ws)
            .bind(limit)
            .fetch_all(tx.conn())
            .await?
        }
        Expiring::Address(ws, email) => {
            sqlx::query(&format!(
                "{OPEN_AND_EXPIRED} AND workspace_id = $2 AND email = $3 ORDER BY id LIMIT $4"
            ))
            .bind(&at)
            .bind(ws)
            .bind(email)
            .bind(limit)
            .fetch_all(tx.conn())
            .await?
        }
    };
    let mut expired = Vec::new();
    for row in &rows {
        let (id, workspace, email): (i64, i64, String) = (
            row.try_get("id")?,
            row.try_get("workspace_id")?,
            row.try_get("email")?,
        );
        let closed = sqlx::query(
            "UPDATE invites SET revoked_at = $1
             WHERE id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(&at)
        .bind(id)
        .execute(tx.conn())
        .await?;
        if closed.rows_affected() == 0 {
            // Accepted or closed meanwhile (by another server).
            continue;
        }
        expired.push(ExpiredInvite {
            id,
            workspace_id: workspace,
            email,
        });
    }
    Ok(expired)
}

/// Who sends an invite and what it grants.
pub struct InviteGrant<'a> {
    /// Built-in role (for a custom role: its base role).
    pub role: Role,
    /// Custom role id and name, if any.
    pub custom_role: Option<(i64, &'a str)>,
    /// The inviter's user id.
    pub invited_by: i64,
    /// The inviter's email (for the listing).
    pub invited_by_email: &'a str,
    /// Days until it expires.
    pub ttl_days: u32,
}

/// Creates an invite, or returns None when the address already has an
/// open one in the workspace (without failing the transaction: several
/// invites may be written in one).
pub async fn insert_invite(
    tx: &mut WriteTx,
    workspace_id: i64,
    email: &str,
    grant: &InviteGrant<'_>,
) -> StoreResult<Option<NewInvite>> {
    let created_at = now();
    let expires_at = now_plus(i64::from(grant.ttl_days) * 86_400);
    let secret = secrets::generate(secrets::INVITE_TOKEN_PREFIX);
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO invites (workspace_id, email, role, custom_role_id, token_hash, invited_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(workspace_id)
    .bind(email)
    .bind(grant.role.name())
    .bind(grant.custom_role.map(|(id, _)| id))
    .bind(&secret.hash)
    .bind(grant.invited_by)
    .bind(&created_at)
    .bind(&expires_at)
    .fetch_optional(tx.conn())
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(Some(NewInvite {
        invite: Invite {
            id,
            email: email.to_string(),
            role: grant.role,
            custom_role: grant.custom_role.map(|(_, name)| name.to_string()),
            status: InviteStatus::Pending,
            created_at,
            expires_at,
            invited_by: grant.invited_by_email.to_string(),
        },
        accept_token: secret.plaintext,
    }))
}

/// One invite of a workspace, read inside a transaction.
pub async fn invite_by_id_in(
    tx: &mut WriteTx,
    workspace_id: i64,
    id: i64,
) -> StoreResult<InviteRecord> {
    let row = sqlx::query(&format!(
        "{INVITE_SELECT} WHERE i.id = $1 AND i.workspace_id = $2"
    ))
    .bind(id)
    .bind(workspace_id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::Invite(id)))?;
    invite_from_row(&row, &now())
}

/// Revokes a pending invite.
pub async fn revoke_invite(tx: &mut WriteTx, workspace_id: i64, id: i64) -> StoreResult<Invite> {
    let record = invite_by_id_in(tx, workspace_id, id).await?;
    if record.invite.status != InviteStatus::Pending {
        return Err(StoreError::Conflict(super::Clash::InviteNotPending {
            id,
            status: record.invite.status,
        }));
    }
    sqlx::query("UPDATE invites SET revoked_at = $1 WHERE id = $2")
        .bind(now())
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(invite_by_id_in(tx, workspace_id, id).await?.invite)
}

/// Finds an invite by the hash of its accept token.
pub async fn invite_by_token_hash(
    conn: &mut impl Reads,
    hash: &str,
) -> StoreResult<Option<InviteRecord>> {
    let row = sqlx::query(&format!("{INVITE_SELECT} WHERE i.token_hash = $1"))
        .bind(hash)
        .fetch_optional(reading(conn))
        .await?;
    row.map(|r| invite_from_row(&r, &now())).transpose()
}

/// Marks an invite accepted; fails if it was no longer pending.
pub async fn mark_invite_accepted(tx: &mut WriteTx, id: i64) -> StoreResult<()> {
    let now = now();
    let done = sqlx::query(
        "UPDATE invites SET accepted_at = $1
         WHERE id = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(&now)
    .bind(id)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict(super::Clash::InviteNoLongerPending));
    }
    Ok(())
}

/// Queues a mail in the outbox.
pub async fn queue_mail(
    tx: &mut WriteTx,
    kind: &str,
    recipient: &str,
    subject: &str,
    body: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox (kind, recipient, subject, body, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(kind)
    .bind(recipient)
    .bind(subject)
    .bind(body)
    .bind(now())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Delivery attempts before a message is given up.
pub const MAIL_ATTEMPTS: i64 = 10;

/// Seconds before the next try after `failed_before` earlier failures:
/// 30 s, doubling each time (the tenth and last try comes about 2 h after
/// the ninth, some 4 h 15 min after the first).
pub fn retry_delay_secs(failed_before: i64) -> i64 {
    30 << failed_before.clamp(0, 9)
}

/// A mail waiting to be sent.
#[derive(Clone)]
pub struct OutboxMail {
    /// Identifier.
    pub id: i64,
    /// Recipient address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Body as stored: sealed to its recipient by the mailer; it
    /// holds an accept link once opened, so never log it.
    pub body: String,
}

impl Store {
    /// The invite whose accept token hashes to `hash`, with the workspace's
    /// slug and name.
    pub async fn invite_by_token(
        &self,
        hash: &str,
    ) -> StoreResult<Option<(InviteRecord, String, String)>> {
        let mut conn = self.pool().acquire().await?;
        let Some(record) = invite_by_token_hash(&mut conn, hash).await? else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT slug, name FROM workspaces WHERE id = $1")
            .bind(record.workspace_id)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Some((record, row.try_get("slug")?, row.try_get("name")?)))
    }

    /// Lower-case emails with a pending invite in a workspace.
    pub async fn pending_invite_emails(&self, workspace_id: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT email FROM invites WHERE workspace_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(workspace_id)
        .bind(now())
        .fetch_all(self.pool())
        .await?)
    }

    /// A page of a workspace's invites, newest first: `at` names invites'
    /// ids; at most `limit` rows.
    pub async fn invites_page(
        &self,
        workspace_id: i64,
        at: &PageAt<i64>,
        limit: i64,
    ) -> StoreResult<Page<Invite>> {
        let mut conn = self.pool().acquire().await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invites WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_one(&mut *conn)
            .await?;
        let now = now();
        Keyset {
            select: &format!("{INVITE_SELECT} WHERE i.workspace_id = $1"),
            exists: "SELECT 1 FROM invites i WHERE i.workspace_id = $1",
            column: "i.id",
            descending: true,
        }
        .read(&mut conn, workspace_id, at, limit, total, |r| {
            invite_from_row(r, &now).map(|r| r.invite)
        })
        .await
    }

    /// Mails not yet sent, oldest first, skipping ones that failed too often.
    pub async fn unsent_mail(&self, limit: i64) -> StoreResult<Vec<OutboxMail>> {
        let rows = sqlx::query(
            "SELECT id, recipient, subject, body FROM outbox
             WHERE sent_at IS NULL AND attempts < $1
               AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
             ORDER BY id LIMIT $3",
        )
        .bind(MAIL_ATTEMPTS)
        .bind(now())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxMail {
                    id: r.try_get("id")?,
                    recipient: r.try_get("recipient")?,
                    subject: r.try_get("subject")?,
                    body: r.try_get("body")?,
                })
            })
            .collect()
    }

    /// Records the outcome of a delivery attempt.
    pub async fn mark_mail(&self, id: i64, error: Option<&str>) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        match error {
            // Sent: the body (which holds the invite link) is no longer kept.
            None => sqlx::query("UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL, body = '' WHERE id = $2")
                .bind(now())
                .bind(id),
            Some(e) => {
                let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE id = $1")
                    .bind(id)
                    .fetch_one(tx.conn())
                    .await?;
                sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3")
                    .bind(e.to_string())
                    .bind(now_plus(retry_delay_secs(attempts)))
                    .bind(id)
            }
        }
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_retries_back_off_over_about_four_hours() {
        assert_eq!(retry_delay_secs(0), 30);
        assert_eq!(retry_delay_secs(1), 60);
        assert_eq!(retry_delay_secs(8), 7_680);
        assert_eq!(retry_delay_secs(50), 15_360);
        // From the first try to the tenth and last.
        let total: i64 = (0..MAIL_ATTEMPTS - 1).map(retry_delay_secs).sum();
        assert!((4 * 3600..5 * 3600).contains(&total), "{total}");
    }
}
