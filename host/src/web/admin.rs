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

use crate::web::Form;
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::items::{when, When};
use super::plugin_costs;
use super::session::{check_csrf, urlencode, SignedIn};
use super::{
    download, render, render_status, see_other, workspace_access, CsrfForm, Done, Frame, PageError,
    Upload,
};
use crate::domain::authz::Permission;
use crate::domain::sessions::Current;
use crate::domain::templates::{self, NewTemplate, Snapshot};
use crate::domain::workspaces::{self, NewWorkspace};
use crate::domain::{plugins, tasks, DomainError};
use crate::plugins::State as PluginState;
use crate::state::AppState;
use crate::store::TaskRun;

/// A plugin, as the page lists it.
pub struct PluginRow {
    name: String,
    kind: String,
    version: String,
    compatible_with: String,
    state: &'static str,
    path: String,
    sha256: String,
    registered: Vec<String>,
    assets: Vec<String>,
    reason: Option<(String, String, &'static str)>,
    /// Where it runs (`in process`, `worker`) and, in words, how and why.
    tier: Option<(&'static str, String)>,
    /// What the installation's stored policy says about it, in words.
    policy: Option<String>,
    /// What its calls cost, one sentence per call kind.
    costs: Vec<(String, String)>,
    /// What it may ask of the server, in words; None when it declares
    /// nothing (built before capabilities existed).
    capabilities: Option<Vec<String>>,
    can_enable: bool,
    can_disable: bool,
    /// Its version waits for these capabilities to be approved.
    awaiting: bool,
}

/// Each declared capability as a line an operator reads: "read work
/// items", "make HTTP requests to hooks.slack.com".
fn capability_words(declared: &vigilo_sdk::Capabilities) -> Vec<String> {
    declared
        .uses
        .iter()
        .map(|c| match c {
            vigilo_sdk::Capability::Http if declared.http_hosts.iter().any(|h| h == "*") => {
                "make HTTP requests to the addresses it is configured with".to_owned()
            }
            vigilo_sdk::Capability::Http if !declared.http_hosts.is_empty() => {
                format!("make HTTP requests to {}", declared.http_hosts.join(", "))
            }
            other => other.description().to_owned(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin/plugins.html")]
struct PluginsPage {
    frame: Frame,
    rows: Vec<PluginRow>,
    loaded: usize,
    not_running: usize,
}

/// `GET /admin/plugins`.
pub async fn plugins(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let entries = plugins::list(&state, &current.caller, true)?;
    let tiers = state.plugins.tiers();
    // Hashing each library the first time takes a millisecond or so.
    let rows: Vec<PluginRow> = tokio::task::spawn_blocking(move || {
        entries
            .iter()
            .map(|e| {
                let m = e.manifest.as_ref();
                let state = e.state();
                let loaded = state == PluginState::Loaded;
                PluginRow {
                    name: e.label(),
                    kind: m.map(|m| m.kind.as_str().to_owned()).unwrap_or_default(),
                    version: m.map(|m| m.version.clone()).unwrap_or_default(),
                    compatible_with: m.map(|m| m.compatible_with.clone()).unwrap_or_default(),
                    capabilities: m
                        .and_then(|m| m.capabilities.as_ref())
                        .map(capability_words),
                    state: match state {
                        PluginState::Loaded => "loaded",
                        PluginState::Skipped => "skipped",
                        PluginState::Disabled => "disabled",
                    },
                    path: e.path.display().to_string(),
                    sha256: e.sha256().unwrap_or_default(),
                    registered: if loaded {
                        e.registrations
                            .iter()
                            .map(|r| format!("{} {} ({})", r.kind(), r.name(), r.label()))
                            .collect()
                    } else {
                        Vec::new()
                    },
                    assets: match (m, loaded) {
                        (Some(m), true) => m.frontend.iter().map(|a| a.path.clone()).collect(),
                        _ => Vec::new(),
                    },
                    reason: e.reason().map(|r| {
                        (
                            r.code().to_owned(),
                            e.message().unwrap_or_default(),
                            r.remedy(),
                        )
                    }),
                    tier: e.tier.map(|t| tier_words(e, t)),
                    policy: e
                        .name()
                        .and_then(|n| tiers.note(n))
                        .map(plugin_costs::policy_words),
                    costs: plugin_costs::cost_words(e, loaded),
                    can_enable: state == PluginState::Disabled
                        && matches!(
                            e.reason(),
                            Some(
                                crate::plugins::Reason::DisabledByAdmin
                                    | crate::plugins::Reason::DisabledAfterPanics
                                    | crate::plugins::Reason::DisabledAfterCrashes
                            )
                        ),
                    can_disable: loaded,
                    awaiting: e.reason() == Some(crate::plugins::Reason::AwaitingApproval),
                }
            })
            .collect()
    })
    .await
    .map_err(|e| crate::domain::DomainError::Internal(format!("listing plugins failed: {e}")))?;
    let loaded = rows.iter().filter(|r| r.state == "loaded").count();
    let notice = match (done.done.as_deref(), done.about) {
        (Some("enabled"), Some(p)) => Some(format!("{p} is enabled.")),
        (Some("approved"), Some(p)) => {
            Some(format!("What {p} asks for is approved, and it is enabled."))
        }
        (Some("disabled"), Some(p)) => Some(format!(
            "{p} is disabled: what it provides is out of use until it is enabled again."
        )),
        _ => None,
    };
    let frame = Frame::admin(&state, &current, "plugins", "Plugins")
        .await?
        .with_notice(notice);
    Ok(render(&PluginsPage {
        frame,
        not_running: rows.len() - loaded,
        loaded,
        rows,
    }))
}

/// A plugin's tier for the page: a short label, and a sentence saying
/// where it runs, what confines it and which setting chose it.
fn tier_words(
    entry: &crate::plugins::PluginEntry,
    tier: crate::plugins::Tier,
) -> (&'static str, String) {
    use crate::plugins::{Isolation, TierSource};
    let chosen = match tier.source {
        TierSource::Policy => "chosen for this plugin by the installation's stored policy",
        TierSource::PluginSettings => "chosen for this plugin in plugin_settings",
        TierSource::Default => "chosen by plugin_isolation, the installation's default",
        TierSource::Manual => "chosen by hand",
    };
    match (tier.isolation, entry.worker()) {
        (Isolation::Worker, Some(worker)) => {
            let running = match worker.pid() {
                Some(pid) => match crate::plugins::metrics::resident_bytes(pid) {
                    Some(bytes) => format!(
                        "running as process {pid} ({:.1} MiB resident)",
                        bytes as f64 / (1024.0 * 1024.0)
                    ),
                    None => format!("running as process {pid}"),
                },
                None if entry.is_loaded() => "not running now (the next call starts it)".to_owned(),
                None => "not running while the plugin is out of use".to_owned(),
            };
            let restarts = match worker.restarts() {
                0 => String::new(),
                1 => ", restarted once".to_owned(),
                n => format!(", restarted {n} times"),
            };
            (
                "worker",
                format!(
                    "In a worker process of its own, {running}{restarts}; {chosen}. Confined: {}.",
                    worker.confinement()
                ),
            )
        }
        _ => (
            "in process",
            format!("In the server's own process; {chosen}. A crash in it would stop the server."),
        ),
    }
}

/// `POST /admin/plugins/{name}/{enable|disable|approve}`.
pub async fn change_plugin(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let done = match action.as_str() {
        "enable" => {
            plugins::enable(&state, &current.caller, &name).await?;
            "enabled"
        }
        "disable" => {
            plugins::disable(&state, &current.caller, &name).await?;
            "disabled"
        }
        "approve" => {
            plugins::approve(&state, &current.caller, &name).await?;
            "approved"
        }
        _ => return Err(PageError::NotFound("There is no such action.".into())),
    };
    Ok(see_other(&format!(
        "/admin/plugins?done={done}&about={}",
        urlencode(&name)
    )))
}

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
    csrf: String,
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
    SignedIn(current): SignedIn,
    Form(form): Form<WorkspaceForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
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
        Ok(w) => Ok(see_other(&format!(
            "/admin/workspaces?done=created&about={}",
            urlencode(&w.slug)
        ))),
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
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let access = workspace_access(&state, &current, &slug, Permission::WorkspaceExport).await?;
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
    SignedIn(current): SignedIn,
    multipart: Multipart,
) -> Result<Response, PageError> {
    let upload = Upload::read(multipart).await?;
    check_csrf(&current, upload.field("csrf"))?;
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
        Ok(t) => Ok(see_other(&format!(
            "/admin/workspaces?done=template&about={}",
            urlencode(&t.template.name)
        ))),
        Err(e @ (DomainError::Invalid { .. } | DomainError::Conflict(_))) => {
            refuse(e.to_string()).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/templates/{name}/delete`.
pub async fn delete_template(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    templates::delete(&state, &current.caller, &name).await?;
    Ok(see_other(&format!(
        "/admin/workspaces?done=template_deleted&about={}",
        urlencode(&name)
    )))
}

/// A run of a task, as listed.
pub struct RunRow {
    id: i64,
    scheduled_for: When,
    started: When,
    took: String,
    outcome: String,
    runner: String,
    output: String,
    error: String,
}

fn run_row(r: TaskRun) -> RunRow {
    let took = match (
        crate::store::parse_time(&r.started_at),
        r.finished_at.as_deref().and_then(crate::store::parse_time),
    ) {
        (Some(a), Some(b)) => {
            let ms = (b - a).whole_milliseconds();
            if ms < 1000 {
                format!("{ms} ms")
            } else {
                format!("{:.1} s", ms as f64 / 1000.0)
            }
        }
        _ => String::new(),
    };
    RunRow {
        id: r.id,
        scheduled_for: when(&r.scheduled_for),
        started: when(&r.started_at),
        took,
        outcome: r.outcome,
        runner: r.runner,
        output: r.output.map(|o| o.to_string()).unwrap_or_default(),
        error: r.error.unwrap_or_default(),
    }
}

/// A task in the list.
pub struct TaskRow {
    name: String,
    source: String,
    schedule: String,
    next: When,
    last: Option<RunRow>,
}

#[derive(Template)]
#[template(path = "admin/tasks.html")]
struct TasksPage {
    frame: Frame,
    rows: Vec<TaskRow>,
}

/// A task's schedule, marked when the server's configuration replaces the
/// one its plugin declares.
fn schedule_text(task: &crate::store::TaskView) -> String {
    if task.schedule_from == "config" {
        format!("{} (set in config)", task.schedule)
    } else {
        task.schedule.clone()
    }
}

/// `GET /admin/tasks`.
pub async fn tasks_list(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
) -> Result<Response, PageError> {
    let rows = tasks::list(&state, &current.caller, 1)
        .await?
        .into_iter()
        .map(|t| TaskRow {
            next: when(&t.next_run_at),
            schedule: schedule_text(&t),
            last: t.last_runs.into_iter().next().map(run_row),
            name: t.name,
            source: t.source,
        })
        .collect();
    let frame = Frame::admin(&state, &current, "tasks", "Periodic tasks").await?;
    Ok(render(&TasksPage { frame, rows }))
}

#[derive(Template)]
#[template(path = "admin/task.html")]
struct TaskPage {
    frame: Frame,
    name: String,
    source: String,
    schedule: String,
    next: When,
    runs: Vec<RunRow>,
    just_ran: Option<i64>,
}

impl TaskPage {
    fn fresh(&self, id: &i64) -> bool {
        self.just_ran == Some(*id)
    }
}

/// `?ran=<run id>` after "Run now".
#[derive(Debug, Default, Deserialize)]
pub struct Ran {
    ran: Option<i64>,
}

/// `GET /admin/tasks/{name}`: a task's run history.
pub async fn task(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(name): Path<String>,
    Query(ran): Query<Ran>,
) -> Result<Response, PageError> {
    let listed = tasks::list(&state, &current.caller, 0).await?;
    let Some(view) = listed.into_iter().find(|t| t.name == name) else {
        return Err(PageError::NotFound(format!(
            "There is no scheduled task named `{name}`."
        )));
    };
    let runs = tasks::runs(&state, &current.caller, &name, Some(100))
        .await?
        .into_iter()
        .map(run_row)
        .collect();
    let notice = ran
        .ran
        .map(|id| format!("The task ran now (run #{id}); its outcome is below."));
    let frame = Frame::admin(&state, &current, "tasks", &name)
        .await?
        .with_notice(notice);
    Ok(render(&TaskPage {
        frame,
        next: when(&view.next_run_at),
        schedule: schedule_text(&view),
        name: view.name,
        source: view.source,
        runs,
        just_ran: ran.ran,
    }))
}

/// `POST /admin/tasks/{name}/run`: runs it now and shows its history.
pub async fn run_task(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let run = tasks::run_now(&state, &current.caller, &name).await?;
    Ok(see_other(&format!(
        "/admin/tasks/{}?ran={}",
        urlencode(&name),
        run.id
    )))
}
