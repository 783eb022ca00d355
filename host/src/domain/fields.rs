//! Custom fields: a workspace's field definitions, and the validation of
//! the values work items carry.
//!
//! A value is validated whenever it is written: the built-in types
//! (`text`, `number`, `boolean`, `date`, `select`) here, plugin field types
//! by their plugin, with the workspace's slug and settings as context. An
//! invalid value is refused naming the field (`fields.<key>`) and the
//! reason, and nothing is stored.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use vigilo_sdk::loader::Registration;
use vigilo_sdk::wire::{ElementSpec, ValidateRequest};
use vigilo_sdk::{FieldContext, PluginKind};

use super::workflow::{check_kind, Kind};
use super::{record, validate, DomainError, DomainResult, Reach};
use crate::domain::authz::{Access, Permission};
use crate::domain::Context;
use crate::model::field_types::{Builtin, FieldType};
use crate::plugins::{PluginCallError, PluginEntry};
use crate::store;
use crate::store::custom_fields::CustomField;
use crate::store::workspaces::Workspace;

/// The most custom fields a workspace may have. Every create and update of
/// a work item checks each of its workspace's fields, and every form shows
/// them, so the count is kept where both stay fast.
pub const MAX_FIELDS: usize = 100;

/// The refusal of a field beyond [`MAX_FIELDS`].
pub fn too_many_fields(count: usize) -> DomainError {
    DomainError::Invalid {
        field: None,
        message: format!(
            "a workspace may have at most {MAX_FIELDS} custom fields, and this one would have {count}; remove a field you no longer need first"
        ),
    }
}

/// A custom field definition (also the shape inside a workspace export).
#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct FieldDefinition {
    /// Key in work items' `fields`: 1–64 of letters, digits, `_`, `-`, `.`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub key: String,
    /// Label shown in forms (1–100 characters).
    #[schema(value_type = super::schemas::Line100)]
    pub label: String,
    /// Which kinds carry it: one or more of `change`, `incident`, `task`.
    #[schema(value_type = Vec<super::schemas::ItemKind>, min_items = 1)]
    pub applies_to: Vec<String>,
    /// `text`, `number`, `boolean`, `date`, `select`, or a plugin field type
    /// (see `GET /api/v1/field-types`).
    #[serde(rename = "type")]
    pub field_type: String,
    /// Whether every new item must have a value.
    #[serde(default)]
    pub required: bool,
    /// For `select`: the allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl FieldDefinition {
    /// Checks the definition's shape (not whether a plugin type is loaded).
    pub fn parse(&self) -> DomainResult<CustomField> {
        let key = validate::identifier("key", &self.key)?;
        let label = validate::text("label", &self.label, 100)?;
        if self.applies_to.is_empty() {
            return Err(DomainError::invalid(
                "applies_to",
                "`applies_to` must name at least one of change, incident, task",
            ));
        }
        let mut applies_to = Vec::new();
        for kind in &self.applies_to {
            let kind = check_kind("applies_to", kind)?;
            if !applies_to.contains(&kind) {
                applies_to.push(kind);
            }
        }
        let field_type = self.field_type.trim();
        if field_type.is_empty() {
            return Err(DomainError::invalid("type", "`type` must not be empty"));
        }
        let field_type = FieldType::named(field_type);
        let options: Vec<String> = self.options.iter().map(|o| o.trim().to_owned()).collect();
        if field_type.is(Builtin::Select) {
            if options.is_empty() || options.iter().any(String::is_empty) {
                return Err(DomainError::invalid(
                    "options",
                    "a select field needs a non-empty list of non-empty options",
                ));
            }
        } else if !options.is_empty() {
            return Err(DomainError::invalid(
                "options",
                "only select fields have options",
            ));
        }
        Ok(CustomField {
            key,
            label,
            applies_to,
            field_type,
            required: self.required,
            options,
        })
    }

    /// The definition of a stored field.
    pub fn from_stored(field: CustomField) -> Self {
        FieldDefinition {
            key: field.key,
            label: field.label,
            applies_to: field.applies_to.iter().map(|k| k.to_string()).collect(),
            field_type: field.field_type.to_string(),
            required: field.required,
            options: field.options,
        }
    }
}

/// A type a custom field can have.
#[derive(Debug, Clone)]
pub struct FieldTypeInfo {
    /// The type's name, used in field definitions.
    pub name: String,
    /// Label for pickers.
    pub label: String,
    /// Help text.
    pub description: String,
    /// The editor element of a plugin type, if the plugin has one.
    pub element: Option<ElementSpec>,
    /// The plugin providing it (None for a built-in type).
    pub plugin: Option<std::sync::Arc<PluginEntry>>,
}

fn builtin_field_type(builtin: Builtin) -> (&'static str, &'static str) {
    match builtin {
        Builtin::Text => ("Text", "Any text up to 10,000 characters."),
        Builtin::Number => ("Number", "A number."),
        Builtin::Boolean => ("Yes/no", "true or false."),
        Builtin::Date => ("Date", "A calendar date, YYYY-MM-DD."),
        Builtin::Select => ("Select", "One of the field's options."),
    }
}

