//! Passwords, browser sessions and failed sign-ins.
//!
//! A password is stored as an Argon2id PHC string; a session's secret (the
//! cookie) only as its SHA-256 hash. Failed sign-ins are counted per scope
//! (`account:<email>` and `client:<address>`), so they can be slowed and
//! then refused for a while on every server sharing the database.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::users::User;
use super::users::{user_from_row, USER_COLUMNS};
use super::{now, Store, StoreError, StoreResult, WriteTx};

/// A browser session as listed (never its secret).
#[derive(Debug, Clone)]
pub struct Session {
    /// Identifier.
    pub id: i64,
    /// The signed-in user.
    pub user_id: i64,
    /// When it began.
    pub created_at: String,
    /// When it was last used (to the minute).
    pub last_seen_at: String,
    /// When it ends whatever happens (the absolute lifetime).
    pub expires_at: String,
    /// When it was ended (signed out, or ended from another session).
    pub ended_at: Option<String>,
    /// The client address it began from.
    pub client: String,
    /// The browser that began it.
    pub user_agent: String,
}

const SESSION_COLUMNS: &str = "s.id AS session_id, s.user_id AS session_user_id, \
     s.created_at AS session_created_at, s.last_seen_at, s.expires_at, s.ended_at, s.client, s.user_agent";

fn session_from_row(row: &AnyRow) -> Result<Session, sqlx::Error> {
    Ok(Session {
        id: row.try_get("session_id")?,
        user_id: row.try_get("session_user_id")?,
        created_at: row.try_get("session_created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        ended_at: row.try_get("ended_at")?,
        client: row.try_get("client")?,
        user_agent: row.try_get("user_agent")?,
    })
}

/// A user with their stored password hash (None when they have none yet).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// Their Argon2id PHC string.
    pub password_hash: Option<String>,
}

/// Sets a user's password hash.
pub async fn set_password_hash(tx: &mut WriteTx, user_id: i64, hash: &str) -> StoreResult<()> {
    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now())
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Sets a user's display name.
pub async fn set_user_name(tx: &mut WriteTx, user_id: i64, name: &str) -> StoreResult<()> {
    sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Sets the time zone `user_id` reads times in (None: their browser's).
pub async fn set_user_time_zone(
    tx: &mut WriteTx,
    user_id: i64,
    zone: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("UPDATE users SET time_zone = $1 WHERE id = $2")
        .bind(zone)
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Starts a session for `user_id` ending at `expires_at` at the latest.
pub async fn insert_session(
    tx: &mut WriteTx,
    user_id: i64,
    secret_hash: &str,
    expires_at: &str,
    client: &str,
    user_agent: &str,
) -> StoreResult<Session> {
    let at = now();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sessions (user_id, secret_hash, created_at, last_seen_at, expires_at, client, user_agent)
         VALUES ($1, $2, $3, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user_id)
    .bind(secret_hash)
    .bind(&at)
    .bind(expires_at)
    .bind(client)
    .bind(user_agent)
    .fetch_one(tx.conn())
    .await?;
    Ok(Session {
        id,
        user_id,
        created_at: at.clone(),
        last_seen_at: at,
        expires_at: expires_at.to_owned(),
        ended_at: None,
        client: client.to_owned(),
        user_agent: user_agent.to_owned(),
    })
}

/// Ends session `id` of `user_id` (idempotent); fails if there is none.
pub async fn end_session(tx: &mut WriteTx, user_id: i64, id: i64) -> StoreResult<Session> {
    sqlx::query(
        "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND user_id = $3 AND ended_at IS NULL",
    )
    .bind(now())
    .bind(id)
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    let row = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1 AND s.user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::Session(id)))?;
    Ok(session_from_row(&row)?)
}

/// Ends every open session of `user_id` except `keep`; returns how many.
pub async fn end_other_sessions(
    tx: &mut WriteTx,
    user_id: i64,
    keep: Option<i64>,
) -> StoreResult<u64> {
    Ok(sqlx::query(
        "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL AND id <> $3",
    )
    .bind(now())
    .bind(user_id)
    .bind(keep.unwrap_or(0))
    .execute(tx.conn())
    .await?
    .rows_affected())
}

/// A scope's count of failed sign-ins.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    /// Failures in the current window.
    pub failures: i64,
    /// When the window began.
    pub first_failed_at: Option<String>,
    /// Refused until then, if locked.
    pub locked_until: Option<String>,
}

/// Whether a stored count is over: its lock (if any) has run out and its
/// window began before `$3`. `$2` is the time of the attempt.
const COUNT_IS_OVER: &str =
    "((sign_in_failures.locked_until IS NULL OR sign_in_failures.locked_until <= $2) \
     AND sign_in_failures.first_failed_at < $3)";

