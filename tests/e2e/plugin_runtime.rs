//! Plugins while the server runs: files moved into the watched plugins
//! directory, replaced, half-written and removed; enable and disable; pinned
//! checksums; libraries for another architecture; strict mode.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use vigilo_host::config::InstalledPlugin;
use vigilo_tests::json::find;
use vigilo_tests::plugins::{fixture_plugin, installed, reference_plugin};
use vigilo_tests::process::free_port;
use vigilo_tests::{cargo_bin, expect, on_both_databases, Api, Cli, TestDb, TestServer};

use crate::{create_workspace, join};

/// A plugins directory the server may trust (not writable by others).
fn plugins_dir(base: &Path) -> PathBuf {
    let dir = base.join("plugins");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Installs `from` as `dir/name` the safe way: copied next to it under a
/// name the server ignores, then renamed into place (what `install` and `mv`
/// within one filesystem do).
fn install(from: &Path, dir: &Path, name: &str) {
    let temporary = dir.join(format!(".{name}.partial"));
    std::fs::copy(from, &temporary).unwrap();
    std::fs::rename(&temporary, dir.join(name)).unwrap();
}

/// The plugin entries for `path`, from `?all=true`.
fn entries_for(admin: &Api, path: &Path) -> Vec<Value> {
    let all = expect(&admin.get("/api/v1/plugins?all=true"), 200).clone();
    all["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["path"] == path.display().to_string().as_str())
        .cloned()
        .collect()
}

/// Polls until `check` holds (the watcher works in the background); fails
/// after 15 s with what it last saw.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: never happened; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn loaded_version(admin: &Api, name: &str) -> Option<String> {
    admin
        .loaded_plugin(name)
        .map(|p| p["version"].as_str().unwrap().to_owned())
}

fn validate_upper(admin: &Api, value: &str) -> (u16, Value) {
    let r = admin.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "t", "fields": {"shout": value}}),
    );
    (r.status, r.json)
}

