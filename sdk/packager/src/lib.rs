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
pub mod scaffold;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigilo_sdk::loader::LibraryTarget;

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

/// What [`Bundle::check_signature`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// The bundle has no signature.
    Unsigned,
    /// The signature verifies with this key (hex).
    Valid(String),
    /// The signature does not verify with any of the keys; why.
    Invalid(String),
}

/// Reads a file of trusted public keys: one hex Ed25519 public key per line;
/// blank lines and lines starting with `#` are ignored.
pub fn read_trusted_keys(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the trusted keys file {}", path.display()))?;
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        parse_public_key(line)
            .with_context(|| format!("{} line {}", path.display(), number + 1))?;
        keys.push(line.to_owned());
    }
    if keys.is_empty() {
        bail!(
            "{} holds no key (one hex Ed25519 public key per line)",
            path.display()
        );
    }
    Ok(keys)
}

/// A hex Ed25519 public key, as `vigilo-plugin keygen` prints it.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey> {
    hex::decode(hex_key.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| {
            anyhow!(
                "`{}` is not a hex Ed25519 public key (64 hex digits, as vigilo-plugin keygen prints)",
                hex_key.trim()
            )
        })
}

/// A bundle read into memory.
#[derive(Debug)]
pub struct Bundle {
    /// The parsed manifest.
    pub manifest: BundleManifest,
    /// The manifest's exact bytes (what the signature covers).
    pub manifest_bytes: Vec<u8>,
    /// The hex signature, if the bundle has one.
    pub signature: Option<String>,
    files: BTreeMap<String, Vec<u8>>,
}

/// Who signed a verified bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// By this trusted key (hex).
    By(String),
    /// Not signed (accepted because unsigned bundles are allowed).
    Unsigned,
}

impl Bundle {
    /// Reads a `.tar.gz` bundle.
    pub fn read(path: &Path) -> Result<Bundle> {
        Self::read_within(path, MAX_BUNDLE_BYTES * 4)
    }

    /// [`Bundle::read`], refusing a bundle that unpacks to more than
    /// `max_unpacked` bytes.
    fn read_within(path: &Path, max_unpacked: u64) -> Result<Bundle> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        if file.metadata()?.len() > MAX_BUNDLE_BYTES {
            bail!(
                "{} is larger than {} MiB",
                path.display(),
                MAX_BUNDLE_BYTES / 1024 / 1024
            );
        }
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        for entry in archive.entries().context("not a .tar.gz bundle")? {
            let mut entry = entry.context("not a .tar.gz bundle")?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            // Archives re-made with `tar -C dir .` name entries `./x`.
            let name = entry
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            // Read at most what is left of the budget (plus one byte, to
            // notice going over), whatever the entry's header claims: a
            // compressed bomb is stopped before it fills memory.
            let budget = max_unpacked - total;
            let mut bytes = Vec::new();
            (&mut entry).take(budget + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > budget {
                bail!(
                    "the bundle unpacks to more than {} MiB",
                    max_unpacked / 1024 / 1024
                );
            }
            total += bytes.len() as u64;
            files.insert(name, bytes);
        }
        let manifest_bytes = files.remove(MANIFEST).ok_or_else(|| {
            anyhow!(
                "{} has no {MANIFEST}: not a Vigilo plugin bundle",
                path.display()
            )
        })?;
        let manifest: BundleManifest = serde_json::from_slice(&manifest_bytes)
            .with_context(|| format!("{MANIFEST} is not a valid bundle manifest"))?;
        if manifest.bundle_format != BUNDLE_FORMAT {
            bail!(
                "bundle format {} is not supported (this server reads format {BUNDLE_FORMAT})",
                manifest.bundle_format
            );
        }
        let signature = files
            .remove(SIGNATURE)
            .map(|s| String::from_utf8_lossy(&s).trim().to_owned());
        Ok(Bundle {
            manifest,
            manifest_bytes,
            signature,
            files,
        })
    }

