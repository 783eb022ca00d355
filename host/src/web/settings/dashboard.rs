//! `/w/{slug}/settings/dashboard`: the dashboard's widgets: adding,
//! removing, reordering and configuring them.

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use vigilo_sdk::PluginKind;

use crate::domain::authz::Access;
use crate::domain::dashboards;
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;
use crate::web::{render_status, see_other, Done, Frame, PageError};

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
    Member {
        current, access, ..
    }: Member<need::DashboardEdit>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
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
    widget: String,
}

/// `POST /w/{slug}/settings/dashboard`.
pub async fn add_widget(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MemberForm {
        current,
        access,
        form,
        ..
    }: MemberForm<need::DashboardEdit, AddWidgetForm>,
) -> Result<Response, PageError> {
    match dashboards::add_widget(&state, &access, &form.widget, &json!({})).await {
        Ok(_) => Ok(see_other(
            &Workspace(&slug).dashboard_settings().done("added"),
        )),
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
    Path((slug, id, action)): Path<(String, i64, String)>,
    MemberForm { access, .. }: MemberForm<need::DashboardEdit>,
) -> Result<Response, PageError> {
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
    Ok(see_other(&Workspace(&slug).dashboard_settings().done(done)))
}
