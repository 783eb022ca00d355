//! The create and edit forms of a work item, with the workspace's custom
//! fields: built-in types as HTML inputs, plugin types through their
//! plugin's editor element; a refusal re-renders the form with what was
//! typed and the reason next to the field.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::{item_of_kind, kind_of, Kind};
use crate::domain::authz::{Access, Permission};
use crate::domain::sessions::Current;
use crate::domain::work_items::{self, ItemChanges, Kind as WorkKind, NewItem};
use crate::domain::{fields, DomainError};
use crate::model::field_types::{Builtin, FieldType};
use crate::plugins::PluginEntry;
use crate::state::AppState;
use crate::store::custom_fields::CustomField;
use crate::web::extract::SignedForm;
use crate::web::session::SignedIn;
use crate::web::{json_for_script, plugin_assets, render_status, see_other, Frame, PageError};

/// How a custom field is edited.
pub enum Input {
    /// `<input type=text>` (also for plugin types without an editor).
    Text,
    /// `<input type=number>`.
    Number,
    /// `<input type=checkbox>`.
    Checkbox,
    /// `<input type=date>`.
    Date,
    /// `<select>` of the options.
    Select(Vec<String>),
    /// The plugin's editor element, with a text box until it loads.
    Plugin {
        /// Its tag.
        tag: String,
        /// The module defining it.
        module: String,
        /// A stylesheet to link first.
        stylesheet: Option<String>,
        /// The workspace's settings, as JSON for the element.
        settings: String,
        /// The plugin's name.
        plugin: String,
    },
    /// A plugin type no loaded plugin provides: a text box, and a warning.
    Unavailable(String),
}

/// One custom field of a form.
pub struct FieldInput {
    key: String,
    label: String,
    required: bool,
    input: Input,
    value: String,
    error: Option<String>,
    hint: String,
}

impl FieldInput {
    fn name(&self) -> String {
        format!("fields.{}", self.key)
    }

    fn id(&self) -> String {
        format!("field-{}", self.key)
    }

    fn checked(&self) -> bool {
        self.value == "true"
    }
}

