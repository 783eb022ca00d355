//! A plugin built against the previous release of the SDK (taken from this
//! repository's history and built during the test run, never committed as a
//! binary) loads and works unchanged on this server: it declares no
//! capabilities, so it keeps what plugins could call before they existed;
//! its tile renders through `work_items.count_by_status`; and a tile of it
//! can be added and changed although it does not know
//! `widget.validate_config`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use tempfile::TempDir;
use vigilo_tests::{cargo_bin, expect, on_both_databases, TestDb, TestServer};

use crate::create_workspace;
use crate::scaffold::{vendor_cargo, vendor_target};

/// The commit of the previous SDK release: the last one before capabilities
/// and the wider host API.
const PREVIOUS_SDK: &str = "23fe7983508ba120d67cab95c1b907759d5b9249";

fn git(root: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed (the test needs this repository's history, with commit \
         {PREVIOUS_SDK}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Builds the `old_sdk_board` widget against the SDK of [`PREVIOUS_SDK`];
/// answers its library.
fn build_with_previous_sdk(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // The SDK as it was, in a workspace of its own with the manifest and
    // lock file of that release (so its dependencies are those it shipped
    // with).
    let archive = git(root, &["archive", "--format=tar", PREVIOUS_SDK, "sdk"]);
    let mut untar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(untar.stdin.as_mut().unwrap(), &archive).unwrap();
    drop(untar.stdin.take());
    assert!(untar.wait().unwrap().success());
    let manifest =
        String::from_utf8(git(root, &["show", &format!("{PREVIOUS_SDK}:Cargo.toml")])).unwrap();
    let start = manifest
        .find("members = [")
        .expect("the workspace's members");
    let end = start + manifest[start..].find(']').unwrap() + 1;
    let rest = &manifest[end..];
    let rest = match rest.find("default-members") {
        Some(at) => {
            let close = at + rest[at..].find(']').unwrap() + 1;
            format!("{}{}", &rest[..at], &rest[close..])
        }
        None => rest.to_owned(),
    };
    let workspace = format!(
        "{}members = [\"sdk\", \"old_sdk_board\"]{rest}",
        &manifest[..start]
    );
    std::fs::write(dir.join("Cargo.toml"), workspace).unwrap();
    std::fs::write(
        dir.join("Cargo.lock"),
        git(root, &["show", &format!("{PREVIOUS_SDK}:Cargo.lock")]),
    )
    .unwrap();
    let crate_dir = dir.join("old_sdk_board");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        "[package]\nname = \"old_sdk_board\"\nversion = \"0.3.0\"\nedition = \"2021\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nvigilo-sdk = { path = \"../sdk\" }\n",
    )
    .unwrap();
    std::fs::write(
        crate_dir.join("src/lib.rs"),
        r#"use vigilo_sdk::{json, Host, Plugin, PluginKind, PluginRegistry, Value, Widget, WidgetContext};

pub struct Board;

impl Plugin for Board {
    fn name(&self) -> &str { "old_sdk_board" }
    fn kind(&self) -> PluginKind { PluginKind::DashboardWidget }
    fn version(&self) -> &str { "0.3.0" }
    fn compatible_with(&self) -> &str { ">=0.1" }
    fn register(&self, registry: &mut PluginRegistry) { registry.register_widget(Board); }
}

impl Widget for Board {
    fn name(&self) -> &str { "old_sdk_board" }
    fn label(&self) -> &str { "Open incidents (previous SDK)" }
    fn config_schema(&self) -> Value {
        json!({"type": "object", "properties": {"title": {"type": "string"}}})
    }
    fn render(&self, ctx: &WidgetContext, host: &dyn Host) -> Result<Value, String> {
        let counts = host.work_items_count_by_status(&ctx.workspace)?;
        let stored = host.call("kv.get", &json!({"key": "x"}));
        Ok(json!({
            "title": ctx.config["title"],
            "open": counts.incidents.get("open").copied().unwrap_or(0),
            "storage": stored.err(),
        }))
    }
}

vigilo_sdk::export_plugin!(Board);
"#,
    )
    .unwrap();
    let out = vendor_cargo(dir)
        .args(["build", "-p", "old_sdk_board"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building against the previous SDK failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    vendor_target().join("debug").join(format!(
        "{}old_sdk_board{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

fn a_plugin_built_with_the_previous_sdk_loads_and_works(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let library = build_with_previous_sdk(dir.path());
    let checked = Command::new(cargo_bin("vigilo-server"))
        .arg("check-plugin")
        .arg(&library)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{report}");
    assert!(
        report.contains("capabilities:    none declared"),
        "{report}"
    );

    let installed = library.clone();
    let server = TestServer::start_with(db, move |config| {
        config.installed_plugins = vec![installed.into()];
        config.watch_plugins_dir = false;
    });
    let admin = server.admin();
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "incident", "title": "Pager storm"}),
    );
    let plugin = admin.loaded_plugin("old_sdk_board").expect("loaded");
    assert!(plugin["capabilities"].is_null(), "{plugin:#}");

    // Added and changed although it cannot check its own options: the
    // schema is all there is to check.
    let tile = admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "old_sdk_board", "config": {"title": "Now"}}),
    );
    let changed = admin.put(
        &format!("/api/v1/workspaces/ops/dashboard/widgets/{}", tile["id"]),
        json!({"config": {"title": "Open now"}}),
    );
    assert_eq!(changed.status, 200, "{}", changed.text);
    let refused = admin.put(
        &format!("/api/v1/workspaces/ops/dashboard/widgets/{}", tile["id"]),
        json!({"config": {"title": 3}}),
    );
    assert_eq!(refused.status, 422, "{}", refused.text);

    let dashboard = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    let data = &dashboard["widgets"][0]["data"];
    assert!(dashboard["widgets"][0]["error"].is_null(), "{dashboard:#}");
    assert_eq!(data["title"], "Open now");
    assert_eq!(data["open"], 1);
    // The newer methods are not its to call.
    assert!(
        data["storage"]
            .as_str()
            .is_some_and(|e| e.starts_with("capability_not_declared:")),
        "{data}"
    );
}

on_both_databases!(a_plugin_built_with_the_previous_sdk_loads_and_works);
