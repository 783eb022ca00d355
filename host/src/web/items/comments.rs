//! Comments on the item page: writing one, changing or removing one's own
//! (an owner may change or remove any).

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::form::writer;
use super::show::{page, Problem};
use super::{access, item_of_kind, kind_of};
use crate::domain::comments;
use crate::domain::DomainError;
use crate::state::AppState;
use crate::web::extract::SignedForm;
use crate::web::{see_other, PageError};

/// A comment's form.
#[derive(Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    body: String,
}

/// The item page again, with what `body` held and why it was refused;
/// any other failure is the error page.
async fn refused(
    state: &AppState,
    current: &crate::domain::sessions::Current,
    access: &crate::domain::authz::Access,
    kind: super::Kind,
    id: i64,
    body: String,
    error: DomainError,
) -> Result<Response, PageError> {
    let DomainError::Invalid { message, .. } = error else {
        return Err(error.into());
    };
    let item = item_of_kind(state, access, kind, id).await?;
    let problem = Problem {
        field: "body",
        value: body,
        message,
    };
    page(state, current, access, kind, item, None, Some(problem)).await
}

/// `POST /w/{slug}/{kind}/{id}/comments`.
pub async fn add(
    State(state): State<AppState>,
    Path((slug, segment, id)): Path<(String, String, i64)>,
    SignedForm { current, form }: SignedForm<CommentForm>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = writer(&state, &current, &slug).await?;
    item_of_kind(&state, &access, kind, id).await?;
    match comments::add(&state, &access, id, &form.body).await {
        Ok(comment) => Ok(see_other(&kind.item_url(
            &slug,
            id,
            &format!("?done=commented#comment-{}", comment.id),
        ))),
        Err(e) => refused(&state, &current, &access, kind, id, form.body, e).await,
    }
}

/// `POST /w/{slug}/{kind}/{id}/comments/{comment}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    Path((slug, segment, id, comment)): Path<(String, String, i64, i64)>,
    SignedForm { current, form }: SignedForm<CommentForm>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = access(&state, &current, &slug).await?;
    item_of_kind(&state, &access, kind, id).await?;
    match comments::edit(&state, &access, id, comment, &form.body).await {
        Ok(_) => Ok(see_other(&kind.item_url(
            &slug,
            id,
            &format!("?done=comment_saved#comment-{comment}"),
        ))),
        Err(e) => refused(&state, &current, &access, kind, id, form.body, e).await,
    }
}

/// `POST /w/{slug}/{kind}/{id}/comments/{comment}/delete`.
pub async fn remove(
    State(state): State<AppState>,
    Path((slug, segment, id, comment)): Path<(String, String, i64, i64)>,
    SignedForm { current, .. }: SignedForm,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let access = access(&state, &current, &slug).await?;
    item_of_kind(&state, &access, kind, id).await?;
    comments::remove(&state, &access, id, comment).await?;
    Ok(see_other(&kind.item_url(
        &slug,
        id,
        "?done=comment_removed#comments",
    )))
}
