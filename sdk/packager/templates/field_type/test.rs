//! The plugin called as the server calls it.

use vigilo_sdk::harness::PluginTestHarness;
use vigilo_sdk::{json, Value};

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process({{name}}::vigilo_plugin_module)
}

#[test]
fn codes_are_stored_in_upper_case() {
    assert_eq!(
        plugin().validate("{{name}}", json!(" abc-123 "), Value::Null),
        Ok(json!("ABC-123"))
    );
}

#[test]
fn other_values_are_refused_with_a_reason() {
    let plugin = plugin();
    let refused = plugin.validate("{{name}}", json!("abc 123"), Value::Null).unwrap_err();
    assert!(refused.contains("letters, digits and hyphens"), "{refused}");
    let refused = plugin.validate("{{name}}", json!(""), Value::Null).unwrap_err();
    assert!(refused.contains("1 to 32 characters"), "{refused}");
    let refused = plugin.validate("{{name}}", json!(42), Value::Null).unwrap_err();
    assert!(refused.contains("write it as text"), "{refused}");
}

#[test]
fn the_editor_is_served() {
    let module = plugin().asset("{{name}}.js").expect("the editor's module");
    let text = String::from_utf8(module).unwrap();
    assert!(text.contains("customElements.define(TAG"), "{text}");
}
