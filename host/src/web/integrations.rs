//! `/w/{slug}/settings/integrations`: the workspace's integrations.
//!
//! An integration is configured from the form its adapter's published
//! config schema describes: text, numbers, yes/no, choices and JSON for the
//! rest. Secret settings are write-only: the page says whether each is set
//! and never shows its value; leaving one empty keeps what is stored. Each
//! integration can be turned on and off, sent a test message (the delivery's
//! outcome is shown), and has its delivery log. Members see the list;
//! holders of `integration.manage` change it.

use crate::web::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::items::{when, When};
use super::session::{check_csrf, urlencode, SignedIn};
use super::{render_status, see_other, workspace_access, CsrfForm, Done, Frame, PageError};
use crate::domain::authz::{Access, Permission};
use crate::domain::integrations::{self, IntegrationChanges};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::integrations::{AdapterInfo, DeliveryOutcome};
use crate::state::AppState;
use crate::store::Integration;

/// One setting of an adapter's form, from its config schema.
pub struct SettingInput {
    key: String,
    label: String,
    help: String,
    /// `text`, `secret`, `number`, `boolean`, `choice`, `json`.
    input: &'static str,
    required: bool,
    choices: Vec<String>,
    /// What the form shows (never a secret's value).
    value: String,
    /// For a secret: whether a value is stored.
    is_set: bool,
    /// Whether the value is written as JSON (an object or a list).
    as_json: bool,
}

