//! `/w/{slug}/settings/integrations`: the workspace's integrations.
//!
//! An integration is configured from the form its adapter's published
//! config schema describes: text, numbers, yes/no, choices and JSON for the
//! rest. Secret settings are write-only: the page says whether each is set
//! and never shows its value; leaving one empty keeps what is stored. Each
//! integration can be turned on and off, sent a test message (the delivery's
//! outcome is shown), and has its delivery log. Members see the list;
//! holders of `integration.manage` change it.

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::items::{when, When};
use super::{render_status, see_other, Done, Frame, PageError};
use crate::domain::authz::{Access, Permission};
use crate::domain::integrations::{self, IntegrationChanges};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::integrations::{AdapterInfo, DeliveryOutcome};
use crate::state::AppState;
use crate::store::integrations::Integration;

mod form;

use form::{schema_inputs, typed_config, SettingInput};

/// An integration in the list.
pub struct IntegrationRow {
    name: String,
    adapter: String,
    adapter_missing: bool,
    enabled: bool,
    secrets: String,
    created: When,
}

#[derive(Template)]
#[template(path = "settings/integrations.html")]
struct ListPage {
    frame: Frame,
    slug: String,
    rows: Vec<IntegrationRow>,
    adapters: Vec<AdapterInfo>,
    can_manage: bool,
}

/// `GET /w/{slug}/settings/integrations`.
pub async fn list(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::WorkspaceRead>,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let adapters = state.integrations.adapters();
    let rows = integrations::list(&state, &access)
        .await?
        .into_iter()
        .map(|i| IntegrationRow {
            adapter_missing: !adapters.iter().any(|a| a.name == i.adapter),
            secrets: i
                .sealed_secrets
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            created: when(&i.created_at),
            name: i.name,
            adapter: i.adapter,
            enabled: i.enabled,
        })
        .collect();
    let frame = Frame::workspace(&state, &current, &access, "settings", "Integrations")
        .await?
        .with_notice(done.notice(&[(
            "deleted",
            "The integration was removed; its delivery log stays.",
        )]));
    Ok(render_status(
        StatusCode::OK,
        &ListPage {
            frame,
            slug,
            rows,
            adapters,
            can_manage: access.can(Permission::IntegrationManage),
        },
    ))
}

#[derive(Template)]
#[template(path = "settings/integration.html")]
struct IntegrationPage {
    frame: Frame,
    slug: String,
    adapter: Option<AdapterInfo>,
    adapter_name: String,
    /// None when creating.
    integration: Option<Integration>,
    name: String,
    inputs: Vec<SettingInput>,
    can_manage: bool,
    error: Option<String>,
    outcome: Option<DeliveryOutcome>,
    deliveries: Vec<DeliveryRow>,
}

/// A delivery in the log.
pub struct DeliveryRow {
    when: When,
    event_type: String,
    source: String,
    ok: bool,
    detail: String,
    error: String,
}

struct Shown {
    typed: Map<String, Value>,
    name: String,
    error: Option<String>,
    outcome: Option<DeliveryOutcome>,
    notice: Option<String>,
    status: StatusCode,
}

impl Shown {
    /// The form again, as typed, with why it was refused.
    fn refused(
        typed: Map<String, Value>,
        name: String,
        e: &DomainError,
        status: StatusCode,
    ) -> Self {
        Shown {
            typed,
            name,
            error: Some(e.to_string()),
            status,
            ..Shown::plain(None)
        }
    }

    fn plain(notice: Option<String>) -> Self {
        Shown {
            typed: Map::new(),
            name: String::new(),
            error: None,
            outcome: None,
            notice,
            status: StatusCode::OK,
        }
    }
}

