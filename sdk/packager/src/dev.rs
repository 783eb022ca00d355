//! `vigilo-plugin dev`: the plugin crate in a directory, built, installed in
//! a scratch Vigilo server of its own and kept there as it changes.
//!
//! 1. `cargo build --lib` in the crate; the library is copied into the
//!    scratch server's plugins directory.
//! 2. A `vigilo-server` starts on `127.0.0.1:PORT` with an SQLite database
//!    and everything else under `target/vigilo-dev/` (deleted and made
//!    anew at each start), a platform admin whose password is printed, and
//!    `dev_frontend` pointing at the crate's `frontend/` directory: the
//!    server reads the element's files from there on each request, and its
//!    pages reload themselves when a plugin or one of those files changes.
//! 3. Every change under `src/`, `Cargo.toml`, `build.rs` and `frontend/`
//!    is noticed within half a second. A change to the Rust side is
//!    rebuilt and the new library copied in (the server's plugins-directory
//!    watch replaces the plugin, and open pages reload); a change to
//!    `frontend/` alone needs no build at all.
//!
//! It stops with Ctrl-C, which stops the server too.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use rand::distributions::{Alphanumeric, DistString};

/// What `vigilo-plugin dev` was asked for.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The plugin crate's directory.
    pub crate_dir: PathBuf,
    /// The port the server listens on, on 127.0.0.1.
    pub port: u16,
    /// The `vigilo-server` binary (default: next to this tool, or on PATH).
    pub server: Option<PathBuf>,
    /// The admin's email address.
    pub email: String,
}

/// The crate, as `cargo metadata` describes it.
#[derive(Debug)]
struct Crate {
    dir: PathBuf,
    /// The library's name (the crate's, with `-` as `_`).
    lib_name: String,
    target_dir: PathBuf,
}

impl Crate {
    fn read(dir: &Path) -> Result<Crate> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("no crate at {}", dir.display()))?;
        let output = cargo()
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .current_dir(&dir)
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run cargo")?;
        if !output.status.success() {
            bail!("`cargo metadata` failed in {}", dir.display());
        }
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let manifest = dir.join("Cargo.toml");
        let package = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(&manifest))
            .ok_or_else(|| anyhow!("{} is not a package's manifest", manifest.display()))?;
        let lib = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
            })
            .ok_or_else(|| {
                anyhow!("the crate builds no cdylib: add crate-type = [\"cdylib\", \"rlib\"] under [lib]")
            })?;
        Ok(Crate {
            lib_name: lib["name"].as_str().unwrap_or_default().replace('-', "_"),
            target_dir: PathBuf::from(metadata["target_directory"].as_str().unwrap_or("target")),
            dir,
        })
    }

    fn library(&self) -> PathBuf {
        self.target_dir.join("debug").join(format!(
            "{}{}{}",
            std::env::consts::DLL_PREFIX,
            self.lib_name,
            std::env::consts::DLL_SUFFIX
        ))
    }

    /// `cargo build --lib`, its output on the terminal.
    fn build(&self) -> Result<()> {
        let status = cargo()
            .args(["build", "--lib"])
            .current_dir(&self.dir)
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("the build failed (see above)");
        }
        Ok(())
    }

    /// The newest modification time of each file that makes the library.
    fn sources(&self) -> BTreeMap<PathBuf, SystemTime> {
        let mut files = BTreeMap::new();
        for top in ["src", "frontend", "Cargo.toml", "build.rs"] {
            collect(&self.dir.join(top), 8, &mut files);
        }
        files
    }
}

