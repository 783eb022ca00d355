//! Reading a bundle as a server does before it installs one: its manifest,
//! its files checked against their SHA-256, and its signature against the
//! keys the server trusts.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::{sha256_hex, BundleManifest, BUNDLE_FORMAT, MANIFEST, MAX_BUNDLE_BYTES, SIGNATURE};

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
    pub(crate) fn read_within(path: &Path, max_unpacked: u64) -> Result<Bundle> {
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