fn field_inputs(
    state: &AppState,
    access: &Access,
    definitions: &[CustomField],
    kind: WorkKind,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Vec<FieldInput> {
    let types = fields::field_types(state);
    let settings = json_for_script(&access.workspace.settings);
    definitions
        .iter()
        .filter(|d| d.applies_to.contains(&kind))
        .map(|d| {
            let known = types.iter().find(|t| t.name == d.field_type.name());
            let (input, hint) = match (&d.field_type, known) {
                (FieldType::Builtin(builtin), _) => (
                    match builtin {
                        Builtin::Text => Input::Text,
                        Builtin::Number => Input::Number,
                        Builtin::Boolean => Input::Checkbox,
                        Builtin::Date => Input::Date,
                        Builtin::Select => Input::Select(d.options.clone()),
                    },
                    String::new(),
                ),
                (_, Some(t)) => match (&t.element, &t.plugin) {
                    (Some(element), Some(entry)) => {
                        (editor(entry, element, &settings), t.description.clone())
                    }
                    _ => (Input::Text, t.description.clone()),
                },
                (FieldType::Plugin(other), None) => (
                    Input::Unavailable(format!(
                        "The field type `{other}` is not available: its plugin is not loaded. \
                         Values are checked when it is back."
                    )),
                    String::new(),
                ),
            };
            FieldInput {
                value: values.get(&d.key).cloned().unwrap_or_default(),
                error: errors.get(&format!("fields.{}", d.key)).cloned(),
                key: d.key.clone(),
                label: d.label.clone(),
                required: d.required,
                input,
                hint,
            }
        })
        .collect()
}

fn editor(
    entry: &Arc<PluginEntry>,
    element: &vigilo_sdk::wire::ElementSpec,
    settings: &str,
) -> Input {
    match plugin_assets::element(entry, element) {
        Err(api) => Input::Unavailable(format!(
            "{}'s editor was built for frontend API {api}; this server speaks {}. Type the value instead.",
            entry.label(),
            vigilo_sdk::FRONTEND_API_VERSION
        )),
        Ok(element) => Input::Plugin {
            tag: element.tag,
            module: element.module,
            stylesheet: element.stylesheet,
            settings: settings.to_owned(),
            plugin: entry.label(),
        },
    }
}

/// A stored value as the form shows it.
pub(super) fn form_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[derive(Template)]
#[template(path = "items/form.html")]
struct FormPage {
    frame: Frame,
    slug: String,
    kind: Kind,
    /// The item being edited (None: a new one).
    editing: Option<i64>,
    title: String,
    description: String,
    fields: Vec<FieldInput>,
    errors: BTreeMap<String, String>,
    error: Option<String>,
}

impl FormPage {
    fn error_for(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }

    fn action(&self) -> String {
        match self.editing {
            Some(id) => self.kind.item_url(&self.slug, id, "/edit"),
            None => format!("{}/new", self.kind.list_url(&self.slug)),
        }
    }

    fn cancel(&self) -> String {
        match self.editing {
            Some(id) => self.kind.item_url(&self.slug, id, ""),
            None => self.kind.list_url(&self.slug),
        }
    }
}

/// What a form sent: the title, description and `fields.<key>` values.
struct Sent {
    csrf: String,
    title: String,
    description: String,
    fields: BTreeMap<String, String>,
}

fn sent(pairs: Vec<(String, String)>) -> Sent {
    let mut sent = Sent {
        csrf: String::new(),
        title: String::new(),
        description: String::new(),
        fields: BTreeMap::new(),
    };
    for (key, value) in pairs {
        match key.as_str() {
            "csrf" => sent.csrf = value,
            "title" => sent.title = value,
            "description" => sent.description = value,
            _ => {
                if let Some(field) = key.strip_prefix("fields.") {
                    // A checkbox sends a hidden "false" first and "true" when
                    // ticked: the last value wins.
                    sent.fields.insert(field.to_owned(), value);
                }
            }
        }
    }
    sent
}

/// The JSON of a field's form value: numbers for number fields, true or
/// false for yes/no fields, text for the rest. Empty is None (no value).
fn typed_values(
    definitions: &[CustomField],
    kind: WorkKind,
    values: &BTreeMap<String, String>,
    creating: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for definition in definitions.iter().filter(|d| d.applies_to.contains(&kind)) {
        let text = values.get(&definition.key).map(|v| v.trim()).unwrap_or("");
        let value = match definition.field_type {
            FieldType::Builtin(Builtin::Boolean) => Some(Value::Bool(text == "true")),
            _ if text.is_empty() => None,
            FieldType::Builtin(Builtin::Number) => Some(
                text.parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| text.parse::<f64>().map(Value::from))
                    .unwrap_or_else(|_| Value::String(text.to_owned())),
            ),
            _ => Some(Value::String(text.to_owned())),
        };
        match value {
            Some(value) => {
                out.insert(definition.key.clone(), value);
            }
            None if !creating => {
                out.insert(definition.key.clone(), Value::Null);
            }
            None => {}
        }
    }
    out
}

