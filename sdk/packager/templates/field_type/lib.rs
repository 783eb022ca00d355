//! # {{name}}: a Vigilo `field_type` plugin
//!
//! Registers the field type `{{name}}` ("{{label}}"): a reference code of 1
//! to 32 letters, digits and hyphens, such as a ticket number in another
//! system. The server calls [`FieldType::validate`] whenever a value of
//! this type is written and stores what it returns (here, the code in upper
//! case). The frontend half, `frontend/{{name}}.js`, defines the field's
//! editor `<{{tag}}>`.

use vigilo_sdk::{
    Asset, Element, FieldContext, FieldType, Plugin, PluginKind, PluginRegistry, Value,
};

/// The plugin: registers [`Code`].
pub struct ThisPlugin;

impl Plugin for ThisPlugin {
    fn name(&self) -> &str {
        "{{name}}"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::FieldType
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn compatible_with(&self) -> &str {
        "{{compatible_with}}"
    }

    fn description(&self) -> &str {
        env!("CARGO_PKG_DESCRIPTION")
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_field_type(Code);
    }

    fn frontend(&self) -> Vec<Asset> {
        vec![Asset {
            path: "{{name}}.js",
            content_type: "text/javascript",
            bytes: include_bytes!("../frontend/{{name}}.js"),
        }]
    }
}

/// The `{{name}}` field type.
pub struct Code;

/// The longest code accepted.
pub const MAX_LEN: usize = 32;

impl FieldType for Code {
    fn name(&self) -> &str {
        "{{name}}"
    }

    fn label(&self) -> &str {
        "{{label}}"
    }

    fn description(&self) -> &str {
        "Letters, digits and hyphens, up to 32 characters, such as ABC-123."
    }

    fn validate(&self, value: &Value, _ctx: &FieldContext) -> Result<Value, String> {
        let Some(text) = value.as_str() else {
            return Err(format!("{value} is not a code: write it as text, such as ABC-123"));
        };
        let code = text.trim();
        if code.is_empty() || code.len() > MAX_LEN {
            return Err(format!("a code has 1 to {MAX_LEN} characters; {code:?} has {}", code.len()));
        }
        if let Some(bad) = code.chars().find(|c| !c.is_ascii_alphanumeric() && *c != '-') {
            return Err(format!("{code:?} holds {bad:?}: use letters, digits and hyphens only"));
        }
        Ok(Value::String(code.to_ascii_uppercase()))
    }

    fn element(&self) -> Option<Element> {
        Some(Element::new("{{tag}}", "{{name}}.js"))
    }
}

vigilo_sdk::export_plugin!(ThisPlugin);