/// Every field type: the built-in ones, then those of loaded plugins.
pub fn field_types(state: &Context) -> Vec<FieldTypeInfo> {
    let mut types: Vec<FieldTypeInfo> = Builtin::ALL
        .iter()
        .map(|builtin| {
            let (label, description) = builtin_field_type(*builtin);
            FieldTypeInfo {
                name: builtin.to_string(),
                label: label.to_owned(),
                description: description.to_owned(),
                element: None,
                plugin: None,
            }
        })
        .collect();
    for (entry, registration) in state.plugins.registrations(PluginKind::FieldType) {
        if let Registration::FieldType {
            name,
            label,
            description,
            element,
        } = registration
        {
            types.push(FieldTypeInfo {
                name,
                label,
                description,
                element,
                plugin: Some(entry),
            });
        }
    }
    types
}

/// The workspace's field definitions (needs `workspace.read`).
pub async fn list(state: &Context, access: &Access) -> DomainResult<Vec<CustomField>> {
    access.require(Permission::WorkspaceRead)?;
    Ok(state.store.custom_fields(access.workspace.id).await?)
}

/// Defines a custom field (needs `workspace.settings`). Its type must be
/// built in or provided by a loaded plugin, and the workspace may not have
/// [`MAX_FIELDS`] already. Audited as `field.create`.
pub async fn create(
    state: &Context,
    access: &Access,
    definition: &FieldDefinition,
) -> DomainResult<CustomField> {
    access.require(Permission::WorkspaceSettings)?;
    let field = definition.parse()?;
    let unknown = match &field.field_type {
        FieldType::Builtin(_) => false,
        FieldType::Plugin(name) => state
            .plugins
            .registration(PluginKind::FieldType, name)
            .is_none(),
    };
    if unknown {
        let available: Vec<String> = field_types(state).into_iter().map(|t| t.name).collect();
        return Err(DomainError::invalid(
            "type",
            format!(
                "unknown field type `{}`; available: {}",
                field.field_type,
                available.join(", ")
            ),
        ));
    }
    let mut tx = state.store.begin_write().await?;
    store::workspaces::lock_workspace(&mut tx, access.workspace.id).await?;
    let count = store::custom_fields::count_custom_fields_in(&mut tx, access.workspace.id).await?;
    if count >= MAX_FIELDS as i64 {
        return Err(too_many_fields(count as usize + 1));
    }
    store::custom_fields::insert_custom_field(&mut tx, access.workspace.id, &field).await?;
    record(
        &mut tx,
        access,
        "field.create",
        field.key.clone(),
        json!({"label": field.label, "type": field.field_type, "applies_to": field.applies_to,
               "required": field.required, "options": field.options}),
    )
    .await?;
    tx.commit().await?;
    Ok(field)
}

/// Deletes a field definition (needs `workspace.settings`). Values already
/// stored on items are kept but no longer validated. Audited as
/// `field.delete`.
pub async fn delete(state: &Context, access: &Access, key: &str) -> DomainResult<CustomField> {
    access.require(Permission::WorkspaceSettings)?;
    let mut tx = state.store.begin_write().await?;
    let field =
        store::custom_fields::delete_custom_field(&mut tx, access.workspace.id, key).await?;
    record(
        &mut tx,
        access,
        "field.delete",
        field.key.clone(),
        json!({"type": field.field_type}),
    )
    .await?;
    tx.commit().await?;
    Ok(field)
}

/// Validates `changes` (key → value, `null` removes) against the
/// definitions and returns the resulting values. On create every required
/// field must be present; on update a required value cannot be removed.
pub async fn apply_values(
    state: &dyn Reach,
    workspace: &Workspace,
    kind: Kind,
    definitions: &[CustomField],
    current: &Map<String, Value>,
    changes: Map<String, Value>,
    creating: bool,
) -> DomainResult<Map<String, Value>> {
    let mut result = current.clone();
    for (key, value) in changes {
        let field_name = format!("fields.{key}");
        let definition = definitions
            .iter()
            .find(|d| d.key == key && d.applies_to.contains(&kind))
            .ok_or_else(|| {
                DomainError::invalid(
                    &field_name,
                    format!("this workspace has no custom field `{key}` for a {kind}"),
                )
            })?;
        if value.is_null() {
            if definition.required {
                return Err(DomainError::invalid(
                    &field_name,
                    format!("field `{key}` is required and cannot be removed"),
                ));
            }
            result.remove(&key);
            continue;
        }
        let normalised = validate_value(state, workspace, definition, value).await?;
        result.insert(key, normalised);
    }
    if creating {
        if let Some(missing) = definitions
            .iter()
            .find(|d| d.required && d.applies_to.contains(&kind) && !result.contains_key(&d.key))
        {
            return Err(DomainError::invalid(
                format!("fields.{}", missing.key),
                format!("field `{}` ({}) is required", missing.key, missing.label),
            ));
        }
    }
    Ok(result)
}

