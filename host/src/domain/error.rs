//! [`DomainError`]: why a domain operation did not happen, in terms the API
//! and the web pages each turn into their own answer.

use std::fmt;

use crate::integrations::IntegrationError;
use crate::plugins::PluginCallError;
use crate::store::{Clash, Missing, StoreError, Taken};

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
        /// The same for a person, in words (no codes), when known: "You
        /// need permission to … in Platform; your role is Viewer."
        words: Option<String>,
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
            words: None,
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
            StoreError::NotFound(what) => Self::NotFound(what.to_string()),
            StoreError::Conflict(why) => Self::Conflict(why.to_string()),
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

impl From<IntegrationError> for DomainError {
    fn from(e: IntegrationError) -> Self {
        match e {
            IntegrationError::Invalid { field, message } => Self::invalid(field, message),
            IntegrationError::NotReady(message) => Self::Conflict(message),
            IntegrationError::AdapterMissing(message) => Self::plugin_unavailable(message),
            IntegrationError::Plugin(e) => Self::from(e),
            IntegrationError::Store(e) => Self::from(e),
            IntegrationError::Internal(detail) => Self::Internal(detail),
        }
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
            PluginCallError::Failed { .. } | PluginCallError::Unsupported { .. } => {
                PluginFailure::Failed
            }
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

/// How a missing thing is named to people (and to API clients and plugins).
impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Template(name) => write!(f, "no template named `{name}`"),
            Missing::Session(id) => write!(f, "you have no session {id}"),
            Missing::Token(id) => write!(f, "you have no token with id {id}"),
            Missing::Certificate(id) => write!(f, "no certificate {id} in this workspace"),
            Missing::CustomField(key) => write!(f, "no custom field `{key}` in this workspace"),
            Missing::Widget(id) => write!(f, "no widget {id} on this dashboard"),
            Missing::Invite(id) => write!(f, "no invite with id {id} in this workspace"),
            Missing::Integration(name) => write!(f, "no integration `{name}` in this workspace"),
            Missing::Playbook(name) => write!(f, "no playbook `{name}` in this workspace"),
            Missing::PlaybookRun(id) => write!(f, "no playbook run {id} in this workspace"),
            Missing::CustomRole(name) => {
                write!(f, "no custom role named `{name}` in this workspace")
            }
            Missing::WorkItem(id) => write!(f, "no work item {id} in this workspace"),
            Missing::Comment { id, item } => write!(f, "no comment {id} on work item {item}"),
        }
    }
}

/// How a conflict with what is stored is told to people.
impl fmt::Display for Clash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clash::KeyTaken => {
                f.write_str("another request with this Idempotency-Key was carried out first")
            }
            Clash::Taken(taken) => taken.fmt(f),
            Clash::KvFull { held } => write!(
                f,
                "the store already holds {held} entries, the most it may (delete some first)"
            ),
            Clash::InviteNotPending { id, status } => {
                write!(f, "invite {id} is {status} and cannot be revoked")
            }
            Clash::InviteNoLongerPending => f.write_str("this invite is no longer pending"),
            Clash::RoleInUse {
                name,
                holders,
                invites,
            } => write!(
                f,
                "custom role `{name}` is held by {holders} member(s) and named in {invites} \
                 open invite(s); change those first"
            ),
            Clash::TaskJustStarted(task) => {
                write!(f, "task `{task}` was just started; try again in a moment")
            }
            Clash::TaskRunning { task, reason } => write!(
                f,
                "task `{task}` is already running ({reason}); try again when it has finished"
            ),
        }
    }
}

impl fmt::Display for Taken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Taken::TemplateName(name) => write!(f, "a template named `{name}` already exists"),
            Taken::Certificate(fingerprint) => write!(
                f,
                "this workspace already has the certificate with fingerprint {fingerprint}"
            ),
            Taken::CustomFieldKey(key) => {
                write!(f, "a custom field with key `{key}` already exists")
            }
            Taken::UserEmail(email) => write!(f, "a user with email {email} already exists"),
            Taken::IntegrationName(name) => write!(
                f,
                "an integration named `{name}` already exists in this workspace"
            ),
            Taken::PlaybookName(name) => {
                write!(
                    f,
                    "a playbook named `{name}` already exists in this workspace"
                )
            }
            Taken::WorkspaceSlug(slug) => write!(f, "the slug `{slug}` is already taken"),
            Taken::Membership => f.write_str("already a member of this workspace"),
            Taken::CustomRoleName(name) => write!(
                f,
                "a custom role named `{name}` already exists in this workspace"
            ),
        }
    }
}
