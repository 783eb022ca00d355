//! Work items (changes, incidents, tasks) with their workflows, and the
//! workspace's custom field definitions whose values items carry.
//!
//! A value is validated when it is written: built-in types here, plugin
//! field types by their plugin (with the workspace's slug and settings as
//! context). An invalid value is a 422 naming the field and the reason, and
//! nothing is stored.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigilo_sdk::{wire::ValidateRequest, FieldContext, PluginKind};

use super::extract::{Access, ApiJson, ApiPath, ApiQuery, Principal};
use super::validate;
use crate::audit::{self, Actor, NewEvent};
use crate::authz::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::plugins::{PluginCallError, BUILTIN_FIELD_TYPES};
use crate::state::AppState;
use crate::store::{self, CustomField, NewWorkItem, WorkItem, Workspace};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items, create_item))
        .routes(routes!(get_item, update_item))
        .routes(routes!(transition_item))
        .routes(routes!(list_fields, create_field))
        .routes(routes!(delete_field))
}

/// A kind's workflow: its first status and its allowed moves.
pub struct Workflow {
    /// Status of a new item.
    pub initial: &'static str,
    /// Every status, in workflow order.
    pub statuses: &'static [&'static str],
    /// `(from, to)` moves.
    pub moves: &'static [(&'static str, &'static str)],
}

/// The workflow of `kind`.
pub fn workflow(kind: &str) -> Option<&'static Workflow> {
    const CHANGE: Workflow = Workflow {
        initial: "draft",
        statuses: &[
            "draft",
            "pending_approval",
            "approved",
            "rejected",
            "in_progress",
            "done",
        ],
        moves: &[
            ("draft", "pending_approval"),
            ("pending_approval", "draft"),
            ("pending_approval", "approved"),
            ("pending_approval", "rejected"),
            ("rejected", "draft"),
            ("approved", "in_progress"),
            ("in_progress", "done"),
        ],
    };
    const INCIDENT: Workflow = Workflow {
        initial: "open",
        statuses: &["open", "investigating", "mitigated", "resolved"],
        moves: &[
            ("open", "investigating"),
            ("investigating", "mitigated"),
            ("investigating", "resolved"),
            ("mitigated", "investigating"),
            ("mitigated", "resolved"),
            ("resolved", "open"),
        ],
    };
    const TASK: Workflow = Workflow {
        initial: "todo",
        statuses: &["todo", "doing", "done"],
        moves: &[
            ("todo", "doing"),
            ("doing", "done"),
            ("doing", "todo"),
            ("done", "todo"),
        ],
    };
    match kind {
        "change" => Some(&CHANGE),
        "incident" => Some(&INCIDENT),
        "task" => Some(&TASK),
        _ => None,
    }
}

impl Workflow {
    fn next(&self, from: &str) -> Vec<&'static str> {
        self.moves
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, t)| *t)
            .collect()
    }
}

fn check_kind(field: &str, kind: &str) -> ApiResult<&'static Workflow> {
    workflow(kind).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!("unknown kind `{kind}`: use change, incident or task"),
        )
    })
}

/// A work item as the API shows it.
#[derive(Serialize, ToSchema)]
struct ItemView {
    id: i64,
    /// `change`, `incident` or `task`.
    kind: String,
    title: String,
    description: String,
    /// Where it is in its workflow.
    status: String,
    /// The statuses it may move to next.
    next_statuses: Vec<&'static str>,
    /// Custom field values by key.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    created_by: Option<String>,
    created_at: String,
    updated_at: String,
}

fn item_view(item: WorkItem) -> ItemView {
    let next_statuses = workflow(&item.kind)
        .map(|w| w.next(&item.status))
        .unwrap_or_default();
    ItemView {
        id: item.id,
        kind: item.kind,
        title: item.title,
        description: item.description,
        status: item.status,
        next_statuses,
        fields: item.fields,
        created_by: item.created_by,
        created_at: item.created_at,
        updated_at: item.updated_at,
    }
}

