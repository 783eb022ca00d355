//! Passwords: the rules a new password must pass, and Argon2id hashing.
//!
//! A password has at least [`MIN_LENGTH`] characters and must not be one a
//! guesser tries first: a well-known password, one character repeated, a
//! run of the keyboard or the alphabet, or the person's own email or name.
//! Only its Argon2id hash (a PHC string with its own salt and parameters)
//! is stored. Hashing takes tens of milliseconds on purpose, so it runs off
//! the async executor.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

use super::{DomainError, DomainResult};

/// The fewest characters a password may have.
pub const MIN_LENGTH: usize = 12;
/// The most characters a password may have (hashing is bounded).
pub const MAX_LENGTH: usize = 256;

/// Passwords (and stems of them) that are among the first any guesser tries.
/// A password that, lower-cased and stripped of digits and punctuation at
/// its ends, is one of these is refused.
const COMMON: &[&str] = &[
    "password",
    "passw0rd",
    "p@ssword",
    "p@ssw0rd",
    "letmein",
    "welcome",
    "qwerty",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "iloveyou",
    "admin",
    "administrator",
    "root",
    "master",
    "dragon",
    "monkey",
    "football",
    "baseball",
    "soccer",
    "hockey",
    "superman",
    "batman",
    "princess",
    "sunshine",
    "shadow",
    "michael",
    "jennifer",
    "trustno1",
    "secret",
    "changeme",
    "default",
    "login",
    "access",
    "starwars",
    "whatever",
    "freedom",
    "mustang",
    "computer",
    "internet",
    "hello",
    "hellothere",
    "goodbye",
    "summer",
    "winter",
    "spring",
    "autumn",
    "january",
    "december",
    "monday",
    "friday",
    "vigilo",
    "operations",
    "ops",
    "security",
    "company",
    "test",
    "testing",
    "guest",
    "user",
    "abc",
    "abcd",
    "qazwsx",
    "1q2w3e4r",
    "1qaz2wsx",
    "zaq12wsx",
    "passwordpassword",
    "correcthorsebatterystaple",
];

/// Keyboard rows and the alphabet: a password that is a run along one of
/// these (or backwards) is refused.
const RUNS: &[&str] = &[
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "1234567890",
    "01234567890",
    "qwertzuiop",
    "azertyuiop",
];

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::invalid("password", message)
}

/// Checks a new password for the person with `email` and `name`.
pub fn check_new(password: &str, email: &str, name: &str) -> DomainResult<()> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(invalid(format!(
            "the password is {length} characters long; use at least {MIN_LENGTH} (a few words make a good one)"
        )));
    }
    if length > MAX_LENGTH {
        return Err(invalid(format!(
            "the password is longer than {MAX_LENGTH} characters"
        )));
    }
    if password.chars().any(|c| c.is_control()) {
        return Err(invalid("the password must not contain control characters"));
    }
    let lower = password.to_lowercase();
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 2 {
        return Err(invalid(
            "the password repeats one or two characters; choose one that is harder to guess",
        ));
    }
    let stem = lower.trim_matches(|c: char| !c.is_alphabetic());
    let squashed: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
    if COMMON
        .iter()
        .any(|common| stem == *common || squashed == *common)
        || (!stem.is_empty() && COMMON.iter().any(|common| repeats_of(stem, common)))
    {
        return Err(invalid(
            "that password is one of the first a guesser tries; choose another",
        ));
    }
    if is_run(&squashed) {
        return Err(invalid(
            "the password is a run of the keyboard or the alphabet; choose one that is harder to guess",
        ));
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    let mentions = |part: &str| part.chars().count() >= 4 && lower.contains(part);
    if lower == email.to_lowercase()
        || mentions(&local)
        || name.to_lowercase().split_whitespace().any(mentions)
    {
        return Err(invalid(
            "the password contains your email address or name; choose one that does not",
        ));
    }
    Ok(())
}

/// Whether `text` is `word` said once or more (`passwordpassword`).
fn repeats_of(text: &str, word: &str) -> bool {
    !word.is_empty() && text.len() % word.len() == 0 && text.len() >= word.len() && {
        text.as_bytes()
            .chunks(word.len())
            .all(|chunk| chunk == word.as_bytes())
    }
}

/// Whether `text` is a run along a keyboard row or the alphabet, forwards
/// or backwards (`abcdefghijkl`, `123456789012`, `987654321098`).
fn is_run(text: &str) -> bool {
    if text.len() < 4 {
        return false;
    }
    let cycled = |run: &str| run.repeat(3);
    RUNS.iter().any(|run| {
        let forward = cycled(run);
        let backward: String = forward.chars().rev().collect();
        forward.contains(text) || backward.contains(text)
    })
}

/// The Argon2id hash of `password`, as a PHC string. Blocking: tens of
/// milliseconds.
pub fn hash(password: &str) -> DomainResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|phc| phc.to_string())
        .map_err(|e| DomainError::Internal(format!("cannot hash a password: {e}")))
}

/// Whether `password` matches the stored PHC string. Blocking.
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// [`hash`], off the async executor.
pub async fn hash_off_executor(password: String) -> DomainResult<String> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| DomainError::Internal(format!("hashing did not complete: {e}")))?
}

/// [`verify`], off the async executor; with no stored hash it still takes
/// as long as a real check, so answers do not tell which accounts exist.
pub async fn verify_off_executor(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify(&password, &phc),
        None => {
            let _ = hash(&password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        let refused = |password: &str| {
            check_new(password, "alice.smith@example.com", "Alice Smith")
                .unwrap_err()
                .to_string()
        };
        assert!(refused("short1!").contains("at least 12"));
        assert!(refused("aaaaaaaaaaaaaaaa").contains("repeats"));
        assert!(refused("Password2026!").contains("first a guesser tries"));
        assert!(refused("passwordpassword").contains("first a guesser tries"));
        assert!(refused("qwertyuiop123").contains("first a guesser tries"));
        assert!(refused("1234567890123").contains("run"));
        assert!(refused("abcdefghijklm").contains("run"));
        assert!(refused("zyxwvutsrqpo").contains("run"));
        assert!(refused("alice.smith-rocks").contains("email address or name"));
        assert!(refused("smithy-smith-2026").contains("email address or name"));
        for good in [
            "correct horse battery",
            "tram-ladle-quince-42",
            "Vsk29!pLm0qz",
        ] {
            check_new(good, "alice.smith@example.com", "Alice Smith")
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let phc = hash("tram-ladle-quince-42").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("tram-ladle"));
        assert!(verify("tram-ladle-quince-42", &phc));
        assert!(!verify("tram-ladle-quince-43", &phc));
        assert_ne!(phc, hash("tram-ladle-quince-42").unwrap(), "salted");
    }
}
