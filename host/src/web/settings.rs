//! A workspace's settings in the browser: custom fields (with plugin field
//! types in the type picker), the dashboard's widgets (add, remove,
//! reorder) and general settings such as `holidays`.

use crate::web::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use vigilo_sdk::PluginKind;

use super::items::humanise;
use super::session::{check_csrf, SignedIn};
use super::{render, render_status, see_other, workspace_access, CsrfForm, Done, Frame, PageError};
use crate::domain::authz::{Access, Permission};
use crate::domain::dashboards;
use crate::domain::fields::{self, FieldDefinition};
use crate::domain::sessions::Current;
use crate::domain::{workspaces, DomainError};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "settings/index.html")]
struct IndexPage {
    frame: Frame,
    slug: String,
    can_settings: bool,
    can_dashboard: bool,
}

/// `GET /w/{slug}/settings`.
pub async fn index(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let access = workspace_access(&state, &current, &slug, Permission::WorkspaceRead).await?;
    let (can_settings, can_dashboard) = (
        access.can(Permission::WorkspaceSettings),
        access.can(Permission::DashboardEdit),
    );
    let frame = Frame::workspace(&state, &current, &access, "settings", "Settings").await?;
    Ok(render(&IndexPage {
        frame,
        slug,
        can_settings,
        can_dashboard,
    }))
}

/// A field in the list.
pub struct FieldRow {
    key: String,
    label: String,
    type_label: String,
    applies_to: String,
    required: bool,
    warning: Option<String>,
}

/// A type in the picker.
pub struct TypeOption {
    name: String,
    label: String,
}

#[derive(Template)]
#[template(path = "settings/fields.html")]
struct FieldsPage {
    frame: Frame,
    slug: String,
    rows: Vec<FieldRow>,
    /// The most fields a workspace may have.
    max: usize,
    types: Vec<TypeOption>,
    form: FieldForm,
    field: String,
    error: Option<String>,
}

impl FieldsPage {
    fn applies(&self, kind: &str) -> bool {
        self.form.applies_to.iter().any(|k| k == kind)
    }

    fn error_for(&self, field: &str) -> Option<&String> {
        (self.field == field).then_some(()).and(self.error.as_ref())
    }
}

/// The add-field form.
#[derive(Default, Clone)]
pub struct FieldForm {
    key: String,
    label: String,
    field_type: String,
    applies_to: Vec<String>,
    required: bool,
    options: String,
}

async fn fields_page(
    state: &AppState,
    current: &Current,
    access: &Access,
    form: FieldForm,
    refusal: Option<DomainError>,
    done: Option<String>,
) -> Result<Response, PageError> {
    let types = fields::field_types(state);
    let rows = fields::list(state, access)
        .await?
        .into_iter()
        .map(|f| {
            let known = types.iter().find(|t| t.name == f.field_type);
            FieldRow {
                type_label: match known {
                    Some(t) => match &t.plugin {
                        Some(p) => format!("{} ({})", t.label, p.label()),
                        None => t.label.clone(),
                    },
                    None => f.field_type.clone(),
                },
                warning: known.is_none().then(|| {
                    format!(
                        "No loaded plugin provides the type `{}`: values of this field cannot be checked or saved until an operator installs or enables it.",
                        f.field_type
                    )
                }),
                applies_to: f
                    .applies_to
                    .iter()
                    .map(|k| humanise(k))
                    .collect::<Vec<_>>()
                    .join(", "),
                key: f.key,
                label: f.label,
                required: f.required,
            }
        })
        .collect();
    let (status, field, error) = match refusal {
        None => (StatusCode::OK, String::new(), None),
        Some(DomainError::Invalid { field, message }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            field.unwrap_or_default(),
            Some(message),
        ),
        Some(DomainError::Conflict(message)) => {
            (StatusCode::CONFLICT, "key".to_owned(), Some(message))
        }
        Some(other) => return Err(other.into()),
    };
    let frame = Frame::workspace(state, current, access, "settings", "Custom fields")
        .await?
        .with_notice(done);
    let page = FieldsPage {
        frame,
        slug: access.workspace.slug.clone(),
        rows,
        max: fields::MAX_FIELDS,
        types: types
            .into_iter()
            .map(|t| TypeOption {
                label: match &t.plugin {
                    Some(p) => format!("{} — from {}", t.label, p.label()),
                    None => t.label,
                },
                name: t.name,
            })
            .collect(),
        form,
        field,
        error,
    };
    Ok(render_status(status, &page))
}

/// `GET /w/{slug}/settings/fields`.
pub async fn fields(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let access = workspace_access(&state, &current, &slug, Permission::WorkspaceSettings).await?;
    let form = FieldForm {
        applies_to: vec!["change".into()],
        field_type: "text".into(),
        ..FieldForm::default()
    };
    let done = done.notice(&[
        ("added", "The field was added."),
        ("removed", "The field was removed."),
    ]);
    fields_page(&state, &current, &access, form, None, done).await
}