/// A refusal as a person reads it on the form: without the API's
/// "field `key`: " before a field's own message (its label stands right
/// above it), custom fields named by their labels, and no backticks.
fn in_words(message: &str, definitions: &[CustomField]) -> String {
    let mut text = message.to_owned();
    for definition in definitions {
        let key = &definition.key;
        text = text
            .replace(&format!("field `{key}`: "), "")
            .replace(&format!("field `{key}`"), &definition.label)
            .replace(&format!("`{key}`"), &definition.label);
    }
    let text = text.replace('`', "");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

#[allow(clippy::too_many_arguments)]
async fn form_page(
    state: &AppState,
    current: &Current,
    access: &Access,
    kind: Kind,
    editing: Option<i64>,
    sent: &Sent,
    refusal: Option<DomainError>,
) -> Result<Response, PageError> {
    let definitions = fields::list(state, access).await?;
    let mut errors = BTreeMap::new();
    let mut error = None;
    let status = match refusal {
        None => StatusCode::OK,
        Some(DomainError::Invalid {
            field: Some(field),
            message,
        }) if field == "title" || field == "description" || field.starts_with("fields.") => {
            errors.insert(field, message);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        // A plugin that failed checking a field's value: the error shows
        // at that field.
        Some(DomainError::Plugin {
            failure,
            message,
            field: Some(field),
        }) if field.starts_with("fields.") => {
            errors.insert(field, message);
            crate::web::plugin_status(failure)
        }
        Some(DomainError::Plugin {
            failure, message, ..
        }) => {
            error = Some(message);
            crate::web::plugin_status(failure)
        }
        Some(e @ (DomainError::Invalid { .. } | DomainError::Conflict(_))) => {
            error = Some(e.to_string());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(other) => return Err(other.into()),
    };
    for message in errors.values_mut().chain(error.iter_mut()) {
        *message = in_words(message, &definitions);
    }
    let title = match editing {
        Some(id) => format!("Edit {} {id}", kind.label.to_lowercase()),
        None => format!("New {}", kind.label.to_lowercase()),
    };
    let frame = Frame::workspace(state, current, access, kind.name, &title).await?;
    let page = FormPage {
        frame,
        slug: access.workspace.slug.clone(),
        kind,
        editing,
        title: sent.title.clone(),
        description: sent.description.clone(),
        fields: field_inputs(
            state,
            access,
            &definitions,
            kind.kind,
            &sent.fields,
            &errors,
        ),
        errors,
        error,
    };
    Ok(render_status(status, &page))
}

pub(super) async fn writer(
    state: &AppState,
    current: &Current,
    slug: &str,
) -> Result<Access, PageError> {
    Ok(current
        .caller
        .workspace(&state.store, slug, Permission::ItemWrite)
        .await?)
}

/// `GET /w/{slug}/{kind}/new`.
pub async fn new_page(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, segment)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = writer(&state, &current, &slug).await?;
    let empty = sent(Vec::new());
    form_page(&state, &current, &access, kind, None, &empty, None).await
}

/// `POST /w/{slug}/{kind}/new`.
pub async fn create(
    State(state): State<AppState>,
    Path((slug, segment)): Path<(String, String)>,
    SignedForm {
        current,
        form: pairs,
    }: SignedForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let sent = sent(pairs);
    let access = writer(&state, &current, &slug).await?;
    let definitions = fields::list(&state, &access).await?;
    let new = NewItem {
        kind: kind.name.into(),
        title: sent.title.clone(),
        description: sent.description.clone(),
        fields: typed_values(&definitions, kind.kind, &sent.fields, true),
    };
    match work_items::create(&state, &access, new).await {
        Ok(item) => Ok(see_other(&kind.item_url(&slug, item.id, "?done=created"))),
        Err(e) => form_page(&state, &current, &access, kind, None, &sent, Some(e)).await,
    }
}

/// `GET /w/{slug}/{kind}/{id}/edit`.
pub async fn edit_page(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, segment, id)): Path<(String, String, i64)>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = writer(&state, &current, &slug).await?;
    let item = item_of_kind(&state, &access, kind, id).await?;
    let shown = Sent {
        csrf: String::new(),
        title: item.title.clone(),
        description: item.description.clone(),
        fields: item
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), form_value(v)))
            .collect(),
    };
    form_page(&state, &current, &access, kind, Some(id), &shown, None).await
}

/// `POST /w/{slug}/{kind}/{id}/edit`.
pub async fn update(
    State(state): State<AppState>,
    Path((slug, segment, id)): Path<(String, String, i64)>,
    SignedForm {
        current,
        form: pairs,
    }: SignedForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let sent = sent(pairs);
    let access = writer(&state, &current, &slug).await?;
    item_of_kind(&state, &access, kind, id).await?;
    let definitions = fields::list(&state, &access).await?;
    let changes = ItemChanges {
        title: Some(sent.title.clone()),
        description: Some(sent.description.clone()),
        fields: typed_values(&definitions, kind.kind, &sent.fields, false),
        assignee: None,
    };
    match work_items::update(&state, &access, id, changes).await {
        Ok(_) => Ok(see_other(&kind.item_url(&slug, id, "?done=saved"))),
        Err(e) => form_page(&state, &current, &access, kind, Some(id), &sent, Some(e)).await,
    }
}
