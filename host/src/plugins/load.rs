//! Loading one plugin file, and every reason it can be refused.
//!
//! [`load_file`] is exactly what the server does with each file at startup
//! (and what `vigilo-server check-plugin` does with one): check the file,
//! `dlopen` it through abi_stable, read and check its manifest, and ask it to
//! register. It touches no shared state; the [`super::Plugins`] registry
//! adds the result and checks names against the plugins already loaded.
//!
//! The checks of the file itself (permissions, checksum, architecture) are
//! made here, in the server; the library is then opened in its tier
//! ([`super::tier`]): here with [`open_in_process`], or by a worker, which
//! calls the same function and reports the same refusals.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigilo_sdk::loader::{
    library_error_summary, library_reason, Manifest, PluginHandle, RefusalReason, Registration,
};

use super::tier::{Isolation, PluginLink, Tier, Tiers};

/// Why a plugin is not running. The codes are part of the API
/// (`GET /api/v1/plugins?all=true` → `reason`) and of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The path does not exist.
    NotFound,
    /// The file is not a shared library, or a shared library without a
    /// Vigilo root module.
    NotAPlugin,
    /// The library's ABI layout differs from this server's SDK.
    AbiMismatch,
    /// The library was built with an incompatible vigilo-sdk.
    SdkVersionMismatch,
    /// `compatible_with` excludes the running `VIGILO_VERSION`.
    IncompatibleVersion,
    /// The manifest is unreadable or has an invalid field.
    InvalidManifest,
    /// Its name (or a name it registers) is taken by a loaded plugin.
    DuplicateName,
    /// `register` failed, or registered something of another kind.
    RegisterFailed,
    /// `register` panicked.
    RegisterPanicked,
    /// Built with `panic = "abort"`: a panic would take the server down.
    PanicAbortBuild,
    /// The file or its directory is world-writable.
    InsecurePermissions,
    /// Disabled while running because its calls kept panicking.
    DisabledAfterPanics,
    /// The file's SHA-256 differs from the one pinned in `installed_plugins`.
    ChecksumMismatch,
    /// Built for another CPU architecture or operating system.
    WrongArchitecture,
    /// Disabled by a platform admin.
    DisabledByAdmin,
    /// Its file was replaced by a newer one, which is now loaded.
    Replaced,
    /// Its file was removed from the plugins directory.
    Removed,
    /// Disabled while running because its worker kept crashing or timing
    /// out.
    DisabledAfterCrashes,
    /// Its worker could not be started or could not confine itself.
    WorkerFailed,
    /// Taken out of use in process because its calls kept panicking; the
    /// same file now runs in a worker (`plugin_panic_policy = "worker"`).
    MovedToWorker,
    /// This version asks for capabilities beyond those approved for the
    /// plugin; it waits for a platform admin to approve them.
    AwaitingApproval,
}

impl Reason {
    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NotFound => "not_found",
            Reason::NotAPlugin => "not_a_plugin",
            Reason::AbiMismatch => "abi_mismatch",
            Reason::SdkVersionMismatch => "sdk_version_mismatch",
            Reason::IncompatibleVersion => "incompatible_version",
            Reason::InvalidManifest => "invalid_manifest",
            Reason::DuplicateName => "duplicate_name",
            Reason::RegisterFailed => "register_failed",
            Reason::RegisterPanicked => "register_panicked",
            Reason::PanicAbortBuild => "panic_abort_build",
            Reason::InsecurePermissions => "insecure_permissions",
            Reason::DisabledAfterPanics => "disabled_after_panics",
            Reason::ChecksumMismatch => "checksum_mismatch",
            Reason::WrongArchitecture => "wrong_architecture",
            Reason::DisabledByAdmin => "disabled_by_admin",
            Reason::Replaced => "replaced",
            Reason::Removed => "removed",
            Reason::DisabledAfterCrashes => "disabled_after_crashes",
            Reason::WorkerFailed => "worker_failed",
            Reason::MovedToWorker => "moved_to_worker",
            Reason::AwaitingApproval => "awaiting_approval",
        }
    }
}