/// `POST /w/{slug}/settings/fields`.
pub async fn add_field(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut csrf = String::new();
    let mut form = FieldForm::default();
    for (key, value) in pairs {
        match key.as_str() {
            "csrf" => csrf = value,
            "key" => form.key = value,
            "label" => form.label = value,
            "type" => form.field_type = value,
            "applies_to" => form.applies_to.push(value),
            "required" => form.required = value == "true",
            "options" => form.options = value,
            _ => {}
        }
    }
    check_csrf(&current, &csrf)?;
    let access = workspace_access(&state, &current, &slug, Permission::WorkspaceSettings).await?;
    let definition = FieldDefinition {
        key: form.key.trim().to_owned(),
        label: form.label.clone(),
        applies_to: form.applies_to.clone(),
        field_type: form.field_type.clone(),
        required: form.required,
        options: if form.field_type == "select" {
            form.options
                .split([',', '\n'])
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        },
    };
    match fields::create(&state, &access, &definition).await {
        Ok(_) => Ok(see_other(&format!("/w/{slug}/settings/fields?done=added"))),
        Err(e) => fields_page(&state, &current, &access, form, Some(e), None).await,
    }
}

/// `POST /w/{slug}/settings/fields/{key}/delete`.
pub async fn delete_field(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, key)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let access = workspace_access(&state, &current, &slug, Permission::WorkspaceSettings).await?;
    fields::delete(&state, &access, &key).await?;
    Ok(see_other(&format!(
        "/w/{slug}/settings/fields?done=removed"
    )))
}

/// A widget on the dashboard, in the settings list.
pub struct WidgetRow {
    id: i64,
    label: String,
    plugin: String,
    first: bool,
    last: bool,
    loaded: bool,
    /// Its widget describes options that can be changed.
    has_options: bool,
}

/// A widget that can be added.
pub struct WidgetOption {
    name: String,
    label: String,
    description: String,
    plugin: String,
}

#[derive(Template)]
#[template(path = "settings/dashboard.html")]
struct DashboardSettings {
    frame: Frame,
    slug: String,
    rows: Vec<WidgetRow>,
    options: Vec<WidgetOption>,
    error: Option<String>,
}

/// `GET /w/{slug}/settings/dashboard`.
pub async fn dashboard(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let access = workspace_access(&state, &current, &slug, Permission::DashboardEdit).await?;
    let done = done.notice(&[
        ("added", "The widget was added."),
        ("removed", "The widget was removed."),
        ("moved", "The order was saved."),
        (
            "options",
            "The tile's options were saved: it shows them at its next refresh.",
        ),
    ]);
    dashboard_page(&state, &current, &access, None, done, StatusCode::OK).await
}

async fn dashboard_page(
    state: &AppState,
    current: &Current,
    access: &Access,
    error: Option<String>,
    done: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let instances = state.store.dashboard(access.workspace.id).await?;
    let count = instances.len();
    let rows = instances
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let found = state
                .plugins
                .registration(PluginKind::DashboardWidget, &w.widget);
            WidgetRow {
                id: w.id,
                label: found
                    .as_ref()
                    .map(|(_, r)| r.label().to_owned())
                    .unwrap_or_else(|| w.widget.clone()),
                plugin: found
                    .as_ref()
                    .map(|(e, _)| e.label())
                    .unwrap_or_else(|| "not loaded".into()),
                loaded: found.is_some(),
                has_options: matches!(
                    &found,
                    Some((_, vigilo_sdk::loader::Registration::DashboardWidget { config_schema, .. }))
                        if config_schema["properties"].as_object().is_some_and(|p| !p.is_empty())
                ),
                first: i == 0,
                last: i + 1 == count,
            }
        })
        .collect();
    let options = dashboards::widget_types(state)
        .into_iter()
        .map(|w| WidgetOption {
            plugin: w.plugin.label(),
            name: w.name,
            label: w.label,
            description: w.description,
        })
        .collect();
    let frame = Frame::workspace(state, current, access, "settings", "Dashboard")
        .await?
        .with_notice(done);
    Ok(render_status(
        status,
        &DashboardSettings {
            frame,
            slug: access.workspace.slug.clone(),
            rows,
            options,
            error,
        },
    ))
}

/// The add-widget form.
#[derive(Deserialize)]
pub struct AddWidgetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    widget: String,
}