/// Validates one value of `definition`; returns the value to store.
async fn validate_value(
    state: &dyn Reach,
    workspace: &Workspace,
    definition: &CustomField,
    value: Value,
) -> DomainResult<Value> {
    let key = &definition.key;
    let field_name = format!("fields.{key}");
    let invalid =
        |reason: String| DomainError::invalid(&field_name, format!("field `{key}`: {reason}"));
    match &definition.field_type {
        FieldType::Builtin(Builtin::Text) => match &value {
            Value::String(s) if s.chars().count() <= 10_000 => Ok(value),
            Value::String(_) => Err(invalid("text may be at most 10,000 characters".into())),
            _ => Err(invalid(format!("expected text, got {value}"))),
        },
        FieldType::Builtin(Builtin::Number) => match value {
            Value::Number(_) => Ok(value),
            _ => Err(invalid(format!("expected a number, got {value}"))),
        },
        FieldType::Builtin(Builtin::Boolean) => match value {
            Value::Bool(_) => Ok(value),
            _ => Err(invalid(format!("expected true or false, got {value}"))),
        },
        FieldType::Builtin(Builtin::Date) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            match value.as_str().map(|s| time::Date::parse(s.trim(), format)) {
                Some(Ok(date)) => Ok(Value::String(date.format(format).unwrap_or_default())),
                _ => Err(invalid(format!(
                    "expected a date like 2026-12-24, got {value}"
                ))),
            }
        }
        FieldType::Builtin(Builtin::Select) => match value.as_str() {
            Some(choice) if definition.options.iter().any(|o| o == choice) => Ok(value),
            _ => Err(invalid(format!(
                "{value} is not one of the options: {}",
                definition.options.join(", ")
            ))),
        },
        FieldType::Plugin(plugin_type) => {
            let (entry, _) = state
                .plugins()
                .registration(PluginKind::FieldType, plugin_type)
                .ok_or_else(|| {
                    DomainError::plugin_unavailable(format!(
                        "field `{key}` has type `{plugin_type}`, but no loaded plugin provides it; ask an operator to install or enable it"
                    ))
                    .at_field(&field_name)
                })?;
            let settings = match &workspace.settings {
                Value::Object(map) => map.clone(),
                _ => Map::new(),
            };
            let request = ValidateRequest {
                name: plugin_type.to_owned(),
                value,
                context: FieldContext {
                    workspace: workspace.slug.clone(),
                    settings,
                },
            };
            match state
                .plugins()
                .call(&entry, move |handle| handle.validate_field(&request))
                .await
            {
                Ok(value) => Ok(value),
                Err(PluginCallError::Rejected { message, .. }) => Err(invalid(message)),
                Err(other) => Err(DomainError::from(other).at_field(&field_name)),
            }
        }
    }
}

/// The server's state reaches what the rules need.
impl Reach for Context {
    fn store(&self) -> &crate::store::Store {
        &self.store
    }

    fn plugins(&self) -> &std::sync::Arc<crate::plugins::Plugins> {
        &self.plugins
    }
}

/// `text` as a value of `field`, typed as the field stores it: a number
/// for a number field, true or false for a yes/no field (`yes`, `true`,
/// `1`; `no`, `false`, `0`), text otherwise. None when the text cannot be
/// such a value.
pub fn value_from_text(field: &CustomField, text: &str) -> Option<Value> {
    let text = text.trim();
    match field.field_type {
        FieldType::Builtin(Builtin::Number) => {
            if let Ok(i) = text.parse::<i64>() {
                Some(Value::from(i))
            } else {
                text.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
            }
        }
        FieldType::Builtin(Builtin::Boolean) => match text.to_lowercase().as_str() {
            "yes" | "true" | "1" => Some(Value::Bool(true)),
            "no" | "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => (!text.is_empty()).then(|| Value::from(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::value_from_text;
    use crate::store::custom_fields::CustomField;
    use serde_json::json;

    fn field(field_type: &str) -> CustomField {
        CustomField {
            key: "k".into(),
            label: "K".into(),
            applies_to: vec![super::Kind::Task],
            field_type: crate::model::field_types::FieldType::named(field_type),
            required: false,
            options: vec![],
        }
    }

    #[test]
    fn values_are_typed_as_their_field_stores_them() {
        let typed = |t: &str, text: &str| value_from_text(&field(t), text);
        assert_eq!(typed("number", " 5 "), Some(json!(5)));
        assert_eq!(typed("number", "2.5"), Some(json!(2.5)));
        assert_eq!(typed("number", "five"), None);
        assert_eq!(typed("number", "inf"), None);
        assert_eq!(typed("boolean", "Yes"), Some(json!(true)));
        assert_eq!(typed("boolean", "maybe"), None);
        assert_eq!(typed("select", "sev1"), Some(json!("sev1")));
        assert_eq!(typed("text", "  "), None);
    }
}
