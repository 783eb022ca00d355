//! `vigilo-server plugin install BUNDLE` and `plugin uninstall NAME`: put a
//! vendor's release bundle into the plugins directory, or take it out, on
//! the server's host. A running server's watcher picks the change up.
//!
//! Installing verifies the bundle's signature against `trusted_plugin_keys`
//! (unsigned bundles only with `allow_unsigned_plugins`) and every checksum,
//! refuses a version whose `compatible_with` excludes this server, picks the
//! library for this host's target, loads it once exactly as the server
//! would, checks that the bundle's frontend files are the ones the library
//! embeds and that its element modules keep the frontend rules
//! (`vigilo_sdk::loader::frontend`), and only then moves it into place with a rename, so the server
//! never sees a half-written file. Both are recorded in the audit log.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use vigilo_plugin_bundle::{host_target, Bundle, Signed};

use crate::config::Config;
use crate::domain::plugins::{record_file_change, FileChangeError};
use crate::plugins::{load_file, Loaded, Reason, VIGILO_VERSION};

/// What an install did.
#[derive(Debug)]
pub struct Installed {
    /// The plugin.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where its library now is.
    pub path: PathBuf,
    /// Who signed it.
    pub signed: Signed,
}

/// The file a plugin named `name` is installed as.
pub fn installed_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// Refuses a bundle this server cannot run: its `compatible_with` does not
/// match this version, or it speaks another plugin ABI.
fn check_compatible(m: &vigilo_plugin_bundle::BundleManifest) -> Result<()> {
    let requirement = semver::VersionReq::parse(&m.compatible_with).map_err(|e| {
        anyhow!(
            "the bundle's compatible_with `{}` is not a semver requirement: {e}",
            m.compatible_with
        )
    })?;
    let running = semver::Version::parse(VIGILO_VERSION)?;
    if !requirement.matches(&running) {
        bail!(
            "{} {} requires vigilo {}, running {}",
            m.name,
            m.version,
            m.compatible_with,
            VIGILO_VERSION
        );
    }
    if m.sdk_abi_version != vigilo_sdk::abi::SDK_ABI_VERSION {
        bail!(
            "{} {} was built for plugin ABI version {}, this server speaks version {}",
            m.name,
            m.version,
            m.sdk_abi_version,
            vigilo_sdk::abi::SDK_ABI_VERSION
        );
    }
    Ok(())
}

/// Loads the library written to `staging` to check it: it must load, be
/// the plugin and version the bundle names, carry the bundle's frontend
/// files, and keep the frontend rules. On refusal the staged file is
/// removed.
fn check_staged(bundle: &Bundle, staging: &Path, file_name: &str) -> Result<Loaded> {
    let m = &bundle.manifest;
    let check = load_file(staging, VIGILO_VERSION);
    let checked = match check {
        Ok(loaded) => loaded,
        Err(skip) => {
            let _ = std::fs::remove_file(staging);
            bail!(
                "{file_name} from the bundle would not load: {}: {}",
                skip.reason,
                skip.message
            );
        }
    };
    if checked.manifest.name != m.name || checked.manifest.version != m.version {
        let _ = std::fs::remove_file(staging);
        bail!(
            "the library is {} {}, but the bundle says {} {}",
            checked.manifest.name,
            checked.manifest.version,
            m.name,
            m.version
        );
    }
    if let Err(e) = frontend_matches(bundle, &checked) {
        let _ = std::fs::remove_file(staging);
        return Err(e);
    }
    // The frontend rules vigilo-plugin and check-plugin apply too.
    let problems =
        vigilo_sdk::loader::check_frontend(&checked.registrations, |path| checked.link.asset(path));
    if !problems.is_empty() {
        let _ = std::fs::remove_file(staging);
        bail!(
            "{} {}'s frontend half would fail in the browser:\n  - {}",
            m.name,
            m.version,
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  - ")
        );
    }
    Ok(checked)
}

/// The capabilities the checked library declares, with those beyond what
/// the installation approved for it, when there are any.
async fn capabilities_asked(
    config: &Config,
    checked: &Loaded,
) -> Result<Option<(vigilo_sdk::Capabilities, Vec<String>)>> {
    let m = &checked.manifest;
    Ok(match &checked.manifest.capabilities {
        Some(declared) => {
            let store = crate::store::Store::open(config).await?;
            let stored = store.plugin_approvals().await;
            store.close().await;
            let approved = stored?
                .into_iter()
                .find(|a| a.name == m.name)
                .and_then(|a| serde_json::from_str(&a.capabilities).ok())
                .unwrap_or_else(vigilo_sdk::Capabilities::none);
            let more = declared.beyond(&approved);
            (!more.is_empty()).then(|| (declared.clone(), more))
        }
        None => None,
    })
}

