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
//! Sign-in attempts are counted per account and per client address, and
//! each attempt is counted *before* its password is checked, in one atomic
//! statement, so concurrent guesses on any number of servers sharing the
//! database cannot slip past the count; a successful attempt gives its
//! count back. After [`SLOW_AFTER`] failures within [`WINDOW_MINUTES`]
//! every answer waits a little longer; after [`LOCK_AFTER`] the account (or
//! the address) is refused for [`LOCK_MINUTES`] minutes, even with the right
//! password. An unknown email is treated exactly like a known one with a
//! wrong password, so nothing tells an attacker which accounts exist.
//!
//! So that an attacker who keeps guessing cannot keep the account's owner
//! out, a browser that signed in to an account before is a *known device*
//! of that account (a cookie sealed with the server's secrets key, naming
//! the account): its attempts are counted on their own, not against the
//! account or the address, so a lock caused by others does not stop it. A
//! platform admin can also clear an account's counts and hand its owner a
//! link that makes a new browser a known device ([`unlock`], `vigilo-server
//! unlock-sign-in`). Audited as `session.create`, `session.end`,
//! `session.failed` and `session.unlock`.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::{passwords, record_installation, validate, DomainError, DomainResult};
use crate::audit::{Actor, NewEvent};
use crate::domain::authz::Caller;
use crate::domain::Context;
use crate::secretbox::SecretBox;
use crate::secrets;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{self, format_time, parse_time, Store};

mod devices;

pub use devices::{device_from_unlock_link, new_device, DEVICE_DAYS, UNLOCK_LINK_MINUTES};
use devices::{open_device, seal_device, DeviceSeal};

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
    /// The browser's known-device cookie, if it sent one.
    pub device: Option<String>,
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
    /// A new known-device cookie for the browser, when it did not already
    /// hold a good one for this account.
    pub device: Option<String>,
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

/// What sign-in attempts are counted against, and what a success does to
/// the count.
enum Scope {
    /// Every attempt at one account from browsers that are not its known
    /// devices (cleared by a success).
    Account(String),
    /// Every attempt from one client address, at any account (a success
    /// gives back only its own attempt).
    Client(String),
    /// Every attempt from one known device of an account (cleared by a
    /// success).
    Device(String),
}

impl Scope {
    fn key(&self) -> &str {
        match self {
            Scope::Account(k) | Scope::Client(k) | Scope::Device(k) => k,
        }
    }
}

fn account_scope(email: &str) -> String {
    format!("account:{email}")
}

fn device_scope_prefix(user_id: i64) -> String {
    format!("device:{user_id}:")
}

fn locked(minutes: i64) -> DomainError {
    DomainError::Unauthenticated {
        code: "sign_in_locked",
        message: format!(
            "Too many failed sign-ins for this account or from your address. \
             Try again in {minutes} minute(s). If this is your account, sign in \
             from a browser you have signed in with before, or ask a platform \
             admin to unlock it."
        ),
    }
}

/// Signs a person in with email and password, or says why not (the same
/// words for an unknown email as for a wrong password).
pub async fn sign_in(state: &Context, attempt: &SignIn) -> DomainResult<Started> {
    let email = attempt.email.trim().to_ascii_lowercase();
    let now = OffsetDateTime::now_utc();
    let found = if email.is_empty() {
        None
    } else {
        state.store.credentials(&email).await?
    };
    // A known device of this account is counted on its own; anyone else
    // against the account and against their address.
    let device = found.as_ref().and_then(|c| {
        let (user_id, nonce) = open_device(
            &state.secrets,
            DeviceSeal::Cookie,
            attempt.device.as_deref()?,
        )?;
        (user_id == c.user.id).then(|| format!("{}{nonce}", device_scope_prefix(user_id)))
    });
    let known_device = device.is_some();
    let scopes = match device {
        Some(device) => vec![Scope::Device(device)],
        None => vec![
            Scope::Account(account_scope(&email)),
            Scope::Client(format!("client:{}", attempt.client)),
        ],
    };
    for scope in &scopes {
        let failures = state.store.sign_in_failures(scope.key()).await?;
        if let Some(until) = failures
            .locked_until
            .as_deref()
            .filter(|until| parse_time(until).is_some_and(|t| t > now))
        {
            return Err(locked(minutes_left(until, now)));
        }
    }
    // Count the attempt before checking the password: however many arrive
    // at once, only the first LOCK_AFTER are checked.
    let counted = count_attempt(state, &scopes, now).await?;
    if counted > LOCK_AFTER {
        return Err(locked(LOCK_MINUTES));
    }
    let phc = found.as_ref().and_then(|c| c.password_hash.clone());
    let ok = passwords::verify_off_executor(attempt.password.clone(), phc).await;
    match (ok, found) {
        (true, Some(credentials)) => {
            let mut started = start_counted(
                state,
                credentials.user,
                &attempt.client,
                &attempt.user_agent,
                &scopes,
            )
            .await?;
            if !known_device {
                started.device = Some(new_device(&state.secrets, started.caller.user.id));
            }
            Ok(started)
        }
        _ => Err(failed(state, &email, counted, &attempt.client).await?),
    }
}

/// Counts one attempt on every scope, in one transaction; returns the
/// highest count.
async fn count_attempt(
    state: &Context,
    scopes: &[Scope],
    now: OffsetDateTime,
) -> DomainResult<i64> {
    let at = format_time(now);
    let window_start = format_time(now - time::Duration::minutes(WINDOW_MINUTES));
    let lock_until = format_time(now + time::Duration::minutes(LOCK_MINUTES));
    let mut tx = state.store.begin_write().await?;
    let mut most = 0;
    for scope in scopes {
        let counted = store::sessions::count_attempt(
            &mut tx,
            scope.key(),
            &at,
            &window_start,
            LOCK_AFTER,
            &lock_until,
        )
        .await?;
        most = most.max(counted.failures);
    }
    tx.commit_unclaimed().await?;
    Ok(most)
}