    /// Checks the signature against `trusted` keys (hex) and every file's
    /// checksum. An unsigned bundle passes only when `allow_unsigned`.
    pub fn verify(&self, trusted: &[String], allow_unsigned: bool) -> Result<Signed> {
        let signed = match self.check_signature(trusted)? {
            SignatureCheck::Unsigned if allow_unsigned => Signed::Unsigned,
            SignatureCheck::Unsigned => bail!(
                "the bundle is not signed; install only signed bundles, or set allow_unsigned_plugins = true"
            ),
            SignatureCheck::Valid(key) => Signed::By(key),
            SignatureCheck::Invalid(_) => bail!(
                "the bundle's signature does not verify with any key in trusted_plugin_keys{}",
                self.claimed_signer()
            ),
        };
        self.check_files()?;
        Ok(signed)
    }

    /// Whether the signature verifies with one of `keys` (hex Ed25519
    /// public keys; malformed ones never verify). `Err` only when the
    /// signature file itself is not a hex signature.
    pub fn check_signature(&self, keys: &[String]) -> Result<SignatureCheck> {
        let Some(signature) = &self.signature else {
            return Ok(SignatureCheck::Unsigned);
        };
        let signature: [u8; 64] = hex::decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("{SIGNATURE} is not a hex Ed25519 signature"))?;
        let signature = Signature::from_bytes(&signature);
        let by = keys.iter().find(|key| {
            parse_public_key(key).is_ok_and(|k| k.verify(&self.manifest_bytes, &signature).is_ok())
        });
        Ok(match by {
            Some(key) => SignatureCheck::Valid(key.trim().to_owned()),
            None => SignatureCheck::Invalid(format!(
                "the signature does not verify with {}{}",
                if keys.len() == 1 {
                    "the given key".to_owned()
                } else {
                    format!("any of the {} given keys", keys.len())
                },
                self.claimed_signer()
            )),
        })
    }

    /// Checks that every file the manifest lists is in the bundle with the
    /// listed SHA-256.
    pub fn check_files(&self) -> Result<()> {
        for listed in self
            .manifest
            .libraries
            .values()
            .chain(&self.manifest.frontend)
        {
            let bytes = self.files.get(&listed.file).ok_or_else(|| {
                anyhow!("the bundle lists {} but does not contain it", listed.file)
            })?;
            let actual = sha256_hex(bytes);
            if !actual.eq_ignore_ascii_case(&listed.sha256) {
                bail!(
                    "checksum mismatch for {}: the manifest says {}, the file is {actual}",
                    listed.file,
                    listed.sha256
                );
            }
        }
        Ok(())
    }

    /// ` (it says it was signed by <key>)`, when the manifest names a signer.
    fn claimed_signer(&self) -> String {
        self.manifest
            .signed_by
            .as_ref()
            .map(|k| format!(" (it says it was signed by {k})"))
            .unwrap_or_default()
    }

    /// The library for `target` and its file name, if the bundle has one.
    pub fn library_for(&self, target: &str) -> Option<(&str, &[u8])> {
        let listed = self.manifest.libraries.get(target)?;
        let bytes = self.files.get(&listed.file)?;
        let name = listed.file.rsplit('/').next().unwrap_or(&listed.file);
        Some((name, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.tar.gz` holding `name` with `size` zero bytes (a few KiB on disk).
    fn zeros_archive(dir: &Path, name: &str, size: u64) -> PathBuf {
        let path = dir.join("zeros.tar.gz");
        let file = std::fs::File::create(&path).unwrap();
        let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, name, std::io::repeat(0).take(size))
            .unwrap();
        archive.into_inner().unwrap().finish().unwrap();
        path
    }

    /// An ELF header for CPU `machine` (64-bit, little-endian).
    fn elf(machine: u16) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2;
        header[5] = 1;
        header[18..20].copy_from_slice(&machine.to_le_bytes());
        header
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigilo-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_library_must_be_built_for_its_target() {
        let path = Path::new("target/release/libmy_plugin.so");
        let x86_64 = elf(0x3e);
        assert!(check_library_target("x86_64-unknown-linux-gnu", path, &x86_64).is_ok());
        assert_eq!(
            check_library_target("aarch64-unknown-linux-gnu", path, &x86_64)
                .unwrap_err()
                .to_string(),
            "--lib aarch64-unknown-linux-gnu=target/release/libmy_plugin.so: that library is \
             built for x86_64 Linux (ELF), not for aarch64-unknown-linux-gnu (aarch64 Linux \
             (ELF)); build it with `cargo build --release --target aarch64-unknown-linux-gnu` \
             and pass target/aarch64-unknown-linux-gnu/release/libmy_plugin.so"
        );
        // An ELF library is not a macOS one, whatever its CPU.
        let error = check_library_target("x86_64-apple-darwin", path, &x86_64).unwrap_err();
        assert!(
            error.to_string().contains("built for x86_64 Linux (ELF)"),
            "{error}"
        );
        let error = check_library_target("aarch64-unknown-linux-gnu", path, b"not a library")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a shared library"), "{error}");
        let error = check_library_target("wasm32-unknown-unknown", path, &x86_64)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot tell which CPU"), "{error}");
        // A universal macOS library holds both CPUs.
        let mut fat = vec![0xca, 0xfe, 0xba, 0xbe];
        fat.extend(2u32.to_be_bytes());
        for cpu in [0x0100_0007u32, 0x0100_000c] {
            fat.extend(cpu.to_be_bytes());
            fat.extend([0u8; 16]);
        }
        assert!(check_library_target("aarch64-apple-darwin", path, &fat).is_ok());
        assert!(check_library_target("x86_64-apple-darwin", path, &fat).is_ok());
    }

    #[test]
    fn packaging_refuses_a_library_under_the_wrong_triple_before_loading_anything() {
        let dir = scratch("arch");
        let host = host_target();
        let other_target = if std::env::consts::ARCH == "aarch64" {
            "x86_64-unknown-linux-gnu"
        } else {
            "aarch64-unknown-linux-gnu"
        };
        // This machine's library, given again as the other target's.
        let this_machine = if std::env::consts::ARCH == "aarch64" {
            elf(0xb7)
        } else {
            elf(0x3e)
        };
        let native = dir.join("libnative.so");
        std::fs::write(&native, &this_machine).unwrap();
        let request = PackageRequest {
            libraries: BTreeMap::from([
                (host.clone(), native.clone()),
                (other_target.to_owned(), native.clone()),
            ]),
            frontend_dir: None,
            signing_key: None,
            vigilo_version: DEFAULT_VIGILO_VERSION.into(),
            out: dir.join("out.tar.gz"),
        };
        let error = package(&request).unwrap_err().to_string();
        if cfg!(target_os = "linux") {
            assert!(
                error.starts_with(&format!(
                    "--lib {other_target}={}: that library is built for {}",
                    native.display(),
                    std::env::consts::ARCH
                )),
                "{error}"
            );
        }
        assert!(!request.out.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Writes a bundle with one library, signed with `key` if given; with
    /// `tamper`, the library differs from its listed checksum.
    fn write_bundle(dir: &Path, key: Option<&SigningKey>, tamper: bool) -> PathBuf {
        let library = b"\x7fELF a library".to_vec();
        let manifest = BundleManifest {
            bundle_format: BUNDLE_FORMAT,
            name: "my_plugin".into(),
            kind: "field_type".into(),
            version: "0.1.0".into(),
            compatible_with: ">=0.1, <0.2".into(),
            sdk_abi_version: 1,
            sdk_version: "0.1.0".into(),
            description: String::new(),
            libraries: BTreeMap::from([(
                "x86_64-unknown-linux-gnu".to_owned(),
                BundleFile {
                    file: "lib/x86_64-unknown-linux-gnu/libmy_plugin.so".into(),
                    sha256: sha256_hex(&library),
                },
            )]),
            frontend: vec![],
            signed_by: key.map(|k| hex::encode(k.verifying_key().to_bytes())),
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
        let path = dir.join(format!(
            "bundle-{}-{tamper}.tar.gz",
            if key.is_some() { "signed" } else { "unsigned" }
        ));
        let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        ));
        let mut add = |name: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            archive.append_data(&mut header, name, bytes).unwrap();
        };
        add(MANIFEST, &manifest_bytes);
        if let Some(key) = key {
            add(
                SIGNATURE,
                hex::encode(key.sign(&manifest_bytes).to_bytes()).as_bytes(),
            );
        }
        let mut shipped = library.clone();
        if tamper {
            shipped.push(b'!');
        }
        add("lib/x86_64-unknown-linux-gnu/libmy_plugin.so", &shipped);
        archive.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn signatures_are_checked_against_the_given_keys() {
        let dir = scratch("signatures");
        let vendor = SigningKey::from_bytes(&[7; 32]);
        let public = hex::encode(vendor.verifying_key().to_bytes());
        let stranger = hex::encode(SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes());

        let signed = Bundle::read(&write_bundle(&dir, Some(&vendor), false)).unwrap();
        assert_eq!(
            signed
                .check_signature(std::slice::from_ref(&public))
                .unwrap(),
            SignatureCheck::Valid(public.clone())
        );
        assert_eq!(
            signed
                .check_signature(&[stranger.clone(), public.clone()])
                .unwrap(),
            SignatureCheck::Valid(public.clone())
        );
        assert_eq!(
            signed.check_signature(std::slice::from_ref(&stranger)).unwrap(),
            SignatureCheck::Invalid(format!(
                "the signature does not verify with the given key (it says it was signed by {public})"
            ))
        );
        assert!(signed.check_files().is_ok());
        assert_eq!(
            signed.verify(std::slice::from_ref(&public), false).unwrap(),
            Signed::By(public.clone())
        );

        let unsigned = Bundle::read(&write_bundle(&dir, None, false)).unwrap();
        assert_eq!(
            unsigned
                .check_signature(std::slice::from_ref(&public))
                .unwrap(),
            SignatureCheck::Unsigned
        );

        let tampered = Bundle::read(&write_bundle(&dir, Some(&vendor), true)).unwrap();
        assert!(tampered
            .check_files()
            .unwrap_err()
            .to_string()
            .starts_with("checksum mismatch for lib/x86_64-unknown-linux-gnu/libmy_plugin.so"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn trusted_keys_files_hold_one_key_a_line() {
        let dir = scratch("trusted-keys");
        let key = hex::encode(SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes());
        let file = dir.join("trusted");
        std::fs::write(&file, format!("# Acme's release key\n\n  {key}  \n")).unwrap();
        assert_eq!(read_trusted_keys(&file).unwrap(), vec![key]);
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(read_trusted_keys(&file)
            .unwrap_err()
            .to_string()
            .contains("holds no key"));
        std::fs::write(&file, "abc\n").unwrap();
        let error = format!("{:#}", read_trusted_keys(&file).unwrap_err());
        assert!(error.contains("line 1"), "{error}");
        assert!(error.contains("is not a hex Ed25519 public key"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_bundle_that_unpacks_past_the_limit_is_refused_before_it_fills_memory() {
        let dir = std::env::temp_dir().join(format!("vigilo-bomb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = zeros_archive(&dir, "lib/x/libbig.so", 3 * 1024 * 1024);
        assert!(std::fs::metadata(&path).unwrap().len() < 64 * 1024);
        let err = Bundle::read_within(&path, 2 * 1024 * 1024)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "the bundle unpacks to more than 2 MiB");
        // Within the limit it is read (and then refused for what it is).
        let err = Bundle::read_within(&path, 4 * 1024 * 1024)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a Vigilo plugin bundle"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
