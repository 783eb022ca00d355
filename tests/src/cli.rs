//! The real binaries: where they are built, and the `vigilo` CLI run as a
//! person runs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;

use serde_json::Value;
use tempfile::TempDir;

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
