//! Opening the database: SQLite URLs and the pools of connections to an
//! SQLite file (reads, and the one connection writes go through).

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use anyhow::Context;

use super::{Store, StoreError, StoreResult};
use crate::config::{self, Config};

/// The page cache of SQLite's write connection, in KiB: the pages a write
/// touches (index leaves, chain heads, recent rows) stay in it.
pub(super) const WRITER_CACHE_KIB: u32 = 64 * 1024;

/// The page cache of each SQLite read connection, in KiB (SQLite's default).
pub(super) const READER_CACHE_KIB: u32 = 2 * 1024;

pub(super) fn pool_options(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(30))
        // A ping before every acquire would cost a round trip per
        // transaction; broken connections surface as errors anyway.
        .test_before_acquire(false)
}

/// A pool of up to `max_connections` connections to an SQLite file, each
/// with a page cache of `cache_kib`.
pub(super) async fn sqlite_pool(
    options: AnyConnectOptions,
    max_connections: u32,
    cache_kib: u32,
) -> Result<AnyPool, sqlx::Error> {
    pool_options(max_connections)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                // Checkpoint the WAL every ~40 MB rather than ~4 MB: pages
                // rewritten by every append (index leaves, chain heads) are
                // copied back once per checkpoint, so fewer checkpoints
                // write less.
                conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str())
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
}

/// Normalises an SQLite URL: creates the parent directory and asks sqlx to
/// create the file if it is missing.
pub(super) fn sqlite_url(url: &str) -> StoreResult<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path != ":memory:" && !path.is_empty() {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Database(sqlx::Error::Configuration(
                        format!("cannot create database directory {}: {e}", parent.display())
                            .into(),
                    ))
                })?;
            }
        }
    }
    Ok(match query {
        Some(q) if q.contains("mode=") => format!("sqlite://{path}?{q}"),
        Some(q) => format!("sqlite://{path}?{q}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}

impl Store {
    /// Connects to the database `config` names and applies every migration
    /// it lacks, logging each one applied.
    pub async fn open(config: &Config) -> anyhow::Result<Store> {
        let url = config.effective_database_url();
        let store = Store::connect(&url, config.database_max_connections)
            .await
            .with_context(|| format!("cannot open the database {}", config::redact_url(&url)))?;
        let applied = store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        for name in applied {
            tracing::info!(migration = %name, "applied migration");
        }
        Ok(store)
    }
}
