//! Every check a Vigilo server makes before it runs a plugin file, with the
//! reason code and one-line message it reports: [`check_library`] for a
//! file, [`check_manifest`] and [`check_registrations`] for what a loaded
//! library says about itself.
//!
//! `vigilo-server check-plugin` and the server's loader report these same
//! reasons (`GET /api/v1/plugins?all=true` → `reason`), and
//! [`crate::harness::assert_server_accepts`] runs them in a vendor's tests
//! against the library they ship. What only a running server can know is
//! left to it: file permissions where it is installed, a pinned checksum,
//! and names already taken by other loaded plugins.

use std::{fmt, io::ErrorKind, path::Path};

use super::{
    library_error_summary, load_library, target::looks_like_shared_library, CallError,
    Incompatibility, LibraryError, LibraryTarget, Manifest, PluginErrorKind, PluginHandle,
    Registration,
};
use crate::plugin::PluginKind;

/// The field types every server has built in; a plugin may not register a
/// field type with one of these names.
pub const BUILTIN_FIELD_TYPES: [&str; 5] = ["text", "number", "boolean", "date", "select"];

/// Why a server would not run a plugin file. The codes are the server's
/// (`reason` in `GET /api/v1/plugins?all=true`, and its log lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// `not_found`: the file does not exist or cannot be read.
    NotFound,
    /// `not_a_plugin`: not a shared library, empty, or a library without
    /// `export_plugin!`.
    NotAPlugin,
    /// `wrong_architecture`: built for another CPU or operating system.
    WrongArchitecture,
    /// `abi_mismatch`: its ABI layout differs from the server's SDK.
    AbiMismatch,
    /// `sdk_version_mismatch`: built with an incompatible vigilo-sdk or
    /// plugin ABI version.
    SdkVersionMismatch,
    /// `panic_abort_build`: built with `panic = "abort"`.
    PanicAbortBuild,
    /// `invalid_manifest`: a bad name, a version or requirement that is not
    /// semver, a bad asset path, or an unreadable manifest.
    InvalidManifest,
    /// `incompatible_version`: `compatible_with` excludes the server's
    /// version.
    IncompatibleVersion,
    /// `register_failed`: `register` failed, registered something of another
    /// kind than the plugin's, or an invalid name.
    RegisterFailed,
    /// `register_panicked`: `register` panicked.
    RegisterPanicked,
    /// `duplicate_name`: a registration name is taken (by a built-in field
    /// type).
    DuplicateName,
}

