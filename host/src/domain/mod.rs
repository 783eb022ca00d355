//! The domain layer: every rule of Vigilo, once.
//!
//! Each state change is one function here. It takes the caller's resolved
//! [`Access`](crate::authz::Access) (who, in which workspace, holding which
//! permissions) or, for installation-wide changes, the
//! [`Caller`](crate::authz::Caller), and a typed input. It checks the
//! permission, applies the rules, opens the write transaction, appends the
//! audit event in it, commits, and returns a typed result or a
//! [`DomainError`].
//!
//! Everything that changes state calls these functions: the JSON API
//! (`http/`), the web pages, the playbook engine and the plugins' host
//! callbacks. None of them opens a write transaction itself, and only
//! [`crate::store`] holds SQL.
//!
//! One module per area:
//!
//! | module | owns |
//! | --- | --- |
//! | [`work_items`] | the three workflows, creating, editing and moving changes, incidents and tasks |
//! | [`fields`] | custom field definitions and the validation of their values (built-in types here, plugin types through their plugin) |
//! | [`workspaces`] | creating workspaces (from templates), their settings, and what a caller can see |
//! | [`templates`] | the export document ([`templates::Snapshot`]) and workspace templates |
//! | [`roles`] | the permission matrix shown to people, custom roles, and "nobody grants what they do not hold" |
//! | [`members`] | the member list (a page at a time), changing roles and removing members |
//! | [`invites`] | single and bulk invites (with a preview), the invite mail, accepting an invite |
//! | [`tokens`] | API tokens and the first platform admin |
//! | [`passwords`] | the rules a password must pass, and Argon2id hashing |
//! | [`sessions`] | signing in to the web app, sessions and their expiry, throttling failed sign-ins |
//! | [`dashboards`] | rendering a dashboard through its widgets' plugins, adding, removing and ordering widgets |
//! | [`certificates`] | the certificate inventory |
//! | [`integrations`] | configuring integrations, test messages and the delivery log |
//! | [`playbooks`] | playbook definitions, runs and dry runs, and their records |
//! | [`plugins`] | enabling and disabling plugins, and recording the registry's events |
//! | [`tasks`] | running a periodic task on demand |
//! | [`audit`] | reading, following and verifying the audit log, and checkpoints |
//! | [`paging`] | reading long lists (members, invites) a page at a time |
//! | [`validate`] | input checks shared by every area |

pub mod audit;
pub mod certificates;
pub mod dashboards;
pub mod fields;
pub mod integrations;
pub mod invites;
pub mod members;
pub mod paging;
pub mod passwords;
pub mod playbooks;
pub mod plugins;
pub mod roles;
pub mod sessions;
pub mod tasks;
pub mod templates;
pub mod tokens;
pub mod validate;
pub mod work_items;
pub mod workspaces;

use serde_json::Value;

use crate::audit::NewEvent;
use crate::authz::{Access, Caller};
use crate::plugins::PluginCallError;
use crate::store::{IdempotencyClaim, StoreError, WriteTx};

