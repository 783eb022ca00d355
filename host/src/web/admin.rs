//! The platform admin's pages.
//!
//! - `/admin/workspaces`: every workspace; creating one (name, slug, region,
//!   optional template); downloading a workspace's configuration (the same
//!   JSON as `vigilo workspace export`); templates made from an export file.
//! - `/admin/plugins`: every plugin the server has seen, loaded or not, with
//!   what it registered and its frontend files, or the reason it is not
//!   running and what to do about it; enable and disable.
//! - `/admin/tasks`: the scheduler's periodic tasks with their schedule,
//!   last and next run and outcome; running one now; a task's run history.

use crate::web::extract::{need, Member, SignedForm};
use crate::web::urls::admin;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::items::{when, When};
use super::session::SignedIn;
use super::{download, render_status, see_other, Done, Frame, PageError};
use crate::domain::sessions::Current;
use crate::domain::templates::{self, NewTemplate, Snapshot};
use crate::domain::workspaces::{self, NewWorkspace};
use crate::domain::DomainError;
use crate::state::AppState;
use crate::web::extract::SignedUpload;

mod plugins;
mod tasks;

pub use plugins::{change_plugin, plugins};
pub use tasks::{run_task, task, tasks_list};

/// A workspace in the admin's list.
pub struct WorkspaceRow {
    slug: String,
    name: String,
    region: String,
    created: When,
    member: bool,
}

/// A template in the admin's list.
pub struct TemplateRow {
    name: String,
    description: String,
    created: When,
}

#[derive(Template)]
#[template(path = "admin/workspaces.html")]
struct WorkspacesPage {
    frame: Frame,
    rows: Vec<WorkspaceRow>,
    templates: Vec<TemplateRow>,
    form: WorkspaceForm,
    error: Option<String>,
    error_field: String,
    template_error: Option<String>,
}

/// The new-workspace form.
#[derive(Debug, Default, Deserialize)]
pub struct WorkspaceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    template: String,
}

async fn workspaces_page(
    state: &AppState,
    current: &Current,
    form: WorkspaceForm,
    refusal: Option<DomainError>,
    template_error: Option<String>,
    notice: Option<String>,
) -> Result<Response, PageError> {
    current.caller.require_platform_admin("manage workspaces")?;
    let rows = workspaces::visible(state, &current.caller)
        .await?
        .into_iter()
        .map(|v| WorkspaceRow {
            member: v.role.is_some(),
            created: when(&v.workspace.created_at),
            slug: v.workspace.slug,
            name: v.workspace.name,
            region: v.workspace.region,
        })
        .collect();
    let templates = templates::list(state)
        .await?
        .into_iter()
        .map(|t| TemplateRow {
            created: when(&t.created_at),
            name: t.name,
            description: t.description,
        })
        .collect();
    let (status, error, error_field) = match refusal {
        None if template_error.is_some() => (StatusCode::UNPROCESSABLE_ENTITY, None, String::new()),
        None => (StatusCode::OK, None, String::new()),
        Some(DomainError::Invalid { field, message }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(message),
            field.unwrap_or_default(),
        ),
        Some(DomainError::Conflict(message)) => {
            (StatusCode::CONFLICT, Some(message), "slug".to_owned())
        }
        Some(DomainError::NotFound(message)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(message),
            "template".to_owned(),
        ),
        Some(e) => return Err(e.into()),
    };
    let frame = Frame::admin(state, current, "workspaces", "Workspaces")
        .await?
        .with_notice(notice);
    Ok(render_status(
        status,
        &WorkspacesPage {
            frame,
            rows,
            templates,
            form,
            error,
            error_field,
            template_error,
        },
    ))
}

/// `GET /admin/workspaces`.
pub async fn workspaces_list(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let about = done.about.clone().unwrap_or_default();
    let notice = done
        .notice(&[
            (
                "created",
                "The workspace was created: invite its first owner from its Members page.",
            ),
            (
                "template",
                "The template was saved: new workspaces can start from it.",
            ),
            (
                "template_deleted",
                "The template was deleted; workspaces made from it are unchanged.",
            ),
        ])
        .map(|t| {
            if about.is_empty() {
                t
            } else {
                format!("{about}: {t}")
            }
        });
    workspaces_page(
        &state,
        &current,
        WorkspaceForm::default(),
        None,
        None,
        notice,
    )
    .await
}

