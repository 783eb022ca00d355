//! The input rules many fields share, as OpenAPI schemas built from the
//! domain's own rules and constants, and the pass over the finished
//! document that states the rules every input obeys.
//!
//! A wire type names one of these with `#[schema(value_type = Line100)]`;
//! the document then shows `$ref: Line100` with the rule written once.
//! [`state_input_rules`] adds what holds for every input and cannot be
//! said per field: no text anywhere holds a NUL character (see
//! [`crate::input`]).

use std::borrow::Cow;

use serde_json::{json, Map, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::authz::{Permission, Role};
use super::validate;
use super::workflow::{Kind, Status};

/// What every text in a request matches: no NUL character.
pub const NO_NUL: &str = "^[^\\u0000]*$";

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Declares component schema types: each is named after itself, and its
/// schema is the JSON given, which [`state_input_rules`] puts in the
/// document (utoipa's own schema types cannot hold every keyword used
/// here, such as `not`).
macro_rules! components {
    ($($(#[$doc:meta])* $name:ident => $schema:expr;)*) => {
        $(
            $(#[$doc])*
            pub enum $name {}

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    // Replaced by the JSON below once the document is built.
                    utoipa::openapi::ObjectBuilder::new().into()
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        )*

        /// Every component declared here, with its schema, and
        /// `JsonValue` (see [`json_value`]), which only the document refers to.
        fn components() -> Vec<(&'static str, Value)> {
            vec![$((stringify!($name), $schema),)* ("JsonValue", json_value())]
        }
    };
}

fn line(max: usize) -> Value {
    json!({
        "type": "string",
        "description": format!(
            "One line of text: 1 to {max} characters as sent, not only white space, and no \
             control characters once the white space around it is trimmed (which it is)."
        ),
        "minLength": 1,
        "maxLength": max,
        "pattern": validate::text_pattern(),
    })
}

components! {
    /// A line of text of at most 32 characters.
    Line32 => line(32);
    /// A line of text of at most 100 characters.
    Line100 => line(100);
    /// A line of text of at most 200 characters.
    Line200 => line(200);
    /// A line of text of at most 2000 characters.
    Line2000 => line(2000);
    /// A comment's text.
    CommentText => json!({
        "type": "string",
        "description": "Plain text of 1 to 10,000 characters as sent, not only white space, \
                        with line breaks and tabs but no other control characters once the \
                        white space around it is trimmed (which it is).",
        "minLength": 1,
        "maxLength": 10000,
        "pattern": validate::lines_pattern(),
    });
    /// An email address as the server takes it.
    Email => {
        let [shape, length, local] = validate::email_patterns();
        json!({
            "type": "string",
            "description": "An email address (compared in lower case; white space around it is \
                            trimmed): a local part of 1 to 64 letters, digits and \
                            ``!#$%&'*+/=?^_`{|}~-`` in dot-separated runs, `@`, and a domain of \
                            two or more labels of letters, digits and inner dashes; 254 \
                            characters at most.",
            "pattern": shape,
            "allOf": [{"pattern": length}, {"pattern": local}],
        })
    };
    /// A kind of work item.
    ItemKind => json!({
        "type": "string",
        "description": "A kind of work item.",
        "enum": Kind::ALL,
    });
    /// A status of some kind of work item.
    ItemStatus => json!({
        "type": "string",
        "description": "A status in the workflow of a change, an incident or a task.",
        "enum": Status::ALL,
    });
    /// A permission's wire name.
    PermissionName => json!({
        "type": "string",
        "description": "A permission (see `GET /api/v1/roles`).",
        "enum": Permission::ALL.map(Permission::name),
    });
    /// A custom role's name: an identifier that is not a built-in role's.
    CustomRoleName => json!({
        "type": "string",
        "description": "A custom role's name: 1 to 64 letters, digits, `_`, `-` and `.`, other \
                        than a built-in role's name.",
        "pattern": "^[A-Za-z0-9_.-]{1,64}$",
        "not": {"enum": Role::ALL.map(Role::name)},
    });
}

/// `JsonValue`: any JSON value without a NUL character in a text or a key
/// (what a free-form value or object in a request holds).
fn json_value() -> Value {
    json!({
        "description": "Any JSON value; no text or key in it holds a NUL character.",
        "oneOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number"},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": reference("JsonValue")},
            {
                "type": "object",
                "propertyNames": {"pattern": NO_NUL},
                "additionalProperties": reference("JsonValue"),
            },
        ],
    })
}

/// States in the finished document the rules every input obeys: the
/// components above, no NUL character in any text of a JSON body or a
/// parameter (a free-form object or value holds `JsonValue`s), and a
/// playbook step's settings by its type.
pub fn state_input_rules(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, schema) in components() {
        schemas.insert(name.to_owned(), schema);
    }
    // Rules that tie one field to another, or that utoipa's attributes
    // cannot hold.
    let mut edit = |name: &str, rule: &dyn Fn(&mut Value)| {
        if let Some(schema) = schemas.get_mut(name) {
            rule(schema);
        }
    };
    edit("Step", &settings_by_step_type);
    edit("CreateInvite", &|s| role_or_custom_role(s, false));
    edit("SetRole", &|s| role_or_custom_role(s, true));
    edit("FieldDefinition", &options_only_for_select);
    edit("Reorder", &|s| {
        s["properties"]["ids"]["uniqueItems"] = true.into()
    });
    let mut reached = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for op in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in op.values_mut() {
                for p in op
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(s) = p.get_mut("schema") {
                        no_nul(s, &mut reached);
                    }
                }
                if let Some(s) = op.pointer_mut("/requestBody/content/application~1json/schema") {
                    no_nul(s, &mut reached);
                }
            }
        }
    }
    let mut done = std::collections::BTreeSet::new();
    while let Some(name) = reached.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        if let Some(s) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            no_nul(s, &mut reached);
        }
    }
}