/// Why a domain operation did not happen. It says *what* went wrong; the
/// API (`error.rs`) and the web pages each decide how to show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A value is invalid. `field` is the path of the offending field, such
    /// as `title`, `fields.due` or `steps[2].url`.
    #[error("{message}")]
    Invalid {
        /// Path of the field, when there is one.
        field: Option<String>,
        /// What is wrong, in the user's terms.
        message: String,
    },
    /// The caller is known but lacks a permission (or `platform_admin`).
    #[error("{message}")]
    Forbidden {
        /// The permission (or `platform_admin`, `invitee`) that is missing.
        missing: String,
        /// A sentence naming it.
        message: String,
    },
    /// The caller must prove who they are first.
    #[error("{message}")]
    Unauthenticated {
        /// Stable code: `unauthenticated`, `token_invalid`, `token_expired`,
        /// `token_revoked`, `session_expired`, `sign_in_failed`,
        /// `sign_in_locked`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The named thing does not exist (or is not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// A file or text the caller sent cannot be read as what it should be
    /// (a CSV with the wrong header, for example).
    #[error("{message}")]
    Unreadable {
        /// Stable code such as `invalid_csv`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A plugin failed, panicked, crashed, is not loaded, is busy or timed
    /// out.
    #[error("{message}")]
    Plugin {
        /// What happened.
        failure: PluginFailure,
        /// A sentence naming the plugin.
        message: String,
        /// The field whose value the plugin was checking, if it was
        /// checking one (`fields.window`).
        field: Option<String>,
    },
    /// The server is shutting down and ended a wait early; the caller
    /// should reconnect (to this server once it is back, or another replica).
    #[error("the server is shutting down; reconnect")]
    ShuttingDown,
    /// Something failed inside the server; the detail is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a plugin call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginFailure {
    /// It returned an error or nonsense.
    Failed,
    /// It panicked (the SDK caught it).
    Panicked,
    /// No loaded plugin provides what was asked for, or it is busy.
    Unavailable,
    /// It did not answer in time.
    TimedOut,
    /// Its worker process crashed (or was stopped) while serving the call.
    Crashed,
}

/// Result of a domain operation.
pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    /// An invalid value of `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A missing permission.
    pub fn forbidden(missing: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Forbidden {
            missing: missing.into(),
            message: message.into(),
        }
    }

    /// No plugin provides what was asked for.
    pub fn plugin_unavailable(message: impl Into<String>) -> Self {
        Self::Plugin {
            failure: PluginFailure::Unavailable,
            message: message.into(),
            field: None,
        }
    }

    /// The same error, about the value of `field` when a plugin failed
    /// checking it. Other errors are returned unchanged.
    pub fn at_field(self, field: &str) -> Self {
        match self {
            Self::Plugin {
                failure, message, ..
            } => Self::Plugin {
                failure,
                message,
                field: Some(field.to_owned()),
            },
            other => other,
        }
    }

    /// The same error with its field path placed under `prefix`: a
    /// `key` inside `snapshot.custom_fields` becomes
    /// `snapshot.custom_fields.key`. Other errors are returned unchanged.
    pub fn under(self, prefix: &str) -> Self {
        match self {
            Self::Invalid { field, message } => Self::Invalid {
                field: Some(match field {
                    Some(field) if !field.is_empty() => format!("{prefix}.{field}"),
                    _ => prefix.to_owned(),
                }),
                message,
            },
            Self::Plugin {
                failure,
                message,
                field: Some(field),
            } => Self::Plugin {
                failure,
                message,
                field: Some(format!("{prefix}.{field}")),
            },
            other => other,
        }
    }

    /// The field path of an invalid value.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Database(e) => Self::Internal(e.to_string()),
            StoreError::Corrupt(what) => Self::Internal(what),
        }
    }
}

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<PluginCallError> for DomainError {
    fn from(e: PluginCallError) -> Self {
        let message = e.to_string();
        let failure = match e {
            PluginCallError::Rejected { .. } => {
                return Self::Invalid {
                    field: None,
                    message,
                }
            }
            PluginCallError::Failed { .. } => PluginFailure::Failed,
            PluginCallError::Panicked { .. } => PluginFailure::Panicked,
            PluginCallError::Unavailable { .. }
            | PluginCallError::Busy { .. }
            | PluginCallError::Restarting { .. } => PluginFailure::Unavailable,
            PluginCallError::TimedOut { .. } => PluginFailure::TimedOut,
            PluginCallError::Crashed { .. } => PluginFailure::Crashed,
        };
        Self::Plugin {
            failure,
            message,
            field: None,
        }
    }
}

/// Appends the audit event of a change `access`'s caller makes in its
/// workspace, inside the change's transaction.
pub(crate) async fn record(
    tx: &mut WriteTx,
    access: &Access,
    action: &'static str,
    target: impl Into<String>,
    details: Value,
) -> DomainResult<()> {
    crate::audit::append(
        tx,
        &access.actor(),
        NewEvent::new(Some(access.workspace.id), action, target, details),
    )
    .await?;
    Ok(())
}

/// Appends the audit event of an installation-wide change `caller` makes
/// (to the installation's chain), inside the change's transaction.
pub(crate) async fn record_installation(
    tx: &mut WriteTx,
    caller: &Caller,
    action: &'static str,
    target: impl Into<String>,
    details: Value,
) -> DomainResult<()> {
    crate::audit::append(
        tx,
        &caller.actor(),
        NewEvent::new(None, action, target, details),
    )
    .await?;
    Ok(())
}

/// Runs `work` in a task of its own and waits for it, so that it completes
/// (and is recorded and audited) even if the caller stops waiting, for
/// example when an HTTP client disconnects. The caller's `Idempotency-Key`
/// claim is handed to the task (a task-local does not follow a spawn), so
/// the work's first commit records the key and a keyed run runs once.
pub(crate) async fn detached<T, F>(what: &str, work: F) -> DomainResult<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = DomainResult<T>> + Send + 'static,
{
    let claim = IdempotencyClaim::current();
    tokio::spawn(IdempotencyClaim::carry(claim, work))
        .await
        .map_err(|e| DomainError::Internal(format!("{what} did not complete: {e}")))?
}
