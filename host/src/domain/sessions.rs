//! Signing in to the web app: sessions, their expiry, and the throttling of
//! failed sign-ins.
//!
//! A session is a server-side record whose random secret lives only in the
//! browser's cookie (the database keeps its hash). It ends when its person
//! signs out, after `session_idle_minutes` without use, and after
//! `session_lifetime_hours` in any case. Its CSRF token is derived from the
//! secret, so every page can carry it and only the cookie's holder can
//! know it.
//!
//! Failed sign-ins are counted per account and per client address. After
//! [`SLOW_AFTER`] failures within [`WINDOW_MINUTES`] every answer waits a
//! little longer; after [`LOCK_AFTER`] the account (or the address) is
//! refused for [`LOCK_MINUTES`] minutes, even with the right password. An
//! unknown email is treated exactly like a known one with a wrong password,
//! so nothing tells an attacker which accounts exist. Audited as
//! `session.create`, `session.end` and `session.failed`.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::{passwords, record_installation, validate, DomainError, DomainResult};
use crate::audit::{Actor, NewEvent};
use crate::authz::Caller;
use crate::secrets;
use crate::state::AppState;
use crate::store::{self, format_time, parse_time, Session, Store, User};

/// Failures in a row after which answers are slowed.
pub const SLOW_AFTER: i64 = 3;
/// Failures in a row after which sign-ins are refused for a while.
pub const LOCK_AFTER: i64 = 10;
/// How long failures are remembered.
pub const WINDOW_MINUTES: i64 = 15;
/// How long a locked account or address is refused.
pub const LOCK_MINUTES: i64 = 15;

