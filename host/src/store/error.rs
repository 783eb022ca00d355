//! [`StoreError`]: why a store operation failed. What was not found
//! ([`Missing`]) and what a write clashes with ([`Clash`]) are facts; the
//! domain words them for people.

/// A failed store operation, classified for the domain layer: what was not
/// found ([`Missing`]) or what a write clashes with ([`Clash`]) are facts,
/// and the domain words them for people (`domain/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(Missing),
    /// The write conflicts with what is stored (for example a taken name).
    #[error("{0}")]
    Conflict(Clash),
    /// Stored data could not be read back.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// What a read or a write did not find: a fact, which the domain words
/// for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A workspace template, by name.
    Template(String),
    /// One of the caller's sessions, by id.
    Session(i64),
    /// One of the caller's API tokens, by id.
    Token(i64),
    /// A certificate of the workspace, by id.
    Certificate(i64),
    /// A custom field of the workspace, by key.
    CustomField(String),
    /// A widget of the workspace's dashboard, by id.
    Widget(i64),
    /// An invite of the workspace, by id.
    Invite(i64),
    /// An integration of the workspace, by id or name.
    Integration(String),
    /// A playbook of the workspace, by id or name.
    Playbook(String),
    /// A playbook run of the workspace, by id.
    PlaybookRun(i64),
    /// A custom role of the workspace, by name.
    CustomRole(String),
    /// A work item of the workspace, by id.
    WorkItem(i64),
    /// A comment on a work item.
    Comment {
        /// The comment.
        id: i64,
        /// The work item.
        item: i64,
    },
}

/// Why a write conflicts with what is stored: a fact, which the domain
/// words for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    /// Another request recorded this `Idempotency-Key` first.
    KeyTaken,
    /// The name is taken.
    Taken(Taken),
    /// A plugin's key-value store already holds its most entries.
    KvFull {
        /// How many it holds.
        held: i64,
    },
    /// The invite is no longer pending (accepted, revoked or expired).
    InviteNotPending {
        /// The invite.
        id: i64,
        /// Its status now.
        status: super::invites::InviteStatus,
    },
    /// The invite stopped being pending while it was being accepted.
    InviteNoLongerPending,
    /// A custom role is still held or offered.
    RoleInUse {
        /// The role.
        name: String,
        /// Members who hold it.
        holders: i64,
        /// Open invites that name it.
        invites: i64,
    },
    /// A periodic task's run was claimed by another start a moment ago.
    TaskJustStarted(String),
    /// A periodic task is still running.
    TaskRunning {
        /// The task.
        task: String,
        /// Why it counts as running.
        reason: String,
    },
}

/// Which unique name a write would have taken twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// A template's name.
    TemplateName(String),
    /// A certificate already in the workspace, by fingerprint.
    Certificate(String),
    /// A custom field's key.
    CustomFieldKey(String),
    /// A user's email.
    UserEmail(String),
    /// An integration's name in the workspace.
    IntegrationName(String),
    /// A playbook's name in the workspace.
    PlaybookName(String),
    /// A workspace's slug.
    WorkspaceSlug(String),
    /// The person is a member already.
    Membership,
    /// A custom role's name in the workspace.
    CustomRoleName(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Whether `e` is a unique-key violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps a unique-key violation to `Conflict(clash)`, anything else to `Database`.
pub fn conflict_on_unique(clash: impl FnOnce() -> Clash) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(clash())
        } else {
            StoreError::Database(e)
        }
    }
}
