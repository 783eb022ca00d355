//! `/admin/plugins` (platform admins): every plugin the server has seen,
//! loaded or not, with what it registered and its frontend files, or the
//! reason it is not running and what to do about it; enable and disable.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Form;

use super::session::{check_csrf, SignedIn};
use super::{render, see_other, CsrfForm, Done, Frame, PageError};
use crate::domain::plugins;
use crate::plugins::State as PluginState;
use crate::state::AppState;

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
    can_enable: bool,
    can_disable: bool,
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
                    can_enable: state == PluginState::Disabled
                        && matches!(
                            e.reason(),
                            Some(
                                crate::plugins::Reason::DisabledByAdmin
                                    | crate::plugins::Reason::DisabledAfterPanics
                            )
                        ),
                    can_disable: loaded,
                }
            })
            .collect()
    })
    .await
    .map_err(|e| crate::domain::DomainError::Internal(format!("listing plugins failed: {e}")))?;
    let loaded = rows.iter().filter(|r| r.state == "loaded").count();
    let notice = match (done.done.as_deref(), done.about) {
        (Some("enabled"), Some(p)) => Some(format!("{p} is enabled.")),
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

/// `POST /admin/plugins/{name}/{enable|disable}`.
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
        _ => return Err(PageError::NotFound("There is no such action.".into())),
    };
    Ok(see_other(&format!(
        "/admin/plugins?done={done}&about={}",
        super::session::urlencode(&name)
    )))
}