#[derive(Serialize, ToSchema)]
struct ItemList {
    items: Vec<ItemView>,
    /// Pass as `before` to get the next page (null on the last page).
    next_before: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ItemQuery {
    /// `change`, `incident` or `task`.
    kind: Option<String>,
    /// Only items in this status.
    status: Option<String>,
    /// Only items with a smaller id (paging).
    before: Option<i64>,
    /// At most this many (1–500, default 100).
    limit: Option<i64>,
}

/// The workspace's work items, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/items", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ItemQuery),
    responses((status = 200, body = ItemList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_items(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    ApiQuery(query): ApiQuery<ItemQuery>,
) -> ApiResult<Json<ItemList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    if let Some(kind) = &query.kind {
        let flow = check_kind("kind", kind)?;
        if let Some(status) = &query.status {
            if !flow.statuses.contains(&status.as_str()) {
                return Err(ApiError::invalid(
                    "status",
                    format!(
                        "a {kind} has no status `{status}`; its statuses are {}",
                        flow.statuses.join(", ")
                    ),
                ));
            }
        }
    }
    let limit = validate::limit(query.limit, 100, 500)?;
    let items = state
        .store
        .list_work_items(
            access.workspace.id,
            query.kind.as_deref(),
            query.status.as_deref(),
            query.before,
            limit,
        )
        .await?;
    let next_before = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i.id))
        .flatten();
    Ok(Json(ItemList {
        items: items.into_iter().map(item_view).collect(),
        next_before,
    }))
}

/// A new work item.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateItem {
    /// `change`, `incident` or `task`.
    kind: String,
    /// One line (1–200 characters).
    title: String,
    /// Free text (up to 20,000 characters).
    #[serde(default)]
    description: String,
    /// Custom field values by key.
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
}

const MAX_DESCRIPTION: usize = 20_000;

fn description(value: &str) -> ApiResult<String> {
    if value.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "description",
            format!("`description` is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(value.trim().to_owned())
}

fn action(kind: &str, what: &str) -> &'static str {
    match (kind, what) {
        ("change", "create") => "change.create",
        ("change", "update") => "change.update",
        ("change", "approved") => "change.approve",
        ("change", "rejected") => "change.reject",
        ("change", _) => "change.transition",
        ("incident", "create") => "incident.create",
        ("incident", "update") => "incident.update",
        ("incident", _) => "incident.transition",
        ("task", "create") => "task.create",
        ("task", "update") => "task.update",
        _ => "task.transition",
    }
}

