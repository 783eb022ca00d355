//! Secrets handed to users: API tokens (`vgl_…`), invite tokens (`vgi_…`)
//! and browser session cookies (`vgs_…`).
//!
//! A secret is 32 random bytes from the operating system's generator, written
//! as 64 hex digits after a recognisable prefix, and stored only as its
//! SHA-256 digest. A fast hash is right here: the secrets carry 256 bits of
//! entropy, so there is nothing to brute-force, and every request must look
//! its token up.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of API tokens.
pub const API_TOKEN_PREFIX: &str = "vgl_";
/// Prefix of invite accept tokens.
pub const INVITE_TOKEN_PREFIX: &str = "vgi_";
/// Prefix of browser session secrets (the session cookie's value).
pub const SESSION_PREFIX: &str = "vgs_";

/// A freshly generated secret.
pub struct NewSecret {
    /// The full secret, shown to its owner once.
    pub plaintext: String,
    /// What is stored: hex SHA-256 of the plaintext.
    pub hash: String,
    /// The first characters, safe to display in listings (`vgl_1a2b3c4d`).
    pub display_prefix: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("display_prefix", &self.display_prefix)
            .finish_non_exhaustive()
    }
}

/// Generates a secret with `prefix`.
pub fn generate(prefix: &str) -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let plaintext = format!("{prefix}{}", hex::encode(bytes));
    NewSecret {
        hash: hash(&plaintext),
        display_prefix: plaintext[..prefix.len() + 8].to_string(),
        plaintext,
    }
}

/// The stored form of a secret.
pub fn hash(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// A value derived from `secret` for one `purpose` (such as the CSRF token
/// of a session): anyone holding the secret can compute it, nobody can go
/// back from it to the secret.
pub fn derive(secret: &str, purpose: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"vigilo-derive-v1\n");
    digest.update(purpose.as_bytes());
    digest.update(b"\n");
    digest.update(secret.as_bytes());
    hex::encode(digest.finalize())
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `s` looks like a secret with `prefix` (right length, hex digits).
pub fn well_formed(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + 64
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_prefixed_and_hashed() {
        let a = generate(API_TOKEN_PREFIX);
        let b = generate(API_TOKEN_PREFIX);
        assert_ne!(a.plaintext, b.plaintext);
        assert!(well_formed(&a.plaintext, API_TOKEN_PREFIX));
        assert!(!well_formed(&a.plaintext, INVITE_TOKEN_PREFIX));
        assert_eq!(a.hash, hash(&a.plaintext));
        assert!(!a.hash.contains(&a.plaintext[4..]));
        assert!(a.plaintext.starts_with(&a.display_prefix));
        assert!(!format!("{a:?}").contains(&a.plaintext));
    }
}
