//! The domain layer: every rule of Vigilo, once.
//!
//! Each state change is one function here. It takes the caller's resolved
//! [`Access`](crate::domain::authz::Access) (who, in which workspace, holding which
//! permissions) or, for installation-wide changes, the
//! [`Caller`](crate::domain::authz::Caller), and a typed input. It checks the
//! permission, applies the rules, opens the write transaction, appends the
//! audit event in it, commits, and returns a typed result or a
//! [`DomainError`].
//!
//! Each function is handed the [`Context`] it works with (the store, the
//! plugins, the integrations runtime, the secrets, the signer, the mail
//! queue's bell): never the server's whole state, so nothing of the edges
//! or the scheduler reaches a rule. What sits above the domain and a rule
//! needs (the scheduler, to run a task now) is handed in as a trait
//! ([`tasks::TaskRunner`]).
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
//! | [`authz`] | who the caller is ([`Caller`]), what they hold in a workspace ([`Access`]), and the permission checks every function starts with |
//! | [`work_items`] | the three workflows, creating, editing and moving changes, incidents and tasks |
//! | [`workflow`] | checking a kind named in a request against the three workflows (the table itself is [`crate::model::workflow`], a leaf every layer may read) |
//! | [`search`] | finding work items: a kind's list searched, filtered, ordered and paged, and the quick search by number or title |
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
//! | [`playbooks`] | playbook definitions, runs and dry runs, and their records; the engine that executes their steps ([`playbooks::engine`]) |
//! | [`plugins`] | enabling and disabling plugins, and recording the registry's events |
//! | [`tasks`] | running a periodic task on demand |
//! | [`audit`] | reading, following and verifying the audit log, and checkpoints |
//! | [`paging`] | reading long lists (members, invites) a page at a time |
//! | [`validate`] | input checks shared by every area |
//! | `schemas` | the input rules many fields share, as the API document's schemas |

pub mod audit;
pub mod authz;
pub mod certificates;
pub mod comments;
mod context;
pub mod dashboards;
mod error;
pub mod fields;
pub mod integrations;
pub mod invites;
pub mod members;
pub mod paging;
pub mod passwords;
pub mod playbooks;
pub mod plugin_calls;
pub mod plugins;
pub mod roles;
pub(crate) mod schemas;
pub mod search;
pub mod sessions;
pub mod tasks;
pub mod templates;
pub mod time_zones;
pub mod tokens;
pub mod validate;
pub mod work_items;
pub mod workflow;
pub mod workspaces;

use serde_json::Value;

use crate::audit::NewEvent;
use crate::store::{IdempotencyClaim, WriteTx};

pub use authz::{Access, Caller};
pub use context::Context;
pub use error::{DomainError, DomainResult, PluginFailure};

/// What the rules of work items and custom fields reach: the store, and
/// the plugins that validate custom field values. The server's state has
/// both, and so does what answers plugins' host calls.
pub trait Reach: Send + Sync {
    /// The store.
    fn store(&self) -> &crate::store::Store;
    /// The loaded plugins.
    fn plugins(&self) -> &std::sync::Arc<crate::plugins::Plugins>;
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
    crate::store::audit::append(
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
    crate::store::audit::append(
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
