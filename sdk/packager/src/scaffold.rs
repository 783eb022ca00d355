//! `vigilo-plugin new`: a plugin crate of one kind that builds, passes its
//! tests and loads into a server as it stands.
//!
//! The files come from `templates/` (embedded in the tool), with
//! `{{name}}`, `{{label}}`, `{{tag}}`, `{{sdk}}`, `{{compatible_with}}` and
//! a few more filled in. Every crate gets `Cargo.toml` (cdylib and rlib),
//! `src/lib.rs`, `tests/plugin.rs` (the plugin called in process through
//! the harness), `tests/library.rs` (the built library checked as a server
//! checks it), a README and a `.gitignore`; a field type and a dashboard
//! widget also get their frontend half, `frontend/NAME.js`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use vigilo_sdk::harness::SERVER_VERSION;
use vigilo_sdk::PluginKind;

/// What to create.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// The plugin's name (also the crate's and its registration's).
    pub name: String,
    /// Its kind.
    pub kind: PluginKind,
    /// The directory to create (must not exist, or be empty).
    pub dir: PathBuf,
    /// The SDK's directory, for the crate's path dependency.
    pub sdk: PathBuf,
}

/// The files of one kind: (path in the crate, template).
fn files(kind: PluginKind) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![
        ("Cargo.toml", include_str!("../templates/Cargo.toml.tmpl")),
        (".gitignore", include_str!("../templates/gitignore.tmpl")),
        ("README.md", include_str!("../templates/README.md.tmpl")),
        ("tests/library.rs", include_str!("../templates/library.rs")),
    ];
    files.extend(match kind {
        PluginKind::FieldType => [
            ("src/lib.rs", include_str!("../templates/field_type/lib.rs")),
            (
                "tests/plugin.rs",
                include_str!("../templates/field_type/test.rs"),
            ),
            (
                "frontend/{{name}}.js",
                include_str!("../templates/field_type/frontend.js"),
            ),
        ]
        .to_vec(),
        PluginKind::DashboardWidget => [
            (
                "src/lib.rs",
                include_str!("../templates/dashboard_widget/lib.rs"),
            ),
            (
                "tests/plugin.rs",
                include_str!("../templates/dashboard_widget/test.rs"),
            ),
            (
                "frontend/{{name}}.js",
                include_str!("../templates/dashboard_widget/frontend.js"),
            ),
        ]
        .to_vec(),
        PluginKind::IntegrationAdapter => [
            (
                "src/lib.rs",
                include_str!("../templates/integration_adapter/lib.rs"),
            ),
            (
                "tests/plugin.rs",
                include_str!("../templates/integration_adapter/test.rs"),
            ),
        ]
        .to_vec(),
        PluginKind::CeleryTask => [
            (
                "src/lib.rs",
                include_str!("../templates/celery_task/lib.rs"),
            ),
            (
                "tests/plugin.rs",
                include_str!("../templates/celery_task/test.rs"),
            ),
        ]
        .to_vec(),
    });
    files
}

/// Whether plugins of `kind` have a frontend half in the scaffold.
pub fn has_frontend(kind: PluginKind) -> bool {
    matches!(kind, PluginKind::FieldType | PluginKind::DashboardWidget)
}

/// The element tag the scaffold declares for a plugin of `kind`.
pub fn element_tag(name: &str, kind: PluginKind) -> Option<String> {
    match kind {
        PluginKind::FieldType => Some(format!("{name}-editor")),
        PluginKind::DashboardWidget => Some(format!("{name}-tile")),
        _ => None,
    }
}

/// `>=0.MINOR, <0.MINOR+1` for a 0.x server version, `>=MAJOR.MINOR,
/// <MAJOR+1` from 1.0 on: the servers a plugin built with this SDK can
/// expect to run on.
pub fn compatible_with(server_version: &str) -> String {
    let mut parts = server_version
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    if major == 0 {
        format!(">=0.{minor}, <0.{}", minor + 1)
    } else {
        format!(">={major}.{minor}, <{}", major + 1)
    }
}

/// "open_incidents" → "Open incidents".
fn label(name: &str) -> String {
    let words = name.replace('_', " ");
    let mut chars = words.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The SDK this tool was built from, when its source is still there.
pub fn default_sdk_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    dir.join("Cargo.toml")
        .exists()
        .then(|| dir.canonicalize().unwrap_or_else(|_| dir.to_owned()))
}