async fn integration_page(
    state: &AppState,
    current: &Current,
    access: &Access,
    existing: Option<&str>,
    adapter_name: &str,
    shown: Shown,
) -> Result<Response, PageError> {
    let integration = match existing {
        Some(name) => Some(integrations::get(state, access, name).await?),
        None => None,
    };
    let adapter_name = integration
        .as_ref()
        .map_or(adapter_name.to_owned(), |i| i.adapter.clone());
    let adapter = state
        .integrations
        .adapter(&adapter_name)
        .map(|(_, info)| info);
    if integration.is_none() && adapter.is_none() {
        return Err(PageError::NotFound(format!(
            "No loaded plugin provides the adapter `{adapter_name}`."
        )));
    }
    let inputs = adapter
        .as_ref()
        .map(|a| schema_inputs(a, integration.as_ref(), &shown.typed))
        .unwrap_or_default();
    let deliveries = match &integration {
        Some(i) => integrations::deliveries(state, access, &i.name, Some(50))
            .await?
            .into_iter()
            .map(|d| DeliveryRow {
                when: when(&d.created_at),
                event_type: d.event_type,
                source: d.source,
                ok: d.ok,
                detail: d.detail.map(|v| v.to_string()).unwrap_or_default(),
                error: d.error.unwrap_or_default(),
            })
            .collect(),
        None => Vec::new(),
    };
    let title = integration
        .as_ref()
        .map_or_else(|| "New integration".to_owned(), |i| i.name.clone());
    let frame = Frame::workspace(state, current, access, "settings", &title)
        .await?
        .with_notice(shown.notice);
    Ok(render_status(
        shown.status,
        &IntegrationPage {
            frame,
            slug: access.workspace.slug.clone(),
            adapter,
            adapter_name,
            name: shown.name,
            integration,
            inputs,
            can_manage: access.can(Permission::IntegrationManage),
            error: shown.error,
            outcome: shown.outcome,
            deliveries,
        },
    ))
}

/// `?adapter=` for a new integration.
#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    adapter: String,
}

/// `GET /w/{slug}/settings/integrations/new?adapter=…`.
pub async fn new_page(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::IntegrationManage>,
    Query(q): Query<NewQuery>,
) -> Result<Response, PageError> {
    integration_page(
        &state,
        &current,
        &access,
        None,
        &q.adapter,
        Shown::plain(None),
    )
    .await
}

fn form_value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// The status of a refusal the form shows again with its message (a value,
/// a conflict, the adapter's own refusal); None for what is an error page.
fn refusal_status(e: &DomainError) -> Option<StatusCode> {
    matches!(
        e,
        DomainError::Invalid { .. } | DomainError::Conflict(_) | DomainError::Plugin { .. }
    )
    .then(|| super::error::status_of(e))
}

/// `POST /w/{slug}/settings/integrations`: creates one.
pub async fn create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MemberForm {
        current,
        access,
        form: pairs,
        ..
    }: MemberForm<need::IntegrationManage, Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let adapter_name = form_value(&pairs, "adapter").to_owned();
    let name = form_value(&pairs, "name").trim().to_owned();
    let Some((_, adapter)) = state.integrations.adapter(&adapter_name) else {
        return Err(PageError::NotFound(format!(
            "No loaded plugin provides the adapter `{adapter_name}`."
        )));
    };
    let config = typed_config(&adapter, &pairs, false);
    match integrations::create(&state, &access, &name, &adapter_name, config.clone()).await {
        Ok(i) => Ok(see_other(
            &Workspace(&slug).integration(&i.name).done("created"),
        )),
        Err(e) => match refusal_status(&e) {
            Some(status) => {
                integration_page(
                    &state,
                    &current,
                    &access,
                    None,
                    &adapter_name,
                    Shown::refused(config, name, &e, status),
                )
                .await
            }
            None => Err(e.into()),
        },
    }
}

