//! The config file (`$HOME/.vigilo/config.toml`) and the resolution of the
//! server URL, API token and active workspace.
//!
//! Each value comes from the first source that has it: the global flag, then
//! the environment variable, then the config file.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

use crate::client::{exit, Failure};
use crate::GlobalArgs;

pub const ENV_URL: &str = "VIGILO_URL";
pub const ENV_TOKEN: &str = "VIGILO_TOKEN";
pub const ENV_WORKSPACE: &str = "VIGILO_WORKSPACE";

/// The keys of `config.toml` the CLI understands (others are kept on save).
#[derive(Debug, Default, Deserialize)]
pub struct FileConfig {
    pub url: Option<String>,
    pub token: Option<String>,
    pub workspace: Option<String>,
}

/// `$HOME/.vigilo/config.toml`.
pub fn config_path() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .ok_or_else(|| anyhow!("HOME is not set, so ~/.vigilo/config.toml cannot be located"))?;
    Ok(PathBuf::from(home).join(".vigilo").join("config.toml"))
}

/// Read the config file; a missing file is an empty configuration.
pub fn load(path: &Path) -> Result<FileConfig> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("{} is not a valid config file", path.display()))
}

/// Write the config file atomically, the directory with mode 0700 and the
/// file with mode 0600. Keys other than `url`, `token` and `workspace`
/// already in the file are preserved.
pub fn save(path: &Path, url: &str, token: &str, workspace: Option<&str>) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set the permissions of {}", dir.display()))?;

    let mut table = fs::read_to_string(path)
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
        .unwrap_or_default();
    table.insert("url".into(), toml::Value::String(url.into()));
    table.insert("token".into(), toml::Value::String(token.into()));
    match workspace {
        Some(slug) => {
            table.insert("workspace".into(), toml::Value::String(slug.into()));
        }
        None => {
            table.remove("workspace");
        }
    }
    let text = toml::to_string(&table).context("cannot serialise the configuration")?;

    let tmp = dir.join(format!(".config.toml.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = write_private(&tmp, text.as_bytes()).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Trim a value and treat an empty one as absent.
pub fn clean(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn env(name: &str) -> Option<String> {
    clean(std::env::var(name).ok())
}

/// Validate a server URL and strip trailing slashes.
pub fn normalize_url(raw: &str) -> Result<String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(url.to_string()),
        _ => Err(Failure::new(
            exit::USAGE,
            format!("invalid server URL \"{raw}\": it must start with http:// or https://"),
        )
        .into()),
    }
}

/// The resolved connection settings for one invocation.
pub struct Resolved {
    pub url: Option<String>,
    pub token: Option<String>,
    pub workspace: Option<String>,
}

impl Resolved {
    /// Resolve flag > environment > config file. The file is only read when
    /// a value is still missing after the flags and the environment.
    pub fn from_sources(globals: &GlobalArgs) -> Result<Self> {
        let mut resolved = Resolved {
            url: clean(globals.url.clone()).or_else(|| env(ENV_URL)),
            token: clean(globals.token.clone()).or_else(|| env(ENV_TOKEN)),
            workspace: clean(globals.workspace.clone()).or_else(|| env(ENV_WORKSPACE)),
        };
        if resolved.url.is_none() || resolved.token.is_none() || resolved.workspace.is_none() {
            if let Ok(path) = config_path() {
                let file = load(&path)?;
                resolved.url = resolved.url.or_else(|| clean(file.url));
                resolved.token = resolved.token.or_else(|| clean(file.token));
                resolved.workspace = resolved.workspace.or_else(|| clean(file.workspace));
            }
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_urls() {
        assert_eq!(
            normalize_url("http://localhost:8080/").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            normalize_url(" https://v.example.com// ").unwrap(),
            "https://v.example.com"
        );
        assert!(normalize_url("localhost:8080").is_err());
        assert!(normalize_url("http://").is_err());
    }
}
