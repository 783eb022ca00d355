//! Quick search (`/w/{slug}/search`): a number (`42`, `#42`) goes straight
//! to that item; words list the items of every kind whose title holds
//! them. Every page of a workspace opens it with `/` or Ctrl-K (and ⌘K),
//! from the **Search** tab.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::{access, humanise, pages_of, when, Kind, When};
use crate::domain::search::{self as work_items, Found};
use crate::model::workflow::Status;
use crate::state::AppState;
use crate::web::session::SignedIn;
use crate::web::{render, see_other, Frame, PageError};

/// How many matches the page lists.
const SHOWN: i64 = 50;

/// One match.
pub struct Hit {
    id: i64,
    kind: Kind,
    title: String,
    status: Status,
    status_label: String,
    created_at: When,
}

#[derive(Template)]
#[template(path = "items/search.html")]
struct SearchPage {
    frame: Frame,
    slug: String,
    q: String,
    hits: Vec<Hit>,
    total: i64,
}

/// `?q=`.
#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /w/{slug}/search?q=`.
pub async fn search(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(slug): Path<String>,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let access = access(&state, &current, &slug).await?;
    let q: String = query
        .q
        .trim()
        .chars()
        .take(work_items::MAX_SEARCH)
        .collect();
    let (hits, total) = if q.is_empty() {
        (Vec::new(), 0)
    } else {
        match work_items::find(&state, &access, &q, SHOWN).await? {
            Found::Item(item) => {
                let kind = pages_of(item.kind);
                return Ok(see_other(&kind.item_url(&slug, item.id, "")));
            }
            Found::Titles(items, total) => (
                items
                    .into_iter()
                    .map(|item| Hit {
                        id: item.id,
                        kind: pages_of(item.kind),
                        status_label: humanise(item.status),
                        status: item.status,
                        title: item.title,
                        created_at: when(&item.created_at),
                    })
                    .collect(),
                total,
            ),
        }
    };
    let frame = Frame::workspace(
        &state,
        &current,
        &access,
        "search",
        &format!("Search · {}", access.workspace.name),
    )
    .await?;
    Ok(render(&SearchPage {
        frame,
        slug,
        q,
        hits,
        total,
    }))
}
