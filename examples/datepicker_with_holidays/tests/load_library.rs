//! The built `.so`/`.dylib`, loaded exactly as the server loads it.

use std::path::PathBuf;

use vigilo_sdk::harness::{
    assert_server_accepts, library_error_summary, load_library, release_library, LibraryError,
    PluginTestHarness, SERVER_VERSION,
};
use vigilo_sdk::{json, Value};

/// `cargo test` builds this crate's cdylib next to the test binary, in
/// `target/<profile>/deps`.
fn built_library() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let name = format!(
        "{}datepicker_with_holidays{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = deps.join(&name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

#[test]
fn the_built_library_loads_and_answers() {
    let plugin = PluginTestHarness::load(built_library()).unwrap_or_else(|e| panic!("{e}"));
    plugin.assert_valid_plugin();
    assert_eq!(plugin.manifest().name, "datepicker_with_holidays");
    assert_eq!(
        plugin.validate("holiday_aware_date", json!("2026-12-26"), Value::Null),
        Err("2026-12-26 is a Saturday".into())
    );
    assert_eq!(
        plugin.validate(
            "holiday_aware_date",
            json!("2026-12-25"),
            json!({"holidays": ["2026-12-25"]})
        ),
        Err("2026-12-25 is a holiday in this workspace".into())
    );
    assert_eq!(
        plugin.validate("holiday_aware_date", json!("2026-12-24"), Value::Null),
        Ok(json!("2026-12-24"))
    );
    assert!(plugin.asset("holiday_aware_date.js").is_some());
}

#[test]
fn the_server_accepts_the_built_library() {
    let manifest = assert_server_accepts(built_library(), SERVER_VERSION);
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"));
}

/// The library `cargo build --release` wrote, which is what ships. A vendor's
/// test requires it (see the SDK guide); Vigilo's own test runs do not
/// always build release libraries, so here it is checked when present.
#[test]
fn the_release_build_if_any_is_what_the_server_accepts() {
    let release = release_library("datepicker_with_holidays");
    if !release.exists() {
        eprintln!(
            "{} not built (cargo build --release -p datepicker_with_holidays): not checked",
            release.display()
        );
        return;
    }
    let manifest = assert_server_accepts(&release, SERVER_VERSION);
    assert_eq!(manifest.name, "datepicker_with_holidays");
}

#[test]
fn loading_twice_is_fine() {
    let first = load_library(built_library()).unwrap();
    let second = load_library(built_library()).unwrap();
    assert_eq!((first.manifest())(), (second.manifest())());
}

#[test]
fn missing_files_and_non_libraries_are_typed_errors() {
    let missing = load_library("/nonexistent/libnothing.so").unwrap_err();
    assert!(
        matches!(missing, LibraryError::OpenError { .. }),
        "{missing}"
    );
    let summary = library_error_summary(&missing);
    assert!(
        summary.starts_with("cannot open /nonexistent/libnothing.so"),
        "{summary}"
    );
    assert!(!summary.contains('\n'));

    let text_file = std::env::temp_dir().join(format!("not-a-plugin-{}.so", std::process::id()));
    std::fs::write(&text_file, "hello").unwrap();
    let error = load_library(&text_file).unwrap_err();
    std::fs::remove_file(&text_file).unwrap();
    assert!(matches!(error, LibraryError::OpenError { .. }), "{error}");
}