/// Creates a change, incident or task in its workflow's first status.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/items", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = CreateItem,
    responses((status = 201, body = ItemView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn create_item(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<CreateItem>, ApiError>,
) -> ApiResult<(StatusCode, Json<ItemView>)> {
    let access = principal
        .workspace(&state, &slug, Permission::ItemWrite)
        .await?;
    let ApiJson(body) = body?;
    let item = create_item_as(
        &state,
        &access,
        &principal.actor(),
        &body.kind,
        &body.title,
        &body.description,
        body.fields,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(item_view(item))))
}

/// Checks a new work item as [`create_item_as`] would (permission, title,
/// description, custom field values, validated by plugins where the type
/// is theirs) without storing anything; returns what would be stored.
pub(crate) async fn check_new_item(
    state: &AppState,
    access: &Access,
    kind: &str,
    title: &str,
    description_text: &str,
    field_values: Map<String, Value>,
) -> ApiResult<(String, String, Map<String, Value>)> {
    access.require(Permission::ItemWrite)?;
    check_kind("kind", kind)?;
    let title = validate::text("title", title, 200)?;
    let description = description(description_text)?;
    let definitions = state.store.custom_fields(access.workspace.id).await?;
    let fields = apply_field_values(
        state,
        &access.workspace,
        kind,
        &definitions,
        &Map::new(),
        field_values,
        true,
    )
    .await?;
    Ok((title, description, fields))
}

/// Creates a work item in `access`'s workspace as `actor` (who must hold
/// `item.write`), validating custom fields, audited. Shared by the API and
/// playbook steps.
pub(crate) async fn create_item_as(
    state: &AppState,
    access: &Access,
    actor: &Actor,
    kind: &str,
    title: &str,
    description_text: &str,
    field_values: Map<String, Value>,
) -> ApiResult<WorkItem> {
    let (title, description, fields) =
        check_new_item(state, access, kind, title, description_text, field_values).await?;
    let flow = check_kind("kind", kind)?;
    let created_by = actor
        .user_id
        .ok_or_else(|| ApiError::Internal("a work item must be created by a user".into()))?;
    let mut tx = state.store.begin_write().await?;
    let item = store::insert_work_item(
        &mut tx,
        access.workspace.id,
        NewWorkItem {
            kind,
            title: &title,
            description: &description,
            status: flow.initial,
            fields: &fields,
            created_by,
        },
    )
    .await?;
    audit::append(
        &mut tx,
        actor,
        NewEvent::new(
            Some(access.workspace.id),
            action(kind, "create"),
            item.id.to_string(),
            json!({"kind": item.kind, "title": item.title, "status": item.status, "fields": item.fields}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(item)
}

/// One work item.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/items/{id}", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = ItemView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_item(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<ItemView>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let item = state.store.work_item(access.workspace.id, id).await?;
    Ok(Json(item_view(item)))
}

/// Changes to a work item; absent members stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateItem {
    title: Option<String>,
    description: Option<String>,
    /// Custom field values to set; `null` removes a value.
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
}

/// Edits a work item's title, description or custom field values.
#[utoipa::path(patch, path = "/api/v1/workspaces/{slug}/items/{id}", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)), request_body = UpdateItem,
    responses((status = 200, body = ItemView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn update_item(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
    body: Result<ApiJson<UpdateItem>, ApiError>,
) -> ApiResult<Json<ItemView>> {
    let access = principal
        .workspace(&state, &slug, Permission::ItemWrite)
        .await?;
    let ApiJson(body) = body?;
    let current = state.store.work_item(access.workspace.id, id).await?;
    let title = body
        .title
        .as_deref()
        .map(|t| validate::text("title", t, 200))
        .transpose()?;
    let description = body.description.as_deref().map(description).transpose()?;
    let definitions = state.store.custom_fields(access.workspace.id).await?;
    let changed_keys: Vec<String> = body.fields.keys().cloned().collect();
    let fields = apply_field_values(
        &state,
        &access.workspace,
        &current.kind,
        &definitions,
        &current.fields,
        body.fields,
        false,
    )
    .await?;
    let mut tx = state.store.begin_write().await?;
    // Re-read inside the transaction so a concurrent status move is kept.
    let mut item = store::work_item_in(&mut tx, access.workspace.id, id).await?;
    if let Some(title) = title {
        item.title = title;
    }
    if let Some(description) = description {
        item.description = description;
    }
    for key in &changed_keys {
        match fields.get(key) {
            Some(v) => item.fields.insert(key.clone(), v.clone()),
            None => item.fields.remove(key),
        };
    }
    let item = store::update_work_item(&mut tx, access.workspace.id, &item).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            action(&item.kind, "update"),
            item.id.to_string(),
            json!({
                "title": body.title.is_some().then_some(&item.title),
                "description_changed": body.description.is_some(),
                "fields": changed_keys.iter().map(|k| (k.clone(), item.fields.get(k).cloned().unwrap_or(Value::Null))).collect::<Map<_, _>>(),
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(item_view(item)))
}

/// A move along the workflow.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Transition {
    /// The status to move to.
    status: String,
    /// Why (recorded in the audit log).
    #[serde(default)]
    comment: String,
}

/// Moves a work item along its workflow. Approving or rejecting a change
/// needs `change.approve`.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/items/{id}/transition", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)), request_body = Transition,
    responses((status = 200, body = ItemView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn transition_item(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
    body: Result<ApiJson<Transition>, ApiError>,
) -> ApiResult<Json<ItemView>> {
    let access = principal
        .workspace(&state, &slug, Permission::ItemWrite)
        .await?;
    let ApiJson(body) = body?;
    if body.comment.chars().count() > 2000 {
        return Err(ApiError::invalid(
            "comment",
            "`comment` is longer than 2000 characters",
        ));
    }
    let item = transition_as(
        &state,
        &access,
        &principal.actor(),
        id,
        &body.status,
        &body.comment,
    )
    .await?;
    Ok(Json(item_view(item)))
}

/// Why `item` cannot move to `status` for `access`, if it cannot: an
/// unknown status (422), a move the workflow does not allow (409), or a
/// missing permission (403). Playbook dry runs use it to check a step.
pub(crate) fn check_transition(access: &Access, item: &WorkItem, status: &str) -> ApiResult<()> {
    access.require(Permission::ItemWrite)?;
    let flow = workflow(&item.kind).ok_or_else(|| {
        ApiError::Internal(format!(
            "work item {} has unknown kind {}",
            item.id, item.kind
        ))
    })?;
    if !flow.statuses.contains(&status) {
        return Err(ApiError::invalid(
            "status",
            format!(
                "a {} has no status `{status}`; its statuses are {}",
                item.kind,
                flow.statuses.join(", ")
            ),
        ));
    }
    let next = flow.next(&item.status);
    if !next.contains(&status) {
        return Err(ApiError::Conflict(format!(
            "{} {} is {} and cannot move to {status}; from {} it can move to: {}",
            item.kind,
            item.id,
            item.status,
            item.status,
            if next.is_empty() {
                "nothing".to_owned()
            } else {
                next.join(", ")
            }
        )));
    }
    if item.kind == "change" && matches!(status, "approved" | "rejected") {
        access.require(Permission::ChangeApprove)?;
    }
    Ok(())
}

/// Moves work item `id` to `status` as `actor`, audited.
pub(crate) async fn transition_as(
    state: &AppState,
    access: &Access,
    actor: &Actor,
    id: i64,
    status: &str,
    comment: &str,
) -> ApiResult<WorkItem> {
    if comment.chars().count() > 2000 {
        return Err(ApiError::invalid(
            "comment",
            "`comment` is longer than 2000 characters",
        ));
    }
    let mut tx = state.store.begin_write().await?;
    let mut item = store::work_item_in(&mut tx, access.workspace.id, id).await?;
    check_transition(access, &item, status)?;
    let from = std::mem::replace(&mut item.status, status.to_owned());
    let item = store::update_work_item(&mut tx, access.workspace.id, &item).await?;
    audit::append(
        &mut tx,
        actor,
        NewEvent::new(
            Some(access.workspace.id),
            action(&item.kind, &item.status),
            item.id.to_string(),
            json!({"kind": item.kind, "from": from, "to": item.status, "comment": comment}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(item)
}

/// Validates `changes` (key → value, `null` removes) against the
/// definitions and returns the resulting values. On create every required
/// field must be present; on update a required value cannot be removed.
async fn apply_field_values(
    state: &AppState,
    workspace: &Workspace,
    kind: &str,
    definitions: &[CustomField],
    current: &Map<String, Value>,
    changes: Map<String, Value>,
    creating: bool,
) -> ApiResult<Map<String, Value>> {
    let mut result = current.clone();
    for (key, value) in changes {
        let field_name = format!("fields.{key}");
        let definition = definitions
            .iter()
            .find(|d| d.key == key && d.applies_to.iter().any(|k| k == kind))
            .ok_or_else(|| {
                ApiError::invalid(
                    &field_name,
                    format!("this workspace has no custom field `{key}` for a {kind}"),
                )
            })?;
        if value.is_null() {
            if definition.required {
                return Err(ApiError::invalid(
                    &field_name,
                    format!("field `{key}` is required and cannot be removed"),
                ));
            }
            result.remove(&key);
            continue;
        }
        let normalised = validate_value(state, workspace, definition, value).await?;
        result.insert(key, normalised);
    }
    if creating {
        if let Some(missing) = definitions.iter().find(|d| {
            d.required && d.applies_to.iter().any(|k| k == kind) && !result.contains_key(&d.key)
        }) {
            return Err(ApiError::invalid(
                format!("fields.{}", missing.key),
                format!("field `{}` ({}) is required", missing.key, missing.label),
            ));
        }
    }
    Ok(result)
}

/// Validates one value of `definition`; returns the value to store.
async fn validate_value(
    state: &AppState,
    workspace: &Workspace,
    definition: &CustomField,
    value: Value,
) -> ApiResult<Value> {
    let key = &definition.key;
    let field_name = format!("fields.{key}");
    let invalid =
        |reason: String| ApiError::invalid(&field_name, format!("field `{key}`: {reason}"));
    match definition.field_type.as_str() {
        "text" => match &value {
            Value::String(s) if s.chars().count() <= 10_000 => Ok(value),
            Value::String(_) => Err(invalid("text may be at most 10,000 characters".into())),
            _ => Err(invalid(format!("expected text, got {value}"))),
        },
        "number" => match value {
            Value::Number(_) => Ok(value),
            _ => Err(invalid(format!("expected a number, got {value}"))),
        },
        "boolean" => match value {
            Value::Bool(_) => Ok(value),
            _ => Err(invalid(format!("expected true or false, got {value}"))),
        },
        "date" => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            match value.as_str().map(|s| time::Date::parse(s.trim(), format)) {
                Some(Ok(date)) => Ok(Value::String(date.format(format).unwrap_or_default())),
                _ => Err(invalid(format!(
                    "expected a date like 2026-12-24, got {value}"
                ))),
            }
        }
        "select" => match value.as_str() {
            Some(choice) if definition.options.iter().any(|o| o == choice) => Ok(value),
            _ => Err(invalid(format!(
                "{value} is not one of the options: {}",
                definition.options.join(", ")
            ))),
        },
        plugin_type => {
            let (entry, _) = state
                .plugins
                .registration(PluginKind::FieldType, plugin_type)
                .ok_or_else(|| ApiError::Plugin {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "plugin_unavailable",
                    message: format!(
                        "field `{key}` has type `{plugin_type}`, but no loaded plugin provides it; ask an operator to install or enable it"
                    ),
                })?;
            let settings = match &workspace.settings {
                Value::Object(map) => map.clone(),
                _ => Map::new(),
            };
            let request = ValidateRequest {
                name: plugin_type.to_owned(),
                value,
                context: FieldContext {
                    workspace: workspace.slug.clone(),
                    settings,
                },
            };
            match state
                .plugins
                .call(&entry, move |handle| handle.validate_field(&request))
                .await
            {
                Ok(value) => Ok(value),
                Err(PluginCallError::Rejected { message, .. }) => Err(invalid(message)),
                Err(other) => Err(other.into()),
            }
        }
    }
}

/// A custom field definition.
#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct FieldDefinition {
    /// Key in work items' `fields`: 1–64 of letters, digits, `_`, `-`, `.`.
    pub key: String,
    /// Label shown in forms.
    pub label: String,
    /// Which kinds carry it: any of `change`, `incident`, `task`.
    pub applies_to: Vec<String>,
    /// `text`, `number`, `boolean`, `date`, `select`, or a plugin field type
    /// (see `GET /api/v1/field-types`).
    #[serde(rename = "type")]
    pub field_type: String,
    /// Whether every new item must have a value.
    #[serde(default)]
    pub required: bool,
    /// For `select`: the allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl FieldDefinition {
    /// Checks the definition's shape (not whether a plugin type is loaded).
    pub fn parse(&self) -> ApiResult<CustomField> {
        let key = validate::identifier("key", &self.key)?;
        let label = validate::text("label", &self.label, 100)?;
        if self.applies_to.is_empty() {
            return Err(ApiError::invalid(
                "applies_to",
                "`applies_to` must name at least one of change, incident, task",
            ));
        }
        let mut applies_to = Vec::new();
        for kind in &self.applies_to {
            check_kind("applies_to", kind)?;
            if !applies_to.contains(kind) {
                applies_to.push(kind.clone());
            }
        }
        let field_type = self.field_type.trim().to_owned();
        if field_type.is_empty() {
            return Err(ApiError::invalid("type", "`type` must not be empty"));
        }
        let options: Vec<String> = self.options.iter().map(|o| o.trim().to_owned()).collect();
        if field_type == "select" {
            if options.is_empty() || options.iter().any(String::is_empty) {
                return Err(ApiError::invalid(
                    "options",
                    "a select field needs a non-empty list of non-empty options",
                ));
            }
        } else if !options.is_empty() {
            return Err(ApiError::invalid(
                "options",
                "only select fields have options",
            ));
        }
        Ok(CustomField {
            key,
            label,
            applies_to,
            field_type,
            required: self.required,
            options,
        })
    }

    /// The API form of a stored definition.
    pub fn from_stored(field: CustomField) -> Self {
        FieldDefinition {
            key: field.key,
            label: field.label,
            applies_to: field.applies_to,
            field_type: field.field_type,
            required: field.required,
            options: field.options,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct FieldList {
    fields: Vec<FieldDefinition>,
}

/// The workspace's custom field definitions.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/fields", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = FieldList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_fields(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<FieldList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let fields = state.store.custom_fields(access.workspace.id).await?;
    Ok(Json(FieldList {
        fields: fields
            .into_iter()
            .map(FieldDefinition::from_stored)
            .collect(),
    }))
}

/// Defines a custom field. Its type must be built in or provided by a
/// loaded plugin.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/fields", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = FieldDefinition,
    responses((status = 201, body = FieldDefinition), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_field(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<FieldDefinition>, ApiError>,
) -> ApiResult<(StatusCode, Json<FieldDefinition>)> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceSettings)
        .await?;
    let ApiJson(body) = body?;
    let field = body.parse()?;
    if !BUILTIN_FIELD_TYPES.contains(&field.field_type.as_str())
        && state
            .plugins
            .registration(PluginKind::FieldType, &field.field_type)
            .is_none()
    {
        let plugin_types: Vec<String> = state
            .plugins
            .registrations(PluginKind::FieldType)
            .into_iter()
            .map(|(_, r)| r.name().to_owned())
            .collect();
        return Err(ApiError::invalid(
            "type",
            format!(
                "unknown field type `{}`; available: {}",
                field.field_type,
                BUILTIN_FIELD_TYPES
                    .iter()
                    .map(|s| s.to_string())
                    .chain(plugin_types)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut tx = state.store.begin_write().await?;
    store::insert_custom_field(&mut tx, access.workspace.id, &field).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "field.create",
            field.key.clone(),
            json!({"label": field.label, "type": field.field_type, "applies_to": field.applies_to,
                   "required": field.required, "options": field.options}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(FieldDefinition::from_stored(field)),
    ))
}

/// Deletes a custom field definition. Values already stored on items are
/// kept but no longer validated.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/fields/{key}", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ("key" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_field(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, key)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceSettings)
        .await?;
    let mut tx = state.store.begin_write().await?;
    let field = store::delete_custom_field(&mut tx, access.workspace.id, &key).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "field.delete",
            field.key.clone(),
            json!({"type": field.field_type}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