impl RefusalReason {
    /// The reason code, as the server reports it.
    pub fn code(self) -> &'static str {
        match self {
            RefusalReason::NotFound => "not_found",
            RefusalReason::NotAPlugin => "not_a_plugin",
            RefusalReason::WrongArchitecture => "wrong_architecture",
            RefusalReason::AbiMismatch => "abi_mismatch",
            RefusalReason::SdkVersionMismatch => "sdk_version_mismatch",
            RefusalReason::PanicAbortBuild => "panic_abort_build",
            RefusalReason::InvalidManifest => "invalid_manifest",
            RefusalReason::IncompatibleVersion => "incompatible_version",
            RefusalReason::RegisterFailed => "register_failed",
            RefusalReason::RegisterPanicked => "register_panicked",
            RefusalReason::DuplicateName => "duplicate_name",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A plugin file the server would not run, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The reason code.
    pub reason: RefusalReason,
    /// One line for operators and vendors.
    pub message: String,
    /// More detail, when there is any (abi_stable's full layout report).
    pub detail: Option<String>,
    /// The plugin's manifest, when it could be read.
    pub manifest: Option<Box<Manifest>>,
}

impl Refusal {
    /// A refusal for `reason` with `message`.
    pub fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
            detail: None,
            manifest: None,
        }
    }

    fn of(manifest: &Manifest, reason: RefusalReason, message: impl Into<String>) -> Self {
        Refusal {
            manifest: Some(Box::new(manifest.clone())),
            ..Refusal::new(reason, message)
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Refusal {}

/// A plugin file that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedLibrary {
    /// The loaded library.
    pub handle: PluginHandle,
    /// Its manifest.
    pub manifest: Manifest,
    /// Everything it registered.
    pub registrations: Vec<Registration>,
}

/// Checks the plugin file at `path` as a server running `vigilo_version`
/// does before it runs it, in the server's order: the file is a shared
/// library for this machine, abi_stable loads it (header, SDK version,
/// layout), its manifest passes [`check_manifest`] (panic strategy, name,
/// version, `compatible_with` and plugin ABI version, asset paths) and its
/// registrations pass [`check_registrations`].
///
/// The library is loaded into this process (and, like every library, never
/// unloaded); `register` runs only once the panic strategy is known to be
/// `unwind`.
pub fn check_library(
    path: impl AsRef<Path>,
    vigilo_version: &str,
) -> Result<CheckedLibrary, Refusal> {
    let path = path.as_ref();
    let refuse = Refusal::new;
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => refuse(
            RefusalReason::NotFound,
            format!("{} does not exist", path.display()),
        ),
        _ => refuse(
            RefusalReason::NotFound,
            format!("cannot read {}: {e}", path.display()),
        ),
    })?;
    if !meta.is_file() {
        return Err(refuse(
            RefusalReason::NotAPlugin,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        refuse(
            RefusalReason::NotFound,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    if bytes.is_empty() {
        return Err(refuse(
            RefusalReason::NotAPlugin,
            "the file is empty".to_owned(),
        ));
    }
    if !looks_like_shared_library(&bytes) {
        return Err(refuse(
            RefusalReason::NotAPlugin,
            format!(
                "not a shared library (expected a {} file built with vigilo_sdk::export_plugin!)",
                std::env::consts::DLL_EXTENSION
            ),
        ));
    }
    if let Some(message) =
        LibraryTarget::of(&bytes).and_then(|built| built.mismatch(&LibraryTarget::this_machine()))
    {
        return Err(refuse(RefusalReason::WrongArchitecture, message));
    }
    drop(bytes);

    let handle = load_library(path)
        .map(PluginHandle::new)
        .map_err(|e| Refusal {
            detail: Some(e.to_string()),
            ..Refusal::new(library_reason(&e), library_error_summary(&e))
        })?;
    let (manifest, registrations) = check_loaded(&handle, vigilo_version)?;
    Ok(CheckedLibrary {
        handle,
        manifest,
        registrations,
    })
}

/// The checks a server makes on a library abi_stable has loaded, in its
/// order: the manifest can be read and passes [`check_manifest`]'s identity
/// checks (panic strategy, name, version, `compatible_with` and plugin ABI
/// version) — only then does `register` run — the registrations pass
/// [`check_registrations`], and the frontend asset paths are relative.
/// Returns the manifest and the registrations.
pub fn check_loaded(
    handle: &PluginHandle,
    vigilo_version: &str,
) -> Result<(Manifest, Vec<Registration>), Refusal> {
    let manifest = handle.manifest().map_err(|e| {
        Refusal::new(
            RefusalReason::InvalidManifest,
            format!("cannot read the plugin's manifest: {e}"),
        )
    })?;
    check_identity(&manifest, vigilo_version)?;
    let registrations = handle.registrations().map_err(|e| match e {
        CallError::Plugin {
            kind: PluginErrorKind::Panicked,
            message,
        } => Refusal::of(
            &manifest,
            RefusalReason::RegisterPanicked,
            format!("register panicked: {message}"),
        ),
        other => Refusal::of(
            &manifest,
            RefusalReason::RegisterFailed,
            format!("register failed: {}", other.message()),
        ),
    })?;
    check_registrations(&manifest, &registrations)?;
    check_assets(&manifest)?;
    Ok((manifest, registrations))
}

/// Checks a plugin's manifest as a server running `vigilo_version` does:
/// built with `panic = "unwind"`, a valid name, a semver `version`, a
/// `compatible_with` that matches the server and this SDK's plugin ABI
/// version, and relative frontend asset paths.
pub fn check_manifest(manifest: &Manifest, vigilo_version: &str) -> Result<(), Refusal> {
    check_identity(manifest, vigilo_version)?;
    check_assets(manifest)
}

/// Everything [`check_manifest`] checks except the asset paths, which the
/// server checks after the registrations.
fn check_identity(manifest: &Manifest, vigilo_version: &str) -> Result<(), Refusal> {
    let refuse = |reason, message: String| Refusal::of(manifest, reason, message);
    if !manifest.panic_unwind {
        return Err(refuse(
            RefusalReason::PanicAbortBuild,
            "built with panic = \"abort\": a panic in it would stop the whole server; \
             rebuild it with panic = \"unwind\" (Cargo's default)"
                .to_owned(),
        ));
    }
    check_name(&manifest.name)
        .map_err(|message| refuse(RefusalReason::InvalidManifest, message))?;
    if let Some(capabilities) = &manifest.capabilities {
        capabilities
            .check()
            .map_err(|message| refuse(RefusalReason::InvalidManifest, message))?;
    }
    if let Err(e) = semver::Version::parse(&manifest.version) {
        return Err(refuse(
            RefusalReason::InvalidManifest,
            format!("version `{}` is not semver: {e}", manifest.version),
        ));
    }
    manifest
        .check_compatible(vigilo_version)
        .map_err(|incompatible| match incompatible {
            Incompatibility::ServerVersion { required, server } => refuse(
                RefusalReason::IncompatibleVersion,
                format!("requires vigilo {required}, running {server}"),
            ),
            Incompatibility::SdkAbiVersion { plugin, server } => refuse(
                RefusalReason::SdkVersionMismatch,
                format!(
                    "built with vigilo-sdk {} for plugin ABI version {plugin}, this server speaks \
                     version {server}; rebuild the plugin against a matching vigilo-sdk",
                    manifest.sdk_version
                ),
            ),
            other @ (Incompatibility::InvalidRequirement { .. }
            | Incompatibility::InvalidServerVersion { .. }) => {
                refuse(RefusalReason::InvalidManifest, other.to_string())
            }
        })
}

fn check_assets(manifest: &Manifest) -> Result<(), Refusal> {
    match manifest
        .frontend
        .iter()
        .find(|asset| !safe_relative_path(&asset.path))
    {
        Some(asset) => Err(Refusal::of(
            manifest,
            RefusalReason::InvalidManifest,
            format!(
                "frontend asset path `{}` must be relative, without `..`",
                asset.path
            ),
        )),
        None => Ok(()),
    }
}

/// Checks what a plugin registered as a server does: only things of the
/// plugin's own kind, with valid names, and no field type named like a
/// built-in one ([`BUILTIN_FIELD_TYPES`]).
pub fn check_registrations(
    manifest: &Manifest,
    registrations: &[Registration],
) -> Result<(), Refusal> {
    let refuse = |reason, message: String| Refusal::of(manifest, reason, message);
    if let Some(stray) = registrations.iter().find(|r| r.kind() != manifest.kind) {
        return Err(refuse(
            RefusalReason::RegisterFailed,
            format!(
                "declares kind {} but registered a {} (`{}`); a plugin registers only its own kind",
                manifest.kind,
                stray.kind(),
                stray.name()
            ),
        ));
    }
    if let Some(bad) = registrations.iter().find(|r| check_name(r.name()).is_err()) {
        return Err(refuse(
            RefusalReason::RegisterFailed,
            format!(
                "registered a {} with an invalid name `{}` (use a-z, 0-9 and _)",
                bad.kind(),
                bad.name()
            ),
        ));
    }
    if let Some(builtin) = registrations
        .iter()
        .find(|r| r.kind() == PluginKind::FieldType && BUILTIN_FIELD_TYPES.contains(&r.name()))
    {
        return Err(refuse(
            RefusalReason::DuplicateName,
            format!("field type `{}` is a built-in type", builtin.name()),
        ));
    }
    Ok(())
}

/// Plugin and registration names: 1–64 of `a-z`, `0-9`, `_`, starting with
/// a letter.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name `{name}` is invalid: use 1-64 of a-z, 0-9 and _, starting with a letter"
        ))
    }
}

