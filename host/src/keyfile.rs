//! The server's private key files (the audit signing key, the secrets key):
//! 32 random bytes written as 64 hex digits, mode 0600, kept outside the
//! database.
//!
//! A missing file is created on first start. The key is written whole to a
//! private temporary file and then hard-linked into place, so nobody ever
//! reads a half-written key, and when several servers sharing one key path
//! start at once the first link wins and the others read the key it holds.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;

/// Reads the 32-byte key in `path`, creating it if it does not exist.
/// `what` names the key in errors and logs ("audit signing key").
pub fn read_or_create(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    // Bounded: each retry happens only after another process's link won.
    for _ in 0..3 {
        match std::fs::read_to_string(path) {
            Ok(text) => return parse(path, what, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(key) = create(path, what)? {
                    return Ok(key);
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {what} {}", path.display()))
            }
        }
    }
    anyhow::bail!("{what} {} keeps appearing and disappearing", path.display())
}

fn parse(path: &Path, what: &str, text: &str) -> anyhow::Result<[u8; 32]> {
    hex::decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .with_context(|| format!("{what} {} must hold 64 hex digits", path.display()))
}

/// Creates the key file; `None` when another process created it first.
fn create(path: &Path, what: &str) -> anyhow::Result<Option<[u8; 32]>> {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let temp = path.with_extension(format!(
        "tmp.{}.{:016x}",
        std::process::id(),
        rand::rngs::OsRng.next_u64()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(hex::encode(key).as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", temp.display()));
    }
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new {what}");
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot create {what} {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/k.key");
        let a = read_or_create(&path, "test key").unwrap();
        let b = read_or_create(&path, "test key").unwrap();
        assert_eq!(a, b);
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
    }

    #[test]
    fn racing_creators_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.key");
        let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| read_or_create(&path, "test key").unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]));
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "not hex").unwrap();
        let err = read_or_create(&path, "test key").unwrap_err().to_string();
        assert!(
            err.contains("test key") && err.contains("64 hex digits"),
            "{err}"
        );
    }
}
