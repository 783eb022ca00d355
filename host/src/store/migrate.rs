//! Schema migrations, embedded in the binary: `migrations/sqlite/*.sql` and
//! `migrations/postgres/*.sql`, applied in order, each in its own transaction,
//! and recorded in `vigilo_migrations` with a checksum so that an edited
//! migration is noticed instead of silently skipped.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Backend, Store, StoreError, StoreResult};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../../../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../../../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "audit_checkpoints",
        sqlite: include_str!("../../../migrations/sqlite/0002_audit_checkpoints.sql"),
        postgres: include_str!("../../../migrations/postgres/0002_audit_checkpoints.sql"),
    },
    Migration {
        version: 3,
        name: "work_items_fields_dashboards",
        sqlite: include_str!("../../../migrations/sqlite/0003_work_items_fields_dashboards.sql"),
        postgres: include_str!(
            "../../../migrations/postgres/0003_work_items_fields_dashboards.sql"
        ),
    },
    Migration {
        version: 4,
        name: "audit_events_rowid",
        sqlite: include_str!("../../../migrations/sqlite/0004_audit_events_rowid.sql"),
        postgres: include_str!("../../../migrations/postgres/0004_audit_events_rowid.sql"),
    },
    Migration {
        version: 5,
        name: "certificates",
        sqlite: include_str!("../../../migrations/sqlite/0005_certificates.sql"),
        postgres: include_str!("../../../migrations/postgres/0005_certificates.sql"),
    },
    Migration {
        version: 6,
        name: "scheduler",
        sqlite: include_str!("../../../migrations/sqlite/0006_scheduler.sql"),
        postgres: include_str!("../../../migrations/postgres/0006_scheduler.sql"),
    },
    Migration {
        version: 7,
        name: "integrations_playbooks",
        sqlite: include_str!("../../../migrations/sqlite/0007_integrations_playbooks.sql"),
        postgres: include_str!("../../../migrations/postgres/0007_integrations_playbooks.sql"),
    },
    Migration {
        version: 8,
        name: "outbox_retry",
        sqlite: include_str!("../../../migrations/sqlite/0008_outbox_retry.sql"),
        postgres: include_str!("../../../migrations/postgres/0008_outbox_retry.sql"),
    },
    Migration {
        version: 9,
        name: "sessions",
        sqlite: include_str!("../../../migrations/sqlite/0009_sessions.sql"),
        postgres: include_str!("../../../migrations/postgres/0009_sessions.sql"),
    },
    Migration {
        version: 10,
        name: "work_item_paging",
        sqlite: include_str!("../../../migrations/sqlite/0010_work_item_paging.sql"),
        postgres: include_str!("../../../migrations/postgres/0010_work_item_paging.sql"),
    },
    Migration {
        version: 11,
        name: "audit_verifications",
        sqlite: include_str!("../../../migrations/sqlite/0011_audit_verifications.sql"),
        postgres: include_str!("../../../migrations/postgres/0011_audit_verifications.sql"),
    },
    Migration {
        version: 12,
        name: "idempotency_keys",
        sqlite: include_str!("../../../migrations/sqlite/0012_idempotency_keys.sql"),
        postgres: include_str!("../../../migrations/postgres/0012_idempotency_keys.sql"),
    },
    Migration {
        version: 13,
        name: "invite_paging",
        sqlite: include_str!("../../../migrations/sqlite/0013_invite_paging.sql"),
        postgres: include_str!("../../../migrations/postgres/0013_invite_paging.sql"),
    },
    Migration {
        version: 14,
        name: "plugin_policies",
        sqlite: include_str!("../../../migrations/sqlite/0014_plugin_policies.sql"),
        postgres: include_str!("../../../migrations/postgres/0014_plugin_policies.sql"),
    },
    Migration {
        version: 15,
        name: "plugin_interrupted_calls",
        sqlite: include_str!("../../../migrations/sqlite/0015_plugin_interrupted_calls.sql"),
        postgres: include_str!("../../../migrations/postgres/0015_plugin_interrupted_calls.sql"),
    },
    Migration {
        version: 16,
        name: "plugin_host_api",
        sqlite: include_str!("../../../migrations/sqlite/0016_plugin_host_api.sql"),
        postgres: include_str!("../../../migrations/postgres/0016_plugin_host_api.sql"),
    },
    Migration {
        version: 17,
        name: "assignees_comments",
        sqlite: include_str!("../../../migrations/sqlite/0017_assignees_comments.sql"),
        postgres: include_str!("../../../migrations/postgres/0017_assignees_comments.sql"),
    },
    Migration {
        version: 18,
        name: "user_time_zone",
        sqlite: include_str!("../../../migrations/sqlite/0018_user_time_zone.sql"),
        postgres: include_str!("../../../migrations/postgres/0018_user_time_zone.sql"),
    },
    Migration {
        version: 19,
        name: "work_item_orders",
        sqlite: include_str!("../../../migrations/sqlite/0019_work_item_orders.sql"),
        postgres: include_str!("../../../migrations/postgres/0019_work_item_orders.sql"),
    },
    Migration {
        version: 20,
        name: "idempotency_key_hash",
        sqlite: include_str!("../../../migrations/sqlite/0020_idempotency_key_hash.sql"),
        postgres: include_str!("../../../migrations/postgres/0020_idempotency_key_hash.sql"),
    },
];

/// Key for the PostgreSQL advisory lock that keeps two servers from
/// migrating at once ("vigilo" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7669_6769_6c6f;

pub(super) async fn run(store: &Store) -> StoreResult<Vec<String>> {
    let mut conn = store.pool.acquire().await?;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    let result = apply(store, &mut conn).await;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply(store: &Store, conn: &mut sqlx::AnyConnection) -> StoreResult<Vec<String>> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS vigilo_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await?;
    let applied: Vec<(i64, String)> =
        sqlx::query("SELECT version, checksum FROM vigilo_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("version")?, row.try_get("checksum")?)))
            .collect::<Result<_, sqlx::Error>>()?;
    let mut done = Vec::new();
    for m in MIGRATIONS {
        let sql = match store.backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        if let Some((_, stored)) = applied.iter().find(|(v, _)| *v == m.version) {
            if *stored != checksum {
                return Err(StoreError::Corrupt(format!(
                    "migration {} ({}) was changed after it was applied to this database",
                    m.version, m.name
                )));
            }
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO vigilo_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(&checksum)
        .bind(super::now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done.push(format!("{:04}_{}", m.version, m.name));
    }
    if store.backend == Backend::Sqlite {
        fill_key_hashes(conn).await?;
    }
    Ok(done)
}

/// Gives the idempotency keys SQLite recorded before migration 20 their
/// hash: SQLite cannot compute it in SQL (PostgreSQL's migration did).
/// Nothing is left to do once every key has one.
async fn fill_key_hashes(conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
    let rows = sqlx::query(
        "SELECT rowid AS id, scope, idem_key FROM idempotency_keys WHERE key_hash IS NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let scope: String = row.try_get("scope")?;
        let key: String = row.try_get("idem_key")?;
        sqlx::query("UPDATE idempotency_keys SET key_hash = $1 WHERE rowid = $2")
            .bind(super::idempotency::key_hash(&scope, &key))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
