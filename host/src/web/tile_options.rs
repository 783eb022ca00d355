//! Settings → Dashboard → a tile's options: a form drawn from the widget's
//! JSON Schema (text, a number with its bounds, a checkbox, a choice, a set
//! of choices, a list of words), saved through the same checks as the API,
//! with each refusal shown beside its option.

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};
use vigilo_sdk::loader::Registration;
use vigilo_sdk::PluginKind;

use super::{render_status, see_other, Frame, PageError};
use crate::domain::authz::Access;
use crate::domain::sessions::Current;
use crate::domain::{dashboards, DomainError};
use crate::state::AppState;

/// How an option is asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// One line of text.
    Text,
    /// A number, within the schema's bounds.
    Number {
        /// `minimum`, if any.
        min: Option<String>,
        /// `maximum`, if any.
        max: Option<String>,
        /// `1` for an integer, `any` otherwise.
        step: &'static str,
    },
    /// A checkbox.
    Checkbox,
    /// One of the schema's `enum` values.
    Choice(Vec<String>),
    /// Any of the `enum` values of an array's items.
    Choices(Vec<String>),
    /// A list of words, comma-separated (an array of strings).
    Words,
    /// Anything else, as JSON.
    Json,
}

/// One option of the tile, as the form shows it.
#[derive(Debug, Clone)]
pub struct OptionField {
    /// Its key in the options.
    pub key: String,
    /// The schema's `title`, or the key in words.
    pub label: String,
    /// The schema's `description`.
    pub help: String,
    /// How it is asked for.
    pub input: Input,
    /// The value shown, as text.
    pub value: String,
    /// For a checkbox: whether it is ticked. For choices: the ones ticked.
    pub checked: Vec<String>,
    /// Whether the schema requires it.
    pub required: bool,
    /// Why the last value was refused.
    pub error: Option<String>,
}

impl OptionField {
    /// The form control's id.
    pub fn id(&self) -> String {
        format!("opt-{}", self.key)
    }

    /// The form control's name.
    pub fn name(&self) -> String {
        format!("opt.{}", self.key)
    }

    /// Whether `choice` is ticked.
    pub fn has(&self, choice: &str) -> bool {
        self.checked.iter().any(|c| c == choice)
    }
}

/// `warn_at` → "Warn at".
fn in_words(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn strings(values: Option<&Value>) -> Option<Vec<String>> {
    let values = values?.as_array()?;
    Some(
        values
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
    )
}

/// The options `schema` describes (its top-level `properties`, in order),
/// showing the values of `config`.
pub fn fields(schema: &Value, config: &Value) -> Vec<OptionField> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(key, property)| {
            let current = config.get(key).filter(|v| !v.is_null());
            let kind = property["type"].as_str().unwrap_or_default();
            let input = if let Some(choices) = strings(property.get("enum")) {
                Input::Choice(choices)
            } else {
                match kind {
                    "string" => Input::Text,
                    "integer" | "number" => Input::Number {
                        min: property.get("minimum").map(Value::to_string),
                        max: property.get("maximum").map(Value::to_string),
                        step: if kind == "integer" { "1" } else { "any" },
                    },
                    "boolean" => Input::Checkbox,
                    "array" => match strings(property["items"].get("enum")) {
                        Some(choices) => Input::Choices(choices),
                        None if property["items"]["type"] == "string" => Input::Words,
                        None => Input::Json,
                    },
                    _ => Input::Json,
                }
            };
            let value = match (&input, current) {
                (_, None) => String::new(),
                (Input::Words, Some(Value::Array(items))) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                (Input::Json, Some(v)) => v.to_string(),
                (_, Some(Value::String(s))) => s.clone(),
                (_, Some(v)) => v.to_string(),
            };
            let checked = match (&input, current) {
                (Input::Checkbox, Some(Value::Bool(true))) => vec!["true".to_owned()],
                (Input::Choices(_), Some(Value::Array(items))) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            OptionField {
                key: key.clone(),
                label: property["title"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| in_words(key)),
                help: property["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                input,
                value,
                checked,
                required: required.contains(&key.as_str()),
                error: None,
            }
        })
        .collect()
}

/// The options a sent form gives (`opt.KEY` pairs), keeping `current`'s
/// options the form does not show; or the fields with what is wrong.
pub fn read(
    mut shown: Vec<OptionField>,
    current: &Value,
    pairs: &[(String, String)],
) -> Result<Value, Vec<OptionField>> {
    let mut options: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    let mut wrong = false;
    for field in &mut shown {
        let name = field.name();
        let sent: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        let text = sent.last().map(|v| v.trim()).unwrap_or_default();
        field.value = text.to_owned();
        let value = match &field.input {
            Input::Checkbox => {
                field.checked = if sent.contains(&"true") {
                    vec!["true".into()]
                } else {
                    Vec::new()
                };
                Some(Value::Bool(sent.contains(&"true")))
            }
            Input::Choices(_) => {
                field.checked = sent.iter().map(|s| (*s).to_owned()).collect();
                Some(Value::Array(
                    sent.iter()
                        .map(|s| Value::String((*s).to_owned()))
                        .collect(),
                ))
            }
            _ if text.is_empty() => None,
            Input::Text | Input::Choice(_) => Some(Value::String(text.to_owned())),
            Input::Words => Some(Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(|w| Value::String(w.to_owned()))
                    .collect(),
            )),
            Input::Number { step, .. } => {
                let parsed = if *step == "1" {
                    text.parse::<i64>().ok().map(Value::from)
                } else {
                    text.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                };
                if parsed.is_none() {
                    field.error = Some(if *step == "1" {
                        "Enter a whole number.".into()
                    } else {
                        "Enter a number.".into()
                    });
                    wrong = true;
                }
                parsed
            }
            Input::Json => match serde_json::from_str(text) {
                Ok(v) => Some(v),
                Err(e) => {
                    field.error = Some(format!("This is not JSON: {e}."));
                    wrong = true;
                    None
                }
            },
        };
        match value {
            Some(v) => options.insert(field.key.clone(), v),
            None => options.remove(&field.key),
        };
    }
    if wrong {
        Err(shown)
    } else {
        Ok(Value::Object(options))
    }
}

