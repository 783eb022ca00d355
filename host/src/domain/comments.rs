//! Comments on work items: plain text that members write on an item's
//! page, through the API or with the CLI.
//!
//! Anyone who may read the workspace reads them; writing one needs
//! `item.write`; changing or removing one is for its author or an owner of
//! the workspace. Every write is audited (`comment.create`,
//! `comment.update`, `comment.delete`, their target the comment's id, their
//! details the item and the text), so a removed comment's words stay in the
//! audit log.

use serde_json::json;

use super::{record, DomainError, DomainResult, Reach};
use crate::domain::authz::{Access, Permission, Role};
use crate::store::comments::{self, Comment};

/// The longest comment, in characters.
pub const MAX_BODY: usize = 10_000;

/// The most comments an item's page and the API list (the newest).
pub const MAX_LISTED: i64 = 500;

/// A comment's text, trimmed: at most [`MAX_BODY`] characters as sent, not
/// only white space, and no control characters but line breaks and tabs.
fn body(text: &str) -> DomainResult<String> {
    // The length as sent, before trimming, as the API's document says.
    let n = text.chars().count();
    let text = text.trim();
    if text.is_empty() {
        return Err(DomainError::invalid("body", "A comment needs some text."));
    }
    if n > MAX_BODY {
        return Err(DomainError::invalid(
            "body",
            format!("A comment is at most {MAX_BODY} characters long; this one has {n}."),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(DomainError::invalid(
            "body",
            "A comment may not hold control characters other than line breaks and tabs.",
        ));
    }
    Ok(text.replace("\r\n", "\n"))
}

/// Whether `access` may change or remove `comment`: its author, or an owner.
pub fn may_change(access: &Access, comment: &Comment) -> bool {
    let author = comment.author_id == Some(access.caller.user.id) && access.caller.plugin.is_none();
    let owner = access
        .membership
        .as_ref()
        .is_some_and(|m| m.role == Role::Owner && m.custom_role.is_none());
    (author && access.can(Permission::ItemWrite)) || owner
}

fn refuse_change() -> DomainError {
    DomainError::forbidden(
        "comment_author",
        "Only the author of a comment or an owner of the workspace may change or remove it.",
    )
}

/// The comments on item `item_id`, oldest first (the newest
/// [`MAX_LISTED`]), and how many it has in all (needs `workspace.read`).
pub async fn list(
    state: &dyn Reach,
    access: &Access,
    item_id: i64,
) -> DomainResult<(Vec<Comment>, i64)> {
    access.require(Permission::WorkspaceRead)?;
    state
        .store()
        .work_item(access.workspace.id, item_id)
        .await?;
    Ok(state
        .store()
        .comments_on(access.workspace.id, item_id, MAX_LISTED)
        .await?)
}

/// Writes a comment on item `item_id` (needs `item.write`).
pub async fn add(
    state: &dyn Reach,
    access: &Access,
    item_id: i64,
    text: &str,
) -> DomainResult<Comment> {
    access.require(Permission::ItemWrite)?;
    if access.caller.plugin.is_some() {
        return Err(DomainError::forbidden(
            "person",
            "Comments are written by people, not plugins.",
        ));
    }
    let text = body(text)?;
    let mut tx = state.store().begin_write().await?;
    let item =
        crate::store::work_items::work_item_in(&mut tx, access.workspace.id, item_id).await?;
    let comment = comments::insert(
        &mut tx,
        access.workspace.id,
        item.id,
        access.caller.user.id,
        &text,
    )
    .await?;
    record(
        &mut tx,
        access,
        "comment.create",
        comment.id.to_string(),
        json!({"item": item.id, "kind": item.kind, "body": text}),
    )
    .await?;
    tx.commit().await?;
    Ok(comment)
}

/// Replaces the text of comment `id` on item `item_id` (its author, or an
/// owner).
pub async fn edit(
    state: &dyn Reach,
    access: &Access,
    item_id: i64,
    id: i64,
    text: &str,
) -> DomainResult<Comment> {
    access.require(Permission::WorkspaceRead)?;
    let text = body(text)?;
    let mut tx = state.store().begin_write().await?;
    let before = comments::get_in(&mut tx, access.workspace.id, item_id, id).await?;
    if !may_change(access, &before) {
        return Err(refuse_change());
    }
    if before.body == text {
        return Ok(before);
    }
    let comment = comments::update(&mut tx, access.workspace.id, item_id, id, &text).await?;
    record(
        &mut tx,
        access,
        "comment.update",
        id.to_string(),
        json!({"item": item_id, "body": text, "previous": {"body": before.body}}),
    )
    .await?;
    tx.commit().await?;
    Ok(comment)
}

/// Removes comment `id` on item `item_id` (its author, or an owner); the
/// audit log keeps its text.
pub async fn remove(state: &dyn Reach, access: &Access, item_id: i64, id: i64) -> DomainResult<()> {
    access.require(Permission::WorkspaceRead)?;
    let mut tx = state.store().begin_write().await?;
    let comment = comments::get_in(&mut tx, access.workspace.id, item_id, id).await?;
    if !may_change(access, &comment) {
        return Err(refuse_change());
    }
    comments::delete(&mut tx, access.workspace.id, item_id, id).await?;
    record(
        &mut tx,
        access,
        "comment.delete",
        id.to_string(),
        json!({"item": item_id, "author": comment.author, "previous": {"body": comment.body}}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::body;
    use crate::domain::validate::lines_pattern;

    #[test]
    fn the_documented_pattern_accepts_what_a_comment_may_hold() {
        let pattern = regex_automata::dfa::regex::Regex::new(&lines_pattern()).unwrap();
        let mut samples: Vec<String> = vec![
            String::new(),
            " \n ".into(),
            "line one\nline two".into(),
            "a\r\nb\tc".into(),
            "\u{b}a".into(),
            "a\u{b}b".into(),
            "\u{85}a\u{85}".into(),
        ];
        for c in (0..0x3100u32)
            .chain([0xfeff, 0x1f600])
            .filter_map(char::from_u32)
        {
            for s in [
                format!("{c}"),
                format!("a{c}b"),
                format!("{c}ab"),
                format!("ab{c}"),
            ] {
                samples.push(s);
            }
        }
        for s in samples {
            assert_eq!(pattern.is_match(s.as_str()), body(&s).is_ok(), "{s:?}");
        }
    }
}
