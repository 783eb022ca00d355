//! Real plugin libraries for the tests: the two reference plugins, and the
//! failure corpus built from `tests/fixtures/plugin` (one build per cargo
//! feature, each copied to `target/<profile>/vigilo-fixtures/<variant>.so`).
//!
//! Builds happen once per test process and only when the sources changed
//! since the last copy, so repeated runs stay fast.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once};
use std::time::SystemTime;

use serde_json::Value;
use vigilo_host::config::InstalledPlugin;

use crate::{bin_dir, expect, Api};

/// The variants of the fixture plugin (cargo features, plus `upper`, the
/// well-behaved default build, and `panic_abort`, the default build with
/// `-C panic=abort`).
pub const FIXTURE_VARIANTS: [&str; 22] = [
    "upper",
    "ticker",
    "ticker_old",
    "v2",
    "incompatible",
    "bad_semver",
    "register_panic",
    "register_failed",
    "call_panic",
    "slow",
    "kind_mismatch",
    "not_a_plugin",
    "altered_abi",
    "panic_abort",
    "broken_tile",
    "broken_tile_fixed",
    "bad_tiles",
    "hostile",
    "host_calls",
    "host_calls_tile",
    "host_calls_legacy",
    "host_calls_more",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `lib{name}.so` (or `.dylib`).
pub fn library_file_name(crate_name: &str) -> String {
    format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // As in `cargo_bin`: drop what `cargo test` set for this process.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && !matches!(key.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR") {
            command.env_remove(&key);
        }
    }
    command.current_dir(workspace_root());
    command
}

fn profile_args() -> Vec<&'static str> {
    if bin_dir().ends_with("release") {
        vec!["--release"]
    } else {
        Vec::new()
    }
}

static REFERENCE: Once = Once::new();

/// The plugins this repository ships: the two reference plugins in
/// `examples/` and the first-party plugins in `plugins/`.
pub const SHIPPED_PLUGINS: [&str; 6] = [
    "datepicker_with_holidays",
    "kanban_overview",
    "slack_notifier",
    "webhook",
    "cert_expiry_digest",
    "incident_autoresolve",
];

/// The built plugin `crate_name` (one of [`SHIPPED_PLUGINS`]), built with
/// `-p` as a vendor would.
pub fn reference_plugin(crate_name: &str) -> PathBuf {
    REFERENCE.call_once(|| {
        if std::env::var_os("VIGILO_TEST_NO_BUILD").is_some() {
            return;
        }
        let status = cargo()
            .args(["build", "--quiet"])
            .args(SHIPPED_PLUGINS.iter().flat_map(|p| ["-p", *p]))
            .args(profile_args())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the reference plugins failed");
    });
    let path = bin_dir().join(library_file_name(crate_name));
    assert!(
        path.exists(),
        "{} is missing; run `cargo build -p {crate_name}`",
        path.display()
    );
    path
}

/// The built plugins `names`, as `installed_plugins` entries: each the crate
/// name of a shipped plugin (see [`SHIPPED_PLUGINS`]) or a fixture variant
/// (see [`FIXTURE_VARIANTS`]).
pub fn installed(names: &[&str]) -> Vec<InstalledPlugin> {
    names
        .iter()
        .map(|name| {
            if SHIPPED_PLUGINS.contains(name) {
                reference_plugin(name)
            } else {
                fixture_plugin(name)
            }
            .into()
        })
        .collect()
}

impl Api {
    /// The entry for plugin `name` in `GET /api/v1/plugins` (which lists the
    /// loaded plugins), if it is there.
    #[track_caller]
    pub fn loaded_plugin(&self, name: &str) -> Option<Value> {
        let listed = self.get("/api/v1/plugins");
        crate::json::find(&expect(&listed, 200)["plugins"], "name", name).cloned()
    }
}

static FIXTURES: Mutex<bool> = Mutex::new(false);

/// The built fixture plugin `variant` (see [`FIXTURE_VARIANTS`]).
pub fn fixture_plugin(variant: &str) -> PathBuf {
    assert!(
        FIXTURE_VARIANTS.contains(&variant),
        "unknown fixture variant {variant}"
    );
    let out_dir = bin_dir().join("vigilo-fixtures");
    let mut built = FIXTURES.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        build_fixtures(&out_dir);
        *built = true;
    }
    out_dir.join(format!("{variant}{}", std::env::consts::DLL_SUFFIX))
}

fn newest_source() -> SystemTime {
    fn walk(dir: &Path, newest: &mut SystemTime) {
        let Ok(read) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(modified);
            }
        }
    }
    let root = workspace_root();
    let mut newest = SystemTime::UNIX_EPOCH;
    walk(&root.join("sdk"), &mut newest);
    walk(&root.join("tests/fixtures/plugin"), &mut newest);
    for file in ["Cargo.lock", "Cargo.toml"] {
        if let Ok(modified) = std::fs::metadata(root.join(file)).and_then(|m| m.modified()) {
            newest = newest.max(modified);
        }
    }
    newest
}

fn build_fixtures(out_dir: &Path) {
    std::fs::create_dir_all(out_dir).expect("create the fixtures directory");
    let newest = newest_source();
    let built = bin_dir().join(library_file_name("vigilo_fixture_plugin"));
    for variant in FIXTURE_VARIANTS {
        let target = out_dir.join(format!("{variant}{}", std::env::consts::DLL_SUFFIX));
        let fresh = std::fs::metadata(&target)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > newest);
        if fresh {
            continue;
        }
        let mut command = cargo();
        match variant {
            "upper" => command.args(["build", "--quiet", "-p", "vigilo-fixture-plugin"]),
            "panic_abort" => command.args([
                "rustc",
                "--quiet",
                "-p",
                "vigilo-fixture-plugin",
                "--lib",
                "--crate-type",
                "cdylib",
            ]),
            feature => command.args([
                "build",
                "--quiet",
                "-p",
                "vigilo-fixture-plugin",
                "--features",
                feature,
            ]),
        };
        command.args(profile_args());
        if variant == "panic_abort" {
            command.args(["--", "-C", "panic=abort"]);
        }
        let status = command.status().expect("run cargo");
        assert!(
            status.success(),
            "building fixture plugin `{variant}` failed"
        );
        // Copy to a new file (never overwrite a library in place).
        let tmp = target.with_extension("tmp");
        std::fs::copy(&built, &tmp).expect("copy the fixture library");
        std::fs::rename(&tmp, &target).expect("move the fixture library into place");
    }
}