impl Reason {
    /// What an operator can do about it, in a sentence.
    pub fn remedy(self) -> &'static str {
        match self {
            Reason::NotFound => "Check the path in installed_plugins, or put the file back.",
            Reason::NotAPlugin => "The file is not a Vigilo plugin: remove it from the plugins directory or installed_plugins.",
            Reason::AbiMismatch | Reason::SdkVersionMismatch => {
                "Install a version of the plugin built against this server's vigilo-sdk, or ask its vendor for one."
            }
            Reason::IncompatibleVersion => "Install a version of the plugin made for this server's version.",
            Reason::InvalidManifest | Reason::RegisterFailed | Reason::RegisterPanicked => {
                "The plugin is broken: ask its vendor for a fixed release."
            }
            Reason::DuplicateName => "Two plugins claim the same name: remove one of them.",
            Reason::PanicAbortBuild => "Ask the vendor for a build with panic = \"unwind\"; this one could crash the server.",
            Reason::InsecurePermissions => "Make the file and its directory writable only by the server's user (chmod o-w).",
            Reason::DisabledAfterPanics => "Its calls kept failing. Check the log, then enable it again or install a fixed version.",
            Reason::ChecksumMismatch => "The file changed: install the release whose checksum is pinned, or update the pin.",
            Reason::WrongArchitecture => "Install the build for this server's platform.",
            Reason::DisabledByAdmin => "Enable it again when it is wanted.",
            Reason::Replaced => "Nothing to do: a newer version of the same file is running.",
            Reason::Removed => "Nothing to do unless it was removed by mistake: put the file back.",
            Reason::DisabledAfterCrashes => "Its worker kept crashing or running out of time. Check the log, then enable it again or install a fixed version.",
            Reason::WorkerFailed => "The server could not run it in a worker: check the log (or run vigilo-server check-plugin --isolation worker on the file).",
            Reason::MovedToWorker => "Nothing to do: the same plugin now runs in a worker, where a fault costs one call. Check the log for its panics.",
            Reason::AwaitingApproval => "Read what the new version asks for; approve it (vigilo plugin approve NAME, or Approve here) or put the previous version back.",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A plugin file that will not run, and why.
#[derive(Debug, Clone)]
pub struct Skip {
    /// The file.
    pub path: PathBuf,
    /// The plugin's name, when the manifest could be read.
    pub plugin: Option<String>,
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// The file's SHA-256, when it could be read.
    pub sha256: Option<String>,
    /// The reason code.
    pub reason: Reason,
    /// One line for operators.
    pub message: String,
    /// More detail for the debug log (abi_stable's full layout report).
    pub detail: Option<String>,
}

impl Skip {
    /// A skip of `path` for `reason`, before anything of the plugin is known.
    fn new(path: &Path, reason: Reason, message: String) -> Box<Skip> {
        Box::new(Skip {
            path: path.to_owned(),
            plugin: None,
            manifest: None,
            sha256: None,
            reason,
            message,
            detail: None,
        })
    }
}

/// A plugin file that loaded and registered.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// The private copy the code was loaded from (the file itself when no
    /// private directory was given).
    pub loaded_from: PathBuf,
    /// Hex SHA-256 of the file's bytes, when already known (pinned).
    pub sha256: Option<String>,
    /// How the server reaches it: its root module loaded here, or its
    /// worker.
    pub link: PluginLink,
    /// Its tier, and what chose it.
    pub tier: Tier,
    /// Its manifest.
    pub manifest: Manifest,
    /// Everything it registered.
    pub registrations: Vec<Registration>,
}

/// How to load a file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The SHA-256 the file must have (hex).
    pub expected_sha256: Option<String>,
    /// Copy the file here (to a new, unique path) and load the copy, so the
    /// operator's file may change afterwards without harm and a new version
    /// at the same path really loads new code.
    pub private_dir: Option<PathBuf>,
    /// Which tier each plugin runs in (by default: in process).
    pub tiers: Arc<Tiers>,
}

/// Loads the plugin at `path` for a server running `vigilo_version`, in
/// place.
pub fn load_file(path: &Path, vigilo_version: &str) -> Result<Loaded, Box<Skip>> {
    load_file_with(path, vigilo_version, &LoadOptions::default())
}

