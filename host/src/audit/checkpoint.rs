//! Signed checkpoints of audit chain heads.
//!
//! The server signs the head of a chain (its last sequence number and hash)
//! with an Ed25519 key kept outside the database — a file in the data
//! directory (`audit-signing.key`, created on first start with mode 0600) or
//! the file named by `audit_signing_key` — and stores the signed checkpoint.
//! Verification checks every chain against its checkpoints, so deleting the
//! tail of a chain or rewriting it wholesale inside the database is noticed
//! even when the attacker recomputes every hash: they cannot sign.
//!
//! The signed message is the UTF-8 text
//! `vigilo-checkpoint-v1\n{chain_id}\n{seq}\n{hash}\n{signed_at}`; the public
//! key is served at `GET /api/v1/audit/public-key` (hex, 32 bytes) so an
//! auditor can check exported checkpoints independently.

use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The server's checkpoint signing key.
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Identifier of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(public.as_bytes()))[..16].to_string()
}

impl Signer {
    /// Reads the key (64 hex digits of seed) from `path`, creating a new
    /// random key there (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let seed = crate::keyfile::read_or_create(path, "audit signing key")?;
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(&key.verifying_key());
        Ok(Self { key, key_id })
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key's identifier.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub(crate) fn sign(&self, chain_id: i64, seq: i64, hash: &str, signed_at: &str) -> String {
        hex::encode(
            self.key
                .sign(message(chain_id, seq, hash, signed_at).as_bytes())
                .to_bytes(),
        )
    }
}

/// The text a checkpoint signs.
pub fn message(chain_id: i64, seq: i64, hash: &str, signed_at: &str) -> String {
    format!("vigilo-checkpoint-v1\n{chain_id}\n{seq}\n{hash}\n{signed_at}")
}

/// A signed chain head.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Checkpoint {
    /// The chain (the workspace's id; 0 for the installation).
    pub chain_id: i64,
    /// The head's sequence number.
    pub seq: i64,
    /// The head's hash.
    pub hash: String,
    /// When it was signed.
    pub signed_at: String,
    /// Which key signed it.
    pub key_id: String,
    /// Hex Ed25519 signature over [`message`].
    pub signature: String,
}

impl Checkpoint {
    /// Whether the signature is valid for `key`.
    pub fn signature_valid(&self, key: &VerifyingKey) -> bool {
        let Ok(bytes) = hex::decode(&self.signature) else {
            return false;
        };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
            return false;
        };
        key.verify(
            message(self.chain_id, self.seq, &self.hash, &self.signed_at).as_bytes(),
            &Signature::from_bytes(&bytes),
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_and_signatures_verify() {
        let dir = tempfile_dir();
        let path = dir.join("k.key");
        let a = Signer::load_or_create(&path).unwrap();
        let b = Signer::load_or_create(&path).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let cp = Checkpoint {
            chain_id: 3,
            seq: 10,
            hash: "ab".repeat(32),
            signed_at: "2026-01-01T00:00:00.000000Z".into(),
            key_id: a.key_id().into(),
            signature: a.sign(3, 10, &"ab".repeat(32), "2026-01-01T00:00:00.000000Z"),
        };
        assert!(cp.signature_valid(&b.verifying_key()));
        let forged = Checkpoint {
            seq: 11,
            ..cp.clone()
        };
        assert!(!forged.signature_valid(&a.verifying_key()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vigilo-ckpt-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
