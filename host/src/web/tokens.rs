//! `/settings/tokens`: a person's API tokens, for the CLI and scripts.
//! A new token is shown once, on the page that answers its creation (never
//! in a URL, never cached); revoking asks for confirmation.

use crate::web::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::items::when;
use super::session::{check_csrf, SignedIn};
use super::{render_status, see_other, CsrfForm, Done, Frame, PageError};
use crate::domain::sessions::Current;
use crate::domain::tokens::{self, NewToken};
use crate::domain::DomainError;
use crate::state::AppState;
use crate::store::{TokenCreated, TokenInfo};

/// A token in the list.
pub struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    created: String,
    last_used: String,
    expires: String,
    status: String,
}

fn row(t: TokenInfo) -> TokenRow {
    TokenRow {
        id: t.id,
        created: when(&t.created_at),
        last_used: t
            .last_used_at
            .as_deref()
            .map(when)
            .unwrap_or_else(|| "never".into()),
        expires: t
            .expires_at
            .as_deref()
            .map(when)
            .unwrap_or_else(|| "never".into()),
        name: t.name,
        prefix: t.prefix,
        status: t.status,
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    frame: Frame,
    rows: Vec<TokenRow>,
    created: Option<TokenCreated>,
    name: String,
    expires: String,
    error: Option<String>,
    public_url: String,
}

/// The lifetimes the form offers, in days (0: never expires).
const LIFETIMES: [(&str, &str); 5] = [
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
    ("7", "7 days"),
    ("0", "Never"),
];

impl TokensPage {
    fn lifetimes(&self) -> &'static [(&'static str, &'static str)] {
        &LIFETIMES
    }
}

async fn page_with(
    state: &AppState,
    current: &Current,
    created: Option<TokenCreated>,
    typed: (String, String),
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let rows = tokens::list(state, &current.caller)
        .await?
        .into_iter()
        .map(row)
        .collect();
    let frame = Frame::signed_in(state, current, "API tokens")
        .await?
        .with_notice(notice);
    let mut response = render_status(
        status,
        &TokensPage {
            frame,
            rows,
            created,
            name: typed.0,
            expires: typed.1,
            error,
            public_url: state.public_url.clone(),
        },
    );
    // A page that may show a token's secret is never stored.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /settings/tokens`.
pub async fn page(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let notice = done.notice(&[(
        "revoked",
        "The token was revoked; requests with it are refused from now on.",
    )]);
    page_with(
        &state,
        &current,
        None,
        (String::new(), "90".into()),
        None,
        notice,
        StatusCode::OK,
    )
    .await
}

/// The new-token form.
#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires: String,
}

/// `POST /settings/tokens`: creates one and shows its secret, once.
pub async fn create(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Form(form): Form<NewTokenForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    let days: u64 = form.expires.trim().parse().unwrap_or(90);
    let new = NewToken {
        name: form.name.clone(),
        expires_in_seconds: (days > 0).then_some(days * 86_400),
    };
    match tokens::create(&state, &current.caller, &new).await {
        Ok(created) => {
            page_with(
                &state,
                &current,
                Some(created),
                (String::new(), "90".into()),
                None,
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(DomainError::Invalid { message, .. }) => {
            page_with(
                &state,
                &current,
                None,
                (form.name, form.expires),
                Some(message),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&current, &form.csrf)?;
    tokens::revoke(&state, &current.caller, id).await?;
    Ok(see_other("/settings/tokens?done=revoked"))
}