/// Installs `bundle` into the configured plugins directory.
///
/// When the plugin asks for capabilities beyond those the installation
/// approved for it (all of them, the first time), `approve` is shown them
/// in words and decides: with its yes, they are approved in the same
/// transaction that records the install; with its no, nothing is
/// installed.
pub async fn install(
    config: &Config,
    bundle_path: &Path,
    approve: impl FnOnce(&str) -> bool,
) -> Result<Installed> {
    let bundle = Bundle::read(bundle_path)?;
    let m = &bundle.manifest;
    let signed = bundle.verify(&config.trusted_plugin_keys, config.allow_unsigned_plugins)?;
    check_compatible(m)?;
    let target = host_target();
    let (file_name, bytes) = bundle.library_for(&target).ok_or_else(|| {
        anyhow!(
            "the bundle has no library for this host ({target}); it has: {}",
            m.libraries.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    // The name becomes a file name: check it before it touches a path.
    vigilo_sdk::loader::check_name(&m.name).map_err(|e| anyhow!("the bundle's plugin {e}"))?;
    let dir = config.effective_plugins_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let target_path = installed_path(&dir, &m.name);
    // Written under a name the server ignores, checked, then renamed into
    // place: the watcher only ever sees the complete file.
    let staging = dir.join(format!(".{}.installing", m.name));
    std::fs::write(&staging, bytes)
        .with_context(|| format!("cannot write {}", staging.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o644))?;
    }
    let checked = check_staged(&bundle, &staging, file_name)?;
    let asks = capabilities_asked(config, &checked).await?;
    if let Some((_, more)) = &asks {
        let question = format!("{} {} asks to use: {}", m.name, m.version, more.join(", "));
        if !approve(&question) {
            let _ = std::fs::remove_file(&staging);
            bail!("{question}; nothing was installed (run again with --approve to approve them)");
        }
    }
    let details = json!({
        "approved_capabilities": asks.as_ref().map(|(declared, _)| declared),
        "version": m.version, "path": target_path, "bundle": bundle_path,
        "target": target, "sha256": m.libraries[&target].sha256,
        "signed_by": match &signed { Signed::By(key) => Some(key), Signed::Unsigned => None },
    });
    // A version already installed is kept (hard-linked aside) until the
    // record is committed, so a failed commit can put it back.
    let previous = dir.join(format!(".{}.previous", m.name));
    let _ = std::fs::remove_file(&previous);
    let had_previous = std::fs::hard_link(&target_path, &previous).is_ok();
    let result = recorded(
        config,
        "plugin.install",
        &m.name,
        details,
        || {
            std::fs::rename(&staging, &target_path)
                .with_context(|| format!("cannot move the library into {}", target_path.display()))
        },
        || {
            let _ = if had_previous {
                std::fs::rename(&previous, &target_path)
            } else {
                std::fs::remove_file(&target_path)
            };
        },
    )
    .await;
    let _ = std::fs::remove_file(&staging);
    let _ = std::fs::remove_file(&previous);
    result?;
    Ok(Installed {
        name: m.name.clone(),
        version: m.version.clone(),
        path: target_path,
        signed,
    })
}

/// Checks that the bundle's frontend files are the ones its library embeds
/// (which are what the server will serve): the same paths, byte for byte.
fn frontend_matches(bundle: &Bundle, library: &Loaded) -> Result<()> {
    let embedded: std::collections::BTreeMap<String, String> = library
        .manifest
        .frontend
        .iter()
        .map(|asset| {
            let bytes = library.link.asset(&asset.path).unwrap_or_default();
            (format!("frontend/{}", asset.path), sha256_hex(&bytes))
        })
        .collect();
    let shipped: std::collections::BTreeMap<String, String> = bundle
        .manifest
        .frontend
        .iter()
        .map(|f| (f.file.clone(), f.sha256.to_ascii_lowercase()))
        .collect();
    if embedded != shipped {
        let differ: Vec<&str> = embedded
            .keys()
            .chain(shipped.keys())
            .filter(|file| embedded.get(*file) != shipped.get(*file))
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        bail!(
            "the bundle's frontend files do not match the ones its library embeds (and the \
             server would serve): {}",
            differ.join(", ")
        );
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Removes the plugin `name` installed by [`install`]; with `purge`, also
/// what it stored and its approved capabilities, in the transaction that
/// records the removal (answering how many stored entries went).
pub async fn uninstall(config: &Config, name: &str, purge: bool) -> Result<(PathBuf, Option<u64>)> {
    let dir = config.effective_plugins_dir();
    let path = installed_path(&dir, name);
    if !path.exists() {
        bail!(
            "no plugin `{name}` is installed in {} (expected {})",
            dir.display(),
            path.display()
        );
    }
    let details = json!({"path": path, "reason": Reason::Removed, "purge": purge});
    // Moved aside (the server sees it go), and deleted only once the record
    // is committed; a failed commit moves it back.
    let aside = dir.join(format!(".{name}.uninstalling"));
    recorded(
        config,
        "plugin.uninstall",
        name,
        details,
        || {
            std::fs::rename(&path, &aside)
                .with_context(|| format!("cannot remove {}", path.display()))
        },
        || {
            let _ = std::fs::rename(&aside, &path);
        },
    )
    .await?;
    let _ = std::fs::remove_file(&aside);
    let purged = if purge {
        let store = crate::store::Store::open(config).await?;
        let gone = crate::domain::plugins::purge(&store, name).await;
        store.close().await;
        Some(gone.context("the plugin was removed, but its data could not be purged")?)
    } else {
        None
    };
    Ok((path, purged))
}

/// Does `change` to the plugins directory inside the transaction that
/// records it: if the record cannot be appended the change is not made; if
/// the change fails nothing is recorded; if the commit fails, `undo` puts
/// the directory back.
async fn recorded(
    config: &Config,
    action: &'static str,
    plugin: &str,
    details: serde_json::Value,
    change: impl FnOnce() -> Result<()>,
    undo: impl FnOnce(),
) -> Result<()> {
    let store = crate::store::Store::open(config).await?;
    let outcome = record_file_change(&store, action, plugin, details, change, undo).await;
    store.close().await;
    match outcome {
        Ok(()) => Ok(()),
        Err(FileChangeError::Change(e)) => Err(e),
        Err(FileChangeError::Record(e)) => {
            Err(anyhow!(e).context("cannot record the change in the audit log"))
        }
        Err(FileChangeError::Undone(e)) => {
            Err(anyhow!(e).context("cannot record the change in the audit log, so it was undone"))
        }
    }
}
