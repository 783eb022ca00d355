//! A plugin whose every part panics: nothing may unwind into the host.

use vigilo_sdk::harness::PluginTestHarness;
use vigilo_sdk::loader::{CallError, NoHost, PluginErrorKind};
use vigilo_sdk::{json, Plugin, PluginKind, PluginRegistry};

struct Broken;

impl Plugin for Broken {
    fn name(&self) -> &str {
        panic!("no name today")
    }
    fn kind(&self) -> PluginKind {
        PluginKind::FieldType
    }
    fn version(&self) -> &str {
        "0.1.0"
    }
    fn compatible_with(&self) -> &str {
        "*"
    }
    fn register(&self, _registry: &mut PluginRegistry) {
        panic!("register failed");
    }
}

vigilo_sdk::export_plugin!(Broken);

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process(vigilo_plugin_module)
}

#[test]
fn a_panicking_manifest_comes_back_empty() {
    assert_eq!((vigilo_plugin_module().manifest())().as_str(), "");
    let error = plugin().handle().manifest().unwrap_err();
    assert!(
        matches!(&error, CallError::InvalidResponse { reason, .. } if reason.contains("panicked")),
        "{error}"
    );
}

#[test]
fn a_panicking_register_is_a_panicked_error_every_time() {
    for _ in 0..2 {
        let error = plugin().handle().registrations().unwrap_err();
        assert_eq!(error.kind(), Some(PluginErrorKind::Panicked), "{error}");
        // The message keeps the panic's place: this file, line and column.
        let message = error.message();
        let place = message
            .strip_prefix("register failed (at sdk/tests/broken_plugin.rs:")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no place in {message:?}"));
        assert_eq!(
            place,
            format!(
                "{}:9",
                include_str!("broken_plugin.rs")
                    .lines()
                    .position(|l| l.trim() == "panic!(\"register failed\");")
                    .unwrap()
                    + 1
            )
        );
    }
    let error = plugin()
        .call(
            "field_type.validate",
            &json!({"name": "x", "value": 1}),
            &NoHost,
        )
        .unwrap_err();
    assert_eq!(error.kind(), Some(PluginErrorKind::Panicked));
}

#[test]
fn asset_lookups_never_unwind() {
    assert_eq!(plugin().asset("anything.js"), None);
}
