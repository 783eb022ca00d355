//! Moving the items chosen on a list page at once: `POST
//! /w/{slug}/{kind}/bulk-move`, then the list again (post, redirect, get)
//! with what moved and, for each item that did not, why.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::form::writer;
use super::{humanise, kind_of, Kind};
use crate::domain::authz::Access;
use crate::domain::work_items;
use crate::domain::{DomainError, DomainResult};
use crate::state::AppState;
use crate::web::extract::SignedForm;
use crate::web::{see_other, PageError};

/// What the list shows after a bulk move (`?bulk_to=&bulk_moved=&bulk_refused=`).
#[derive(Deserialize, Default, Debug)]
pub struct BulkDone {
    #[serde(default)]
    bulk_to: String,
    #[serde(default)]
    bulk_moved: String,
    #[serde(default)]
    bulk_refused: String,
}

/// An item a bulk move left where it was, as the list reports it.
pub struct RefusedRow {
    /// "Task 7".
    pub label: String,
    /// Its page.
    pub href: String,
    /// Why, in words.
    pub reason: String,
}

/// The chosen items and the move, as the form sent them.
#[derive(Default)]
struct BulkForm {
    status: String,
    back: String,
    ids: Vec<i64>,
}

fn read_form(pairs: Vec<(String, String)>) -> DomainResult<BulkForm> {
    let mut form = BulkForm::default();
    for (name, value) in pairs {
        match name.as_str() {
            "status" => form.status = value,
            "back" => form.back = value,
            "id" => form.ids.push(value.trim().parse().map_err(|_| {
                DomainError::invalid("id", format!("{value} is not the number of an item."))
            })?),
            _ => {}
        }
    }
    Ok(form)
}

/// Where to go back to: the list the form came from, when `back` is one of
/// this kind's lists of this workspace, else the plain list.
fn back_to(base: &str, back: &str) -> String {
    let rest = back.strip_prefix(base).unwrap_or("-");
    if rest.is_empty() || rest.starts_with('?') {
        back.to_owned()
    } else {
        base.to_owned()
    }
}

/// `POST /w/{slug}/{kind}/bulk-move`.
pub async fn bulk_move(
    State(state): State<AppState>,
    Path((slug, segment)): Path<(String, String)>,
    SignedForm {
        current,
        form: pairs,
    }: SignedForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let kind = kind_of(&segment)?;
    let form = read_form(pairs)?;
    let access = writer(&state, &current, &slug).await?;
    let back = back_to(&kind.list_url(&slug), &form.back);
    let joiner = if back.contains('?') { '&' } else { '?' };
    if form.ids.is_empty() {
        return Ok(see_other(&format!("{back}{joiner}bulk_moved=none")));
    }
    let outcome = work_items::bulk_transition(
        &state,
        &access,
        Some(kind.name),
        &form.ids,
        &form.status,
        "",
    )
    .await?;
    let refused: Vec<String> = outcome
        .refused
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    let query = serde_urlencoded::to_string([
        ("bulk_to", form.status.as_str()),
        ("bulk_moved", &outcome.moved.len().to_string()),
        ("bulk_refused", &refused.join(",")),
    ])
    .unwrap_or_default();
    Ok(see_other(&format!("{back}{joiner}{query}")))
}

impl BulkDone {
    /// The notice and the refused items of a bulk move just made, if one
    /// was. Each refusal is worded afresh from the item as it is (it did
    /// not move, so it is as it was).
    pub async fn report(
        &self,
        state: &AppState,
        access: &Access,
        kind: Kind,
    ) -> (Option<String>, Vec<RefusedRow>) {
        if self.bulk_moved == "none" {
            return (
                Some(format!(
                    "Nothing moved: tick the {} to move first.",
                    kind.plural_label.to_lowercase()
                )),
                Vec::new(),
            );
        }
        let Ok(moved) = self.bulk_moved.parse::<usize>() else {
            return (None, Vec::new());
        };
        let to = humanise(&self.bulk_to).to_lowercase();
        let noun = |n: usize| {
            if n == 1 {
                kind.label.to_lowercase()
            } else {
                kind.plural_label.to_lowercase()
            }
        };
        let ids: Vec<i64> = self
            .bulk_refused
            .split(',')
            .filter_map(|id| id.trim().parse().ok())
            .take(work_items::MAX_BULK)
            .collect();
        let mut refused = Vec::new();
        for id in &ids {
            let reason = match work_items::get(state, access, *id).await {
                Ok(item) if item.kind == kind.kind && item.status == self.bulk_to.as_str() => {
                    format!("It is {to} already.")
                }
                Ok(item) if item.kind == kind.kind => {
                    match work_items::check_transition(access, &item, &self.bulk_to) {
                        Err(e) => e.to_string(),
                        Ok(_) => "It was not moved; it can be moved now.".to_owned(),
                    }
                }
                _ => format!("There is no {} {id} in this workspace.", kind.name),
            };
            refused.push(RefusedRow {
                label: format!("{} {id}", kind.label),
                href: kind.item_url(&access.workspace.slug, *id, ""),
                reason,
            });
        }
        let notice = if refused.is_empty() {
            format!("Moved {moved} {} to {to}.", noun(moved))
        } else {
            format!(
                "Moved {moved} of {} {} to {to}; {} did not move.",
                moved + refused.len(),
                noun(moved + refused.len()),
                refused.len()
            )
        };
        (Some(notice), refused)
    }
}

#[cfg(test)]
mod tests {
    use super::back_to;

    #[test]
    fn goes_back_only_to_the_same_list() {
        let base = "/w/ops/tasks";
        assert_eq!(
            back_to(base, "/w/ops/tasks?q=db&page=2"),
            "/w/ops/tasks?q=db&page=2"
        );
        assert_eq!(back_to(base, "/w/ops/tasks"), "/w/ops/tasks");
        for elsewhere in [
            "https://evil.example/",
            "/w/ops/tasksx",
            "//evil.example",
            "/w/other/tasks",
            "",
        ] {
            assert_eq!(back_to(base, elsewhere), base, "{elsewhere}");
        }
    }
}
