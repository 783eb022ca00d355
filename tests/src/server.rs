//! A real Vigilo server for a test, bound to `127.0.0.1:0` and served on
//! its own runtime, with a platform admin's token.

use std::time::Duration;

use tempfile::TempDir;
use vigilo_host::config::Config;

use crate::{block_on, cargo_bin, plugins, Api, TestDb};

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