fn collect(path: &Path, depth: u32, files: &mut BTreeMap<PathBuf, SystemTime>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_file() {
        if let Ok(modified) = meta.modified() {
            files.insert(path.to_owned(), modified);
        }
    } else if meta.is_dir() && depth > 0 {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            collect(&entry.path(), depth - 1, files);
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The server binary: the one asked for, the one next to this tool, or the
/// one on PATH.
fn find_server(asked: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = asked {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(anyhow!("--server {}: no such file", path.display()))
        };
    }
    let name = format!("vigilo-server{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)));
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(&name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|path| path.is_file())
        .ok_or_else(|| {
            anyhow!(
                "no vigilo-server found next to vigilo-plugin or on PATH: install it \
                 (cargo install --path host in a Vigilo checkout) or pass --server PATH"
            )
        })
}

/// Copies the library into the plugins directory in one step (a rename), so
/// the server's watch never sees half a file.
fn install(library: &Path, plugins_dir: &Path) -> Result<()> {
    let name = library
        .file_name()
        .ok_or_else(|| anyhow!("no library file name"))?;
    let partial = plugins_dir.join(".installing");
    std::fs::copy(library, &partial)
        .with_context(|| format!("cannot copy {}", library.display()))?;
    std::fs::rename(&partial, plugins_dir.join(name))?;
    Ok(())
}

/// A scratch server and what it is run with.
struct Scratch {
    config: PathBuf,
    plugins_dir: PathBuf,
    log: PathBuf,
}

impl Scratch {
    fn create(krate: &Crate, port: u16) -> Result<Scratch> {
        let root = krate.target_dir.join("vigilo-dev");
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .with_context(|| format!("cannot clear {}", root.display()))?;
        }
        let plugins_dir = root.join("plugins");
        std::fs::create_dir_all(&plugins_dir)?;
        let frontend = krate.dir.join("frontend");
        let dev_frontend = if frontend.is_dir() {
            format!(
                "[dev_frontend]\n{} = {}\n",
                krate.lib_name,
                toml_string(&frontend.display().to_string())
            )
        } else {
            String::new()
        };
        let config = root.join("vigilo.toml");
        std::fs::write(
            &config,
            format!(
                "# Written by `vigilo-plugin dev` for its scratch server; made anew at each start.\n\
                 bind = \"127.0.0.1:{port}\"\n\
                 data_dir = {}\n\
                 plugins_dir = {}\n\
                 watch_plugins_dir = true\n\
                 allow_unsigned_plugins = true\n\
                 {dev_frontend}",
                toml_string(&root.join("data").display().to_string()),
                toml_string(&plugins_dir.display().to_string()),
            ),
        )?;
        Ok(Scratch {
            config,
            plugins_dir,
            log: root.join("server.log"),
        })
    }

    fn server(&self, binary: &Path) -> Command {
        let mut command = Command::new(binary);
        command.arg("--config").arg(&self.config);
        // The scratch configuration is the whole truth.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VIGILO_") {
                command.env_remove(key);
            }
        }
        command
    }
}

fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Creates the admin and returns (password, API token).
fn create_admin(scratch: &Scratch, binary: &Path, email: &str) -> Result<(String, String)> {
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
    let mut child = scratch
        .server(binary)
        .args([
            "create-admin",
            "--email",
            email,
            "--name",
            "Plugin developer",
        ])
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("no stdin"))?
        .write_all(format!("{password}\n").as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "the server could not create the admin: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok((password, token))
}

/// Stops the server when `vigilo-plugin dev` ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the loop; returns only on an error (Ctrl-C ends the process).
pub fn run(options: &DevOptions) -> Result<()> {
    let krate = Crate::read(&options.crate_dir)?;
    let binary = find_server(options.server.clone())?;
    eprintln!("building {} ...", krate.lib_name);
    krate.build()?;
    let scratch = Scratch::create(&krate, options.port)?;
    install(&krate.library(), &scratch.plugins_dir)?;
    let (password, token) = create_admin(&scratch, &binary, &options.email)?;
    let log = std::fs::File::create(&scratch.log)?;
    let mut server = Server(
        scratch
            .server(&binary)
            .arg("serve")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?,
    );
    let url = format!("http://127.0.0.1:{}", options.port);
    println!();
    println!("Vigilo is running with {} at {url}/", krate.lib_name);
    println!(
        "  sign in as {} with the password {password}",
        options.email
    );
    println!("  API token: {token}");
    println!("  server log: {}", scratch.log.display());
    println!(
        "Watching {}: a change rebuilds and reinstalls the plugin, and open pages reload.",
        krate.dir.display()
    );
    println!("Press Ctrl-C to stop.");
    let _ = std::io::stdout().flush();

    let mut seen = krate.sources();
    loop {
        std::thread::sleep(Duration::from_millis(400));
        if let Some(status) = server.0.try_wait()? {
            bail!(
                "the server stopped ({status}); see {}",
                scratch.log.display()
            );
        }
        let now = krate.sources();
        if now == seen {
            continue;
        }
        let frontend = krate.dir.join("frontend");
        let changed: Vec<&PathBuf> = now
            .iter()
            .filter(|(path, time)| seen.get(*path) != Some(time))
            .map(|(path, _)| path)
            .chain(seen.keys().filter(|path| !now.contains_key(*path)))
            .collect();
        let rust_side = changed.iter().any(|path| !path.starts_with(&frontend));
        if rust_side {
            eprintln!("changed: rebuilding {} ...", krate.lib_name);
            match krate
                .build()
                .and_then(|()| install(&krate.library(), &scratch.plugins_dir))
            {
                Ok(()) => eprintln!("reinstalled; open pages reload"),
                Err(e) => eprintln!("{e:#}; the server keeps the last good build"),
            }
        } else {
            eprintln!("frontend changed: open pages reload");
        }
        seen = now;
    }
}
