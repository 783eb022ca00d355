//! API tokens, and the installation's first platform admin.
//!
//! A token carries exactly its holder's permissions; its secret is shown
//! once and stored only as a hash. Tokens are audited as `token.create` and
//! `token.revoke` in the installation's chain; `create-admin` as
//! `admin.create`.

use serde_json::json;

use super::{record_installation, validate, DomainError, DomainResult};
use crate::audit::{Actor, NewEvent};
use crate::domain::authz::Caller;
use crate::domain::Context;
use crate::store::users::{TokenCreated, TokenInfo, TokenStatus};
use crate::store::{self, Store};

/// The longest lifetime a token may be given (ten years).
pub const MAX_TOKEN_LIFETIME: u64 = 10 * 366 * 86_400;

/// The caller's tokens, newest first.
pub async fn list(state: &Context, caller: &Caller) -> DomainResult<Vec<TokenInfo>> {
    Ok(state.store.list_tokens(caller.user.id).await?)
}

/// A new token.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// A name to recognise it by (1–100 characters).
    pub name: String,
    /// Lifetime in seconds; None means it never expires.
    pub expires_in_seconds: Option<u64>,
}

/// Creates a token for the caller.
pub async fn create(
    state: &Context,
    caller: &Caller,
    new: &NewToken,
) -> DomainResult<TokenCreated> {
    let name = validate::text("name", &new.name, 100)?;
    let expires_at = match new.expires_in_seconds {
        None => None,
        Some(0) => {
            return Err(DomainError::invalid(
                "expires_in_seconds",
                "`expires_in_seconds` must be positive",
            ))
        }
        Some(s) if s > MAX_TOKEN_LIFETIME => {
            return Err(DomainError::invalid(
                "expires_in_seconds",
                "a token may live at most ten years",
            ))
        }
        Some(s) => Some(store::now_plus(s as i64)),
    };
    let mut tx = state.store.begin_write().await?;
    let created = store::users::insert_token(&mut tx, caller.user.id, &name, expires_at).await?;
    record_installation(
        &mut tx,
        caller,
        "token.create",
        created.info.id.to_string(),
        json!({"name": name, "prefix": created.info.prefix,
               "expires_at": created.info.expires_at, "user": caller.user.email}),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Revokes one of the caller's tokens; requests with it are refused from
/// then on.
pub async fn revoke(state: &Context, caller: &Caller, id: i64) -> DomainResult<TokenInfo> {
    let mut tx = state.store.begin_write().await?;
    let info = store::users::revoke_token(&mut tx, caller.user.id, id).await?;
    record_installation(
        &mut tx,
        caller,
        "token.revoke",
        id.to_string(),
        json!({"name": info.name, "prefix": info.prefix, "user": caller.user.email}),
    )
    .await?;
    tx.commit().await?;
    Ok(info)
}

/// Creates (or reuses, promoting it) a platform admin with `email` and
/// returns a fresh API token for them. Audited as `admin.create` by the
/// system actor.
pub async fn create_admin(
    store: &Store,
    email: &str,
    name: Option<&str>,
) -> DomainResult<TokenCreated> {
    let email = validate::email("email", email)?;
    let mut tx = store.begin_write().await?;
    let user = match store::users::user_by_email(&mut tx, &email).await? {
        Some(user) => {
            if !user.platform_admin {
                store::users::promote_to_admin(&mut tx, user.id).await?;
            }
            user
        }
        None => {
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or("admin"));
            store::users::insert_user(&mut tx, &email, name, true).await?
        }
    };
    let token = store::users::insert_token(&mut tx, user.id, "create-admin", None).await?;
    crate::store::audit::append(
        &mut tx,
        &Actor::system(),
        NewEvent::new(None, "admin.create", &email, json!({"user_id": user.id, "token_id": token.info.id, "token_prefix": token.info.prefix})),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Resolves a presented API token (`vgl_...`) to its holder, or says why it
/// cannot be used (`token_invalid`, `token_revoked`, `token_expired`).
/// Records the use (at most once a minute).
pub async fn authenticate(store: &Store, token: &str) -> DomainResult<(Caller, TokenInfo)> {
    let refused =
        |code: &'static str, message: String| DomainError::Unauthenticated { code, message };
    if !crate::secrets::well_formed(token, crate::secrets::API_TOKEN_PREFIX) {
        return Err(refused(
            "token_invalid",
            "the API token is not valid".into(),
        ));
    }
    let found = store
        .lookup_token(&crate::secrets::hash(token))
        .await?
        .ok_or_else(|| refused("token_invalid", "the API token is not valid".into()))?;
    match found.token.status {
        TokenStatus::Revoked => {
            return Err(refused(
                "token_revoked",
                format!("the API token `{}` was revoked", found.token.prefix),
            ))
        }
        TokenStatus::Expired => {
            return Err(refused(
                "token_expired",
                format!(
                    "the API token `{}` expired at {}",
                    found.token.prefix,
                    found.token.expires_at.as_deref().unwrap_or("?")
                ),
            ))
        }
        TokenStatus::Active => {}
    }
    store.touch_token(&found.token).await?;
    let caller = Caller {
        user: found.user,
        token_id: Some(found.token.id),
        session_id: None,
        plugin: None,
    };
    Ok((caller, found.token))
}
