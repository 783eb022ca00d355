use serde_json::json;

use super::*;
use crate::abi::SDK_ABI_VERSION;

fn manifest() -> Manifest {
    Manifest {
        name: "my_plugin".into(),
        kind: PluginKind::FieldType,
        version: "0.1.0".into(),
        compatible_with: ">=0.1, <0.2".into(),
        sdk_abi_version: SDK_ABI_VERSION,
        sdk_version: "0.1.0".into(),
        panic_unwind: true,
        description: String::new(),
        frontend: vec![],
        frontend_api: crate::FRONTEND_API_VERSION,
        capabilities: None,
    }
}

fn refused(result: Result<(), Refusal>) -> (&'static str, String) {
    let refusal = result.unwrap_err();
    (refusal.reason.code(), refusal.message)
}

#[test]
fn a_good_manifest_passes() {
    assert_eq!(check_manifest(&manifest(), "0.1.7"), Ok(()));
}

#[test]
fn an_abort_build_is_refused_first() {
    let abort = Manifest {
        panic_unwind: false,
        name: "Bad Name".into(),
        ..manifest()
    };
    assert_eq!(
        refused(check_manifest(&abort, "0.1.0")),
        (
            "panic_abort_build",
            "built with panic = \"abort\": a panic in it would stop the whole server; \
             rebuild it with panic = \"unwind\" (Cargo's default)"
                .to_owned()
        )
    );
}

#[test]
fn compatible_with_is_checked_against_the_server_version() {
    assert_eq!(
        refused(check_manifest(&manifest(), "0.2.0")),
        (
            "incompatible_version",
            "requires vigilo >=0.1, <0.2, running 0.2.0".to_owned()
        )
    );
    let other_abi = Manifest {
        sdk_abi_version: SDK_ABI_VERSION + 1,
        ..manifest()
    };
    assert_eq!(
        refused(check_manifest(&other_abi, "0.1.0")).0,
        "sdk_version_mismatch"
    );
    let soon = Manifest {
        compatible_with: "soon".into(),
        ..manifest()
    };
    assert_eq!(
        refused(check_manifest(&soon, "0.1.0")).0,
        "invalid_manifest"
    );
}

#[test]
fn names_versions_and_asset_paths() {
    let bad_name = Manifest {
        name: "My-Plugin".into(),
        ..manifest()
    };
    assert_eq!(
        refused(check_manifest(&bad_name, "0.1.0")),
        (
            "invalid_manifest",
            "name `My-Plugin` is invalid: use 1-64 of a-z, 0-9 and _, starting with a letter"
                .to_owned()
        )
    );
    let bad_version = Manifest {
        version: "1".into(),
        ..manifest()
    };
    assert_eq!(
        refused(check_manifest(&bad_version, "0.1.0")).0,
        "invalid_manifest"
    );
    let escaping = Manifest {
        frontend: vec![crate::wire::FrontendAsset {
            path: "../etc/passwd".into(),
            content_type: "text/plain".into(),
        }],
        ..manifest()
    };
    assert_eq!(
        refused(check_manifest(&escaping, "0.1.0")),
        (
            "invalid_manifest",
            "frontend asset path `../etc/passwd` must be relative, without `..`".to_owned()
        )
    );
    assert!(safe_relative_path("dir/widget.js"));
    for bad in ["", "/abs.js", "a//b", "./a", "a\\b", "a/../b"] {
        assert!(!safe_relative_path(bad), "{bad}");
    }
}

#[test]
fn registrations_of_another_kind_bad_names_and_built_in_names() {
    let field = |name: &str| Registration::FieldType {
        name: name.into(),
        label: "L".into(),
        description: String::new(),
        element: None,
    };
    assert_eq!(
        check_registrations(&manifest(), &[field("percent")]),
        Ok(())
    );
    let widget = Registration::DashboardWidget {
        name: "tile".into(),
        label: "Tile".into(),
        description: String::new(),
        config_schema: json!({}),
        element: None,
    };
    assert_eq!(
        refused(check_registrations(
            &manifest(),
            &[field("percent"), widget]
        )),
        (
            "register_failed",
            "declares kind field_type but registered a dashboard_widget (`tile`); \
             a plugin registers only its own kind"
                .to_owned()
        )
    );
    assert_eq!(
        refused(check_registrations(&manifest(), &[field("Percent")])).0,
        "register_failed"
    );
    assert_eq!(
        refused(check_registrations(&manifest(), &[field("date")])),
        (
            "duplicate_name",
            "field type `date` is a built-in type".to_owned()
        )
    );
}

#[test]
fn files_that_are_not_plugins() {
    let dir = std::env::temp_dir().join(format!("vigilo-sdk-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("libmissing.so");
    let refusal = check_library(&missing, "0.1.0").unwrap_err();
    assert_eq!(refusal.reason, RefusalReason::NotFound);
    assert_eq!(
        refusal.message,
        format!("{} does not exist", missing.display())
    );

    let empty = dir.join("libempty.so");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        check_library(&empty, "0.1.0").unwrap_err().message,
        "the file is empty"
    );

    let text = dir.join("libtext.so");
    std::fs::write(&text, b"hello").unwrap();
    assert_eq!(
        check_library(&text, "0.1.0").unwrap_err().reason,
        RefusalReason::NotAPlugin
    );

    // A library for another CPU is named as such before it is opened.
    let other = if std::env::consts::ARCH == "aarch64" {
        0x3eu16
    } else {
        0xb7
    };
    let mut header = vec![0u8; 64];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 2;
    header[5] = 1;
    header[18..20].copy_from_slice(&other.to_le_bytes());
    let foreign = dir.join("libforeign.so");
    std::fs::write(&foreign, &header).unwrap();
    let refusal = check_library(&foreign, "0.1.0").unwrap_err();
    if cfg!(target_os = "linux") {
        assert_eq!(refusal.reason, RefusalReason::WrongArchitecture);
        assert!(
            refusal.message.starts_with("built for "),
            "{}",
            refusal.message
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
