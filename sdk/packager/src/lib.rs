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
//! [`package`] builds one (the `vigilo-plugin package` command);
//! [`Bundle::read`] and [`Bundle::verify`] are what a server runs before
//! installing one (`vigilo-server plugin install`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Where to write the bundle.
    pub out: PathBuf,
}

/// Builds a bundle; returns its manifest.
pub fn package(request: &PackageRequest) -> Result<BundleManifest> {
    let host = host_target();
    let native = request.libraries.get(&host).ok_or_else(|| {
        anyhow!(
            "include a library for this machine's target ({host}) so its manifest can be read: --lib {host}=PATH"
        )
    })?;
    let handle = vigilo_sdk::loader::PluginHandle::load(native).map_err(|e| {
        anyhow!(
            "{} is not a loadable plugin: {}",
            native.display(),
            vigilo_sdk::loader::library_error_summary(&e)
        )
    })?;
    let plugin = handle
        .manifest()
        .map_err(|e| anyhow!("cannot read the manifest of {}: {e}", native.display()))?;
    if !plugin.panic_unwind {
        bail!(
            "{} was built with panic = \"abort\"; servers refuse such plugins",
            native.display()
        );
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut libraries = BTreeMap::new();
    for (target, path) in &request.libraries {
        if target.is_empty() || target.contains('/') || target.contains("..") {
            bail!("`{target}` is not a target triple");
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
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
        let signed = match &self.signature {
            None if allow_unsigned => Signed::Unsigned,
            None => bail!(
                "the bundle is not signed; install only signed bundles, or set allow_unsigned_plugins = true"
            ),
            Some(signature) => {
                let signature: [u8; 64] = hex::decode(signature)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| anyhow!("{SIGNATURE} is not a hex Ed25519 signature"))?;
                let signature = Signature::from_bytes(&signature);
                let by = trusted.iter().find(|key| {
                    hex::decode(key.trim())
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                        .is_some_and(|k| k.verify(&self.manifest_bytes, &signature).is_ok())
                });
                match by {
                    Some(key) => Signed::By(key.trim().to_owned()),
                    None => bail!(
                        "the bundle's signature does not verify with any key in trusted_plugin_keys{}",
                        self.manifest
                            .signed_by
                            .as_ref()
                            .map(|k| format!(" (it says it was signed by {k})"))
                            .unwrap_or_default()
                    ),
                }
            }
        };
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
        Ok(signed)
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
