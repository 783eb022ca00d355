//! Binary releases: a vendor packages and signs a bundle with
//! `vigilo-plugin`; an operator installs it with `vigilo-server plugin
//! install` into a running server's plugins directory, which loads it; bad
//! bundles are refused with the reason, said once; `plugin uninstall` takes
//! it out, also when the server could not load it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use vigilo_tests::plugins::{fixture_plugin, installed, library_file_name, reference_plugin};
use vigilo_tests::process::server_command;
use vigilo_tests::{cargo_bin, on_both_databases, Cli, TestDb, TestServer};

mod frontends;

fn host_target() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "macos" => format!("{arch}-apple-darwin"),
        _ => format!("{arch}-unknown-linux-gnu"),
    }
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap()
}

/// Runs the system `tar` (to take a bundle apart and put it back together).
fn tar(args: &[&std::ffi::OsStr]) {
    let status = Command::new("tar").args(args).status().unwrap();
    assert!(status.success(), "tar {args:?} failed");
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that a command failed and said `says`.
#[track_caller]
fn refused(out: &Output, says: &str) {
    assert!(!out.status.success(), "{}", text(out));
    assert!(text(out).contains(says), "{}", text(out));
}

#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bundles_end_to_end(db: TestDb) {
    let work = TempDir::new().unwrap();
    let w = |name: &str| work.path().join(name);
    let packager = cargo_bin("vigilo-plugin");

    // The vendor: a key, and a signed bundle for this host and aarch64.
    let keygen = run(
        &packager,
        &["keygen", "--out", w("vendor.key").to_str().unwrap()],
    );
    assert!(keygen.status.success(), "{}", text(&keygen));
    let public = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    assert_eq!(
        std::fs::metadata(w("vendor.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let datepicker = reference_plugin("datepicker_with_holidays");
    let other_arch = w("libdatepicker_with_holidays.so");
    let mut bytes = std::fs::read(&datepicker).unwrap();
    bytes[18..20].copy_from_slice(&0xb7u16.to_le_bytes());
    std::fs::write(&other_arch, bytes).unwrap();
    let host_lib = format!("{}={}", host_target(), datepicker.display());
    let arm_lib = format!("aarch64-unknown-linux-gnu={}", other_arch.display());
    let frontend =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/datepicker_with_holidays/frontend");
    let package = |out: &str, sign: Option<&str>, lib: &str| {
        let mut args = vec!["package", "--lib", lib, "--out", out];
        if lib == host_lib {
            args.extend(["--lib", &arm_lib]);
        }
        // The datepicker's frontend source is checked against what its
        // library embeds; the other bundles ship their embedded files
        // without a check.
        let frontend = frontend.display().to_string();
        if lib == host_lib {
            args.extend(["--frontend", &frontend]);
        }
        if let Some(key) = sign {
            args.extend(["--sign", key]);
        }
        let out = run(&packager, &args);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    let signed = w("datepicker-0.1.0.tar.gz");
    let said = package(
        signed.to_str().unwrap(),
        Some(w("vendor.key").to_str().unwrap()),
        &host_lib,
    );
    assert!(
        said.contains("datepicker_with_holidays 0.1.0 (field_type)") && said.contains("signed"),
        "{said}"
    );
    let inspected = text(&run(&packager, &["inspect", signed.to_str().unwrap()]));
    assert!(
        inspected.contains("aarch64-unknown-linux-gnu") && inspected.contains(&host_target()),
        "{inspected}"
    );
    assert!(
        inspected.contains("frontend/holiday_aware_date.js"),
        "{inspected}"
    );

    // The operator: a running server watching its plugins directory.
    let plugins_dir = w("plugins");
    std::fs::create_dir(&plugins_dir).unwrap();
    std::fs::set_permissions(&plugins_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let watched = plugins_dir.clone();
    let trusted = public.clone();
    let server = TestServer::start_with(db, move |config| {
        config.plugins_dir = Some(watched);
        config.trusted_plugin_keys = vec![trusted];
    });
    let admin = server.admin();
    let config_file = |name: &str, allow_unsigned: bool| -> PathBuf {
        let path = w(name);
        std::fs::write(
            &path,
            format!(
                "data_dir = {:?}\ndatabase_url = {:?}\nplugins_dir = {:?}\ntrusted_plugin_keys = [{:?}]\nallow_unsigned_plugins = {allow_unsigned}\n",
                server.config.data_dir.display().to_string(),
                server.config.database_url,
                plugins_dir.display().to_string(),
                public
            ),
        )
        .unwrap();
        path
    };
    let strict = config_file("strict.toml", false);
    let install = |config: &Path, bundle: &Path| {
        server_command(config)
            .args(["plugin", "install"])
            .arg(bundle)
            .output()
            .unwrap()
    };
    let uninstall = |name: &str| {
        server_command(&strict)
            .args(["plugin", "uninstall", name])
            .output()
            .unwrap()
    };

    // Refused: unsigned, signed by an untrusted key, tampered, incompatible.
    let unsigned = w("unsigned.tar.gz");
    package(unsigned.to_str().unwrap(), None, &host_lib);
    refused(&install(&strict, &unsigned), "not signed");

    run(
        &packager,
        &["keygen", "--out", w("stranger.key").to_str().unwrap()],
    );
    let stranger = w("stranger.tar.gz");
    package(
        stranger.to_str().unwrap(),
        Some(w("stranger.key").to_str().unwrap()),
        &host_lib,
    );
    refused(
        &install(&strict, &stranger),
        "does not verify with any key in trusted_plugin_keys",
    );

    let unpacked = w("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    tar(&[
        "xzf".as_ref(),
        signed.as_os_str(),
        "-C".as_ref(),
        unpacked.as_os_str(),
    ]);
    let inner = unpacked
        .join("lib")
        .join(host_target())
        .join("libdatepicker_with_holidays.so");
    let mut lib = std::fs::read(&inner).unwrap();
    let last = lib.len() - 1;
    lib[last] ^= 0xff;
    std::fs::write(&inner, lib).unwrap();
    let tampered = w("tampered.tar.gz");
    tar(&[
        "czf".as_ref(),
        tampered.as_os_str(),
        "-C".as_ref(),
        unpacked.as_os_str(),
        ".".as_ref(),
    ]);
    refused(&install(&strict, &tampered), "checksum mismatch for lib/");

    // A frontend source directory that no longer matches the built
    // library is refused at packaging time.
    let stale = w("stale-frontend");
    std::fs::create_dir(&stale).unwrap();
    for entry in std::fs::read_dir(&frontend).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), stale.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        stale.join("holiday_aware_date.js"),
        "// edited after the build\n",
    )
    .unwrap();
    let out = run(
        &packager,
        &[
            "package",
            "--lib",
            &host_lib,
            "--frontend",
            stale.to_str().unwrap(),
            "--out",
            w("stale.tar.gz").to_str().unwrap(),
        ],
    );
    refused(&out, "holiday_aware_date.js");
    refused(&out, "differs from the copy embedded in the library");

    // A bundle whose frontend files are not the ones its library embeds
    // (checksums made to match) is refused at install time.
    let lenient = config_file("lenient.toml", true);
    let swapped_dir = w("swapped");
    std::fs::create_dir(&swapped_dir).unwrap();
    tar(&[
        "xzf".as_ref(),
        unsigned.as_os_str(),
        "-C".as_ref(),
        swapped_dir.as_os_str(),
    ]);
    let swapped_js = b"alert('not what the library serves')\n";
    std::fs::write(
        swapped_dir.join("frontend/holiday_aware_date.js"),
        swapped_js,
    )
    .unwrap();
    let manifest_path = swapped_dir.join("vigilo-plugin.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for file in manifest["frontend"].as_array_mut().unwrap() {
        if file["file"] == "frontend/holiday_aware_date.js" {
            file["sha256"] = Value::String(
                Sha256::digest(swapped_js)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            );
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let swapped = w("swapped.tar.gz");
    tar(&[
        "czf".as_ref(),
        swapped.as_os_str(),
        "-C".as_ref(),
        swapped_dir.as_os_str(),
        ".".as_ref(),
    ]);
    let out = install(&lenient, &swapped);
    refused(&out, "frontend files do not match");
    refused(&out, "frontend/holiday_aware_date.js");

    // A plugin whose compatible_with refuses the server version the
    // packager checks against (by default its SDK's) is not packaged...
    let incompatible = w("incompatible.tar.gz");
    let incompatible_lib = format!(
        "{}={}",
        host_target(),
        fixture_plugin("incompatible").display()
    );
    let key = w("vendor.key");
    let mut args = vec![
        "package",
        "--lib",
        &incompatible_lib,
        "--sign",
        key.to_str().unwrap(),
        "--out",
        incompatible.to_str().unwrap(),
    ];
    let out = run(&packager, &args);
    refused(
        &out,
        "a Vigilo 0.1.0 server would refuse it:\n  - incompatible_version: requires vigilo >=2.0, running 0.1.0",
    );
    assert!(!incompatible.exists(), "a refused plugin was packaged");
    // ...but is for the version the vendor targets, and that bundle is
    // refused by this older server at install time.
    args.extend(["--vigilo-version", "2.0.0"]);
    let out = run(&packager, &args);
    assert!(out.status.success(), "{}", text(&out));
    refused(
        &install(&strict, &incompatible),
        "requires vigilo >=2.0, running 0.1.0",
    );
    assert_eq!(
        std::fs::read_dir(&plugins_dir).unwrap().count(),
        0,
        "nothing refused reaches the plugins directory"
    );

    // Installed: the running server loads it.
    let out = install(&strict, &signed);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("signed by {public}")),
        "{}",
        text(&out)
    );
    eventually("the installed plugin loads", || {
        admin.loaded_plugin("datepicker_with_holidays").is_some()
    });
    let listed = admin.loaded_plugin("datepicker_with_holidays").unwrap();
    assert_eq!(listed["version"], "0.1.0");

    // Unsigned bundles install only where allowed.
    let kanban_bundle = w("kanban.tar.gz");
    package(
        kanban_bundle.to_str().unwrap(),
        None,
        &format!(
            "{}={}",
            host_target(),
            reference_plugin("kanban_overview").display()
        ),
    );
    // Without --frontend, the bundle still ships the embedded files.
    let inspected = text(&run(
        &packager,
        &["inspect", kanban_bundle.to_str().unwrap()],
    ));
    assert!(
        inspected.contains("frontend/kanban_overview.js")
            && inspected.contains("frontend/kanban_overview.css"),
        "{inspected}"
    );
    // It asks to read work items: without --approve, nothing is installed.
    refused(
        &install(&lenient, &kanban_bundle),
        "kanban_overview 0.1.0 asks to use: work_items.read; nothing was installed (run again with --approve",
    );
    let out = server_command(&lenient)
        .args(["plugin", "install", "--approve"])
        .arg(&kanban_bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("asks to use: work_items.read: approved (--approve)"),
        "{}",
        text(&out)
    );
    eventually("the unsigned plugin loads", || {
        admin.loaded_plugin("kanban_overview").is_some()
    });

    // Uninstalled: disabled in the running server.
    let out = uninstall("datepicker_with_holidays");
    assert!(out.status.success(), "{}", text(&out));
    eventually("the uninstalled plugin is disabled", || {
        admin.loaded_plugin("datepicker_with_holidays").is_none()
    });
    let again = uninstall("datepicker_with_holidays");
    assert!(!again.status.success());

    let events = admin.installation_audit("action=plugin.*&limit=1000");
    let actions = events.action_targets();
    for expected in [
        ("plugin.install", "datepicker_with_holidays"),
        ("plugin.load", "datepicker_with_holidays"),
        ("plugin.install", "kanban_overview"),
        ("plugin.uninstall", "datepicker_with_holidays"),
        ("plugin.disable", "datepicker_with_holidays"),
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} missing from {actions:?}"
        );
    }
}

