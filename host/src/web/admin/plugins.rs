//! `/admin/plugins`: every plugin the server has seen, loaded or not, with
//! what it registered and its frontend files, or the reason it is not
//! running and what to do about it; enable and disable.

use crate::web::extract::SignedForm;
use crate::web::urls::admin;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use crate::domain::plugins;
use crate::plugins::State as PluginState;
use crate::state::AppState;
use crate::web::plugin_costs;
use crate::web::session::SignedIn;
use crate::web::{render, see_other, Done, Frame, PageError};

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
    Path((name, action)): Path<(String, String)>,
    SignedForm { current, .. }: SignedForm,
) -> Result<Response, PageError> {
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
    Ok(see_other(&admin::plugins().done(done).about(&name)))
}