/// What a sign-in form sends, and where from.
#[derive(Clone, Default)]
pub struct SignIn {
    /// The email typed.
    pub email: String,
    /// The password typed.
    pub password: String,
    /// The client's address.
    pub client: String,
    /// The browser's `User-Agent`.
    pub user_agent: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("email", &self.email)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// A session just begun: the secret goes into the cookie, once.
pub struct Started {
    /// The session.
    pub session: Session,
    /// Its secret (the cookie's value).
    pub secret: String,
    /// Who signed in.
    pub caller: Caller,
}

/// A live session, resolved from its cookie.
#[derive(Debug, Clone)]
pub struct Current {
    /// Who is signed in.
    pub caller: Caller,
    /// The session.
    pub session: Session,
    /// The CSRF token every state-changing form must carry.
    pub csrf: String,
}

/// The CSRF token of the session whose secret is `secret`.
pub fn csrf_token(secret: &str) -> String {
    secrets::derive(secret, "csrf")
}

fn refused(message: impl Into<String>) -> DomainError {
    DomainError::Unauthenticated {
        code: "sign_in_failed",
        message: message.into(),
    }
}

fn minutes_left(until: &str, now: OffsetDateTime) -> i64 {
    parse_time(until)
        .map(|t| ((t - now).whole_seconds() + 59) / 60)
        .unwrap_or(LOCK_MINUTES)
        .max(1)
}

/// Signs a person in with email and password, or says why not (the same
/// words for an unknown email as for a wrong password).
pub async fn sign_in(state: &AppState, attempt: &SignIn) -> DomainResult<Started> {
    let email = attempt.email.trim().to_ascii_lowercase();
    let account = format!("account:{email}");
    let client = format!("client:{}", attempt.client);
    let now = OffsetDateTime::now_utc();
    for scope in [&account, &client] {
        let failures = state.store.sign_in_failures(scope).await?;
        if let Some(until) = failures
            .locked_until
            .as_deref()
            .filter(|until| parse_time(until).is_some_and(|t| t > now))
        {
            return Err(DomainError::Unauthenticated {
                code: "sign_in_locked",
                message: format!(
                    "Too many failed sign-ins for this account or from your address. \
                     Try again in {} minute(s).",
                    minutes_left(until, now)
                ),
            });
        }
    }
    let found = if email.is_empty() {
        None
    } else {
        state.store.credentials(&email).await?
    };
    let phc = found.as_ref().and_then(|c| c.password_hash.clone());
    let ok = passwords::verify_off_executor(attempt.password.clone(), phc).await;
    match (ok, found) {
        (true, Some(credentials)) => {
            start(
                state,
                credentials.user,
                &attempt.client,
                &attempt.user_agent,
                Some(&account),
            )
            .await
        }
        _ => Err(failed(state, &email, &[account, client], &attempt.client, now).await?),
    }
}

/// Counts a failed sign-in, records it, waits once failures pile up, and
/// returns the refusal to show.
async fn failed(
    state: &AppState,
    email: &str,
    scopes: &[String],
    client: &str,
    now: OffsetDateTime,
) -> DomainResult<DomainError> {
    let at = format_time(now);
    let window_start = format_time(now - time::Duration::minutes(WINDOW_MINUTES));
    let lock_until = format_time(now + time::Duration::minutes(LOCK_MINUTES));
    let mut tx = state.store.begin_write().await?;
    let mut most = 0;
    for scope in scopes {
        let counted =
            store::count_failure(&mut tx, scope, &at, &window_start, LOCK_AFTER, &lock_until)
                .await?;
        most = most.max(counted.failures);
    }
    crate::audit::append(
        &mut tx,
        &Actor::system(),
        NewEvent::new(
            None,
            "session.failed",
            email,
            json!({"client": client, "failures_in_a_row": most, "locked": most >= LOCK_AFTER}),
        ),
    )
    .await?;
    tx.commit().await?;
    if most >= LOCK_AFTER {
        return Ok(DomainError::Unauthenticated {
            code: "sign_in_locked",
            message: format!(
                "Too many failed sign-ins for this account or from your address. \
                 Try again in {LOCK_MINUTES} minutes."
            ),
        });
    }
    if most > SLOW_AFTER {
        tokio::time::sleep(Duration::from_secs((most - SLOW_AFTER).min(5) as u64)).await;
    }
    Ok(refused(
        "The email or password is not right. Check both and try again.",
    ))
}

/// Begins a session for `user` (after a sign-in, or an invite accepted in
/// the browser), clearing the account's failed sign-ins when `account` is
/// given.
pub async fn start(
    state: &AppState,
    user: User,
    client: &str,
    user_agent: &str,
    account: Option<&str>,
) -> DomainResult<Started> {
    let secret = secrets::generate(secrets::SESSION_PREFIX);
    let expires_at = store::now_plus(
        i64::try_from(state.config.session_lifetime_hours)
            .unwrap_or(i64::MAX / 3600)
            .saturating_mul(3600),
    );
    let user_agent: String = user_agent.chars().take(300).collect();
    let mut tx = state.store.begin_write().await?;
    if let Some(scope) = account {
        store::clear_failures(&mut tx, scope).await?;
    }
    let session = store::insert_session(
        &mut tx,
        user.id,
        &secret.hash,
        &expires_at,
        client,
        &user_agent,
    )
    .await?;
    let caller = Caller {
        user,
        token_id: None,
        session_id: Some(session.id),
    };
    record_installation(
        &mut tx,
        &caller,
        "session.create",
        &caller.user.email,
        json!({"session_id": session.id, "client": client, "expires_at": expires_at}),
    )
    .await?;
    tx.commit().await?;
    Ok(Started {
        session,
        secret: secret.plaintext,
        caller,
    })
}

/// The live session whose cookie holds `secret`, or why there is none
/// (`session_expired`). Records its use, at most once a minute.
pub async fn resolve(
    store: &Store,
    config: &crate::config::Config,
    secret: &str,
) -> DomainResult<Current> {
    let gone = |message: &str| DomainError::Unauthenticated {
        code: "session_expired",
        message: message.into(),
    };
    if !secrets::well_formed(secret, secrets::SESSION_PREFIX) {
        return Err(gone("Please sign in."));
    }
    let (session, user) = store
        .session_by_secret_hash(&secrets::hash(secret))
        .await?
        .ok_or_else(|| gone("Please sign in."))?;
    let now = OffsetDateTime::now_utc();
    let idle = time::Duration::minutes(
        i64::try_from(config.session_idle_minutes).unwrap_or(i64::MAX / 60),
    );
    let last_seen = parse_time(&session.last_seen_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if session.ended_at.is_some() {
        return Err(gone("You were signed out. Please sign in again."));
    }
    if parse_time(&session.expires_at).is_none_or(|end| end <= now) || now - last_seen > idle {
        return Err(gone("Your session has expired. Please sign in again."));
    }
    if (now - last_seen).whole_seconds() >= 60 {
        store.touch_session(session.id, &format_time(now)).await?;
    }
    Ok(Current {
        caller: Caller {
            user,
            token_id: None,
            session_id: Some(session.id),
        },
        csrf: csrf_token(secret),
        session,
    })
}

/// Ends the caller's current session ("Sign out").
pub async fn sign_out(state: &AppState, current: &Current) -> DomainResult<()> {
    end(state, &current.caller, current.session.id, "signed_out").await
}

/// Ends one of the caller's sessions (from the list of their sessions).
pub async fn end(state: &AppState, caller: &Caller, id: i64, reason: &str) -> DomainResult<()> {
    let mut tx = state.store.begin_write().await?;
    let session = store::end_session(&mut tx, caller.user.id, id).await?;
    record_installation(
        &mut tx,
        caller,
        "session.end",
        &caller.user.email,
        json!({"session_id": session.id, "reason": reason}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The caller's open sessions, newest first.
pub async fn list(state: &AppState, caller: &Caller) -> DomainResult<Vec<Session>> {
    Ok(state
        .store
        .open_sessions(caller.user.id, &store::now())
        .await?)
}

/// Sets the password of the user with `email` (for `create-admin
/// --password-stdin`), checking it against the rules.
pub async fn set_password(store: &Store, user: &User, password: &str) -> DomainResult<()> {
    passwords::check_new(password, &user.email, &user.name)?;
    let hash = passwords::hash_off_executor(password.to_owned()).await?;
    let mut tx = store.begin_write().await?;
    store::set_password_hash(&mut tx, user.id, &hash).await?;
    crate::audit::append(
        &mut tx,
        &Actor::system(),
        NewEvent::new(
            None,
            "user.password.set",
            &user.email,
            json!({"user_id": user.id}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the caller's password; with `end_others`, every other session
/// of theirs ends too. The current password is required when there is one;
/// someone who joined with the CLI alone has none yet and sets their first
/// one here (through an API token), so they can sign in to the web app.
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    current: Option<&str>,
    new: &str,
    end_others: bool,
) -> DomainResult<u64> {
    let stored = state.store.password_hash(caller.user.id).await?;
    let first = stored.is_none();
    if !first {
        let Some(current) = current.filter(|c| !c.is_empty()) else {
            return Err(DomainError::invalid(
                "current_password",
                "give your current password to change it",
            ));
        };
        if !passwords::verify_off_executor(current.to_owned(), stored).await {
            return Err(DomainError::invalid(
                "current_password",
                "the current password is not right",
            ));
        }
    }
    passwords::check_new(new, &caller.user.email, &caller.user.name)?;
    let hash = passwords::hash_off_executor(new.to_owned()).await?;
    let mut tx = state.store.begin_write().await?;
    store::set_password_hash(&mut tx, caller.user.id, &hash).await?;
    let ended = if end_others {
        store::end_other_sessions(&mut tx, caller.user.id, caller.session_id).await?
    } else {
        0
    };
    record_installation(
        &mut tx,
        caller,
        if first {
            "user.password.set"
        } else {
            "user.password.change"
        },
        &caller.user.email,
        json!({"other_sessions_ended": ended}),
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// Changes the caller's display name.
pub async fn rename(state: &AppState, caller: &Caller, name: &str) -> DomainResult<String> {
    let name = validate::text("name", name, 100)?;
    let mut tx = state.store.begin_write().await?;
    store::set_user_name(&mut tx, caller.user.id, &name).await?;
    record_installation(
        &mut tx,
        caller,
        "user.rename",
        &caller.user.email,
        json!({"name": name}),
    )
    .await?;
    tx.commit().await?;
    Ok(name)
}