/// Loads the plugin at `path` as `options` say.
pub fn load_file_with(
    path: &Path,
    vigilo_version: &str,
    options: &LoadOptions,
) -> Result<Loaded, Box<Skip>> {
    let skip = |reason: Reason, message: String| Skip::new(path, reason, message);
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(skip(Reason::NotFound, "no such file".into()))
        }
        Err(e) => return Err(skip(Reason::NotFound, format!("cannot read the file: {e}"))),
    };
    if !meta.is_file() {
        return Err(skip(Reason::NotAPlugin, "not a regular file".into()));
    }
    if let Some(message) = insecure(path, &meta) {
        return Err(skip(Reason::InsecurePermissions, message));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| skip(Reason::NotFound, format!("cannot read the file: {e}")))?;
    if let Some(expected) = &options.expected_sha256 {
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            let mut s = skip(
                Reason::ChecksumMismatch,
                format!("the file's sha256 is {actual}, but installed_plugins pins {expected}"),
            );
            s.sha256 = Some(actual);
            return Err(s);
        }
    }
    // The file's SHA-256 is not computed here unless pinned: for a 1 MB
    // plugin hashing costs more than loading, so the registry computes it
    // from the server's private copy when it is first asked for.
    let mut outcome = load_bytes(path, &bytes, vigilo_version, options);
    if let (Some(expected), Ok(loaded)) = (&options.expected_sha256, &mut outcome) {
        loaded.sha256 = Some(expected.trim().to_ascii_lowercase());
    }
    outcome
}

/// Everything after reading the file: `bytes` are its contents.
fn load_bytes(
    path: &Path,
    bytes: &[u8],
    vigilo_version: &str,
    options: &LoadOptions,
) -> Result<Loaded, Box<Skip>> {
    let skip = |reason: Reason, message: String| Skip::new(path, reason, message);
    if bytes.is_empty() {
        return Err(skip(Reason::NotAPlugin, "the file is empty".into()));
    }
    if !looks_like_shared_library(bytes) {
        return Err(skip(
            Reason::NotAPlugin,
            format!(
                "not a shared library (expected a {} file built with vigilo_sdk::export_plugin!)",
                std::env::consts::DLL_EXTENSION
            ),
        ));
    }

    if let Some(message) = vigilo_sdk::loader::LibraryTarget::of(bytes)
        .and_then(|built| built.mismatch(&vigilo_sdk::loader::LibraryTarget::this_machine()))
    {
        return Err(skip(Reason::WrongArchitecture, message));
    }
    let loaded_from = match options.private_dir.as_deref() {
        Some(dir) => private_copy(dir, path, bytes).map_err(|e| {
            skip(
                Reason::NotFound,
                format!(
                    "cannot copy the file into the server's private plugin directory {}: {e}",
                    dir.display()
                ),
            )
        })?,
        // dlopen looks a bare file name up on the library path, not in the
        // current directory: always give it a path.
        None => std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
    };
    let opened = open_in_tier(path, &loaded_from, vigilo_version, &options.tiers)?;
    Ok(Loaded {
        path: path.to_owned(),
        loaded_from,
        sha256: None,
        link: opened.link,
        tier: opened.tier,
        manifest: opened.manifest,
        registrations: opened.registrations,
    })
}

/// A library loaded in its tier.
pub(super) struct Opened {
    pub(super) link: PluginLink,
    pub(super) tier: Tier,
    pub(super) manifest: vigilo_sdk::loader::Manifest,
    pub(super) registrations: Vec<vigilo_sdk::loader::Registration>,
}

/// Loads the library at `loaded_from` (the private copy of `path`) in the
/// tier `tiers` gives its plugin. When that depends on the plugin's name, a
/// worker loads it first and reports the name; the server loads it itself
/// only if the plugin's tier is in process.
fn open_in_tier(
    path: &std::path::Path,
    loaded_from: &std::path::Path,
    vigilo_version: &str,
    tiers: &Tiers,
) -> Result<Opened, Box<Skip>> {
    let in_process = || {
        let (handle, manifest, registrations) = open_in_process(path, loaded_from, vigilo_version)?;
        Ok(Opened {
            link: PluginLink::InProcess(handle),
            tier: tiers.tier_of(&manifest.name),
            manifest,
            registrations,
        })
    };
    if tiers.uniform() == Some(Isolation::InProcess) {
        return in_process();
    }
    let started = super::worker::start(path, loaded_from, vigilo_version, &tiers.worker)?;
    let tier = tiers.tier_of(&started.manifest.name);
    if tier.isolation == Isolation::InProcess {
        // Dropping the worker ends it before it confined itself.
        drop(started);
        return in_process();
    }
    let (manifest, registrations) = (started.manifest.clone(), started.registrations.clone());
    let worker = started.confine(path, vigilo_version, tiers.worker.clone())?;
    Ok(Opened {
        link: PluginLink::Worker(worker),
        tier,
        manifest,
        registrations,
    })
}

