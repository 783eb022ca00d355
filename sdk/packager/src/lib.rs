//! Vigilo plugin bundles: the binary release format plugin vendors ship.
//!
//! A bundle is a `.tar.gz` holding
//!
//! * `vigilo-plugin.json`, the [`BundleManifest`]: the plugin's name, kind,
//!   version, `compatible_with`, SDK ABI version, and for each target triple
//!   its library file and SHA-256 (plus each frontend file's SHA-256);
//! * `vigilo-plugin.sig` (optional): the hex Ed25519 signature of the exact
//!   bytes of `vigilo-plugin.json`;
//! * `lib/<target triple>/<library>` for each target;
//! * `frontend/<path>` for the frontend files the library embeds (and a
//!   server serves), so they can be reviewed or hosted without loading the
//!   library.
//!
//! [`package`] builds one (the `vigilo-plugin package` command), after
//! [`check_release`] (`vigilo-plugin check`) found nothing a server would
//! refuse: the server's loader checks against a target Vigilo version and
//! the frontend rules of `vigilo_sdk::loader::frontend`;
//! [`Bundle::read`] and [`Bundle::verify`] are what a server runs before
//! installing one (`vigilo-server plugin install`).

pub mod dev;
mod read;
pub mod scaffold;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigilo_sdk::loader::LibraryTarget;

pub use read::{parse_public_key, read_trusted_keys, Bundle, SignatureCheck, Signed};

/// The manifest's file name inside a bundle.
pub const MANIFEST: &str = "vigilo-plugin.json";
/// The signature's file name inside a bundle.
pub const SIGNATURE: &str = "vigilo-plugin.sig";
/// The version of this format.
pub const BUNDLE_FORMAT: u32 = 1;
/// Largest bundle a server reads (256 MiB).
pub const MAX_BUNDLE_BYTES: u64 = 256 * 1024 * 1024;

/// `vigilo-plugin.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// [`BUNDLE_FORMAT`].
    pub bundle_format: u32,
    /// The plugin's name.
    pub name: String,
    /// Its kind (`field_type`, ...).
    pub kind: String,
    /// Its version.
    pub version: String,
    /// Its requirement on the server's version.
    pub compatible_with: String,
    /// The plugin ABI version it was built for.
    pub sdk_abi_version: u32,
    /// The vigilo-sdk version it was built with.
    pub sdk_version: String,
    /// One sentence.
    #[serde(default)]
    pub description: String,
    /// Target triple → library.
    pub libraries: BTreeMap<String, BundleFile>,
    /// Frontend files shipped beside the library.
    #[serde(default)]
    pub frontend: Vec<BundleFile>,
    /// Hex Ed25519 public key of the signer, when signed (informational: the
    /// server trusts only keys from its own configuration).
    #[serde(default)]
    pub signed_by: Option<String>,
}

/// A file inside the bundle with its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// Path inside the archive.
    pub file: String,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
}

/// The target triple of the machine this runs on, as bundles name them.
pub fn host_target() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "macos" => format!("{arch}-apple-darwin"),
        "linux" => format!("{arch}-unknown-linux-gnu"),
        other => format!("{arch}-unknown-{other}"),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A new Ed25519 signing key, written as hex to `path` (mode 0600); returns
/// the hex public key to give to operators (`trusted_plugin_keys`).
pub fn keygen(path: &Path) -> Result<String> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_private(path, hex::encode(key.to_bytes()).as_bytes())?;
    Ok(hex::encode(key.verifying_key().to_bytes()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// The frontend files the library embeds (what a server serves), by path.
fn embedded_frontend(
    handle: &vigilo_sdk::loader::PluginHandle,
    plugin: &vigilo_sdk::loader::Manifest,
    library: &Path,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut embedded = BTreeMap::new();
    for asset in &plugin.frontend {
        let bytes = handle.asset(&asset.path).ok_or_else(|| {
            anyhow!(
                "{} lists the frontend file {} but does not return it",
                library.display(),
                asset.path
            )
        })?;
        embedded.insert(asset.path.clone(), bytes);
    }
    Ok(embedded)
}

/// Checks that `dir` holds exactly the embedded frontend files, byte for
/// byte, so a stale build is caught before it ships.
fn check_frontend_dir(dir: &Path, embedded: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let mut found = BTreeMap::new();
    collect_files(dir, "", &mut found)?;
    for (path, bytes) in &found {
        match embedded.get(path) {
            None => bail!(
                "{path} in {} is not embedded in the library, so no server would serve it: \
                 add it to Plugin::frontend, or leave it out of the directory",
                dir.display()
            ),
            Some(built) if built != bytes => bail!(
                "{path} in {} differs from the copy embedded in the library: rebuild the \
                 library after changing frontend files",
                dir.display()
            ),
            Some(_) => {}
        }
    }
    if let Some(missing) = embedded.keys().find(|path| !found.contains_key(*path)) {
        bail!(
            "the library embeds {missing}, which {} does not have",
            dir.display()
        );
    }
    Ok(())
}

/// Every file below `dir`, by `/`-separated path relative to it.
fn collect_files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let relative = format!("{prefix}{name}");
        if path.is_dir() {
            collect_files(&path, &format!("{relative}/"), out)?;
        } else if path.is_file() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            out.insert(relative, bytes);
        }
    }
    Ok(())
}