/// A config file for `vigilo-server plugin ...` next to `server`, with the
/// plugins directory `plugins_dir`.
fn operator_config(path: &Path, server: &TestServer, plugins_dir: &Path, allow_unsigned: bool) {
    std::fs::write(
        path,
        format!(
            "data_dir = {:?}\ndatabase_url = {:?}\nplugins_dir = {:?}\nallow_unsigned_plugins = {allow_unsigned}\n",
            server.config.data_dir.display().to_string(),
            server.config.database_url,
            plugins_dir.display().to_string(),
        ),
    )
    .unwrap();
}

/// Asserts that a `vigilo-server` command failed and said `says` once, on
/// standard error only.
#[track_caller]
fn refused_once(out: &Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(out));
    assert_eq!(stderr.matches(says).count(), 1, "said once: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(out.stdout.is_empty(), "{}", text(out));
}

/// What an operator sees of `plugin install` and `plugin uninstall`: a
/// refusal is said once, and a plugin file the server could not load that
/// is then uninstalled leaves no row behind in `vigilo plugin list --all`.
fn plugin_commands_end_to_end(db: TestDb) {
    let work = TempDir::new().unwrap();
    let w = |name: &str| work.path().join(name);
    let plugins_dir = w("plugins");
    std::fs::create_dir(&plugins_dir).unwrap();
    std::fs::set_permissions(&plugins_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let watched = plugins_dir.clone();
    let server = TestServer::start_with(db, move |config| {
        config.plugins_dir = Some(watched);
        config.installed_plugins = installed(&["kanban_overview"]);
    });
    let (strict, lenient) = (w("strict.toml"), w("lenient.toml"));
    operator_config(&strict, &server, &plugins_dir, false);
    operator_config(&lenient, &server, &plugins_dir, true);
    let plugin = |config: &Path, args: &[&std::ffi::OsStr]| {
        server_command(config)
            .arg("plugin")
            .args(args)
            .output()
            .unwrap()
    };
    let cli = Cli::with(&server.url, &server.admin_token, None);
    let rows_for = |file: &str| -> Vec<Value> {
        let listed = cli.run(&["--json", "plugin", "list", "--all"]).ok().json();
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["path"].as_str().is_some_and(|p| p.ends_with(file)))
            .cloned()
            .collect()
    };

    let bundle = w("kanban.tar.gz");
    let lib = format!(
        "{}={}",
        host_target(),
        reference_plugin("kanban_overview").display()
    );
    let packaged = run(
        &cargo_bin("vigilo-plugin"),
        &["package", "--lib", &lib, "--out", bundle.to_str().unwrap()],
    );
    assert!(packaged.status.success(), "{}", text(&packaged));

    // Refusals are printed once.
    refused_once(
        &plugin(&strict, &["install".as_ref(), bundle.as_os_str()]),
        "not signed",
    );
    refused_once(
        &plugin(
            &strict,
            &["install".as_ref(), w("missing.tar.gz").as_os_str()],
        ),
        "missing.tar.gz",
    );
    refused_once(
        &plugin(&strict, &["uninstall".as_ref(), "nothing_here".as_ref()]),
        "no plugin `nothing_here` is installed",
    );

    // A second copy of a plugin the server already runs is skipped...
    let out = plugin(
        &lenient,
        &["install".as_ref(), "--approve".as_ref(), bundle.as_os_str()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let file = format!("plugins/{}", library_file_name("kanban_overview"));
    eventually("the second copy is skipped", || {
        rows_for(&file)
            .first()
            .is_some_and(|row| row["state"] == "skipped" && row["reason"] == "duplicate_name")
    });
    // ...and once uninstalled, it is no longer listed; the first copy runs on.
    let out = plugin(
        &lenient,
        &["uninstall".as_ref(), "kanban_overview".as_ref()],
    );
    assert!(out.status.success(), "{}", text(&out));
    eventually("the uninstalled copy is no longer listed", || {
        rows_for(&file).is_empty()
    });
    assert!(server.admin().loaded_plugin("kanban_overview").is_some());

    // A file that is no plugin at all, the same.
    let staged = w("libbroken.so");
    std::fs::write(&staged, b"not a shared library").unwrap();
    std::fs::rename(&staged, plugins_dir.join("libbroken.so")).unwrap();
    eventually("the broken file is skipped", || {
        rows_for("plugins/libbroken.so")
            .first()
            .is_some_and(|row| row["state"] == "skipped")
    });
    let out = plugin(&strict, &["uninstall".as_ref(), "broken".as_ref()]);
    assert!(out.status.success(), "{}", text(&out));
    eventually("the uninstalled file is no longer listed", || {
        rows_for("plugins/libbroken.so").is_empty()
    });
    let table = cli.run(&["plugin", "list", "--all"]).ok().stdout.clone();
    assert!(!table.contains("libbroken.so"), "{table}");
    assert!(!table.contains("skipped"), "{table}");
    assert!(table.contains("kanban_overview"), "{table}");
}

on_both_databases!(bundles_end_to_end, plugin_commands_end_to_end);