/// Whether a frontend asset path is a plain relative path: non-empty
/// segments separated by `/`, none of them `.` or `..`, no backslashes, no
/// leading `/`, at most 256 bytes.
pub fn safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 256
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// The reason code for a loader error.
pub fn library_reason(error: &LibraryError) -> RefusalReason {
    match error {
        LibraryError::OpenError { .. } | LibraryError::GetSymbolError { .. } => {
            RefusalReason::NotAPlugin
        }
        LibraryError::IncompatibleVersionNumber { .. } | LibraryError::ParseVersionError(_) => {
            RefusalReason::SdkVersionMismatch
        }
        LibraryError::AbiInstability(_)
        | LibraryError::InvalidAbiHeader(_)
        | LibraryError::InvalidCAbi { .. } => RefusalReason::AbiMismatch,
        LibraryError::RootModule { .. } => RefusalReason::RegisterFailed,
        LibraryError::Many(errors) => errors
            .first()
            .map(library_reason)
            .unwrap_or(RefusalReason::AbiMismatch),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::abi::SDK_ABI_VERSION;

    fn manifest() -> Manifest {
        Manifest {
            name: "my_plugin".into(),
            kind: PluginKind::FieldType,
            version: "0.1.0".into(),
            compatible_with: ">=0.1, <0.2".into(),
            sdk_abi_version: SDK_ABI_VERSION,
            sdk_version: "0.1.0".into(),
            panic_unwind: true,
            description: String::new(),
            frontend: vec![],
            frontend_api: crate::FRONTEND_API_VERSION,
            capabilities: None,
        }
    }

    fn refused(result: Result<(), Refusal>) -> (&'static str, String) {
        let refusal = result.unwrap_err();
        (refusal.reason.code(), refusal.message)
    }

    #[test]
    fn a_good_manifest_passes() {
        assert_eq!(check_manifest(&manifest(), "0.1.7"), Ok(()));
    }

    #[test]
    fn an_abort_build_is_refused_first() {
        let abort = Manifest {
            panic_unwind: false,
            name: "Bad Name".into(),
            ..manifest()
        };
        assert_eq!(
            refused(check_manifest(&abort, "0.1.0")),
            (
                "panic_abort_build",
                "built with panic = \"abort\": a panic in it would stop the whole server; \
                 rebuild it with panic = \"unwind\" (Cargo's default)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn compatible_with_is_checked_against_the_server_version() {
        assert_eq!(
            refused(check_manifest(&manifest(), "0.2.0")),
            (
                "incompatible_version",
                "requires vigilo >=0.1, <0.2, running 0.2.0".to_owned()
            )
        );
        let other_abi = Manifest {
            sdk_abi_version: SDK_ABI_VERSION + 1,
            ..manifest()
        };
        assert_eq!(
            refused(check_manifest(&other_abi, "0.1.0")).0,
            "sdk_version_mismatch"
        );
        let soon = Manifest {
            compatible_with: "soon".into(),
            ..manifest()
        };
        assert_eq!(
            refused(check_manifest(&soon, "0.1.0")).0,
            "invalid_manifest"
        );
    }

    #[test]
    fn names_versions_and_asset_paths() {
        let bad_name = Manifest {
            name: "My-Plugin".into(),
            ..manifest()
        };
        assert_eq!(
            refused(check_manifest(&bad_name, "0.1.0")),
            (
                "invalid_manifest",
                "name `My-Plugin` is invalid: use 1-64 of a-z, 0-9 and _, starting with a letter"
                    .to_owned()
            )
        );
        let bad_version = Manifest {
            version: "1".into(),
            ..manifest()
        };
        assert_eq!(
            refused(check_manifest(&bad_version, "0.1.0")).0,
            "invalid_manifest"
        );
        let escaping = Manifest {
            frontend: vec![crate::wire::FrontendAsset {
                path: "../etc/passwd".into(),
                content_type: "text/plain".into(),
            }],
            ..manifest()
        };
        assert_eq!(
            refused(check_manifest(&escaping, "0.1.0")),
            (
                "invalid_manifest",
                "frontend asset path `../etc/passwd` must be relative, without `..`".to_owned()
            )
        );
        assert!(safe_relative_path("dir/widget.js"));
        for bad in ["", "/abs.js", "a//b", "./a", "a\\b", "a/../b"] {
            assert!(!safe_relative_path(bad), "{bad}");
        }
    }

    #[test]
    fn registrations_of_another_kind_bad_names_and_built_in_names() {
        let field = |name: &str| Registration::FieldType {
            name: name.into(),
            label: "L".into(),
            description: String::new(),
            element: None,
        };
        assert_eq!(
            check_registrations(&manifest(), &[field("percent")]),
            Ok(())
        );
        let widget = Registration::DashboardWidget {
            name: "tile".into(),
            label: "Tile".into(),
            description: String::new(),
            config_schema: json!({}),
            element: None,
        };
        assert_eq!(
            refused(check_registrations(
                &manifest(),
                &[field("percent"), widget]
            )),
            (
                "register_failed",
                "declares kind field_type but registered a dashboard_widget (`tile`); \
                 a plugin registers only its own kind"
                    .to_owned()
            )
        );
        assert_eq!(
            refused(check_registrations(&manifest(), &[field("Percent")])).0,
            "register_failed"
        );
        assert_eq!(
            refused(check_registrations(&manifest(), &[field("date")])),
            (
                "duplicate_name",
                "field type `date` is a built-in type".to_owned()
            )
        );
    }

    #[test]
    fn files_that_are_not_plugins() {
        let dir = std::env::temp_dir().join(format!("vigilo-sdk-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("libmissing.so");
        let refusal = check_library(&missing, "0.1.0").unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::NotFound);
        assert_eq!(
            refusal.message,
            format!("{} does not exist", missing.display())
        );

        let empty = dir.join("libempty.so");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(
            check_library(&empty, "0.1.0").unwrap_err().message,
            "the file is empty"
        );

        let text = dir.join("libtext.so");
        std::fs::write(&text, b"hello").unwrap();
        assert_eq!(
            check_library(&text, "0.1.0").unwrap_err().reason,
            RefusalReason::NotAPlugin
        );

        // A library for another CPU is named as such before it is opened.
        let other = if std::env::consts::ARCH == "aarch64" {
            0x3eu16
        } else {
            0xb7
        };
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2;
        header[5] = 1;
        header[18..20].copy_from_slice(&other.to_le_bytes());
        let foreign = dir.join("libforeign.so");
        std::fs::write(&foreign, &header).unwrap();
        let refusal = check_library(&foreign, "0.1.0").unwrap_err();
        if cfg!(target_os = "linux") {
            assert_eq!(refusal.reason, RefusalReason::WrongArchitecture);
            assert!(
                refusal.message.starts_with("built for "),
                "{}",
                refusal.message
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