/// Writes the crate and returns the paths written, relative to its
/// directory.
pub fn create(request: &NewPlugin) -> Result<Vec<String>> {
    vigilo_sdk::loader::check_name(&request.name)
        .map_err(|e| anyhow::anyhow!("{e} (the plugin's name is also its crate's)"))?;
    let dir = &request.dir;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty: choose another name or --dir",
            dir.display()
        );
    }
    let sdk = request
        .sdk
        .canonicalize()
        .with_context(|| format!("the SDK is not at {}", request.sdk.display()))?;
    let sdk_manifest = std::fs::read_to_string(sdk.join("Cargo.toml"))
        .with_context(|| format!("{} holds no Cargo.toml", sdk.display()))?;
    if !sdk_manifest.contains("name = \"vigilo-sdk\"") {
        bail!("{} is not the Vigilo SDK (vigilo-sdk)", sdk.display());
    }
    let kind = request.kind;
    let name = &request.name;
    let tag = element_tag(name, kind).unwrap_or_default();
    let description = match kind {
        PluginKind::FieldType => "A field type for reference codes such as ABC-123.",
        PluginKind::DashboardWidget => "A dashboard tile counting unfinished work items.",
        PluginKind::IntegrationAdapter => "Posts Vigilo events as JSON to a URL.",
        PluginKind::CeleryTask => "Counts a workspace's unfinished work items every hour.",
    };
    let (frontend_arg, frontend_files) = if has_frontend(kind) {
        (
            "--frontend frontend/ ".to_owned(),
            format!(
                "* `frontend/{name}.js`: the frontend half, the custom element `<{tag}>`\n  the web app draws the {} with.\n",
                if kind == PluginKind::FieldType {
                    "field's editor"
                } else {
                    "tile"
                }
            ),
        )
    } else {
        (String::new(), String::new())
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{label}}", &label(name))
            .replace("{{tag}}", &tag)
            .replace("{{kind}}", kind.as_str())
            .replace("{{sdk}}", &sdk.display().to_string())
            .replace("{{compatible_with}}", &compatible_with(SERVER_VERSION))
            .replace("{{description}}", description)
            .replace("{{frontend_arg}}", &frontend_arg)
            .replace("{{frontend_files}}", &frontend_files)
    };
    let mut written = Vec::new();
    for (path, template) in files(kind) {
        let path = fill(path);
        let target = dir.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, fill(template))
            .with_context(|| format!("cannot write {}", target.display()))?;
        written.push(path);
    }
    // Line widths depend on the name: let rustfmt lay the code out, where
    // it is installed (the code is valid Rust either way).
    let rust_files: Vec<PathBuf> = written
        .iter()
        .filter(|path| path.ends_with(".rs"))
        .map(|path| dir.join(path))
        .collect();
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .args(&rust_files)
        .stderr(std::process::Stdio::null())
        .status();
    // The dependency versions the SDK is tested with, when it comes from a
    // checkout of Vigilo: the first build then needs nothing new.
    if let Some(lock) = sdk.parent().map(|root| root.join("Cargo.lock")) {
        if lock.exists() {
            std::fs::copy(&lock, dir.join("Cargo.lock"))
                .with_context(|| format!("cannot copy {}", lock.display()))?;
            written.push("Cargo.lock".into());
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_with_covers_the_servers_of_this_sdk() {
        assert_eq!(compatible_with("0.1.0"), ">=0.1, <0.2");
        assert_eq!(compatible_with("0.12.3"), ">=0.12, <0.13");
        assert_eq!(compatible_with("2.4.1"), ">=2.4, <3");
    }

    #[test]
    fn labels_read_as_words() {
        assert_eq!(label("open_incidents"), "Open incidents");
        assert_eq!(label("x"), "X");
    }

    #[test]
    fn every_template_placeholder_is_filled() {
        let dir = std::env::temp_dir().join(format!("vigilo-new-{}", std::process::id()));
        for kind in [
            PluginKind::FieldType,
            PluginKind::DashboardWidget,
            PluginKind::IntegrationAdapter,
            PluginKind::CeleryTask,
        ] {
            let crate_dir = dir.join(kind.as_str());
            let written = create(&NewPlugin {
                name: format!("my_{}", kind.as_str()),
                kind,
                dir: crate_dir.clone(),
                sdk: default_sdk_dir().unwrap(),
            })
            .unwrap();
            assert_eq!(
                written.iter().any(|p| p.starts_with("frontend/")),
                has_frontend(kind)
            );
            for path in written {
                let text = std::fs::read_to_string(crate_dir.join(&path)).unwrap();
                let left = text.find("{{");
                assert_eq!(left, None, "{path}: {text}");
            }
            let again = create(&NewPlugin {
                name: format!("my_{}", kind.as_str()),
                kind,
                dir: crate_dir,
                sdk: default_sdk_dir().unwrap(),
            });
            assert!(again.unwrap_err().to_string().contains("not empty"));
        }
        let bad = create(&NewPlugin {
            name: "My-Plugin".into(),
            kind: PluginKind::FieldType,
            dir: dir.join("bad"),
            sdk: default_sdk_dir().unwrap(),
        });
        assert!(bad.unwrap_err().to_string().contains("invalid"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