/// `GET /w/{slug}/settings/integrations/{name}`.
pub async fn show(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::WorkspaceRead>,
    Path((_slug, name)): Path<(String, String)>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let notice = done.notice(&[
        (
            "created",
            "The integration was added. Send it a test message to check it.",
        ),
        ("saved", "The settings were saved."),
        (
            "enabled",
            "The integration is on: events are delivered through it.",
        ),
        (
            "disabled",
            "The integration is off: nothing is delivered through it.",
        ),
    ]);
    integration_page(
        &state,
        &current,
        &access,
        Some(&name),
        "",
        Shown::plain(notice),
    )
    .await
}

/// `POST /w/{slug}/settings/integrations/{name}`: saves its settings.
pub async fn update(
    State(state): State<AppState>,
    Path((slug, name)): Path<(String, String)>,
    MemberForm {
        current,
        access,
        form: pairs,
        ..
    }: MemberForm<need::IntegrationManage, Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let stored = integrations::get(&state, &access, &name).await?;
    let Some((_, adapter)) = state.integrations.adapter(&stored.adapter) else {
        return Err(PageError::Domain(DomainError::Conflict(format!(
            "no loaded plugin provides the adapter `{}`; its settings cannot be checked until an operator installs or enables it",
            stored.adapter
        ))));
    };
    let config = typed_config(&adapter, &pairs, true);
    let changes = IntegrationChanges {
        config: config.clone(),
        enabled: None,
    };
    match integrations::update(&state, &access, &name, &changes).await {
        Ok(i) => Ok(see_other(
            &Workspace(&slug).integration(&i.name).done("saved"),
        )),
        Err(e) => match refusal_status(&e) {
            Some(status) => {
                integration_page(
                    &state,
                    &current,
                    &access,
                    Some(&name),
                    "",
                    Shown::refused(
                        config.into_iter().filter(|(_, v)| !v.is_null()).collect(),
                        String::new(),
                        &e,
                        status,
                    ),
                )
                .await
            }
            None => Err(e.into()),
        },
    }
}

/// `POST /w/{slug}/settings/integrations/{name}/{enable|disable|delete}`.
pub async fn change(
    State(state): State<AppState>,
    Path((slug, name, action)): Path<(String, String, String)>,
    MemberForm { access, .. }: MemberForm<need::IntegrationManage>,
) -> Result<Response, PageError> {
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        "delete" => {
            integrations::delete(&state, &access, &name).await?;
            return Ok(see_other(&Workspace(&slug).integrations().done("deleted")));
        }
        _ => return Err(PageError::NotFound("There is no such action.".into())),
    };
    let changes = IntegrationChanges {
        config: Map::new(),
        enabled: Some(enabled),
    };
    integrations::update(&state, &access, &name, &changes).await?;
    Ok(see_other(
        &Workspace(&slug)
            .integration(&name)
            .done(if enabled { "enabled" } else { "disabled" }),
    ))
}

/// The test-message form.
#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default)]
    text: String,
}

/// `POST /w/{slug}/settings/integrations/{name}/test`: sends a test message
/// and shows how its delivery went.
pub async fn test(
    State(state): State<AppState>,
    Path((_slug, name)): Path<(String, String)>,
    MemberForm {
        current,
        access,
        form,
        ..
    }: MemberForm<need::IntegrationManage, TestForm>,
) -> Result<Response, PageError> {
    let text = Some(form.text.trim()).filter(|t| !t.is_empty());
    let (outcome, error) = match integrations::test(&state, &access, &name, text).await {
        Ok(outcome) => (Some(outcome), None),
        Err(e @ DomainError::Invalid { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    integration_page(
        &state,
        &current,
        &access,
        Some(&name),
        "",
        Shown {
            status: if error.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            },
            error,
            outcome,
            ..Shown::plain(None)
        },
    )
    .await
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/w/{slug}/settings/integrations", get(list).post(create))
        .route("/w/{slug}/settings/integrations/new", get(new_page))
        .route(
            "/w/{slug}/settings/integrations/{name}",
            get(show).post(update),
        )
        .route("/w/{slug}/settings/integrations/{name}/test", post(test))
        .route(
            "/w/{slug}/settings/integrations/{name}/{action}",
            post(change),
        )
}
