//! Work items (changes, incidents, tasks) and the workspace's custom field
//! definitions whose values items carry, over JSON. The workflows and the
//! validation of values are in [`crate::domain::work_items`] and
//! [`crate::domain::fields`]; an invalid value is a 422 naming the field and
//! the reason, and nothing is stored.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, ApiQuery, Principal};
use crate::domain::authz::Permission;
use crate::domain::fields::{self, FieldDefinition};
use crate::domain::schemas::{ItemKind, ItemStatus, Line200};
use crate::domain::work_items::{self, ItemChanges, Kind, NewItem, Status};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::work_items::WorkItem;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items, create_item))
        .routes(routes!(get_item, update_item))
        .routes(routes!(transition_item))
        .routes(routes!(transition_items))
        .routes(routes!(list_fields, create_field))
        .routes(routes!(delete_field))
}

/// A work item as the API shows it.
#[derive(Serialize, ToSchema)]
struct ItemView {
    id: i64,
    /// `change`, `incident` or `task`.
    #[schema(value_type = ItemKind)]
    kind: Kind,
    title: String,
    description: String,
    /// Where it is in its workflow.
    #[schema(value_type = ItemStatus)]
    status: Status,
    /// The statuses it may move to next.
    #[schema(value_type = Vec<ItemStatus>)]
    next_statuses: Vec<Status>,
    /// Custom field values by key.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    created_by: Option<String>,
    /// The email of the member working on it (null: nobody).
    assignee: Option<String>,
    created_at: String,
    updated_at: String,
}

fn item_view(item: WorkItem) -> ItemView {
    let next_statuses = work_items::next_statuses(&item);
    ItemView {
        id: item.id,
        kind: item.kind,
        title: item.title,
        description: item.description,
        status: item.status,
        next_statuses,
        fields: item.fields,
        created_by: item.created_by,
        assignee: item.assignee,
        created_at: item.created_at,
        updated_at: item.updated_at,
    }
}

#[derive(Serialize, ToSchema)]
struct ItemList {
    items: Vec<ItemView>,
    /// Pass as `before` to get the next page (null on the last page, and
    /// when the list is sorted or paged with `after`).
    next_before: Option<i64>,
    /// Pass as `after`, with the same `sort` and filters, to get the next
    /// page of a sorted list (null on the last page, and when the list is
    /// paged with `before`).
    next_after: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ItemQuery {
    /// `change`, `incident` or `task`.
    #[param(value_type = Option<ItemKind>)]
    kind: Option<String>,
    /// Only items in this status (with `kind`, one of that kind's statuses).
    #[param(value_type = Option<ItemStatus>)]
    status: Option<String>,
    /// Only items whose title holds this text (any case; `%` and `_` are
    /// plain text; at most 200 characters).
    #[param(max_length = 200)]
    q: Option<String>,
    /// `me`: only items the caller created.
    #[param(value_type = Option<String>, pattern = "^me$")]
    created_by: Option<String>,
    /// Only items assigned to this member: `me` or their email.
    #[param(max_length = 320)]
    assignee: Option<String>,
    /// Only items whose custom field with this key holds `value`.
    #[param(max_length = 64)]
    field: Option<String>,
    /// The value `field` must hold, as text: a number for a number field,
    /// `true`/`false` (or `yes`/`no`) for a yes/no field.
    #[param(max_length = 200)]
    value: Option<String>,
    /// The order: `newest` (the default), `oldest`, `title` (A–Z),
    /// `updated` (most recently changed first), `status` (in workflow
    /// order), `assignee` or `creator` (by email, A–Z), or `field:KEY` (a
    /// custom field's value, smallest first, items without one first).
    #[param(
        pattern = "^(newest|oldest|title|updated|status|assignee|creator|field:[A-Za-z0-9_.-]{1,64})$"
    )]
    sort: Option<String>,
    /// Only items with a smaller id (paging the newest-first list).
    before: Option<i64>,
    /// Only the items after this one in the list's order (paging a sorted
    /// list; pass the last page's `next_after`).
    after: Option<i64>,
    /// At most this many (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The workspace's work items, newest first or in the order asked for.
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
    let page = work_items::list(
        &state,
        &access,
        &work_items::ItemQuery {
            kind: query.kind,
            status: query.status,
            text: query.q,
            mine: match query.created_by.as_deref() {
                None => false,
                Some("me") => true,
                Some(other) => {
                    return Err(crate::domain::DomainError::invalid(
                        "created_by",
                        format!("created_by takes `me`, not `{other}`"),
                    )
                    .into())
                }
            },
            assignee: query.assignee,
            field: field_filter(query.field, query.value)?,
            sort: query.sort,
            before: query.before,
            after: query.after,
            limit: query.limit,
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(ItemList {
        items: page.items.into_iter().map(item_view).collect(),
        next_before: page.next_before,
        next_after: page.next_after,
    }))
}

