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
use std::io::Write;
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
        use anyhow::Context;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .with_context(|| {
                        format!(
                            "the secrets key file {} must hold 64 hex digits",
                            path.display()
                        )
                    })?;
                Ok(Self::new(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                // Written whole to a private temporary file, then linked into
                // place: nobody ever reads a half-written key, and if two
                // servers race, the first link wins and the other uses it.
                let temp = path.with_extension(format!("tmp.{}", std::process::id()));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let written = options.open(&temp).and_then(|mut file| {
                    file.write_all(hex::encode(key).as_bytes())?;
                    file.sync_all()
                });
                written.with_context(|| format!("cannot write {}", temp.display()))?;
                let linked = std::fs::hard_link(&temp, path);
                let _ = std::fs::remove_file(&temp);
                match linked {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "created a new secrets key");
                        Ok(Self::new(key))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
                }
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
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
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secrets.key");
        let sealed = SecretBox::load_or_create(&path)
            .unwrap()
            .seal("k", "s3cret");
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(again.open("k", &sealed).unwrap(), "s3cret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::write(&path, "not hex").unwrap();
        let err = SecretBox::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
    }
}