/// Loads the library at `loaded_from` (the private copy of `path`) into
/// this process and makes the checks a server makes, in its order: what a
/// server does for an in-process plugin, and what a worker does for its
/// own.
pub(crate) fn open_in_process(
    path: &Path,
    loaded_from: &Path,
    vigilo_version: &str,
) -> Result<(PluginHandle, Manifest, Vec<Registration>), Box<Skip>> {
    let skip = |reason: Reason, message: String| Skip::new(path, reason, message);
    let handle = match vigilo_sdk::loader::load_library(loaded_from) {
        Ok(module) => PluginHandle::new(module),
        Err(e) => {
            let mut s = skip(library_reason(&e).into(), library_error_summary(&e));
            s.detail = Some(e.to_string());
            return Err(s);
        }
    };

    // The same checks, in the same order, as `vigilo-plugin check` and the
    // SDK harness make on a vendor's file.
    let (manifest, registrations) = vigilo_sdk::loader::check_loaded(&handle, vigilo_version)
        .map_err(|refusal| {
            let mut s = skip(refusal.reason.into(), refusal.message);
            s.detail = refusal.detail;
            if let Some(manifest) = refusal.manifest {
                s.plugin = Some(manifest.name.clone());
                s.manifest = Some(*manifest);
            }
            s
        })?;
    Ok((handle, manifest, registrations))
}

/// Writes `bytes` to a new file in `dir` (never reusing a path, since the
/// dynamic loader would hand back the code it loaded from that path before)
/// and returns its path. The copy is written under a temporary name and
/// renamed into place, readable by the server's user only.
fn private_copy(dir: &Path, original: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let name = original
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin.so".into());
    let unique = format!(
        "{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let target = dir.join(&unique);
    let temporary = dir.join(format!(".{unique}.tmp"));
    {
        let mut file = std::fs::File::create(&temporary)?;
        // No fsync: the copies are made afresh at every start.
        file.write_all(bytes)?;
    }
    std::fs::rename(&temporary, &target)?;
    Ok(target)
}

impl From<RefusalReason> for Reason {
    fn from(reason: RefusalReason) -> Self {
        match reason {
            RefusalReason::NotFound => Reason::NotFound,
            RefusalReason::NotAPlugin => Reason::NotAPlugin,
            RefusalReason::WrongArchitecture => Reason::WrongArchitecture,
            RefusalReason::AbiMismatch => Reason::AbiMismatch,
            RefusalReason::SdkVersionMismatch => Reason::SdkVersionMismatch,
            RefusalReason::PanicAbortBuild => Reason::PanicAbortBuild,
            RefusalReason::InvalidManifest => Reason::InvalidManifest,
            RefusalReason::IncompatibleVersion => Reason::IncompatibleVersion,
            RefusalReason::RegisterFailed => Reason::RegisterFailed,
            RefusalReason::RegisterPanicked => Reason::RegisterPanicked,
            RefusalReason::DuplicateName => Reason::DuplicateName,
        }
    }
}

/// ELF (Linux and most Unixes) or Mach-O (macOS) magic.
fn looks_like_shared_library(bytes: &[u8]) -> bool {
    const MAGICS: [&[u8]; 5] = [
        b"\x7fELF",
        &[0xcf, 0xfa, 0xed, 0xfe],
        &[0xce, 0xfa, 0xed, 0xfe],
        &[0xca, 0xfe, 0xba, 0xbe],
        b"MZ",
    ];
    MAGICS.iter().any(|m| bytes.starts_with(m))
}

/// Why the file at `path` may not be trusted: it, or the directory holding
/// it, is writable by users other than its owner and group, so anyone on the
/// machine could swap in code the server would run.
#[cfg(unix)]
fn insecure(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    const OTHERS_WRITE: u32 = 0o002;
    let mode = meta.permissions().mode();
    if mode & OTHERS_WRITE != 0 {
        return Some(format!(
            "the file is writable by every user (mode {:o}); run `chmod o-w {}`",
            mode & 0o777,
            path.display()
        ));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let dir_mode = std::fs::metadata(dir).ok()?.permissions().mode();
    if dir_mode & OTHERS_WRITE != 0 {
        return Some(format!(
            "its directory {} is writable by every user (mode {:o}); run `chmod o-w {}`",
            dir.display(),
            dir_mode & 0o7777,
            dir.display()
        ));
    }
    None
}

#[cfg(not(unix))]
fn insecure(_path: &Path, _meta: &std::fs::Metadata) -> Option<String> {
    None
}

/// Whether a file name looks like a plugin library on this platform
/// (`.so`, or `.dylib` on macOS); the plugins directory holds other files too.
pub fn is_library_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.')
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "so" || e == "dylib")
}