/// Reads a signing key written by [`keygen`].
pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("{} is not a hex Ed25519 signing key", path.display()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// What to package.
pub struct PackageRequest {
    /// Target triple → built library. Must include this machine's target,
    /// whose library is loaded to read the plugin's manifest.
    pub libraries: BTreeMap<String, PathBuf>,
    /// The plugin's frontend source directory, to check: its files must be
    /// exactly the ones embedded in the library. The bundle always ships
    /// the embedded files, whether or not this is given.
    pub frontend_dir: Option<PathBuf>,
    /// Sign with this key.
    pub signing_key: Option<SigningKey>,
    /// The Vigilo server version the library must be accepted by
    /// (`compatible_with` included); see [`DEFAULT_VIGILO_VERSION`].
    pub vigilo_version: String,
    /// Where to write the bundle.
    pub out: PathBuf,
}

/// The Vigilo version `package` and `check` check against unless told
/// otherwise: the server version this SDK belongs to.
pub const DEFAULT_VIGILO_VERSION: &str = vigilo_sdk::harness::SERVER_VERSION;

/// Every reason a server would refuse a library: the server's own loader
/// checks (the first that fails) and each frontend rule its element
/// modules break.
#[derive(Debug)]
pub struct Refused {
    /// The Vigilo version checked against.
    pub vigilo_version: String,
    /// Each reason, as `code: message`.
    pub reasons: Vec<String>,
}

impl Refused {
    fn refusing(self, path: &Path) -> anyhow::Error {
        anyhow!(
            "refusing to package {}: a Vigilo {} server would refuse it:\n  - {}",
            path.display(),
            self.vigilo_version,
            self.reasons.join("\n  - ")
        )
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a Vigilo {} server would refuse it:\n  - {}",
            self.vigilo_version,
            self.reasons.join("\n  - ")
        )
    }
}

/// Checks the library at `path` as a server running `vigilo_version`
/// checks it before it runs it ([`vigilo_sdk::loader::check_library`]), and
/// its element modules with the frontend rules
/// ([`vigilo_sdk::loader::check_frontend`]), which `vigilo-server
/// check-plugin` and `plugin install` apply too.
pub fn check_release(
    path: &Path,
    vigilo_version: &str,
) -> std::result::Result<vigilo_sdk::loader::CheckedLibrary, Refused> {
    use vigilo_sdk::loader::{check_frontend, check_library, PluginHandle};
    let refused = |reasons| Refused {
        vigilo_version: vigilo_version.to_owned(),
        reasons,
    };
    let (checked, mut reasons) = match check_library(path, vigilo_version) {
        Ok(checked) => (Some(checked), Vec::new()),
        Err(refusal) => (None, vec![refusal.to_string()]),
    };
    // A library refused for what its manifest says (its compatible_with)
    // still has its frontend checked, so every reason is named at once.
    let registrations = match &checked {
        Some(checked) => Some((checked.handle, checked.registrations.clone())),
        None => PluginHandle::load(path).ok().and_then(|handle| {
            let manifest = handle.manifest().ok()?;
            if !manifest.panic_unwind {
                return None;
            }
            Some((handle, handle.registrations().ok()?))
        }),
    };
    if let Some((handle, registrations)) = registrations {
        reasons.extend(
            check_frontend(&registrations, |p| handle.asset(p))
                .iter()
                .map(|problem| format!("frontend {problem}")),
        );
    }
    match checked {
        Some(checked) if reasons.is_empty() => Ok(checked),
        _ => Err(refused(reasons)),
    }
}

