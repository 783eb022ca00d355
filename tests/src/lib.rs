//! Test support for Vigilo's end-to-end suite: fresh databases (an SQLite
//! file, or a new PostgreSQL database per test when
//! `VIGILO_TEST_POSTGRES_URL` is set), a real server bound to `127.0.0.1:0`,
//! an HTTP client, and the real `vigilo` and `vigilo-server` binaries.

pub mod audit;
pub mod browser;
pub mod capture;
pub mod domain;
pub mod json;
pub mod plugins;
pub mod process;
pub mod smtp;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;
use tempfile::TempDir;
use vigilo_host::config::Config;

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

/// A real server on `127.0.0.1:0`, running in-process on its own runtime.
pub struct TestServer {
    /// Base URL such as `http://127.0.0.1:41234`.
    pub url: String,
    /// A platform admin's token (from `create-admin`).
    pub admin_token: String,
    /// The database.
    pub db: TestDb,
    /// The server's configuration.
    pub config: Config,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _data: TempDir,
}

impl TestServer {
    /// Starts a server on `db` with a platform admin `admin@example.com`.
    pub fn start(db: TestDb) -> Self {
        Self::start_with(db, |_| {})
    }

    /// Starts a server after letting `configure` adjust its configuration.
    pub fn start_with(db: TestDb, configure: impl FnOnce(&mut Config)) -> Self {
        let data = TempDir::new().expect("tempdir");
        let mut config = Config {
            data_dir: data.path().to_path_buf(),
            database_url: db.url.clone(),
            database_max_connections: 4,
            plugin_isolation: plugin_isolation(),
            // This server runs inside the test binary: workers are started
            // from the real server binary.
            plugin_worker_program: Some(cargo_bin("vigilo-server")),
            ..Config::default()
        };
        configure(&mut config);
        let admin_token = block_on(vigilo_host::create_admin(
            &config,
            "admin@example.com",
            Some("Admin"),
        ))
        .expect("create admin")
        .token;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", std_listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_config = config.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                vigilo_host::serve(server_config, listener, async {
                    let _ = rx.await;
                })
                .await
                .expect("server failed");
            });
        });
        let server = Self {
            url,
            admin_token,
            db,
            config,
            shutdown: Some(tx),
            thread: Some(thread),
            _data: data,
        };
        wait_healthy(&server.url);
        server
    }

    /// Starts a server that loads exactly the plugins `names` (see
    /// [`plugins::installed`]): the plugins directory is not watched.
    pub fn with_plugins(db: TestDb, names: &[&str]) -> Self {
        Self::with_plugins_and(db, names, |_| {})
    }

    /// As [`TestServer::with_plugins`], then lets `configure` adjust the
    /// configuration.
    pub fn with_plugins_and(
        db: TestDb,
        names: &[&str],
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let installed = plugins::installed(names);
        Self::start_with(db, move |config| {
            config.installed_plugins = installed;
            config.watch_plugins_dir = false;
            configure(config);
        })
    }

    /// An API client with `token`.
    pub fn api(&self, token: &str) -> Api {
        Api::new(&self.url, Some(token))
    }

    /// An API client with the platform admin's token.
    pub fn admin(&self) -> Api {
        self.api(&self.admin_token)
    }

    /// An API client without a token.
    pub fn anonymous(&self) -> Api {
        Api::new(&self.url, None)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The environment variable that picks the tier the suite's servers run
/// plugins in: `worker` (the default, as in a default installation) or
/// `in_process`. `scripts/test` runs the plugin tests once more with
/// `in_process`, so both tiers are covered.
pub const ISOLATION_ENV: &str = "VIGILO_TEST_PLUGIN_ISOLATION";

/// The tier the suite's servers run plugins in (see [`ISOLATION_ENV`]).
pub fn plugin_isolation() -> vigilo_host::plugins::Isolation {
    match std::env::var(ISOLATION_ENV) {
        Ok(v) if !v.is_empty() => vigilo_host::plugins::Isolation::parse(&v)
            .unwrap_or_else(|| panic!("{ISOLATION_ENV}={v}: expected worker or in_process")),
        _ => vigilo_host::plugins::Isolation::Worker,
    }
}

/// Polls `/healthz` until it answers 200 (at most 20 s).
pub fn wait_healthy(url: &str) {
    for _ in 0..400 {
        if let Ok(r) = ureq::get(&format!("{url}/healthz"))
            .timeout(Duration::from_secs(1))
            .call()
        {
            if r.status() == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server at {url} never became healthy");
}

/// An HTTP response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body parsed as JSON (Null when empty or not JSON).
    pub json: Value,
    /// Raw body.
    pub text: String,
    /// The `Content-Type` header.
    pub content_type: String,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A small blocking JSON client.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    /// A client for `base` with an optional bearer token.
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .build(),
        }
    }

    /// Sends a request with an optional raw body and content type.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response {
        self.raw_with(method, path, &[], content_type, body)
    }

    /// POSTs JSON with an `Idempotency-Key` header.
    pub fn post_keyed(&self, path: &str, key: &str, body: &Value) -> Response {
        self.raw_with(
            "POST",
            path,
            &[("Idempotency-Key", key)],
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }

    /// [`Api::raw`] with extra request headers.
    pub fn raw_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.set(name, value);
        }
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.set("Content-Type", ct);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        let content_type = resp.header("content-type").unwrap_or("").to_string();
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|name| {
                let value = resp.header(&name).unwrap_or("").to_string();
                (name.to_ascii_lowercase(), value)
            })
            .collect();
        // Not `into_string`, which stops at 10 MB (a 50,000-row bulk
        // invite's report is larger).
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut resp.into_reader(), &mut text);
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            json,
            text,
            content_type,
            headers,
        }
    }

    /// GET.
    pub fn get(&self, path: &str) -> Response {
        self.raw("GET", path, None, None)
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Response {
        self.raw("DELETE", path, None, None)
    }

    /// POST JSON.
    pub fn post(&self, path: &str, body: Value) -> Response {
        self.raw(
            "POST",
            path,
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }

    /// POSTs JSON that creates something: asserts 201 Created (printing the
    /// body otherwise) and returns the created resource.
    #[track_caller]
    pub fn create(&self, path: &str, body: Value) -> Value {
        expect(&self.post(path, body), 201).clone()
    }

    /// Saves `snapshot` (a workspace export) as template `template`, then
    /// creates workspace `slug`, named `name`, in `region` from it.
    #[track_caller]
    pub fn copy_through_template(
        &self,
        snapshot: Value,
        template: &str,
        (name, slug, region): (&str, &str, &str),
    ) -> Value {
        self.create(
            "/api/v1/templates",
            json!({"name": template, "snapshot": snapshot}),
        );
        self.create(
            "/api/v1/workspaces",
            json!({"name": name, "slug": slug, "region": region, "template": template}),
        )
    }

    /// PUT JSON.
    pub fn put(&self, path: &str, body: Value) -> Response {
        self.raw(
            "PUT",
            path,
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }

    /// PATCH with a JSON body.
    pub fn patch(&self, path: &str, body: Value) -> Response {
        self.raw(
            "PATCH",
            path,
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }
}

/// Asserts a status, printing the body on failure.
#[track_caller]
pub fn expect(resp: &Response, status: u16) -> &Value {
    assert_eq!(
        resp.status, status,
        "unexpected status; body: {}",
        resp.text
    );
    &resp.json
}

/// The directory holding the workspace's built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().unwrap()
    } else {
        deps
    };
    dir.to_path_buf()
}

static BUILD: Once = Once::new();

/// Path of a binary of this workspace, building the binaries once per test
/// run so that tests never drive a stale build.
pub fn cargo_bin(name: &str) -> PathBuf {
    BUILD.call_once(|| {
        if std::env::var_os("VIGILO_TEST_NO_BUILD").is_some() {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // `--workspace` resolves features exactly as `cargo test --workspace`
        // does, so this build does not invalidate the test build.
        let mut args = vec!["build", "--quiet", "--workspace", "--bins"];
        if bin_dir().ends_with("release") {
            args.push("--release");
        }
        let mut command = Command::new(cargo);
        // Drop the variables `cargo test` sets for this test process: build
        // scripts that watch them (ring watches CARGO_MANIFEST_DIR) would
        // otherwise rebuild, and invalidate the next test build.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("CARGO_")
                && !matches!(key.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR")
            {
                command.env_remove(&key);
            }
        }
        let status = command
            .args(&args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
    });
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing; run `cargo build --bins`",
        path.display()
    );
    path
}

/// The `vigilo` CLI with its own empty home directory.
pub struct Cli {
    /// The HOME the CLI sees (its config lives in `HOME/.vigilo`).
    pub home: TempDir,
    env: Vec<(String, String)>,
}

/// What a CLI run printed and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts success.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "vigilo failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the exit code `code` and that standard error says `says`.
    #[track_caller]
    pub fn fails_with(&self, code: i32, says: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(says),
            "stderr does not say {says:?}: {}",
            self.stderr
        );
        self
    }
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

impl Cli {
    /// A CLI with an empty HOME and no `VIGILO_*` variables.
    pub fn new() -> Self {
        Self {
            home: TempDir::new().expect("tempdir"),
            env: Vec::new(),
        }
    }

    /// A CLI pointed at `url` with `token` (through `VIGILO_URL`/`VIGILO_TOKEN`).
    pub fn with(url: &str, token: &str, workspace: Option<&str>) -> Self {
        let mut cli = Self::new();
        cli.env.push(("VIGILO_URL".into(), url.into()));
        cli.env.push(("VIGILO_TOKEN".into(), token.into()));
        if let Some(w) = workspace {
            cli.env.push(("VIGILO_WORKSPACE".into(), w.into()));
        }
        cli
    }

    /// Sets an environment variable for every run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    /// The `vigilo` command with this CLI's HOME and environment, nothing else.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(cargo_bin("vigilo"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `vigilo ARGS` in the background with stdout piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn vigilo")
    }

    /// Runs `vigilo ARGS`.
    pub fn run(&self, args: &[&str]) -> CliOutput {
        self.run_with_stdin(args, "")
    }

    /// Runs `vigilo ARGS` feeding `stdin`.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> CliOutput {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn vigilo");
        // A command that reads nothing may exit before the input is
        // written: that is its answer, not a failure to feed it.
        match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.expect("stdin"),
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("wait");
        CliOutput {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// A browser session made without a browser: signs in through `/login` as
/// a form post would, and keeps the session cookie.
pub struct WebSession {
    base: String,
    cookie: String,
    agent: ureq::Agent,
}

/// The sign-in page as a browser holds it: the form's cookie and token,
/// ready to be posted (any number of times).
pub struct SignInForm {
    base: String,
    agent: ureq::Agent,
    form_cookie: String,
    token: String,
}

/// The `name=value` pair of cookie `name` that `response` sets, if any.
pub fn set_cookie(response: &ureq::Response, name: &str) -> Option<String> {
    response.all("set-cookie").into_iter().find_map(|c| {
        c.split(';')
            .next()
            .filter(|pair| pair.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    })
}

/// The response to a request for `path`, whatever its status.
fn answer(path: &str, result: Result<ureq::Response, ureq::Error>) -> ureq::Response {
    match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    }
}

impl SignInForm {
    /// Opens `/login` on the server at `base`.
    pub fn open(base: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
            .timeout(Duration::from_secs(60))
            .build();
        let page = agent
            .get(&format!("{base}/login"))
            .call()
            .expect("GET /login");
        let form_cookie = set_cookie(&page, "vigilo_form").expect("the sign-in form's cookie");
        let html = page.into_string().expect("the sign-in page");
        let token = html
            .split("name=\"form_token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the sign-in form's token")
            .to_owned();
        SignInForm {
            base: base.to_owned(),
            agent,
            form_cookie,
            token,
        }
    }

    /// Posts `email` and `password`, with the browser's other cookies
    /// (`name=value`, such as a known-device cookie) when given; returns
    /// the answer whatever its status.
    pub fn submit(&self, email: &str, password: &str, cookies: &[&str]) -> ureq::Response {
        let mut cookie = self.form_cookie.clone();
        for extra in cookies {
            cookie.push_str("; ");
            cookie.push_str(extra);
        }
        let result = self
            .agent
            .post(&format!("{}/login", self.base))
            .set("Cookie", &cookie)
            .send_form(&[
                ("email", email),
                ("password", password),
                ("form_token", &self.token),
                ("next", "/"),
            ]);
        answer("/login", result)
    }
}

impl WebSession {
    /// Signs in as `email` with `password` on the server at `base`.
    pub fn sign_in(base: &str, email: &str, password: &str) -> Self {
        let form = SignInForm::open(base);
        let response = form.submit(email, password, &[]);
        let cookie = set_cookie(&response, "vigilo_session")
            .unwrap_or_else(|| panic!("no session after signing in as {email}"));
        WebSession {
            base: base.to_owned(),
            cookie,
            agent: form.agent,
        }
    }

    fn fetch(&self, path: &str) -> ureq::Response {
        answer(
            path,
            self.agent
                .get(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .call(),
        )
    }

    /// GETs `path` with the session; returns the status and the page.
    pub fn page(&self, path: &str) -> (u16, String) {
        let response = self.fetch(path);
        (response.status(), response.into_string().expect("the page"))
    }

    /// POSTs a form (`application/x-www-form-urlencoded`) with the
    /// session; returns the status and the page.
    pub fn form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let response = answer(
            path,
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .send_form(fields),
        );
        (response.status(), response.into_string().expect("the page"))
    }

    /// POSTs a form with one file (`multipart/form-data`) and the session's
    /// CSRF token `csrf`; returns the status and the page.
    pub fn upload(
        &self,
        path: &str,
        csrf: &str,
        field: &str,
        file_name: &str,
        file: &[u8],
    ) -> (u16, String) {
        let boundary = "vigilo-test-boundary-7f3a";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = answer(
            path,
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .set(
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .send_bytes(&body),
        );
        (response.status(), response.into_string().expect("the page"))
    }

    /// The session's `Cookie` header value.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Sends `request` with the session; the response, whatever its status.
    fn send(&self, request: ureq::Request, form: Option<&[(&str, &str)]>) -> ureq::Response {
        let what = format!("{} {}", request.method(), request.url());
        let request = request.set("Cookie", &self.cookie);
        let result = match form {
            Some(form) => request.send_form(form),
            None => request.call(),
        };
        match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{what}: {e}"),
        }
    }

    /// Submits the form of the page at `path` as a browser would: `fields`
    /// with the page's CSRF token, posted to `path`. Returns the status
    /// and the HTML of the answer.
    pub fn submit(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let (_, html) = self.page(path);
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no CSRF token on {path}"))
            .to_owned();
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        let post = self.agent.post(&format!("{}{path}", self.base));
        let response = self.send(post, Some(&form));
        (
            response.status(),
            response.into_string().unwrap_or_default(),
        )
    }

    /// GETs `path` with the session; returns the status and the `Location`
    /// of a redirect.
    pub fn get(&self, path: &str) -> (u16, Option<String>) {
        let response = self.fetch(path);
        (
            response.status(),
            response.header("location").map(str::to_owned),
        )
    }
}
