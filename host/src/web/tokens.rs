//! `/settings/tokens`: a person's API tokens, for the CLI and scripts.
//! Creating one follows post–redirect–get: the form's answer sends the
//! browser to the list with the new secret in a short-lived cookie, sealed
//! to the session and scoped to this page, which the list shows once and
//! clears — so reloading the page never creates a second token and never
//! shows the secret again (never in a URL, never cached). Revoking asks for
//! confirmation.

use crate::web::extract::SignedForm;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::HeaderMap;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::items::{when, when_text, When};
use super::session::{with_cookie, SignedIn};
use super::{render_status, see_other, Done, Frame, PageError};
use crate::domain::sessions::Current;
use crate::domain::tokens::{self, NewToken};
use crate::domain::DomainError;
use crate::state::AppState;
use crate::store::users::{TokenCreated, TokenInfo, TokenStatus};

/// A token in the list.
pub struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    created: When,
    last_used: String,
    expires: String,
    status: TokenStatus,
}

fn row(t: TokenInfo) -> TokenRow {
    TokenRow {
        id: t.id,
        created: when(&t.created_at),
        last_used: t
            .last_used_at
            .as_deref()
            .map(when_text)
            .unwrap_or_else(|| "never".into()),
        expires: t
            .expires_at
            .as_deref()
            .map(when_text)
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

/// The cookie that carries a new token from its form to the list, once.
const SHOWN_ONCE: &str = "vigilo_new_token";

/// How long the new token waits for the list to show it.
const SHOWN_ONCE_SECS: u64 = 120;

/// What the one-time cookie is sealed to: this session.
fn shown_once_context(current: &Current) -> String {
    format!("new-token:{}", current.csrf)
}

/// `Set-Cookie` for the one-time cookie holding `value` (empty: removed).
fn shown_once_cookie(state: &AppState, value: &str) -> Option<HeaderValue> {
    let max_age = if value.is_empty() { 0 } else { SHOWN_ONCE_SECS };
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SHOWN_ONCE}={value}; Path=/settings/tokens; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// `GET /settings/tokens`: the list, and a token just created (once).
pub async fn page(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(done): Query<Done>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let sealed = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == SHOWN_ONCE && !value.is_empty())
        .map(|(_, value)| value);
    let created = match sealed {
        Some(sealed) => shown_once(&state, &current, sealed).await?,
        None => None,
    };
    let notice = match (&created, done.done.as_deref()) {
        (None, Some("created")) => Some(
            "The token was created. Its secret is shown only once, right after it is created: \
             if you did not copy it, revoke it and create another."
                .to_owned(),
        ),
        _ => done.notice(&[(
            "revoked",
            "The token was revoked; requests with it are refused from now on.",
        )]),
    };
    let response = page_with(
        &state,
        &current,
        created,
        (String::new(), "90".into()),
        None,
        notice,
        StatusCode::OK,
    )
    .await?;
    Ok(match sealed.and_then(|_| shown_once_cookie(&state, "")) {
        Some(clear) => with_cookie(response, clear),
        None => response,
    })
}

/// The token the one-time cookie carries, if it opens for this session
/// and the token is still this person's.
async fn shown_once(
    state: &AppState,
    current: &Current,
    sealed: &str,
) -> Result<Option<TokenCreated>, PageError> {
    let Ok(text) = state.secrets.open(&shown_once_context(current), sealed) else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let (Some(id), Some(token)) = (value["id"].as_i64(), value["token"].as_str()) else {
        return Ok(None);
    };
    let info = tokens::list(state, &current.caller)
        .await?
        .into_iter()
        .find(|t| t.id == id && t.status == TokenStatus::Active);
    Ok(info.map(|info| TokenCreated {
        info,
        token: token.to_owned(),
    }))
}

/// The new-token form.
#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires: String,
}

/// `POST /settings/tokens`: creates one and shows its secret, once.
pub async fn create(
    State(state): State<AppState>,
    SignedForm { current, form }: SignedForm<NewTokenForm>,
) -> Result<Response, PageError> {
    let days: u64 = form.expires.trim().parse().unwrap_or(90);
    let new = NewToken {
        name: form.name.clone(),
        expires_in_seconds: (days > 0).then_some(days * 86_400),
    };
    match tokens::create(&state, &current.caller, &new).await {
        Ok(created) => {
            let sealed = state.secrets.seal(
                &shown_once_context(&current),
                &json!({"id": created.info.id, "token": created.token}).to_string(),
            );
            let response = see_other("/settings/tokens?done=created");
            Ok(match shown_once_cookie(&state, &sealed) {
                Some(cookie) => with_cookie(response, cookie),
                None => response,
            })
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
    Path(id): Path<i64>,
    SignedForm { current, .. }: SignedForm,
) -> Result<Response, PageError> {
    tokens::revoke(&state, &current.caller, id).await?;
    Ok(see_other("/settings/tokens?done=revoked"))
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/settings/tokens", get(page).post(create))
        .route("/settings/tokens/{id}/revoke", post(revoke))
}