/// `POST /w/{slug}/settings/dashboard`.
pub async fn add_widget(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Form(form): Form<AddWidgetForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let access = workspace_access(&state, &current, &slug, Permission::DashboardEdit).await?;
    match dashboards::add_widget(&state, &access, &form.widget, &json!({})).await {
        Ok(_) => Ok(see_other(&format!(
            "/w/{slug}/settings/dashboard?done=added"
        ))),
        Err(DomainError::Invalid { message, .. }) => {
            dashboard_page(
                &state,
                &current,
                &access,
                Some(message),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /w/{slug}/settings/dashboard/{id}/{up|down|remove}`.
pub async fn change_widget(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, id, action)): Path<(String, i64, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let access = workspace_access(&state, &current, &slug, Permission::DashboardEdit).await?;
    let done = match action.as_str() {
        "up" => {
            dashboards::move_widget(&state, &access, id, -1).await?;
            "moved"
        }
        "down" => {
            dashboards::move_widget(&state, &access, id, 1).await?;
            "moved"
        }
        "remove" => {
            dashboards::remove_widget(&state, &access, id).await?;
            "removed"
        }
        _ => return Err(PageError::NotFound("There is no such action.".into())),
    };
    Ok(see_other(&format!(
        "/w/{slug}/settings/dashboard?done={done}"
    )))
}

#[derive(Template)]
#[template(path = "settings/general.html")]
struct GeneralPage {
    frame: Frame,
    slug: String,
    holidays: String,
    others: Vec<(String, String)>,
    key: String,
    value: String,
    field: String,
    error: Option<String>,
}

impl GeneralPage {
    fn error_for(&self, field: &str) -> Option<&String> {
        (self.field == field).then_some(()).and(self.error.as_ref())
    }
}

fn holidays_text(settings: &Value) -> String {
    match settings.get("holidays") {
        Some(Value::Array(dates)) => dates
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

async fn general_page(
    state: &AppState,
    current: &Current,
    slug: &str,
    typed: Option<(String, String, String)>,
    refusal: Option<(String, String)>,
    done: Option<String>,
) -> Result<Response, PageError> {
    // Read afresh, so a change just made shows.
    let access = workspace_access(state, current, slug, Permission::WorkspaceRead).await?;
    let settings = &access.workspace.settings;
    let others = settings
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "holidays")
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let (holidays, key, value) =
        typed.unwrap_or_else(|| (holidays_text(settings), String::new(), String::new()));
    let (status, field, error) = match refusal {
        Some((field, message)) => (StatusCode::UNPROCESSABLE_ENTITY, field, Some(message)),
        None => (StatusCode::OK, String::new(), None),
    };
    let frame = Frame::workspace(state, current, &access, "settings", "General settings")
        .await?
        .with_notice(done);
    Ok(render_status(
        status,
        &GeneralPage {
            frame,
            slug: slug.to_owned(),
            holidays,
            others,
            key,
            value,
            field,
            error,
        },
    ))
}

/// `GET /w/{slug}/settings/general`.
pub async fn general(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    workspace_access(&state, &current, &slug, Permission::WorkspaceSettings).await?;
    let done = done.notice(&[("saved", "The settings were saved.")]);
    general_page(&state, &current, &slug, None, None, done).await
}

/// The general-settings forms: the holidays, or one setting by key.
#[derive(Deserialize)]
pub struct GeneralForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    holidays: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    remove: Option<String>,
}

/// `POST /w/{slug}/settings/general`.
pub async fn save_general(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Form(form): Form<GeneralForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let access = workspace_access(&state, &current, &slug, Permission::WorkspaceSettings).await?;
    let outcome = if let Some(text) = &form.holidays {
        let mut dates = Vec::new();
        let mut bad = Vec::new();
        for line in text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            match time::Date::parse(line, format) {
                Ok(date) => dates.push(date.format(format).unwrap_or_default()),
                Err(_) => bad.push(line.to_owned()),
            }
        }
        if !bad.is_empty() {
            let typed = (text.clone(), String::new(), String::new());
            let why = format!(
                "Not a date: {}. Write one date per line, like 2026-12-25.",
                bad.join(", ")
            );
            return general_page(
                &state,
                &current,
                &slug,
                Some(typed),
                Some(("holidays".into(), why)),
                None,
            )
            .await;
        }
        dates.sort();
        dates.dedup();
        workspaces::write_setting(&state, &access, "holidays", Some(json!(dates))).await
    } else if let Some(key) = &form.key {
        let raw = form.value.clone().unwrap_or_default();
        let value = if form.remove.is_some() {
            None
        } else {
            // JSON when it reads as JSON (true, 5, ["a"]), else text.
            Some(serde_json::from_str(raw.trim()).unwrap_or(Value::String(raw.clone())))
        };
        match workspaces::write_setting(&state, &access, key.trim(), value).await {
            Err(DomainError::Invalid { field, message }) => {
                let typed = (holidays_text(&access.workspace.settings), key.clone(), raw);
                let field = if field.as_deref() == Some("value") {
                    "value"
                } else {
                    "key"
                };
                return general_page(
                    &state,
                    &current,
                    &slug,
                    Some(typed),
                    Some((field.into(), message)),
                    None,
                )
                .await;
            }
            other => other,
        }
    } else {
        return Err(PageError::NotFound("Nothing to save.".into()));
    };
    outcome?;
    Ok(see_other(&format!("/w/{slug}/settings/general?done=saved")))
}