fn watched_directory(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let plugins = plugins_dir(dir.path());
    let watched = plugins.clone();
    let server = TestServer::start_with(db, move |config| {
        config.plugins_dir = Some(watched);
    });
    let admin = server.admin();
    create_workspace(&admin, "ops");
    assert_eq!(loaded_version(&admin, "fixture_upper"), None);

    // Moved in: loaded without a restart.
    install(&fixture_plugin("upper"), &plugins, "libupper.so");
    eventually("the new plugin is listed", || {
        loaded_version(&admin, "fixture_upper")
            .filter(|v| v == "0.1.0")
            .map(|_| ())
            .ok_or_else(|| "not yet".into())
    });
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "shout", "label": "Shout", "type": "fixture_upper", "applies_to": ["task"]}),
    );
    let (status, item) = validate_upper(&admin, "hello");
    assert_eq!(status, 201, "{item}");
    assert_eq!(item["fields"]["shout"], "HELLO");

    // Replaced atomically by a newer version: the new code answers, the old
    // version is retired.
    install(&fixture_plugin("v2"), &plugins, "libupper.so");
    eventually("version 0.2.0 replaces 0.1.0", || {
        loaded_version(&admin, "fixture_upper")
            .filter(|v| v == "0.2.0")
            .map(|_| ())
            .ok_or_else(|| format!("{:?}", loaded_version(&admin, "fixture_upper")))
    });
    let (status, item) = validate_upper(&admin, "hello");
    assert_eq!(status, 201, "{item}");
    assert_eq!(
        item["fields"]["shout"], "HELLO!",
        "the new version's code runs"
    );
    let history = entries_for(&admin, &plugins.join("libupper.so"));
    let states: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|p| {
            (
                p["version"].as_str().unwrap(),
                p["state"].as_str().unwrap(),
                p["reason"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("0.1.0", "disabled", "replaced"), ("0.2.0", "loaded", "-")]
    );
    // `vigilo plugin list --all` shows the latest row per plugin; the
    // replaced version only with --history.
    let cli = Cli::with(&server.url, &server.admin_token, None);
    let versions = |args: &[&str]| -> Vec<String> {
        let listed = cli.run(args).ok().json();
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "fixture_upper")
            .map(|p| p["version"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(versions(&["--json", "plugin", "list", "--all"]), ["0.2.0"]);
    assert_eq!(
        versions(&["--json", "plugin", "list", "--all", "--history"]),
        ["0.1.0", "0.2.0"]
    );
    let table = cli.run(&["plugin", "list", "--all"]).ok().stdout.clone();
    assert!(
        table.contains("0.2.0") && !table.contains("replaced"),
        "{table}"
    );

    // A broken replacement leaves the running version active and is listed.
    install(&fixture_plugin("incompatible"), &plugins, "libupper.so");
    eventually("the failed replacement is listed", || {
        let entries = entries_for(&admin, &plugins.join("libupper.so"));
        entries
            .iter()
            .any(|p| p["reason"] == "incompatible_version")
            .then_some(())
            .ok_or_else(|| format!("{entries:#?}"))
    });
    assert_eq!(
        loaded_version(&admin, "fixture_upper").as_deref(),
        Some("0.2.0")
    );
    assert_eq!(
        validate_upper(&admin, "still").1["fields"]["shout"],
        "STILL!"
    );

    // A file still being written is loaded only once complete: nothing is
    // attempted (and nothing skipped) while the bytes trickle in.
    let bytes = std::fs::read(reference_plugin("kanban_overview")).unwrap();
    let slow = plugins.join("libkanban_slowly.so");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&slow).unwrap();
        for chunk in bytes.chunks(bytes.len() / 8 + 1) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(60));
        }
    }
    eventually("the completed file is loaded", || {
        loaded_version(&admin, "kanban_overview")
            .map(|_| ())
            .ok_or_else(|| format!("{:#?}", entries_for(&admin, &slow)))
    });
    let slow_entries = entries_for(&admin, &slow);
    assert_eq!(slow_entries.len(), 1, "{slow_entries:#?}");
    let events = expect(
        &admin.get("/api/v1/audit/events?chain=0&action=plugin.skip&limit=1000"),
        200,
    )
    .clone();
    assert!(
        !events.to_string().contains("libkanban_slowly.so"),
        "a half-written file was tried: {events:#}"
    );

    // Removed: disabled, its field type and assets gone.
    std::fs::remove_file(plugins.join("libupper.so")).unwrap();
    eventually("the removed plugin is disabled", || {
        loaded_version(&admin, "fixture_upper")
            .map_or(Ok(()), |v| Err(format!("still loaded: {v}")))
    });
    let types = expect(&admin.get("/api/v1/field-types"), 200).clone();
    assert!(!types.to_string().contains("fixture_upper"), "{types}");
    let (status, body) = validate_upper(&admin, "x");
    assert_eq!(status, 503, "{body}");
    let entries = entries_for(&admin, &plugins.join("libupper.so"));
    assert!(
        entries
            .iter()
            .any(|p| p["reason"] == "removed" && p["version"] == "0.2.0"),
        "{entries:#?}"
    );

    // Every step is in the audit log (the registry's events are recorded
    // by a task of their own, so the last may land a moment after the
    // plugin is gone from the list).
    eventually("every step is audited", || {
        let events = admin.installation_audit("action=plugin.*&limit=1000");
        let actions = events.action_targets();
        for expected in [
            ("plugin.load", "fixture_upper"),
            ("plugin.reload", "fixture_upper"),
            ("plugin.skip", "fixture_incompatible"),
            ("plugin.load", "kanban_overview"),
            ("plugin.disable", "fixture_upper"),
        ] {
            if !actions.contains(&expected) {
                return Err(format!("{expected:?} missing from {actions:?}"));
            }
        }
        Ok(())
    });
    let events = admin.installation_audit("action=plugin.*&limit=1000");
    let reload = events.find("plugin.reload").unwrap();
    assert_eq!(reload.details["replaced_version"], "0.1.0");
    assert_eq!(reload.details["sha256"].as_str().unwrap().len(), 64);
}

fn enable_and_disable(db: TestDb) {
    // These plugins installed; the plugins directory stays watched, as by
    // default.
    let plugins = installed(&["datepicker_with_holidays"]);
    let server = TestServer::start_with(db, move |config| config.installed_plugins = plugins);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let owner = join(&server, "ops", "owner@ops.com", "owner", false);
    let asset = "/plugins/datepicker_with_holidays/assets/holiday_aware_date.js";
    let has_type = || {
        expect(&admin.get("/api/v1/field-types"), 200)
            .to_string()
            .contains("holiday_aware_date")
    };
    assert!(has_type());

    // Only platform admins.
    let owner_cli = Cli::with(&server.url, &owner, Some("ops"));
    let denied = owner_cli.run(&["plugin", "disable", "datepicker_with_holidays"]);
    assert_eq!(denied.code, 4, "{denied:?}");

    let cli = Cli::with(&server.url, &server.admin_token, Some("ops"));
    let out = cli
        .run(&["plugin", "disable", "datepicker_with_holidays"])
        .ok()
        .stdout
        .clone();
    assert!(out.contains("disabled by admin@example.com"), "{out}");
    assert!(!has_type(), "a disabled plugin's field type is not offered");
    assert_eq!(server.anonymous().get(asset).status, 404);
    let listed = cli.run(&["plugin", "list", "--all", "--json"]).ok().json();
    assert_eq!(listed[0]["state"], "disabled");
    assert_eq!(listed[0]["reason"], "disabled_by_admin");
    let visible = expect(&admin.get("/api/v1/plugins"), 200).clone();
    assert_eq!(
        visible["plugins"].as_array().unwrap().len(),
        0,
        "the web app is told not to load it"
    );
    let missing = cli.run(&["plugin", "disable", "datepicker_with_holidays"]);
    assert_eq!(missing.code, 5, "{missing:?}");

    let enabled = cli
        .run(&["plugin", "enable", "datepicker_with_holidays", "--json"])
        .ok()
        .json();
    assert_eq!(enabled["state"], "loaded");
    assert!(has_type());
    assert_eq!(server.anonymous().get(asset).status, 200);
    // Enabling again changes nothing.
    cli.run(&["plugin", "enable", "datepicker_with_holidays"])
        .ok();

    let events = admin.installation_audit("action=plugin.*&limit=100");
    let seen: Vec<(&str, &str)> = events
        .action_actors()
        .into_iter()
        .filter(|(action, _)| *action != "plugin.load")
        .collect();
    assert_eq!(
        seen,
        [
            ("plugin.disable", "admin@example.com"),
            ("plugin.enable", "admin@example.com")
        ]
    );
}