/// Says in `schema` (part of a request) that no text in it holds a NUL
/// character; collects the components it refers to in `reached`.
fn no_nul(schema: &mut Value, reached: &mut Vec<String>) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(name) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        reached.push(name.to_owned());
        return;
    }
    for key in ["oneOf", "anyOf", "allOf", "prefixItems"] {
        for s in obj
            .get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            no_nul(s, reached);
        }
    }
    for s in obj
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|p| p.values_mut())
    {
        no_nul(s, reached);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(s) = obj.get_mut(key) {
            no_nul(s, reached);
        }
    }
    let types: Vec<String> = match obj.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let is = |t: &str| types.iter().any(|x| x == t);
    let constrained = ["enum", "const", "pattern", "format"]
        .iter()
        .any(|k| obj.contains_key(*k));
    let composed = ["oneOf", "anyOf", "allOf", "not"]
        .iter()
        .any(|k| obj.contains_key(*k));
    if is("string") && !constrained {
        obj.insert("pattern".into(), NO_NUL.into());
    }
    if is("object") && !obj.contains_key("properties") && !obj.contains_key("additionalProperties")
    {
        obj.insert("propertyNames".into(), json!({"pattern": NO_NUL}));
        obj.insert("additionalProperties".into(), reference("JsonValue"));
    }
    if types.is_empty() && !constrained && !composed {
        // Any JSON value.
        obj.insert("$ref".into(), reference("JsonValue")["$ref"].clone());
    }
}

/// Rewrites the `Step` schema as one schema per step type: the settings
/// it requires (not null), those it may take, and null for the others,
/// with each text setting's placeholder syntax.
fn settings_by_step_type(step: &mut Value) {
    use super::playbooks::engine::{template_pattern, StepType, ALL_SETTINGS, TEXT_SETTINGS};
    let properties = step["properties"].clone();
    let description = step["description"].as_str().unwrap_or_default().to_owned();
    let branches: Vec<Value> = StepType::ALL
        .iter()
        .map(|t| {
            let (required, optional) = t.settings();
            let mut props = Map::new();
            props.insert("type".into(), json!({"const": t.name()}));
            for common in ["name", "continue_on_error"] {
                props.insert(common.into(), properties[common].clone());
            }
            for key in ALL_SETTINGS {
                let mut schema = properties[key].clone();
                if TEXT_SETTINGS.contains(&key) {
                    schema["pattern"] = template_pattern().into();
                }
                if key == "url" {
                    schema["allOf"] = json!([{"pattern": "^https?://|\\{\\{"}]);
                }
                let schema = if required.contains(&key) {
                    not_null(schema)
                } else if optional.contains(&key) {
                    schema
                } else {
                    json!({"type": "null"})
                };
                props.insert(key.into(), schema);
            }
            let mut required_keys = vec!["type"];
            required_keys.extend(required.iter().copied());
            json!({
                "type": "object",
                "title": t.name(),
                "required": required_keys,
                "properties": props,
                "additionalProperties": false,
            })
        })
        .collect();
    *step = json!({
        "description": format!(
            "{description} Which settings a step takes depends on its `type`; the others are \
             left out (or null)."
        ),
        "oneOf": branches,
    });
}

/// Says that `schema` takes a built-in `role` or a `custom_role`, not both
/// (where `empty_is_none`, an empty text counts as not given).
fn role_or_custom_role(schema: &mut Value, empty_is_none: bool) {
    let none = if empty_is_none {
        json!({"enum": [null, ""]})
    } else {
        json!({"type": "null"})
    };
    schema["oneOf"] = json!([
        {"required": ["role"], "properties": {"role": {"type": "string"}, "custom_role": none}},
        {
            "required": ["custom_role"],
            "properties": {"custom_role": {"type": "string", "minLength": 1}, "role": none},
        },
    ]);
}

/// A field definition's `type` is not only white space; a `select` field
/// (its type trimmed) has options, each not only white space, and no other
/// field has any.
fn options_only_for_select(schema: &mut Value) {
    use validate::WHITE_SPACE;
    schema["properties"]["type"]["pattern"] =
        format!("^[^\\u0000]*[^{WHITE_SPACE}\\u0000][^\\u0000]*$").into();
    schema["if"] = json!({
        "required": ["type"],
        "properties": {"type": {"pattern": format!("^[{WHITE_SPACE}]*select[{WHITE_SPACE}]*$")}},
    });
    schema["then"] = json!({
        "required": ["options"],
        "properties": {"options": {"minItems": 1, "items": {"pattern": format!("[^{WHITE_SPACE}]")}}},
    });
    schema["else"] = json!({"properties": {"options": {"maxItems": 0}}});
}

/// `schema` without null among the values it allows.
fn not_null(mut schema: Value) -> Value {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            schema["type"] = types[0].clone();
        }
        return schema;
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let mut rest: Vec<Value> = branches
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
            .cloned()
            .collect();
        if rest.len() == 1 {
            return rest.remove(0);
        }
        schema["oneOf"] = Value::Array(rest);
    }
    schema
}