/// `POST /admin/workspaces`.
pub async fn create_workspace(
    State(state): State<AppState>,
    SignedForm { current, form }: SignedForm<WorkspaceForm>,
) -> Result<Response, PageError> {
    let new = NewWorkspace {
        name: form.name.clone(),
        slug: form.slug.clone(),
        // Left empty, the region is `default` (the placeholder says so).
        region: match form.region.trim() {
            "" => "default".to_owned(),
            region => region.to_owned(),
        },
        template: Some(form.template.trim().to_owned()).filter(|t| !t.is_empty()),
    };
    match workspaces::create(&state, &current.caller, &new).await {
        Ok(w) => Ok(see_other(
            &admin::workspaces().done("created").about(&w.slug),
        )),
        Err(
            e @ (DomainError::Invalid { .. } | DomainError::Conflict(_) | DomainError::NotFound(_)),
        ) => workspaces_page(&state, &current, form, Some(e), None, None).await,
        Err(e) => Err(e.into()),
    }
}

/// `GET /admin/workspaces/{slug}/export`: the workspace's configuration as
/// a file (what `vigilo workspace export` prints).
pub async fn export_workspace(
    State(state): State<AppState>,
    Member { access, .. }: Member<need::WorkspaceExport>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let snapshot = workspaces::export(&state, &access).await?;
    let body = serde_json::to_string_pretty(&snapshot)
        .map_err(|e| DomainError::Internal(format!("cannot encode an export: {e}")))?;
    Ok(download(
        "application/json",
        &format!("{slug}-export.json"),
        format!("{body}\n"),
    ))
}

/// `POST /admin/templates` (a file upload): a template from an export file.
pub async fn create_template(
    State(state): State<AppState>,
    SignedUpload { current, upload }: SignedUpload,
) -> Result<Response, PageError> {
    let (name, description) = (
        upload.field("name").to_owned(),
        upload.field("description").to_owned(),
    );
    let file = upload.file("file").1;
    let refuse = |message: String| {
        let state = state.clone();
        let current = current.clone();
        async move {
            workspaces_page(
                &state,
                &current,
                WorkspaceForm::default(),
                None,
                Some(message),
                None,
            )
            .await
        }
    };
    if file.is_empty() {
        return refuse(
            "Choose an export file (from “Export” above, or `vigilo workspace export`).".into(),
        )
        .await;
    }
    if let Err(crate::input::strict::Refused::Repeated(key)) = crate::input::strict::parse(file) {
        return refuse(format!(
            "The file gives the key `{key}` twice; a workspace export gives each key once."
        ))
        .await;
    }
    let snapshot = match serde_json::from_slice::<Snapshot>(file) {
        Ok(s) => s,
        Err(e) => {
            return refuse(format!(
                "The file is not a workspace export (line {}, column {}): {}",
                e.line(),
                e.column(),
                e.to_string().split(" at line ").next().unwrap_or_default()
            ))
            .await
        }
    };
    let new = NewTemplate {
        name,
        description,
        snapshot,
    };
    match templates::create(&state, &current.caller, new).await {
        Ok(t) => Ok(see_other(
            &admin::workspaces().done("template").about(&t.template.name),
        )),
        Err(e @ (DomainError::Invalid { .. } | DomainError::Conflict(_))) => {
            refuse(e.to_string()).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/templates/{name}/delete`.
pub async fn delete_template(
    State(state): State<AppState>,
    Path(name): Path<String>,
    SignedForm { current, .. }: SignedForm,
) -> Result<Response, PageError> {
    templates::delete(&state, &current.caller, &name).await?;
    Ok(see_other(
        &admin::workspaces().done("template_deleted").about(&name),
    ))
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::extract::DefaultBodyLimit;
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/admin/workspaces",
            get(workspaces_list).post(create_workspace),
        )
        .route("/admin/workspaces/{slug}/export", get(export_workspace))
        .route(
            "/admin/templates",
            post(create_template).layer(DefaultBodyLimit::max(8 * 1024 * 1024)),
        )
        .route("/admin/templates/{name}/delete", post(delete_template))
        .route("/admin/tasks", get(tasks_list))
        .route("/admin/tasks/{name}", get(task))
        .route("/admin/tasks/{name}/run", post(run_task))
        .route(
            "/admin",
            get(|| async { super::see_other("/admin/workspaces") }),
        )
        .route("/admin/plugins", get(plugins))
        .route("/admin/plugins/{name}/{action}", post(change_plugin))
}
