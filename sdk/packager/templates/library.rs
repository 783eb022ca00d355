//! The library itself, loaded and checked exactly as a Vigilo server
//! loads and checks it before running it.

use std::path::PathBuf;

use vigilo_sdk::harness::{assert_server_accepts, release_library, PluginTestHarness, SERVER_VERSION};

/// The library `cargo test` built next to this test, in
/// `target/<profile>/deps`.
fn built_library() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_owned();
    let file = format!(
        "{}{{name}}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = deps.join(file);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

#[test]
fn a_server_accepts_the_built_library() {
    let manifest = assert_server_accepts(built_library(), SERVER_VERSION);
    assert_eq!(manifest.name, "{{name}}");
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"));
    PluginTestHarness::load(built_library())
        .unwrap_or_else(|e| panic!("{e}"))
        .assert_valid_plugin();
}

/// What `cargo build --release` wrote is what ships: once it exists, it is
/// checked too (build it before you package a release).
#[test]
fn the_release_build_if_any_is_what_a_server_accepts() {
    let release = release_library("{{name}}");
    if !release.exists() {
        eprintln!("{} not built yet (cargo build --release): not checked", release.display());
        return;
    }
    let manifest = assert_server_accepts(&release, SERVER_VERSION);
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"), "target/release holds an old build");
}
