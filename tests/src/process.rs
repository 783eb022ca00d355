//! The real `vigilo-server` binary run as its own process, configured by a
//! file the test writes: a free port for its `bind`, `create-admin`
//! through the binary, and a running server that is stopped when the test
//! ends, also when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo_bin, wait_healthy, TestServer};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, then
/// released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The environment variables that would override a config file's settings.
const FILE_SETTINGS: [&str; 5] = [
    "VIGILO_DATABASE_URL",
    "VIGILO_BIND",
    "VIGILO_DATA_DIR",
    "VIGILO_INSTALLED_PLUGINS",
    "VIGILO_PLUGINS_DIR",
];

/// `vigilo-server --config FILE`, without the variables that would
/// override what the file says, running plugins in the suite's tier
/// ([`crate::plugin_isolation`]) unless the file says otherwise.
pub fn server_command(config: &Path) -> Command {
    let mut command = Command::new(cargo_bin("vigilo-server"));
    command.arg("--config").arg(config);
    for key in FILE_SETTINGS {
        command.env_remove(key);
    }
    let says_tier = std::fs::read_to_string(config)
        .map(|text| text.contains("plugin_isolation"))
        .unwrap_or(false);
    if says_tier {
        command.env_remove("VIGILO_PLUGIN_ISOLATION");
    } else {
        command.env(
            "VIGILO_PLUGIN_ISOLATION",
            crate::plugin_isolation().as_str(),
        );
    }
    command
}

/// Runs `vigilo-server --config FILE create-admin --email EMAIL`, asserts it
/// succeeded, and returns the token it printed.
#[track_caller]
pub fn create_admin(config: &Path, email: &str) -> String {
    let out = server_command(config)
        .args(["create-admin", "--email", email])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A running server process listening on `127.0.0.1:PORT`, its standard
/// error in a log file. Dropping it kills the process and waits for it.
pub struct ServerProcess {
    child: Child,
    url: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `command` (see [`server_command`]) with standard output
    /// discarded and standard error written to `log`; it is to listen on
    /// `port`. Does not wait for it: see [`ServerProcess::wait_healthy`].
    pub fn spawn(mut command: Command, port: u16, log: &Path) -> Self {
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log: log.to_path_buf(),
        }
    }

    /// Waits until the server answers `/healthz`; panics with its log if it
    /// never does.
    pub fn wait_healthy(&self) {
        let url = &self.url;
        if std::panic::catch_unwind(|| wait_healthy(url)).is_err() {
            panic!(
                "{} never became healthy; its log:\n{}",
                self.url,
                self.log()
            );
        }
    }

    /// Its base URL, such as `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What it has written to standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends it SIGTERM (a clean shutdown) without waiting; true when the
    /// signal was sent.
    pub fn terminate(&self) -> bool {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }

    /// The process, for tests that watch how it exits.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits up to `limit` for it to exit on its own; None if it is still
    /// running then.
    pub fn exit_within(&mut self, limit: std::time::Duration) -> Option<ExitStatus> {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Writes `dir/NAME.toml`, the configuration of a server on a free port of
/// 127.0.0.1 with its data under `dir/data` and its database at
/// `database_url`, plus the lines `extra`; returns the file and the port.
pub fn config_file(dir: &Path, name: &str, database_url: &str, extra: &str) -> (PathBuf, u16) {
    let port = free_port();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\ndatabase_url = \"{database_url}\"\n{extra}",
            dir.join("data").display(),
        ),
    )
    .unwrap();
    (config, port)
}

/// A second server process on `server`'s database, sharing its audit
/// signing key and secrets key (what replicas of one installation share),
/// with its files under `dir`; healthy when returned.
pub fn replica_of(server: &TestServer, dir: &Path) -> ServerProcess {
    let (config, port) = config_file(
        dir,
        "replica",
        &server.db.url,
        &format!(
            "audit_signing_key = \"{}\"\nsecrets_key = \"{}\"\n",
            server.config.effective_audit_signing_key().display(),
            server.config.effective_secrets_key().display(),
        ),
    );
    let process = ServerProcess::spawn(server_command(&config), port, &dir.join("replica.log"));
    process.wait_healthy();
    process
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command` (a `vigilo-server` listening on `port`) and waits for
/// its first `200` from `/healthz`: the running process and how long it
/// took from spawning it (for the start-up benchmarks). Fails after 30 s.
pub fn start_timed(mut command: Command, port: u16) -> (Child, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vigilo-server");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(1))
        .build();
    while started.elapsed() < Duration::from_secs(30) {
        if agent.get(&url).call().is_ok() {
            return (child, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server never served");
}

/// Stops a server started by [`start_timed`] as an operator would (SIGTERM)
/// and waits for it.
pub fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}
