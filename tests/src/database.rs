//! Fresh databases for a test: an SQLite file, or a new PostgreSQL
//! database when `VIGILO_TEST_POSTGRES_URL` is set, and the macro that
//! runs a test on both.

use sqlx::Connection;
use tempfile::TempDir;

/// The environment variable that enables the PostgreSQL half of the suite.
pub const POSTGRES_ENV: &str = "VIGILO_TEST_POSTGRES_URL";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// Its kind.
    pub backend: Backend,
    admin_url: Option<String>,
    name: Option<String>,
    _dir: Option<TempDir>,
}

/// Runs `f` to completion on a fresh single-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

impl TestDb {
    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = TempDir::new().expect("tempdir");
        Self {
            url: format!("sqlite://{}", dir.path().join("vigilo.db").display()),
            backend: Backend::Sqlite,
            admin_url: None,
            name: None,
            _dir: Some(dir),
        }
    }

    /// A new PostgreSQL database, or None when `VIGILO_TEST_POSTGRES_URL` is unset.
    pub fn postgres() -> Option<Self> {
        let admin_url = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty())?;
        let name = format!("vigilo_test_{:016x}", rand::random::<u64>());
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| {
                    panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}")
                });
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
        });
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("postgres URL has a database part");
        Some(Self {
            url: format!("{base}/{name}"),
            backend: Backend::Postgres,
            admin_url: Some(admin_url),
            name: Some(name),
            _dir: None,
        })
    }

    /// The same database for a second server (a replica): this value does
    /// not remove the database when dropped; the original does.
    pub fn shared(&self) -> Self {
        Self {
            url: self.url.clone(),
            backend: self.backend,
            admin_url: None,
            name: None,
            _dir: None,
        }
    }

    /// Runs a statement directly against the database (for tests that look
    /// at or tamper with stored rows).
    pub fn execute(&self, sql: &str) -> u64 {
        let url = self.url.clone();
        let sql = sql.to_string();
        block_on(async move {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
            sqlx::Executor::execute(&mut conn, sql.as_str())
                .await
                .expect("statement")
                .rows_affected()
        })
    }

    /// Inserts `n` work items into workspace `slug` directly (for
    /// benchmarks over large workspaces): the three kinds in turn, spread
    /// over their statuses, titled `item 0`, `item 1`, …
    pub fn seed_work_items(&self, slug: &str, n: usize) {
        let id = self.number(&format!("SELECT id FROM workspaces WHERE slug = '{slug}'"));
        let statuses = [
            (
                "change",
                [
                    "draft",
                    "pending_approval",
                    "approved",
                    "in_progress",
                    "done",
                ]
                .as_slice(),
            ),
            (
                "incident",
                ["open", "investigating", "mitigated", "resolved"].as_slice(),
            ),
            ("task", ["todo", "doing", "done"].as_slice()),
        ];
        let mut inserted = 0;
        while inserted < n {
            let batch = (n - inserted).min(1000);
            let rows: Vec<String> = (inserted..inserted + batch)
                .map(|i| {
                    let (kind, list) = statuses[i % 3];
                    let status = list[(i / 3) % list.len()];
                    format!("({id}, '{kind}', 'item {i}', '', '{status}', '{{}}', NULL, '2026-11-24T00:00:00.000000Z', '2026-11-24T00:00:00.000000Z')")
                })
                .collect();
            self.execute(&format!(
                "INSERT INTO work_items (workspace_id, kind, title, description, status, fields, created_by, created_at, updated_at) VALUES {}",
                rows.join(", ")
            ));
            inserted += batch;
        }
        if self.backend == Backend::Postgres {
            self.execute("ANALYZE work_items");
        }
    }

    /// Reads the first column (as text, or NULL) of every row a query returns.
    pub fn column(&self, sql: &str) -> Vec<Option<String>> {
        self.rows(sql)
            .into_iter()
            .map(|row| row.into_iter().next().flatten())
            .collect()
    }

    /// The first column of the first row a query returns, as an integer
    /// (for `SELECT COUNT(*) ...` and ids).
    #[track_caller]
    pub fn number(&self, sql: &str) -> i64 {
        let first = self.column(sql).into_iter().next();
        first
            .flatten()
            .unwrap_or_else(|| panic!("no value from {sql}"))
            .parse()
            .unwrap_or_else(|e| panic!("not an integer from {sql}: {e}"))
    }

    /// Every row a query returns, each column as text (integers formatted,
    /// NULL as None).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let url = self.url.clone();
        let sql = sql.to_string();
        block_on(async move {
            use sqlx::Row;
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
            let rows = sqlx::query(&sql).fetch_all(&mut conn).await.expect("query");
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.try_get::<Option<String>, _>(i)
                                .or_else(|_| {
                                    r.try_get::<Option<i64>, _>(i)
                                        .map(|v| v.map(|v| v.to_string()))
                                })
                                .expect("text or integer column")
                        })
                        .collect()
                })
                .collect()
        })
    }

    /// Lets tests edit the audit log directly, as an attacker with database
    /// access would: drops the append-only guards.
    pub fn allow_audit_tampering(&self) {
        match self.backend {
            Backend::Sqlite => {
                self.execute("DROP TRIGGER IF EXISTS audit_events_no_update");
                self.execute("DROP TRIGGER IF EXISTS audit_events_no_delete");
            }
            Backend::Postgres => {
                self.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only");
            }
        }
    }

    /// Every text value stored in the tables that may hold user data, for
    /// checking that a secret was never stored in the clear.
    pub fn dump_text(&self) -> String {
        let mut out = String::new();
        for (table, cols) in [
            ("users", "email || ' ' || name"),
            ("api_tokens", "name || ' ' || prefix || ' ' || token_hash"),
            ("invites", "email || ' ' || token_hash"),
            ("audit_events", "action || ' ' || target || ' ' || details"),
            ("outbox", "recipient || ' ' || subject || ' ' || body"),
        ] {
            for v in self
                .column(&format!("SELECT {cols} FROM {table}"))
                .into_iter()
                .flatten()
            {
                out.push_str(&v);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let (Some(admin), Some(name)) = (self.admin_url.clone(), self.name.clone()) {
            block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            });
        }
    }
}

/// Runs `$body` (a fn taking a [`TestDb`]) as one test on SQLite and one on
/// PostgreSQL. The PostgreSQL test returns early, passing, when
/// `VIGILO_TEST_POSTGRES_URL` is unset; `scripts/test` says so plainly.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::TestDb::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                match $crate::TestDb::postgres() {
                    Some(db) => super::$name(db),
                    None => eprintln!("skipped: {} is not set", $crate::POSTGRES_ENV),
                }
            } )*
        }
    };
}