#[derive(Template)]
#[template(path = "settings/tile.html")]
struct TilePage {
    frame: Frame,
    slug: String,
    id: i64,
    label: String,
    fields: Vec<OptionField>,
    error: Option<String>,
}

/// The tile `id` of the workspace's dashboard, its widget's label and its
/// options' schema.
async fn tile(
    state: &AppState,
    access: &Access,
    id: i64,
) -> Result<(crate::store::dashboards::DashboardWidget, String, Value), PageError> {
    let tile = state
        .store
        .dashboard(access.workspace.id)
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| PageError::NotFound("There is no such tile on this dashboard.".into()))?;
    match state
        .plugins
        .registration(PluginKind::DashboardWidget, &tile.widget)
    {
        Some((
            _,
            Registration::DashboardWidget {
                label,
                config_schema,
                ..
            },
        )) => Ok((tile, label, config_schema)),
        _ => Err(DomainError::plugin_unavailable(format!(
            "No loaded plugin provides the widget {}, so its options cannot be changed now. \
             Ask an operator to install or enable it.",
            tile.widget
        ))
        .into()),
    }
}

/// What the page shows of one tile.
struct Shown {
    id: i64,
    label: String,
    fields: Vec<OptionField>,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    current: &Current,
    access: &Access,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, PageError> {
    let frame = Frame::workspace(state, current, access, "settings", "Tile options").await?;
    Ok(render_status(
        status,
        &TilePage {
            frame,
            slug: access.workspace.slug.clone(),
            id: shown.id,
            label: shown.label,
            fields: shown.fields,
            error: shown.error,
        },
    ))
}

/// `GET /w/{slug}/settings/dashboard/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::DashboardEdit>,
    Path((_slug, id)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    let (tile, label, schema) = tile(&state, &access, id).await?;
    let fields = fields(&schema, &tile.config);
    page(
        &state,
        &current,
        &access,
        Shown {
            id,
            label,
            fields,
            error: None,
        },
        StatusCode::OK,
    )
    .await
}

/// `POST /w/{slug}/settings/dashboard/{id}`.
pub async fn save(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
    MemberForm {
        current,
        access,
        form: pairs,
        ..
    }: MemberForm<need::DashboardEdit, Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (tile, label, schema) = tile(&state, &access, id).await?;
    let see_below = || Some("Some options need another value: see below.".to_owned());
    let (fields, error) = match read(fields(&schema, &tile.config), &tile.config, &pairs) {
        Err(fields) => (fields, see_below()),
        Ok(config) => match dashboards::update_widget(&state, &access, id, &config).await {
            Ok(_) => {
                return Ok(see_other(
                    &Workspace(&slug).dashboard_settings().done("options"),
                ))
            }
            Err(DomainError::Invalid { field, message }) => {
                let mut fields = fields(&schema, &config);
                let key = field.as_deref().and_then(|f| f.strip_prefix("config."));
                let error = match key.and_then(|key| fields.iter_mut().find(|f| f.key == key)) {
                    Some(f) => {
                        f.error = Some(sentence(&message, &f.key));
                        see_below()
                    }
                    None => Some(sentence(&message, "")),
                };
                (fields, error)
            }
            Err(e) => return Err(e.into()),
        },
    };
    let shown = Shown {
        id,
        label,
        fields,
        error,
    };
    page(
        &state,
        &current,
        &access,
        shown,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// A refusal in words for the form: without the option's key in front.
fn sentence(message: &str, key: &str) -> String {
    let text = message
        .strip_prefix(&format!("option `{key}`: "))
        .unwrap_or(message)
        .replace('`', "");
    let mut chars = text.chars();
    let first: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    let rest: String = chars.collect();
    let full = format!("{first}{rest}");
    if full.ends_with('.') {
        full
    } else {
        format!("{full}.")
    }
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/w/{slug}/settings/dashboard/{id}", get(show).post(save))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "required": ["warn_at"], "properties": {
            "warn_at": {"type": "integer", "minimum": 1, "maximum": 50, "title": "Warn at"},
            "label": {"type": "string"},
            "compact": {"type": "boolean", "description": "Fewer lines."},
            "order": {"enum": ["newest", "oldest"]},
            "kinds": {"type": "array", "items": {"enum": ["changes", "incidents"]}},
            "columns": {"type": "array", "items": {"type": "string"}},
        }})
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_schema_becomes_a_form_showing_the_current_options() {
        let shown = fields(
            &schema(),
            &json!({"warn_at": 5, "kinds": ["incidents"], "columns": ["open", "done"], "compact": true}),
        );
        let by = |key: &str| shown.iter().find(|f| f.key == key).unwrap().clone();
        assert_eq!(
            by("warn_at").input,
            Input::Number {
                min: Some("1".into()),
                max: Some("50".into()),
                step: "1"
            }
        );
        assert_eq!(by("warn_at").value, "5");
        assert!(by("warn_at").required);
        assert_eq!(by("label").label, "Label");
        assert_eq!(by("compact").help, "Fewer lines.");
        assert!(by("compact").has("true"));
        assert_eq!(
            by("order").input,
            Input::Choice(vec!["newest".into(), "oldest".into()])
        );
        assert!(by("kinds").has("incidents") && !by("kinds").has("changes"));
        assert_eq!(by("columns").value, "open, done");
    }

    #[test]
    fn a_sent_form_becomes_options_or_says_what_is_wrong() {
        let current = json!({"warn_at": 5, "kept": "as it was"});
        let options = read(
            fields(&schema(), &current),
            &current,
            &pairs(&[
                ("opt.warn_at", "7"),
                ("opt.label", "  "),
                ("opt.kinds", "changes"),
                ("opt.kinds", "incidents"),
                ("opt.columns", "open, , done"),
                ("opt.order", "oldest"),
            ]),
        )
        .unwrap();
        assert_eq!(
            options,
            json!({"warn_at": 7, "kept": "as it was", "compact": false, "order": "oldest",
                   "kinds": ["changes", "incidents"], "columns": ["open", "done"]})
        );
        let wrong = read(
            fields(&schema(), &current),
            &current,
            &pairs(&[("opt.warn_at", "seven")]),
        )
        .unwrap_err();
        let field = wrong.iter().find(|f| f.key == "warn_at").unwrap();
        assert_eq!(field.error.as_deref(), Some("Enter a whole number."));
        assert_eq!(field.value, "seven");
    }

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(
            sentence(
                "option `warn_at`: 0 is less than the minimum of 1",
                "warn_at"
            ),
            "0 is less than the minimum of 1."
        );
    }
}
