//! Checking the library a vendor ships, as the server will check it.

use std::path::{Path, PathBuf};

use crate::loader::{check_frontend, check_library, Manifest, Refusal, RefusalReason};

/// The Vigilo server version this SDK release belongs to: the `VIGILO_VERSION`
/// of the server built from the same source tree as this SDK.
///
/// The SDK's own version moves only when its ABI does, so it says nothing
/// about server releases; this constant does. [`assert_server_accepts`]
/// checks `compatible_with` against it when a test passes it. To check
/// against the servers your customers run, pass their versions instead.
pub const SERVER_VERSION: &str = "0.1.0";

/// The library `cargo build --release` writes for the crate whose library is
/// called `lib_name` (the crate name with `-` turned into `_`):
/// `target/release/lib<lib_name>.so` (`.dylib` on macOS), in the target
/// directory this test was built in (`CARGO_TARGET_DIR` and `--target`
/// included).
///
/// That is the file you ship, built with your release profile; the one
/// `cargo test` loads from `target/<profile>/deps/` is built with the test
/// profile, which forces `panic = "unwind"` whatever your profile says.
pub fn release_library(lib_name: &str) -> PathBuf {
    let file = format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    // A test binary is `<target dir>[/<triple>]/<profile>/deps/<name>`.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "deps"))
        .and_then(Path::parent);
    match profile_dir.and_then(Path::parent) {
        Some(target) => target.join("release").join(file),
        None => Path::new("target/release").join(file),
    }
}

/// Checks the plugin library at `path` exactly as a Vigilo server running
/// `server_version` checks a file before it runs it (what `vigilo-server
/// check-plugin` reports), and returns its manifest; panics with the
/// server's reason code and message if the server would refuse it.
///
/// It checks the file itself: a shared library for this machine, loadable
/// by abi_stable (header, SDK version, layout), built with
/// `panic = "unwind"`, a valid name and semver version, `compatible_with`
/// matching `server_version` (for example [`SERVER_VERSION`]), the plugin
/// ABI version, registrations of its own kind with valid names, and
/// relative asset paths; and each element module against the frontend
/// rules ([`crate::loader::frontend`]), as `vigilo-plugin package` does. Permissions and pinned checksums are the
/// installing operator's, and are checked by the server where it is
/// installed.
///
/// ```no_run
/// use vigilo_sdk::harness::{assert_server_accepts, release_library, SERVER_VERSION};
///
/// // After `cargo build --release`:
/// let manifest = assert_server_accepts(release_library("my_plugin"), SERVER_VERSION);
/// assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"), "target/release holds an old build");
/// ```
#[track_caller]
pub fn assert_server_accepts(path: impl AsRef<Path>, server_version: &str) -> Manifest {
    let path = path.as_ref();
    match check_library(path, server_version) {
        Ok(checked) => {
            let problems = check_frontend(&checked.registrations, |p| checked.handle.asset(p));
            if !problems.is_empty() {
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                panic!(
                    "{}'s frontend half would fail in the browser (the rules vigilo-plugin \
                     package and vigilo-server check-plugin apply):\n  - {}",
                    path.display(),
                    listed.join("\n  - ")
                );
            }
            checked.manifest
        }
        Err(refusal) => panic!(
            "a Vigilo {server_version} server would refuse {}: {refusal}{}",
            path.display(),
            hint(&refusal)
        ),
    }
}

/// What to do about a refusal, when the message does not already say.
fn hint(refusal: &Refusal) -> &'static str {
    match refusal.reason {
        RefusalReason::NotFound => {
            "\n(build it first with `cargo build --release`: this check reads the library \
             you ship, not the one `cargo test` builds)"
        }
        RefusalReason::PanicAbortBuild => {
            "\n(remove `panic = \"abort\"` from the [profile.release] of your Cargo.toml, \
             or of the workspace's, and run `cargo build --release` again)"
        }
        RefusalReason::IncompatibleVersion => {
            "\n(widen the plugin's compatible_with if it works with that server, or check \
             against the server version you target)"
        }
        RefusalReason::WrongArchitecture => {
            "\n(a library cross-compiled for another target is checked on a machine of \
             that target, with `vigilo-server check-plugin`)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_version_is_the_version_of_this_source_tree() {
        // In Vigilo's own repository the server's version is the
        // workspace's; keep the constant in step with it.
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let Ok(text) = std::fs::read_to_string(workspace) else {
            return; // the SDK outside Vigilo's repository
        };
        let Some(package) = text.split("[workspace.package]").nth(1) else {
            return;
        };
        let version = package
            .lines()
            .take_while(|line| !line.starts_with('['))
            .find_map(|line| line.trim().strip_prefix("version = "))
            .map(|v| v.trim_matches('"'));
        assert_eq!(
            version,
            Some(SERVER_VERSION),
            "update vigilo_sdk::harness::SERVER_VERSION with the server's version"
        );
    }

    #[test]
    fn the_release_library_is_beside_this_build_s_profile_directory() {
        let path = release_library("my_plugin");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name,
            format!(
                "{}my_plugin{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            )
        );
        assert_eq!(
            path.parent().unwrap().file_name().unwrap(),
            std::ffi::OsStr::new("release")
        );
        // `<target dir>/release/`, where `<target dir>` holds this test's
        // own profile directory.
        let exe = std::env::current_exe().unwrap();
        let target_dir = path.parent().unwrap().parent().unwrap();
        assert!(exe.starts_with(target_dir), "{}", path.display());
    }

    #[test]
    #[should_panic(expected = "build it first with `cargo build --release`")]
    fn a_missing_release_build_says_how_to_make_it() {
        assert_server_accepts(release_library("no_such_plugin"), SERVER_VERSION);
    }
}
