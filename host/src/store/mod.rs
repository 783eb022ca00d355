//! Storage: one `Store` over SQLite (the embedded default) or PostgreSQL.
//!
//! Queries are written once, in the SQL both dialects share, with `$1`-style
//! placeholders, and run through sqlx's `Any` driver at runtime, so nothing
//! needs a live database to compile. Where the dialects differ (row locks,
//! the migrations themselves) the code asks [`Store::backend`].
//!
//! Each area's rows, reads and writes are a module of their own, addressed
//! by path (`store::work_items::update_work_item`,
//! `store::workspaces::Workspace`); reads that need no transaction are
//! methods of [`Store`].
//!
//! Writes go through [`Store::begin_write`]: every write function takes the
//! [`WriteTx`] it returns, which lets no one outside the store reach its
//! connection. On SQLite it serialises writers inside the process, on one
//! connection of their own (whose page cache so stays warm from one write
//! to the next), and takes SQLite's write lock at the start of the
//! transaction, so concurrent requests queue instead of failing with
//! "database is locked". On PostgreSQL it is a plain transaction; chains
//! that must not fork (the audit log) take row locks.

pub mod audit;
mod batch;
pub mod certificates;
pub mod comments;
mod connect;
pub mod custom_fields;
pub mod dashboards;
mod error;
mod idempotency;
pub mod integrations;
pub mod invites;
mod item_search;
mod migrate;
mod paging;
pub mod plugin_kv;
pub mod plugin_policies;
pub mod sessions;
pub mod tasks;
pub mod templates;
pub mod users;
pub mod work_items;
pub mod workspaces;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::any::AnyConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use crate::clock::{format_time, now, now_plus, parse_time};
pub use batch::{ItemCreate, MAX_BATCH};
use connect::{pool_options, sqlite_pool, sqlite_url, READER_CACHE_KIB, WRITER_CACHE_KIB};
pub use error::{
    conflict_on_unique, is_unique_violation, Clash, Missing, StoreError, StoreResult, Taken,
};
pub use idempotency::{IdempotencyClaim, Outcome as KeyOutcome, StoredKey};
pub use item_search::{ItemFilter, ItemOrder, ItemsAt};
use paging::Keyset;
pub use paging::{Page, PageAt};

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The `VALUES` list of a statement inserting `rows` rows of `columns`
/// values each. On SQLite the placeholders are anonymous (`?`): SQLite finds
/// a numbered placeholder's name by walking the list of names, so binding
/// thousands of `$N` costs time that grows with the square of their number.
pub fn values_list(backend: Backend, rows: usize, columns: usize) -> String {
    let row = |r: usize| -> String {
        let values: Vec<String> = (1..=columns)
            .map(|c| match backend {
                Backend::Sqlite => "?".to_owned(),
                Backend::Postgres => format!("${}", r * columns + c),
            })
            .collect();
        format!("({})", values.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// The database handle shared by the whole server.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite file only: the one connection writes go through.
    writer: Option<AnyPool>,
    backend: Backend,
    /// SQLite only: one writer at a time inside this process.
    write_gate: Option<Arc<Mutex<()>>>,
    /// SQLite only: the database file.
    sqlite_path: Option<std::path::PathBuf>,
    /// SQLite only: audit chain heads this process committed.
    heads: Option<HeadCache>,
    /// Work item creates waiting to be written together.
    creates: Arc<batch::CreateLanes>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// SQLite only: the audit chains' heads as this process last committed them,
/// so an append needs no statement to read its chain's head. Only touched
/// while the write gate is held. A head changed by another process is
/// caught by the `UNIQUE (chain_id, seq)` constraint, and the appender then
/// reads the head from the database (see `audit::ChainAppender`).
pub type HeadCache = Arc<std::sync::Mutex<std::collections::HashMap<i64, (i64, String)>>>;

/// A write transaction. Commit it with [`WriteTx::commit`]; dropping it rolls back.
pub struct WriteTx {
    tx: Option<sqlx::Transaction<'static, Any>>,
    backend: Backend,
    heads: Option<HeadCache>,
    /// Heads appended in this transaction, published to `heads` on commit.
    pending_heads: Vec<(i64, i64, String)>,
    /// Run once the changes are visible (see [`WriteTx::after_commit`]).
    after_commit: Vec<Box<dyn FnOnce() + Send>>,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// What a read the store offers inside a transaction runs on: the write
/// transaction the caller holds (to read what it is about to change), or,
/// inside the store, a connection of the pool. Nothing outside the store
/// reaches the connection itself: only the store can make the [`Sealed`]
/// that asks for it.
pub trait Reads: Send {
    #[doc(hidden)]
    fn connection(&mut self, _: Sealed) -> &mut AnyConnection;
}

/// The store's own key to a [`Reads`]'s connection.
pub struct Sealed(());

impl Reads for WriteTx {
    fn connection(&mut self, _: Sealed) -> &mut AnyConnection {
        self.conn()
    }
}

impl Reads for sqlx::pool::PoolConnection<Any> {
    fn connection(&mut self, _: Sealed) -> &mut AnyConnection {
        self
    }
}

/// The connection a read runs on.
pub(in crate::store) fn reading(reads: &mut impl Reads) -> &mut AnyConnection {
    reads.connection(Sealed(()))
}

impl WriteTx {
    /// The transaction's connection, for the store's own statements: no
    /// code outside the store reaches it, so every write goes through a
    /// store function.
    pub(in crate::store) fn conn(&mut self) -> &mut AnyConnection {
        self.tx.as_mut().expect("transaction already finished")
    }

    /// The backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Commits. The first transaction a request with an `Idempotency-Key`
    /// commits also records the key, and is then held open until the
    /// request has its answer, which is stored in it (see
    /// [`IdempotencyClaim`]): it becomes visible to other connections when
    /// the request answers or opens its next write transaction. Use
    /// [`WriteTx::commit_now`] when something outside the database must
    /// follow the commit.
    pub async fn commit(self) -> StoreResult<()> {
        match idempotency::pending_claim() {
            Some(claim) => idempotency::park(&claim, self).await,
            None => self.commit_unclaimed().await?,
        }
        Ok(())
    }

    /// Commits at once, recording a pending idempotency key like
    /// [`WriteTx::commit`] but without waiting for the request's answer:
    /// for a change that something outside the database (the plugin
    /// registry, a file) follows.
    pub async fn commit_now(mut self) -> StoreResult<()> {
        let claim = idempotency::record_claim(&mut self).await?;
        self.commit_unclaimed().await?;
        idempotency::claim_committed(claim);
        Ok(())
    }

    /// Runs `hook` once this transaction's changes are visible to other
    /// connections (after [`WriteTx::commit`], which may be later than the
    /// call returns). Dropped with the transaction if it rolls back.
    pub fn after_commit(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.after_commit.push(Box::new(hook));
    }

    /// Commits without recording a pending idempotency key: for
    /// bookkeeping a request does on the side (a token's last use), which is
    /// not what the request was sent to do.
    pub async fn commit_unclaimed(mut self) -> Result<(), sqlx::Error> {
        let tx = self.tx.take().expect("transaction already finished");
        tx.commit().await?;
        if let Some(heads) = &self.heads {
            let mut heads = heads.lock().unwrap_or_else(|e| e.into_inner());
            for (chain, seq, hash) in self.pending_heads.drain(..) {
                heads.insert(chain, (seq, hash));
            }
        }
        for hook in self.after_commit.drain(..) {
            hook();
        }
        Ok(())
    }

    /// SQLite: the committed head of `chain_id` this process knows, if any.
    pub fn cached_head(&self, chain_id: i64) -> Option<(i64, String)> {
        if let Some((_, seq, hash)) = self
            .pending_heads
            .iter()
            .rev()
            .find(|(c, ..)| *c == chain_id)
        {
            return Some((*seq, hash.clone()));
        }
        let heads = self
            .heads
            .as_ref()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        heads.get(&chain_id).cloned()
    }

    /// SQLite: records that `chain_id`'s head is now (`seq`, `hash`) in this
    /// transaction (visible to others once committed).
    pub fn note_head(&mut self, chain_id: i64, seq: i64, hash: &str) {
        if self.heads.is_some() {
            self.pending_heads.push((chain_id, seq, hash.to_owned()));
        }
    }

    /// SQLite: forgets what this process knew of `chain_id`'s head.
    pub fn forget_head(&mut self, chain_id: i64) {
        self.pending_heads.retain(|(c, ..)| *c != chain_id);
        if let Some(heads) = &self.heads {
            heads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&chain_id);
        }
    }
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating an
    /// SQLite file (and its directory) if needed. Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!(
                    "unsupported database URL `{}`: use sqlite://PATH or postgres://...",
                    crate::config::redact_url(url)
                )
                .into(),
            )));
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => named_postgres_url(url),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let sqlite_path = match backend {
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .split('?')
                    .next()
                    .unwrap_or("");
                (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
            }
            Backend::Postgres => None,
        };
        let pool = match backend {
            Backend::Sqlite => {
                sqlite_pool(options.clone(), max_connections, READER_CACHE_KIB).await?
            }
            // One connection stays open, so other servers see this one
            // alive (see `Store::process_alive`).
            Backend::Postgres => {
                pool_options(max_connections)
                    .min_connections(1)
                    .connect_with(options.clone())
                    .await?
            }
        };
        // SQLite: writes take one connection of their own, which nothing
        // else in this process writes through, so the pages it read stay in
        // its cache from one write to the next. A connection drops its whole
        // cache whenever another connection has written; with every
        // connection taking turns at writing, each write read its index
        // pages afresh. An in-memory database is one per connection, so it
        // keeps one pool.
        let writer = match &sqlite_path {
            Some(_) => Some(sqlite_pool(options, 1, WRITER_CACHE_KIB).await?),
            None => None,
        };
        Ok(Self {
            pool,
            writer,
            backend,
            write_gate: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
            sqlite_path,
            heads: (backend == Backend::Sqlite).then(HeadCache::default),
            creates: Arc::default(),
        })
    }

    /// Applies every migration not yet applied, for this backend's dialect.
    pub async fn migrate(&self) -> StoreResult<Vec<String>> {
        migrate::run(self).await
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads. Private to the store: every statement lives in
    /// this module.
    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the
    /// write lock is taken at once (waiting under `busy_timeout` for writers
    /// in other processes), so a transaction that reads first never fails to
    /// upgrade later.
    ///
    /// Inside a keyed request, a transaction the request parked is committed
    /// first (see [`IdempotencyClaim`]).
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        IdempotencyClaim::flush_current()
            .await
            .map_err(|e| match e {
                StoreError::Database(e) => e,
                other => sqlx::Error::Protocol(other.to_string()),
            })?;
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => {
                let pool = self.writer.as_ref().unwrap_or(&self.pool);
                pool.begin_with("BEGIN IMMEDIATE").await?
            }
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx: Some(tx),
            backend: self.backend,
            heads: self.heads.clone(),
            pending_heads: Vec::new(),
            after_commit: Vec::new(),
            _gate: gate,
        })
    }

    /// The SQLite file behind this store (None on PostgreSQL or in memory).
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        self.sqlite_path.as_deref()
    }
}

