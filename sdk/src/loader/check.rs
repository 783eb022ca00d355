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
mod tests;
