//! The release-artifact check on real libraries: a tiny plugin built the way
//! a vendor builds it, once with `panic = "abort"` in its release profile and
//! once without, is checked exactly as the server checks it.
//!
//! It runs `cargo build --release` twice for a crate outside the workspace,
//! which takes minutes on a small machine, so it is ignored by default:
//!
//! ```text
//! cargo test -p vigilo-sdk --test release_check -- --ignored
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use vigilo_sdk::harness::{assert_server_accepts, SERVER_VERSION};
use vigilo_sdk::loader::{check_library, RefusalReason};

const CARGO_TOML: &str = r#"[package]
name = "release_fixture"
version = "0.3.0"
edition = "2021"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
vigilo-sdk = { path = "SDK_PATH" }

# What the check must catch: tests pass (cargo test forces unwinding), the
# server refuses the release build.
[profile.release]
panic = "abort"

[profile.release-unwind]
inherits = "release"
panic = "unwind"

[workspace]
"#;

const LIB_RS: &str = r#"
use vigilo_sdk::{FieldContext, FieldType, Plugin, PluginKind, PluginRegistry, Value};

pub struct Fixture;

impl Plugin for Fixture {
    fn name(&self) -> &str { "release_fixture" }
    fn kind(&self) -> PluginKind { PluginKind::FieldType }
    fn version(&self) -> &str { env!("CARGO_PKG_VERSION") }
    // Excludes the servers this SDK ships with.
    fn compatible_with(&self) -> &str { ">=9.0" }
    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_field_type(Anything);
    }
}

struct Anything;

impl FieldType for Anything {
    fn name(&self) -> &str { "anything" }
    fn label(&self) -> &str { "Anything" }
    fn validate(&self, value: &Value, _ctx: &FieldContext) -> Result<Value, String> {
        Ok(value.clone())
    }
}

vigilo_sdk::export_plugin!(Fixture);
"#;

/// Builds the fixture with `profile`; returns the library.
fn build(crate_dir: &Path, target_dir: &Path, profile: &str) -> PathBuf {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Only the outer build's own settings are removed; CARGO_HOME stays.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" {
            cargo.env_remove(&key);
        }
    }
    let status = cargo
        .args(["build", "--quiet", "--lib", "--profile", profile])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(crate_dir)
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "the fixture does not build with {profile}"
    );
    target_dir.join(profile).join(format!(
        "{}release_fixture{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

#[test]
#[ignore = "builds a plugin twice in release mode (minutes); run with --ignored"]
fn the_check_refuses_what_the_server_refuses_in_a_real_release_build() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("release-fixture");
    let crate_dir = scratch.join("crate");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        CARGO_TOML.replace("SDK_PATH", &sdk.display().to_string()),
    )
    .unwrap();
    std::fs::write(crate_dir.join("src/lib.rs"), LIB_RS).unwrap();
    // The dependency versions this repository is tested with.
    let lock = sdk.join("../Cargo.lock");
    if lock.exists() {
        std::fs::copy(&lock, crate_dir.join("Cargo.lock")).unwrap();
    }
    let target_dir = scratch.join("target");

    // panic = "abort": refused, whatever the server's version.
    let abort = build(&crate_dir, &target_dir, "release");
    let refusal = check_library(&abort, SERVER_VERSION).unwrap_err();
    assert_eq!(refusal.reason, RefusalReason::PanicAbortBuild, "{refusal}");
    assert_eq!(refusal.manifest.as_ref().unwrap().name, "release_fixture");
    let panic = std::panic::catch_unwind(|| assert_server_accepts(&abort, "9.1.0")).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("would refuse") && message.contains("panic_abort_build"),
        "{message}"
    );

    // panic = "unwind": refused by this SDK's server, accepted by a 9.x one.
    let unwind = build(&crate_dir, &target_dir, "release-unwind");
    let refusal = check_library(&unwind, SERVER_VERSION).unwrap_err();
    assert_eq!(
        refusal.reason,
        RefusalReason::IncompatibleVersion,
        "{refusal}"
    );
    assert_eq!(
        refusal.message,
        format!("requires vigilo >=9.0, running {SERVER_VERSION}")
    );
    let manifest = assert_server_accepts(&unwind, "9.1.0");
    assert_eq!(manifest.version, "0.3.0");
    assert!(manifest.panic_unwind);
}