/// This server process's name among the servers sharing a database,
/// `HOST:PID`: the runner of its task runs. On PostgreSQL its connections
/// carry it in their `application_name`, so another server can tell whether
/// it still runs ([`Store::process_alive`]).
pub fn process_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "server".into());
    format!("{host}:{}", std::process::id())
}

/// The `application_name` of the connections of server process `process`
/// (at most the 63 bytes PostgreSQL keeps).
fn application_name(process: &str) -> String {
    let mut name = format!("vigilo {process}");
    while name.len() > 63 {
        name.pop();
    }
    name
}

/// A PostgreSQL URL whose connections name this server process, unless
/// the URL names them already.
fn named_postgres_url(url: &str) -> String {
    if url.contains("application_name=") {
        return url.to_owned();
    }
    let name: String =
        url::form_urlencoded::byte_serialize(application_name(&process_name()).as_bytes())
            .collect();
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}application_name={name}")
}

impl Store {
    /// PostgreSQL: whether server process `process` (see [`process_name`])
    /// still has a connection to the database. Always true on SQLite,
    /// where the question does not arise.
    pub async fn process_alive(&self, process: &str) -> StoreResult<bool> {
        if self.backend == Backend::Sqlite {
            return Ok(true);
        }
        let found: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(application_name(process))
                .fetch_one(self.pool())
                .await?;
        Ok(found > 0)
    }
}

/// Returns the JSON text of a stored JSON column as a value.
/// The word stored in `column` of a `what` row, as its type: a word the
/// type does not know means the database was written by something else.
pub(crate) fn word<T: std::str::FromStr<Err = String>>(
    row: &sqlx::any::AnyRow,
    column: &str,
    what: &str,
) -> StoreResult<T> {
    let stored: String = sqlx::Row::try_get(row, column)?;
    stored
        .parse()
        .map_err(|e: String| StoreError::Corrupt(format!("a stored {what}'s {column}: {e}")))
}

pub(crate) fn json_column(text: &str, what: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_ask_for_creation() {
        let dir = std::env::temp_dir().join(format!("vigilo-url-{}", std::process::id()));
        let url = format!("sqlite://{}/sub/v.db", dir.display());
        let normalised = sqlite_url(&url).unwrap();
        assert!(normalised.ends_with("/sub/v.db?mode=rwc"), "{normalised}");
        assert!(dir.join("sub").is_dir());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