/// The custom field filter of a list: `field` and `value`, each within its
/// documented length, given together.
fn field_filter(
    field: Option<String>,
    value: Option<String>,
) -> Result<Option<(String, serde_json::Value)>, crate::domain::DomainError> {
    use crate::domain::DomainError;
    for (name, given, max) in [("field", &field, 64), ("value", &value, 200)] {
        if given.as_ref().is_some_and(|t| t.chars().count() > max) {
            return Err(DomainError::invalid(
                name,
                format!("`{name}` may be at most {max} characters"),
            ));
        }
    }
    match (field, value) {
        (Some(key), Some(value)) => Ok(Some((key, serde_json::Value::String(value)))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(DomainError::invalid(
            "value",
            "give the `value` the custom field in `field` must hold",
        )),
        (None, Some(_)) => Err(DomainError::invalid(
            "field",
            "give the custom `field` whose `value` to match",
        )),
    }
}

/// A new work item.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateItem {
    /// `change`, `incident` or `task`.
    #[schema(value_type = ItemKind)]
    kind: String,
    /// One line (1–200 characters).
    #[schema(value_type = Line200)]
    title: String,
    /// Free text (up to 20,000 characters).
    #[serde(default)]
    #[schema(max_length = 20000)]
    description: String,
    /// Custom field values by key.
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
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
    super::idempotency::answer_created(&state, StatusCode::CREATED, |item| item_view(item.clone()));
    let item = work_items::create(
        &state,
        &access,
        NewItem {
            kind: body.kind,
            title: body.title,
            description: body.description,
            fields: body.fields,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(item_view(item))))
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
    let item = work_items::get(&state, &access, id).await?;
    Ok(Json(item_view(item)))
}

/// Changes to a work item; absent members stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateItem {
    /// One line (1–200 characters).
    #[schema(value_type = Option<Line200>)]
    title: Option<String>,
    /// Free text (up to 20,000 characters).
    #[schema(max_length = 20000)]
    description: Option<String>,
    /// Custom field values to set; `null` removes a value.
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    /// The member to work on it, by email (`me`: the caller); `null`
    /// leaves it to nobody.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, max_length = 320)]
    assignee: Option<Option<String>>,
}

/// A member that is present, even as `null` (absent stays `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Edits a work item's title, description, custom field values or
/// assignee (a member of the workspace).
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
    let item = work_items::update(
        &state,
        &access,
        id,
        ItemChanges {
            title: body.title,
            description: body.description,
            fields: body.fields,
            assignee: body.assignee.map(|assignee| {
                assignee.map(|email| match email.trim() {
                    "me" => access.caller.user.email.clone(),
                    _ => email,
                })
            }),
        },
    )
    .await?;
    Ok(Json(item_view(item)))
}

/// A move along the workflow.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Transition {
    /// The status to move to: one of the item's workflow that its current
    /// status leads to (see `next_statuses`).
    #[schema(value_type = ItemStatus)]
    status: String,
    /// Why (recorded in the audit log; up to 2000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
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
    let item = work_items::transition(&state, &access, id, &body.status, &body.comment).await?;
    Ok(Json(item_view(item)))
}

/// A move of many items along their workflows.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkMove {
    /// Only items of this kind move; others are refused as not found.
    #[schema(value_type = Option<ItemKind>)]
    kind: Option<String>,
    /// The items to move (1–500; a repeated id counts once).
    #[schema(min_items = 1, max_items = 500)]
    ids: Vec<i64>,
    /// The status to move them to.
    #[schema(value_type = ItemStatus)]
    status: String,
    /// Why (recorded with each move; up to 2000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    comment: String,
}

/// An item a bulk move did not move, and why.
#[derive(Serialize, ToSchema)]
struct RefusedMove {
    id: i64,
    /// Why, as the move of that item alone would have answered.
    error: crate::error::ErrorDetail,
}

/// What a bulk move did.
#[derive(Serialize, ToSchema)]
struct BulkMoveReport {
    /// The items moved, as they are now.
    moved: Vec<ItemView>,
    /// The items not moved, each with the reason.
    refused: Vec<RefusedMove>,
}

/// Moves many work items to one status. Each is checked and audited as if
/// moved alone (its workflow, `item.write`, `change.approve` to approve or
/// reject a change); one refused item does not stop the others, and the
/// answer says which moved and why the others did not.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/items/transitions", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = BulkMove,
    responses((status = 200, body = BulkMoveReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn transition_items(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<BulkMove>, ApiError>,
) -> ApiResult<Json<BulkMoveReport>> {
    let access = principal
        .workspace(&state, &slug, Permission::ItemWrite)
        .await?;
    let ApiJson(body) = body?;
    let outcome = work_items::bulk_transition(
        &state,
        &access,
        body.kind.as_deref(),
        &body.ids,
        &body.status,
        &body.comment,
    )
    .await?;
    Ok(Json(BulkMoveReport {
        moved: outcome.moved.into_iter().map(item_view).collect(),
        refused: outcome
            .refused
            .into_iter()
            .map(|(id, e)| RefusedMove {
                id,
                error: ApiError::from(e).detail(),
            })
            .collect(),
    }))
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
    let fields = fields::list(&state, &access).await?;
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
    let field = fields::create(&state, &access, &body).await?;
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
    fields::delete(&state, &access, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
