//! Users and their API tokens.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

use super::{now, Store, StoreError, StoreResult, WriteTx};
use crate::secrets;

/// A person (or robot) who can sign in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    /// Identifier.
    pub id: i64,
    /// Email address (lower case), unique.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the user administers the whole installation.
    pub platform_admin: bool,
    /// When the user was created.
    pub created_at: String,
    /// The time zone they read times in on pages (an IANA name); None:
    /// their browser's.
    pub time_zone: Option<String>,
}

/// A user's columns, aliased with a `user_` prefix so that they can share a
/// row with another table's (`id`, `name`, `created_at`).
pub(super) const USER_COLUMNS: &str =
    "u.id AS user_id, u.email AS user_email, u.name AS user_name, \
     u.platform_admin AS user_platform_admin, u.created_at AS user_created_at, \
     u.time_zone AS user_time_zone";

pub(super) fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("user_id")?,
        email: row.try_get("user_email")?,
        name: row.try_get("user_name")?,
        platform_admin: row.try_get::<i64, _>("user_platform_admin")? != 0,
        created_at: row.try_get("user_created_at")?,
        time_zone: row.try_get("user_time_zone")?,
    })
}

crate::model::words::words! {
    /// Whether an API token works: worked out from when it expires and
    /// whether it was revoked.
    pub enum TokenStatus ("token status") {
        /// It works.
        Active = "active",
        /// Its time ran out.
        Expired = "expired",
        /// Someone revoked it.
        Revoked = "revoked",
    }
}

/// An API token as listed (never the secret itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    /// Identifier, used to revoke it.
    pub id: i64,
    /// The name given at creation.
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created_at: String,
    /// When it stops working; null for never.
    pub expires_at: Option<String>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    #[schema(value_type = String)]
    pub status: TokenStatus,
}

const TOKEN_COLUMNS: &str =
    "t.id, t.name, t.prefix, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

fn token_from_row(row: &AnyRow, now: &str) -> Result<TokenInfo, sqlx::Error> {
    let expires_at: Option<String> = row.try_get("expires_at")?;
    let revoked_at: Option<String> = row.try_get("revoked_at")?;
    let status = if revoked_at.is_some() {
        TokenStatus::Revoked
    } else if expires_at.as_deref().is_some_and(|e| e <= now) {
        TokenStatus::Expired
    } else {
        TokenStatus::Active
    };
    Ok(TokenInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        expires_at,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at,
        status,
    })
}

/// A token just created: its listing plus the secret, shown once.
#[derive(Clone, Serialize, ToSchema)]
pub struct TokenCreated {
    /// The token's listing.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The secret. It is stored only hashed and cannot be shown again (a
    /// create sent with an `Idempotency-Key` keeps its response sealed, so
    /// that the same token retrying the same request gets it back).
    pub token: String,
}

impl std::fmt::Debug for TokenCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCreated")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What a presented token resolves to.
#[derive(Debug, Clone)]
pub struct TokenLookup {
    /// The token.
    pub token: TokenInfo,
    /// Its holder.
    pub user: User,
}

/// Finds a user by (lower-case) email.
pub async fn user_by_email(tx: &mut WriteTx, email: &str) -> StoreResult<Option<User>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1"
    ))
    .bind(email)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| user_from_row(&r)).transpose()?)
}

/// Creates a user.
pub async fn insert_user(
    tx: &mut WriteTx,
    email: &str,
    name: &str,
    platform_admin: bool,
) -> StoreResult<User> {
    let row = sqlx::query(
        "INSERT INTO users (email, name, platform_admin, created_at) VALUES ($1, $2, $3, $4)
         RETURNING id AS user_id, email AS user_email, name AS user_name,
             platform_admin AS user_platform_admin, created_at AS user_created_at,
             time_zone AS user_time_zone",
    )
    .bind(email)
    .bind(name)
    .bind(i64::from(platform_admin))
    .bind(now())
    .fetch_one(tx.conn())
    .await
    .map_err(super::conflict_on_unique(|| {
        super::Clash::Taken(super::Taken::UserEmail(email.to_owned()))
    }))?;
    Ok(user_from_row(&row)?)
}

/// Makes an existing user a platform admin.
pub async fn promote_to_admin(tx: &mut WriteTx, user_id: i64) -> StoreResult<()> {
    sqlx::query("UPDATE users SET platform_admin = 1 WHERE id = $1")
        .bind(user_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Creates an API token for `user_id`. `expires_at` is a stored time or None.
pub async fn insert_token(
    tx: &mut WriteTx,
    user_id: i64,
    name: &str,
    expires_at: Option<String>,
) -> StoreResult<TokenCreated> {
    let secret = secrets::generate(secrets::API_TOKEN_PREFIX);
    let now = now();
    let row = sqlx::query(&format!(
        "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {}",
        TOKEN_COLUMNS.replace("t.", "")
    ))
    .bind(user_id)
    .bind(name)
    .bind(&secret.display_prefix)
    .bind(&secret.hash)
    .bind(&now)
    .bind(expires_at)
    .fetch_one(tx.conn())
    .await?;
    Ok(TokenCreated {
        info: token_from_row(&row, &now)?,
        token: secret.plaintext,
    })
}

/// Marks one of `user_id`'s tokens revoked (idempotent) and returns it.
pub async fn revoke_token(tx: &mut WriteTx, user_id: i64, token_id: i64) -> StoreResult<TokenInfo> {
    let now = now();
    sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(&now)
    .bind(token_id)
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    let row = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.id = $1 AND t.user_id = $2"
    ))
    .bind(token_id)
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| StoreError::NotFound(super::Missing::Token(token_id)))?;
    Ok(token_from_row(&row, &now)?)
}

impl Store {
    /// Resolves a token by its hash, with its holder.
    pub async fn lookup_token(&self, hash: &str) -> StoreResult<Option<TokenLookup>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await?;
        let now = now();
        Ok(match row {
            Some(row) => Some(TokenLookup {
                token: token_from_row(&row, &now)?,
                user: user_from_row(&row)?,
            }),
            None => None,
        })
    }

    /// Records a use of a token. Writes at most once a minute per token so
    /// that reads stay reads.
    pub async fn touch_token(&self, token: &TokenInfo) -> StoreResult<()> {
        let now = now();
        let stale = match &token.last_used_at {
            None => true,
            Some(last) => match (super::parse_time(last), super::parse_time(&now)) {
                (Some(last), Some(now)) => (now - last).whole_seconds() >= 60,
                _ => true,
            },
        };
        if stale {
            let mut tx = self.begin_write().await?;
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(&now)
                .bind(token.id)
                .execute(tx.conn())
                .await?;
            tx.commit_unclaimed().await?;
        }
        Ok(())
    }

    /// The tokens of `user_id`, newest first.
    pub async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenInfo>> {
        let now = now();
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = $1 ORDER BY t.id DESC"
        ))
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| token_from_row(r, &now))
            .collect::<Result<_, _>>()?)
    }
}