fn schema_inputs(
    adapter: &AdapterInfo,
    stored: Option<&Integration>,
    typed: &Map<String, Value>,
) -> Vec<SettingInput> {
    let schema = &adapter.config_schema;
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    // Required settings first, in the schema's order, then the rest.
    let mut keys: Vec<&String> = properties.keys().collect();
    keys.sort_by_key(|k| {
        required
            .iter()
            .position(|r| r == k)
            .unwrap_or(required.len())
    });
    keys.into_iter()
        .map(|key| (key, &properties[key]))
        .map(|(key, property)| {
            let secret = adapter.secret_fields.iter().any(|s| s == key);
            let choices: Vec<String> = property["enum"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let input = if secret {
                "secret"
            } else if !choices.is_empty() {
                "choice"
            } else {
                match property["type"].as_str() {
                    Some("integer" | "number") => "number",
                    Some("boolean") => "boolean",
                    Some("string") | None => "text",
                    _ => "json",
                }
            };
            let shown = typed
                .get(key)
                .or_else(|| stored.and_then(|s| s.config.get(key)))
                .or_else(|| {
                    stored
                        .is_none()
                        .then(|| &property["default"])
                        .filter(|d| !d.is_null())
                });
            let value = match (secret, shown) {
                (true, _) | (_, None) => String::new(),
                (false, Some(Value::String(s))) => s.clone(),
                (false, Some(v)) if input == "json" => {
                    serde_json::to_string_pretty(v).unwrap_or_default()
                }
                (false, Some(v)) => v.to_string(),
            };
            SettingInput {
                label: property["title"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| label(key)),
                help: property["description"].as_str().unwrap_or("").to_owned(),
                input,
                required: required.contains(&key.as_str()),
                choices,
                value,
                is_set: secret && stored.is_some_and(|s| s.sealed_secrets.contains_key(key)),
                as_json: matches!(property["type"].as_str(), Some("object" | "array")),
                key: key.clone(),
            }
        })
        .collect()
}

/// A setting's key as a label: `webhook_url` → `Webhook URL`.
fn label(key: &str) -> String {
    let words: Vec<String> = key
        .split('_')
        .map(|w| match w {
            "url" | "id" | "api" | "tls" | "http" | "https" => w.to_uppercase(),
            _ => w.to_owned(),
        })
        .collect();
    super::items::humanise(&words.join(" "))
}

/// The settings a form sent, typed by the adapter's schema. An empty secret
/// is left out (kept); an empty plain setting is left out when creating and
/// removed (`null`) when updating.
fn typed_config(
    adapter: &AdapterInfo,
    sent: &[(String, String)],
    updating: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    let properties = adapter.config_schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (key, property) in &properties {
        let secret = adapter.secret_fields.iter().any(|s| s == key);
        let text = sent
            .iter()
            .rev()
            .find(|(k, _)| k.strip_prefix("config.") == Some(key.as_str()))
            .map(|(_, v)| v.trim().to_owned());
        let kind = property["type"].as_str().unwrap_or("string");
        let value = match (kind, text) {
            ("boolean", text) => Some(Value::Bool(text.as_deref() == Some("true"))),
            (_, None) => None,
            (_, Some(t)) if t.is_empty() => {
                if updating && !secret {
                    out.insert(key.clone(), Value::Null);
                }
                None
            }
            ("integer", Some(t)) => Some(
                t.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(t)),
            ),
            ("number", Some(t)) => Some(
                t.parse::<f64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(t)),
            ),
            ("string", Some(t)) => Some(Value::String(t)),
            (_, Some(t)) => Some(serde_json::from_str(&t).unwrap_or(Value::String(t))),
        };
        if let Some(value) = value {
            out.insert(key.clone(), value);
        }
    }
    out
}

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
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let access = workspace_access(&state, &current, &slug, Permission::WorkspaceRead).await?;
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
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Query(q): Query<NewQuery>,
) -> Result<Response, PageError> {
    let access = workspace_access(&state, &current, &slug, Permission::IntegrationManage).await?;
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

fn refusal_status(e: &DomainError) -> Option<StatusCode> {
    match e {
        DomainError::Invalid { .. } => Some(StatusCode::UNPROCESSABLE_ENTITY),
        DomainError::Conflict(_) => Some(StatusCode::CONFLICT),
        DomainError::Plugin { .. } => Some(StatusCode::BAD_GATEWAY),
        _ => None,
    }
}

/// `POST /w/{slug}/settings/integrations`: creates one.
pub async fn create(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    check_csrf(&current, form_value(&pairs, "csrf"))?;
    let access = workspace_access(&state, &current, &slug, Permission::IntegrationManage).await?;
    let adapter_name = form_value(&pairs, "adapter").to_owned();
    let name = form_value(&pairs, "name").trim().to_owned();
    let Some((_, adapter)) = state.integrations.adapter(&adapter_name) else {
        return Err(PageError::NotFound(format!(
            "No loaded plugin provides the adapter `{adapter_name}`."
        )));
    };
    let config = typed_config(&adapter, &pairs, false);
    match integrations::create(&state, &access, &name, &adapter_name, config.clone()).await {
        Ok(i) => Ok(see_other(&format!(
            "/w/{slug}/settings/integrations/{}?done=created",
            urlencode(&i.name)
        ))),
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
    SignedIn(current): SignedIn,
    Path((slug, name)): Path<(String, String)>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let access = workspace_access(&state, &current, &slug, Permission::WorkspaceRead).await?;
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
    SignedIn(current): SignedIn,
    Path((slug, name)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    check_csrf(&current, form_value(&pairs, "csrf"))?;
    let access = workspace_access(&state, &current, &slug, Permission::IntegrationManage).await?;
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
        Ok(i) => Ok(see_other(&format!(
            "/w/{slug}/settings/integrations/{}?done=saved",
            urlencode(&i.name)
        ))),
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
    SignedIn(current): SignedIn,
    Path((slug, name, action)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let access = workspace_access(&state, &current, &slug, Permission::IntegrationManage).await?;
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        "delete" => {
            integrations::delete(&state, &access, &name).await?;
            return Ok(see_other(&format!(
                "/w/{slug}/settings/integrations?done=deleted"
            )));
        }
        _ => return Err(PageError::NotFound("There is no such action.".into())),
    };
    let changes = IntegrationChanges {
        config: Map::new(),
        enabled: Some(enabled),
    };
    integrations::update(&state, &access, &name, &changes).await?;
    Ok(see_other(&format!(
        "/w/{slug}/settings/integrations/{}?done={}",
        urlencode(&name),
        if enabled { "enabled" } else { "disabled" }
    )))
}

/// The test-message form.
#[derive(Deserialize)]
pub struct TestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// `POST /w/{slug}/settings/integrations/{name}/test`: sends a test message
/// and shows how its delivery went.
pub async fn test(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((slug, name)): Path<(String, String)>,
    Form(form): Form<TestForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let access = workspace_access(&state, &current, &slug, Permission::IntegrationManage).await?;
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
