//! The plugin developer guide (`sdk/README.md`) is followed to the letter:
//! its `Cargo.toml` and its four complete plugins are written into fresh
//! crates outside this repository, built there, and loaded by a server.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use tempfile::TempDir;
use vigilo_host::config::InstalledPlugin;
use vigilo_tests::plugins::library_file_name;
use vigilo_tests::{bin_dir, expect, TestDb, TestServer};

use crate::create_workspace;

/// The blocks of the guide marked `<!-- guide-file: NAME -->`.
fn guide_files(readme: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- guide-file:")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a code block follows the marker");
        assert!(fence.starts_with("```"), "no code block after {name}");
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        files.push((name.trim().to_owned(), body.join("\n") + "\n"));
    }
    files
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn guide_plugins_build_outside_the_workspace() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("sdk/README.md")).unwrap();
    let files = guide_files(&readme);
    let file = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, body)| body.clone())
            .unwrap_or_else(|| panic!("the guide has no block marked {name}"))
    };
    let manifest = file("Cargo.toml");
    assert!(manifest.contains("name = \"my_plugin\""), "{manifest}");
    assert!(manifest.contains("/path/to/vigilo/sdk"), "{manifest}");

    // A vendor's directory, nowhere near this repository.
    let vendor = TempDir::new().unwrap();
    assert!(!vendor.path().starts_with(&root));
    // One target directory shared by the four crates and kept between runs,
    // so their dependencies build once.
    let target = bin_dir().join("guide-plugins");
    let kinds = [
        "field_type",
        "dashboard_widget",
        "integration_adapter",
        "celery_task",
    ];
    let mut libraries = Vec::new();
    for kind in kinds {
        let name = format!("guide_{kind}");
        let dir = vendor.path().join(&name);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            manifest
                .replace("name = \"my_plugin\"", &format!("name = \"{name}\""))
                .replace(
                    "/path/to/vigilo/sdk",
                    &root.join("sdk").display().to_string(),
                ),
        )
        .unwrap();
        std::fs::write(dir.join("src/lib.rs"), file(&format!("{kind}/src/lib.rs"))).unwrap();
        // Pin dependency versions to the ones this repository is tested with.
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("CARGO_") && key != "CARGO_HOME" {
                cargo.env_remove(&key);
            }
        }
        let status = cargo
            .args(["build", "--quiet", "--lib"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&dir)
            .status()
            .expect("run cargo");
        assert!(status.success(), "the guide's {kind} plugin does not build");
        let built = target.join("debug").join(library_file_name(&name));
        assert!(built.exists(), "{} missing", built.display());
        libraries.push(InstalledPlugin::from(built));
    }

    let server = TestServer::start_with(TestDb::sqlite(), move |config| {
        config.installed_plugins = libraries;
    });
    let admin = server.admin();
    let listed = expect(&admin.get("/api/v1/plugins?all=true"), 200).clone();
    let plugins = listed["plugins"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = plugins
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("?"),
                p["kind"].as_str().unwrap_or("?"),
                p["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("my_plugin", "field_type", "loaded"),
            ("open_incidents", "dashboard_widget", "loaded"),
            ("chat_notifier", "integration_adapter", "loaded"),
            ("hourly_summary", "celery_task", "loaded"),
        ],
        "{listed:#}"
    );
    assert_eq!(plugins[2]["registrations"][0]["name"], "chat");
    assert_eq!(plugins[3]["registrations"][0]["name"], "hourly_summary");

    // The field type and the widget work through the API.
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "done", "label": "Done", "type": "percent", "applies_to": ["task"]}),
    );
    let refused = admin.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "t", "fields": {"done": 150}}),
    );
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("not a percentage"),
        "{}",
        refused.text
    );
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "t", "fields": {"done": 40}}),
    );
    for title in ["db down", "dns flaky"] {
        admin.create(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "incident", "title": title}),
        );
    }
    admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "open_incidents"}),
    );
    let dashboard = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    assert_eq!(
        dashboard["widgets"][0]["data"],
        json!({"open": 2}),
        "{dashboard:#}"
    );
}
