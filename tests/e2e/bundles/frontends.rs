//! Plugins whose frontend half breaks the frontend rules: refused by every
//! command that builds, checks or installs them, and by the server.

use super::*;

on_both_databases!(broken_frontends_are_refused_everywhere);

/// The frontend half is checked before the browser: `vigilo-plugin check`
/// and `package`, `vigilo-server check-plugin` and `plugin install` refuse
/// element modules that break a rule, naming each module and rule.
fn broken_frontends_are_refused_everywhere(db: TestDb) {
    let work = TempDir::new().unwrap();
    let w = |name: &str| work.path().join(name);
    let packager = cargo_bin("vigilo-plugin");
    let bad = fixture_plugin("bad_tiles");
    // Each module of the corpus and the rule it breaks.
    let expected = [
        ("style.js", "inline_style"),
        ("handler.js", "inline_handler"),
        ("eval.js", "eval"),
        ("tag.js", "wrong_tag"),
    ];
    let names_each = |out: &Output| {
        let said = text(out);
        assert!(!out.status.success(), "{said}");
        for (module, rule) in expected {
            assert!(
                said.contains(&format!("{module}: {rule}: ")),
                "{module}: {said}"
            );
        }
        assert_eq!(said.matches(": wrong_tag: ").count(), 1, "{said}");
    };

    let checked = run(&packager, &["check", bad.to_str().unwrap()]);
    names_each(&checked);
    assert!(
        text(&checked).contains(
            "defines <fixture_bad_tiles-other>, but the plugin declares <fixture_bad_tiles-tag>"
        ),
        "{}",
        text(&checked)
    );
    let bundle = w("bad.tar.gz");
    let lib = format!("{}={}", host_target(), bad.display());
    let packaged = run(
        &packager,
        &["package", "--lib", &lib, "--out", bundle.to_str().unwrap()],
    );
    names_each(&packaged);
    refused(&packaged, "refusing to package");
    assert!(!bundle.exists(), "a refused plugin was packaged");
    names_each(
        &Command::new(cargo_bin("vigilo-server"))
            .arg("check-plugin")
            .arg(&bad)
            .output()
            .unwrap(),
    );
    // So does the harness's release check, in a vendor's own tests.
    let release_check = std::panic::catch_unwind(|| {
        vigilo_sdk::harness::assert_server_accepts(&bad, vigilo_sdk::harness::SERVER_VERSION)
    })
    .unwrap_err();
    let said = release_check
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    for (module, rule) in expected {
        assert!(
            said.contains(&format!("{module}: {rule}: ")),
            "{module}: {said}"
        );
    }
    // The shipped plugins pass.
    for plugin in ["kanban_overview", "datepicker_with_holidays"] {
        let out = run(
            &packager,
            &["check", reference_plugin(plugin).to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", text(&out));
    }

    // A bundle made by hand around the library, unsigned: `plugin install`
    // refuses it for the same reasons, and nothing reaches the directory.
    let plugins_dir = w("plugins");
    std::fs::create_dir(&plugins_dir).unwrap();
    std::fs::set_permissions(&plugins_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = TestServer::start(db);
    let config = w("operator.toml");
    operator_config(&config, &server, &plugins_dir, true);
    let unpacked = w("unpacked");
    let lib_dir = unpacked.join("lib").join(host_target());
    std::fs::create_dir_all(&lib_dir).unwrap();
    std::fs::create_dir_all(unpacked.join("frontend")).unwrap();
    let sha = |bytes: &[u8]| -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let lib_bytes = std::fs::read(&bad).unwrap();
    std::fs::write(lib_dir.join("libfixture_bad_tiles.so"), &lib_bytes).unwrap();
    let handle = vigilo_sdk::loader::PluginHandle::load(&bad).unwrap();
    let mut frontend = Vec::new();
    // Every module the library embeds: the four above, and those that pass
    // the rules and fail only in the browser (see `web_tiles`).
    let modules = expected.iter().map(|(module, _)| *module).chain([
        "throw.js",
        "missing.js",
        "reports.js",
        "later.js",
        "rejects.js",
    ]);
    for module in modules {
        let bytes = handle.asset(module).unwrap();
        std::fs::write(unpacked.join("frontend").join(module), &bytes).unwrap();
        frontend
            .push(serde_json::json!({"file": format!("frontend/{module}"), "sha256": sha(&bytes)}));
    }
    let manifest = serde_json::json!({
        "bundle_format": 1, "name": "fixture_bad_tiles", "kind": "dashboard_widget",
        "version": "0.1.0", "compatible_with": ">=0.1", "sdk_abi_version": 1,
        "sdk_version": "0.1.0",
        "libraries": {host_target(): {
            "file": format!("lib/{}/libfixture_bad_tiles.so", host_target()),
            "sha256": sha(&lib_bytes)}},
        "frontend": frontend,
    });
    std::fs::write(
        unpacked.join("vigilo-plugin.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    tar(&[
        "czf".as_ref(),
        bundle.as_os_str(),
        "-C".as_ref(),
        unpacked.as_os_str(),
        ".".as_ref(),
    ]);
    let out = server_command(&config)
        .args(["plugin".as_ref(), "install".as_ref(), bundle.as_os_str()])
        .output()
        .unwrap();
    names_each(&out);
    refused(
        &out,
        "fixture_bad_tiles 0.1.0's frontend half would fail in the browser",
    );
    assert_eq!(
        std::fs::read_dir(&plugins_dir).unwrap().count(),
        0,
        "nothing refused reaches the plugins directory"
    );
}