/// Builds a bundle; returns its manifest.
pub fn package(request: &PackageRequest) -> Result<BundleManifest> {
    let host = host_target();
    let native = request.libraries.get(&host).ok_or_else(|| {
        anyhow!(
            "include a library for this machine's target ({host}) so its manifest can be read: --lib {host}=PATH"
        )
    })?;
    // Every library is checked against its target before anything is
    // loaded: a server installs the library listed for its own target, so a
    // library under the wrong triple would be refused on every machine it is
    // meant for.
    let mut contents = BTreeMap::new();
    for (target, path) in &request.libraries {
        if target.is_empty() || target.contains('/') || target.contains("..") {
            bail!("`{target}` is not a target triple");
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        check_library_target(target, path, &bytes)?;
        contents.insert(target.clone(), bytes);
    }
    let checked = check_release(native, &request.vigilo_version).map_err(|e| e.refusing(native))?;
    let (handle, plugin) = (checked.handle, checked.manifest);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut libraries = BTreeMap::new();
    for (target, path) in &request.libraries {
        let bytes = contents.remove(target).unwrap_or_default();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("{} has no file name", path.display()))?;
        let file = format!("lib/{target}/{name}");
        libraries.insert(
            target.clone(),
            BundleFile {
                file: file.clone(),
                sha256: sha256_hex(&bytes),
            },
        );
        files.push((file, bytes));
    }
    // The bundle's frontend files are exactly what the library embeds and
    // servers serve; a directory given with --frontend must match them.
    let embedded = embedded_frontend(&handle, &plugin, native)?;
    if let Some(dir) = &request.frontend_dir {
        check_frontend_dir(dir, &embedded)?;
    }
    let mut frontend = Vec::new();
    for (path, bytes) in embedded {
        let file = format!("frontend/{path}");
        frontend.push(BundleFile {
            file: file.clone(),
            sha256: sha256_hex(&bytes),
        });
        files.push((file, bytes));
    }
    let manifest = BundleManifest {
        bundle_format: BUNDLE_FORMAT,
        name: plugin.name,
        kind: plugin.kind.as_str().to_owned(),
        version: plugin.version,
        compatible_with: plugin.compatible_with,
        sdk_abi_version: plugin.sdk_abi_version,
        sdk_version: plugin.sdk_version,
        description: plugin.description,
        libraries,
        frontend,
        signed_by: request
            .signing_key
            .as_ref()
            .map(|k| hex::encode(k.verifying_key().to_bytes())),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    let out = std::fs::File::create(&request.out)
        .with_context(|| format!("cannot create {}", request.out.display()))?;
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        out,
        flate2::Compression::default(),
    ));
    let mut add = |name: &str, bytes: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, bytes)?;
        Ok(())
    };
    add(MANIFEST, &manifest_bytes)?;
    if let Some(key) = &request.signing_key {
        let signature = key.sign(&manifest_bytes);
        add(SIGNATURE, hex::encode(signature.to_bytes()).as_bytes())?;
    }
    for (name, bytes) in &files {
        add(name, bytes)?;
    }
    archive.into_inner()?.finish()?;
    Ok(manifest)
}

/// Checks that `bytes`, the library given for `target` (from `path`), is
/// built for that target's CPU and operating system, as its ELF or Mach-O
/// header says.
pub fn check_library_target(target: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    let Some(expected) = LibraryTarget::from_triple(target) else {
        bail!(
            "--lib {target}={}: vigilo-plugin cannot tell which CPU and system `{target}` is \
             for, so it cannot check the library; name targets the way servers do, like \
             x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu or aarch64-apple-darwin",
            path.display()
        );
    };
    let built = LibraryTarget::all_of(bytes);
    if built.is_empty() {
        bail!(
            "--lib {target}={}: not a shared library (no ELF or Mach-O header); pass the \
             lib<name>.so or lib<name>.dylib that cargo build wrote",
            path.display()
        );
    }
    if built.contains(&expected) {
        return Ok(());
    }
    let described = built
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ");
    let file = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lib<name>.so".to_owned());
    bail!(
        "--lib {target}={}: that library is built for {described}, not for {target} \
         ({expected}); build it with `cargo build --release --target {target}` and pass \
         target/{target}/release/{file}",
        path.display()
    )
}

#[cfg(test)]
mod tests;