/// Counts one sign-in attempt for `scope` at `at`, *before* its password is
/// checked, in one statement: concurrent attempts on any number of servers
/// each get their own number (1, 2, 3, ...), so none is lost and none is
/// counted twice. A count whose window began before `window_start` (and
/// whose lock has run out) starts again at one. The attempt that brings
/// the count to `lock_after` locks the scope until `lock_until`; a lock in
/// force is kept as it is. A successful attempt gives its number back
/// ([`clear_failures`] or [`release_attempt`]).
pub async fn count_attempt(
    tx: &mut WriteTx,
    scope: &str,
    at: &str,
    window_start: &str,
    lock_after: i64,
    lock_until: &str,
) -> StoreResult<Failures> {
    let counted =
        format!("CASE WHEN {COUNT_IS_OVER} THEN 1 ELSE sign_in_failures.failures + 1 END");
    let row = sqlx::query(&format!(
        "INSERT INTO sign_in_failures (scope, failures, first_failed_at, last_failed_at, locked_until)
         VALUES ($1, 1, $2, $2, $6)
         ON CONFLICT (scope) DO UPDATE SET
             failures = {counted},
             first_failed_at = CASE WHEN {COUNT_IS_OVER} THEN $2 ELSE sign_in_failures.first_failed_at END,
             last_failed_at = $2,
             locked_until = CASE
                 WHEN sign_in_failures.locked_until > $2 THEN sign_in_failures.locked_until
                 WHEN {counted} >= $4 THEN $5
                 ELSE NULL END
         RETURNING failures, first_failed_at, locked_until"
    ))
    .bind(scope)
    .bind(at)
    .bind(window_start)
    .bind(lock_after)
    .bind(lock_until)
    .bind((lock_after <= 1).then_some(lock_until))
    .fetch_one(tx.conn())
    .await?;
    Ok(Failures {
        failures: row.try_get("failures")?,
        first_failed_at: row.try_get("first_failed_at")?,
        locked_until: row.try_get("locked_until")?,
    })
}

/// Gives back the number a successful attempt took from `scope` with
/// [`count_attempt`] (for a scope shared with other accounts, such as a
/// client address, whose other failures still count); a lock that only
/// this attempt brought about is lifted.
pub async fn release_attempt(tx: &mut WriteTx, scope: &str, lock_after: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE sign_in_failures SET failures = failures - 1,
             locked_until = CASE WHEN failures - 1 >= $2 THEN locked_until ELSE NULL END
         WHERE scope = $1 AND failures > 0",
    )
    .bind(scope)
    .bind(lock_after)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Forgets `scope`'s failed sign-ins (after a successful one); returns
/// whether there were any.
pub async fn clear_failures(tx: &mut WriteTx, scope: &str) -> StoreResult<u64> {
    Ok(sqlx::query("DELETE FROM sign_in_failures WHERE scope = $1")
        .bind(scope)
        .execute(tx.conn())
        .await?
        .rows_affected())
}

/// Forgets the failed sign-ins of every scope whose name starts with
/// `prefix` (a platform admin's unlock); returns how many were forgotten.
pub async fn clear_failures_with_prefix(tx: &mut WriteTx, prefix: &str) -> StoreResult<u64> {
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    Ok(
        sqlx::query("DELETE FROM sign_in_failures WHERE scope LIKE $1 ESCAPE '\\'")
            .bind(pattern)
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

async fn failures_in(conn: &mut AnyConnection, scope: &str) -> StoreResult<Failures> {
    let row = sqlx::query(
        "SELECT failures, first_failed_at, locked_until FROM sign_in_failures WHERE scope = $1",
    )
    .bind(scope)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(row) => Failures {
            failures: row.try_get("failures")?,
            first_failed_at: row.try_get("first_failed_at")?,
            locked_until: row.try_get("locked_until")?,
        },
        None => Failures::default(),
    })
}

impl Store {
    /// A user and their password hash, by (lower-case) email.
    pub async fn credentials(&self, email: &str) -> StoreResult<Option<Credentials>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1"
        ))
        .bind(email)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Credentials {
                user: user_from_row(&row)?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// The password hash of user `id`.
    pub async fn password_hash(&self, user_id: i64) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(self.pool())
                .await?
                .flatten(),
        )
    }

    /// The session whose secret hashes to `secret_hash`, with its user.
    pub async fn session_by_secret_hash(
        &self,
        secret_hash: &str,
    ) -> StoreResult<Option<(Session, User)>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS}
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.secret_hash = $1"
        ))
        .bind(secret_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(row) => Some((session_from_row(&row)?, user_from_row(&row)?)),
            None => None,
        })
    }

    /// Records that session `id` was used at `at`.
    pub async fn touch_session(&self, id: i64, at: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user's open sessions, newest first.
    pub async fn open_sessions(&self, user_id: i64, now: &str) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s
             WHERE s.user_id = $1 AND s.ended_at IS NULL AND s.expires_at > $2
             ORDER BY s.id DESC"
        ))
        .bind(user_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(session_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// The failed sign-ins counted for `scope`.
    pub async fn sign_in_failures(&self, scope: &str) -> StoreResult<Failures> {
        let mut conn = self.pool().acquire().await?;
        failures_in(&mut conn, scope).await
    }
}