/// Records a failed sign-in (already counted), waits once failures pile
/// up, and returns the refusal to show.
async fn failed(
    state: &Context,
    email: &str,
    failures: i64,
    client: &str,
) -> DomainResult<DomainError> {
    let mut tx = state.store.begin_write().await?;
    crate::store::audit::append(
        &mut tx,
        &Actor::system(),
        NewEvent::new(
            None,
            "session.failed",
            email,
            json!({"client": client, "failures_in_a_row": failures, "locked": failures >= LOCK_AFTER}),
        ),
    )
    .await?;
    tx.commit().await?;
    if failures >= LOCK_AFTER {
        return Ok(locked(LOCK_MINUTES));
    }
    if failures > SLOW_AFTER {
        tokio::time::sleep(Duration::from_secs((failures - SLOW_AFTER).min(5) as u64)).await;
    }
    Ok(refused(
        "The email or password is not right. Check both and try again.",
    ))
}

/// Begins a session for `user` (after a sign-in, or an invite accepted in
/// the browser), giving back the counts the sign-in attempt took on
/// `scopes`.
async fn start_counted(
    state: &Context,
    user: User,
    client: &str,
    user_agent: &str,
    scopes: &[Scope],
) -> DomainResult<Started> {
    let secret = secrets::generate(secrets::SESSION_PREFIX);
    let expires_at = store::now_plus(
        i64::try_from(state.config.session_lifetime_hours)
            .unwrap_or(i64::MAX / 3600)
            .saturating_mul(3600),
    );
    let user_agent: String = user_agent.chars().take(300).collect();
    let mut tx = state.store.begin_write().await?;
    for scope in scopes {
        match scope {
            Scope::Account(key) | Scope::Device(key) => {
                store::sessions::clear_failures(&mut tx, key).await?;
            }
            Scope::Client(key) => {
                store::sessions::release_attempt(&mut tx, key, LOCK_AFTER).await?
            }
        }
    }
    let session = store::sessions::insert_session(
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
        plugin: None,
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
        device: None,
    })
}

/// Begins a session for `user` who has just proven who they are another
/// way (an invite accepted in the browser).
pub async fn start(
    state: &Context,
    user: User,
    client: &str,
    user_agent: &str,
) -> DomainResult<Started> {
    start_counted(state, user, client, user_agent, &[]).await
}

/// What a platform admin's unlock did.
#[derive(Debug, Clone)]
pub struct Unlocked {
    /// The person.
    pub user: User,
    /// How many counts were cleared (the account's, its known devices').
    pub cleared: u64,
    /// The path of a link, valid for [`UNLOCK_LINK_MINUTES`], that makes
    /// the browser that opens it a known device of the account.
    pub link_path: String,
}

/// Clears the failed sign-ins counted against the account with `email`
/// and its known devices, and makes an unlock link for its owner (the
/// platform admin's `vigilo-server unlock-sign-in`). Addresses' counts are
/// left alone: they may be an attacker's. Audited as `session.unlock`.
pub async fn unlock(store: &Store, secrets: &SecretBox, email: &str) -> DomainResult<Unlocked> {
    let email = validate::email("email", email)?;
    let user = store
        .credentials(&email)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("no user with the email {email}")))?
        .user;
    let mut tx = store.begin_write().await?;
    let mut cleared = store::sessions::clear_failures(&mut tx, &account_scope(&email)).await?;
    cleared +=
        store::sessions::clear_failures_with_prefix(&mut tx, &device_scope_prefix(user.id)).await?;
    crate::store::audit::append(
        &mut tx,
        &Actor::system(),
        NewEvent::new(
            None,
            "session.unlock",
            &email,
            json!({"user_id": user.id, "counts_cleared": cleared}),
        ),
    )
    .await?;
    tx.commit().await?;
    let token = seal_device(
        secrets,
        DeviceSeal::Link,
        user.id,
        time::Duration::minutes(UNLOCK_LINK_MINUTES),
    );
    Ok(Unlocked {
        user,
        cleared,
        link_path: format!("/login/device/{token}"),
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
            plugin: None,
        },
        csrf: csrf_token(secret),
        session,
    })
}

/// Ends the caller's current session ("Sign out").
pub async fn sign_out(state: &Context, current: &Current) -> DomainResult<()> {
    end(state, &current.caller, current.session.id, "signed_out").await
}

/// Ends one of the caller's sessions (from the list of their sessions).
pub async fn end(state: &Context, caller: &Caller, id: i64, reason: &str) -> DomainResult<()> {
    let mut tx = state.store.begin_write().await?;
    let session = store::sessions::end_session(&mut tx, caller.user.id, id).await?;
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
pub async fn list(state: &Context, caller: &Caller) -> DomainResult<Vec<Session>> {
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
    store::sessions::set_password_hash(&mut tx, user.id, &hash).await?;
    crate::store::audit::append(
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
    state: &Context,
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
    store::sessions::set_password_hash(&mut tx, caller.user.id, &hash).await?;
    let ended = if end_others {
        store::sessions::end_other_sessions(&mut tx, caller.user.id, caller.session_id).await?
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
pub async fn rename(state: &Context, caller: &Caller, name: &str) -> DomainResult<String> {
    let name = validate::text("name", name, 100)?;
    let mut tx = state.store.begin_write().await?;
    store::sessions::set_user_name(&mut tx, caller.user.id, &name).await?;
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