/// A pinned checksum must match; a library for another CPU is refused by
/// name before it is opened.
#[test]
fn checksums_and_architectures() {
    let dir = TempDir::new().unwrap();
    let good = reference_plugin("kanban_overview");
    let bytes = std::fs::read(&good).unwrap();
    let sha = {
        use std::io::Write;
        let mut child = Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_owned()
    };
    // The same library, its header claiming another CPU.
    let foreign = dir.path().join("libforeign.so");
    let mut patched = bytes.clone();
    let other: u16 = if std::env::consts::ARCH == "aarch64" {
        0x3e
    } else {
        0xb7
    };
    patched[18..20].copy_from_slice(&other.to_le_bytes());
    std::fs::write(&foreign, patched).unwrap();
    let installed = vec![
        InstalledPlugin::Pinned {
            path: good.clone(),
            sha256: "0".repeat(64),
        },
        InstalledPlugin::Pinned {
            path: reference_plugin("datepicker_with_holidays"),
            sha256: "f".repeat(64),
        },
        InstalledPlugin::from(foreign.clone()),
    ];
    let server = TestServer::start_with(TestDb::sqlite(), move |config| {
        config.installed_plugins = installed
    });
    let admin = server.admin();
    let all = expect(&admin.get("/api/v1/plugins?all=true"), 200).clone();
    let by_path = |path: &Path| {
        find(&all["plugins"], "path", path.display().to_string().as_str())
            .cloned()
            .unwrap()
    };
    let pinned = by_path(&good);
    assert_eq!(pinned["reason"], "checksum_mismatch", "{pinned:#}");
    assert!(
        pinned["message"].as_str().unwrap().contains(&sha),
        "{pinned:#}"
    );
    let wrong = by_path(&foreign);
    assert_eq!(wrong["reason"], "wrong_architecture", "{wrong:#}");
    let expected = if std::env::consts::ARCH == "x86_64" {
        "built for aarch64, this host is x86_64".to_owned()
    } else {
        format!("this host is {}", std::env::consts::ARCH)
    };
    assert!(
        wrong["message"].as_str().unwrap().contains(&expected),
        "{wrong:#}"
    );
    drop(server);

    // The right checksum loads.
    let installed = vec![InstalledPlugin::Pinned {
        path: good.clone(),
        sha256: sha.to_uppercase(),
    }];
    let server = TestServer::start_with(TestDb::sqlite(), move |config| {
        config.installed_plugins = installed
    });
    let all = expect(&server.admin().get("/api/v1/plugins"), 200).clone();
    assert_eq!(all["plugins"][0]["name"], "kanban_overview");
    assert_eq!(all["plugins"][0]["sha256"], sha.as_str());
}

/// `strict_plugins`: startup fails, naming every plugin that cannot load.
#[test]
fn strict_mode_refuses_to_start() {
    let dir = TempDir::new().unwrap();
    let plugins = plugins_dir(dir.path());
    install(
        &fixture_plugin("incompatible"),
        &plugins,
        "libincompatible.so",
    );
    install(
        &fixture_plugin("register_panic"),
        &plugins,
        "libregister_panic.so",
    );
    install(
        &reference_plugin("kanban_overview"),
        &plugins,
        "libkanban_overview.so",
    );
    let port = free_port();
    let server = |strict: bool| {
        Command::new(cargo_bin("vigilo-server"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VIGILO_DATA_DIR", dir.path().join("data"))
            .env("VIGILO_PLUGINS_DIR", &plugins)
            .env("VIGILO_BIND", format!("127.0.0.1:{port}"))
            .env(
                "VIGILO_STRICT_PLUGINS",
                if strict { "true" } else { "false" },
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Strict: the process ends by itself, with every failure named.
    let out = server(true).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("2 plugin(s) cannot load"), "{stderr}");
    assert!(
        stderr.contains("libincompatible.so (incompatible_version)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("libregister_panic.so (register_panicked)"),
        "{stderr}"
    );
    // The default logs and skips: the same directory serves.
    let mut child = server(false);
    vigilo_tests::wait_healthy(&format!("http://127.0.0.1:{port}"));
    let _ = child.kill();
    let _ = child.wait();
}

on_both_databases!(watched_directory, enable_and_disable);
