//! Comments on work items, over JSON. The rules (who may write, change or
//! remove one, how long it may be) are in [`crate::domain::comments`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Principal};
use crate::domain::authz::Permission;
use crate::domain::comments;
use crate::domain::schemas::CommentText;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::comments::Comment;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_comments, add_comment))
        .routes(routes!(edit_comment, remove_comment))
}

/// A comment as the API shows it.
#[derive(Serialize, ToSchema)]
struct ItemComment {
    id: i64,
    /// The work item it is on.
    item: i64,
    /// The author's email (null once their account is gone).
    author: Option<String>,
    /// Plain text.
    body: String,
    created_at: String,
    /// When it was last changed (null: never).
    edited_at: Option<String>,
}

fn view(c: Comment) -> ItemComment {
    ItemComment {
        id: c.id,
        item: c.item_id,
        author: c.author,
        body: c.body,
        created_at: c.created_at,
        edited_at: c.edited_at,
    }
}

#[derive(Serialize, ToSchema)]
struct ItemComments {
    /// Oldest first: the newest 500 when there are more.
    comments: Vec<ItemComment>,
    /// How many the item has in all.
    total: i64,
}

/// A comment's text.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemCommentText {
    /// Plain text (1–10,000 characters; line breaks kept).
    #[schema(value_type = CommentText)]
    body: String,
}

/// The comments on a work item, oldest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/items/{id}/comments", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = ItemComments), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_comments(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<ItemComments>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let (list, total) = comments::list(&state, &access, id).await?;
    Ok(Json(ItemComments {
        comments: list.into_iter().map(view).collect(),
        total,
    }))
}

/// Writes a comment on a work item (needs `item.write`).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/items/{id}/comments", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)), request_body = ItemCommentText,
    responses((status = 201, body = ItemComment), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_comment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
    body: Result<ApiJson<ItemCommentText>, ApiError>,
) -> ApiResult<(StatusCode, Json<ItemComment>)> {
    let access = principal
        .workspace(&state, &slug, Permission::ItemWrite)
        .await?;
    let ApiJson(body) = body?;
    let comment = comments::add(&state, &access, id, &body.body).await?;
    Ok((StatusCode::CREATED, Json(view(comment))))
}

/// Changes a comment's text (its author, or an owner of the workspace).
#[utoipa::path(patch, path = "/api/v1/workspaces/{slug}/items/{id}/comments/{comment}", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path), ("comment" = i64, Path)), request_body = ItemCommentText,
    responses((status = 200, body = ItemComment), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn edit_comment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id, comment)): ApiPath<(String, i64, i64)>,
    body: Result<ApiJson<ItemCommentText>, ApiError>,
) -> ApiResult<Json<ItemComment>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let ApiJson(body) = body?;
    let comment = comments::edit(&state, &access, id, comment, &body.body).await?;
    Ok(Json(view(comment)))
}

/// Removes a comment (its author, or an owner of the workspace); the audit
/// log keeps its text.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/items/{id}/comments/{comment}", tag = "work items", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path), ("comment" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_comment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id, comment)): ApiPath<(String, i64, i64)>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    comments::remove(&state, &access, id, comment).await?;
    Ok(StatusCode::NO_CONTENT)
}
