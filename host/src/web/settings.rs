//! A workspace's settings in the browser: custom fields (with plugin field
//! types in the type picker), the dashboard's widgets (add, remove,
//! reorder) and general settings such as `holidays`.

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{render, render_status, see_other, workspace_access, Done, Frame, PageError};
use crate::domain::authz::Permission;
use crate::domain::sessions::Current;
use crate::domain::{workspaces, DomainError};
use crate::state::AppState;

mod dashboard;
mod fields;

pub use dashboard::{add_widget, change_widget, dashboard};
pub use fields::{add_field, delete_field, fields};

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
    Member {
        current, access, ..
    }: Member<need::WorkspaceRead>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
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
    Member { current, .. }: Member<need::WorkspaceSettings>,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let done = done.notice(&[("saved", "The settings were saved.")]);
    general_page(&state, &current, &slug, None, None, done).await
}

/// The general-settings forms: the holidays, or one setting by key.
#[derive(Deserialize)]
pub struct GeneralForm {
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
    Path(slug): Path<String>,
    MemberForm {
        current,
        access,
        form,
        ..
    }: MemberForm<need::WorkspaceSettings, GeneralForm>,
) -> Result<Response, PageError> {
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
    Ok(see_other(
        &Workspace(&slug).general_settings().done("saved"),
    ))
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/w/{slug}/settings", get(index))
        .route("/w/{slug}/settings/fields", get(fields).post(add_field))
        .route("/w/{slug}/settings/fields/{key}/delete", post(delete_field))
        .route(
            "/w/{slug}/settings/dashboard",
            get(dashboard).post(add_widget),
        )
        .route(
            "/w/{slug}/settings/dashboard/{id}/{action}",
            post(change_widget),
        )
        .route(
            "/w/{slug}/settings/general",
            get(general).post(save_general),
        )
}
