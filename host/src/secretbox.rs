//! Encryption at rest for integration secrets (webhook URLs, signing keys,
//! tokens an adapter needs to deliver).
//!
//! Secrets are sealed with ChaCha20-Poly1305 under a 256-bit key kept in a
//! file outside the database (`secrets_key`, default
//! `data_dir/secrets.key`, created with mode 0600 on first start). A sealed
//! value is `v1:` followed by hex of a random 96-bit nonce and the
//! ciphertext with its tag. A database dump alone therefore reveals no
//! secret, and a value altered in the database fails to open instead of
//! being sent somewhere else. Several servers sharing one database must
//! share the key file.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

const PREFIX: &str = "v1:";

/// Seals and opens secrets with the server's key.
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(<key redacted>)")
    }
}

impl SecretBox {
    /// A box with the given key bytes.
    pub fn new(key: [u8; 32]) -> Self {
        SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// Reads the key file (64 hex digits), creating it with a fresh random
    /// key and mode 0600 when it does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        crate::keyfile::read_or_create(path, "secrets key").map(Self::new)
    }

    /// Seals `plaintext`, bound to `context` (what it belongs to, such as
    /// `integration:7:ops-slack:webhook_url`): it opens only with the same
    /// context, so a sealed value copied elsewhere in the database is
    /// useless.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", hex::encode(out))
    }

    /// Opens a value made by [`SecretBox::seal`] with the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, String> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > 12)
            .ok_or("the stored secret is not in the sealed format")?;
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                "the stored secret cannot be opened with this server's secrets key \
                 (was the key file replaced, or the value altered or moved?)"
                    .to_owned()
            })?;
        String::from_utf8(plain).map_err(|_| "the stored secret is not UTF-8".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_tampering() {
        let sb = SecretBox::new([7; 32]);
        let url = "https://hooks.example/T000/B000/XXXX";
        let sealed = sb.seal("a", url);
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("hooks.example"));
        assert_eq!(sb.open("a", &sealed).unwrap(), url);
        // Two seals of one value differ (random nonce).
        assert_ne!(sealed, sb.seal("a", url));
        // A flipped bit, another key or another context fails to open.
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
        assert!(sb.open("a", &String::from_utf8(bytes).unwrap()).is_err());
        assert!(SecretBox::new([8; 32]).open("a", &sealed).is_err());
        assert!(sb.open("b", &sealed).is_err());
        assert!(sb.open("a", "plain text").is_err());
    }

    #[test]
    fn a_key_file_opens_what_it_sealed_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secrets.key");
        let sealed = SecretBox::load_or_create(&path)
            .unwrap()
            .seal("k", "s3cret");
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(again.open("k", &sealed).unwrap(), "s3cret");
    }
}
