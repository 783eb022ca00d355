//! `/settings/profile`: the signed-in person's name, the time zone they read
//! times in, their password, and the browsers they are signed in on. Changing the password needs the current
//! one and can sign out every other session; any session can be ended from
//! here.

use crate::web::extract::SignedForm;
use crate::web::urls::profile;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::items::{when, When};
use super::session::SignedIn;
use super::{render_status, see_other, Done, Frame, PageError};
use crate::domain::sessions::{self, Current};
use crate::domain::time_zones;
use crate::domain::DomainError;
use crate::state::AppState;

/// A session in the list.
pub struct SessionRow {
    id: i64,
    browser: String,
    client: String,
    started: When,
    last_seen: When,
    current: bool,
}

/// A browser's name from its User-Agent, in words.
fn browser(agent: &str) -> String {
    let name = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| *name);
    match (name, system) {
        (Some(n), Some(s)) => format!("{n} on {s}"),
        (Some(n), None) => n.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) if agent.is_empty() => "Unknown browser".to_owned(),
        (None, None) => agent.chars().take(60).collect(),
    }
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    frame: Frame,
    name: String,
    email: String,
    sessions: Vec<SessionRow>,
    name_error: Option<String>,
    password_error: Option<String>,
    password_field: String,
    zones: Vec<&'static str>,
    time_zone_error: Option<String>,
}

#[derive(Default)]
struct Errors {
    name: Option<String>,
    time_zone: Option<String>,
    password: Option<(String, String)>,
}

async fn page_with(
    state: &AppState,
    current: &Current,
    errors: Errors,
    notice: Option<String>,
) -> Result<Response, PageError> {
    let sessions = sessions::list(state, &current.caller)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            current: s.id == current.session.id,
            id: s.id,
            browser: browser(&s.user_agent),
            client: s.client,
            started: when(&s.created_at),
            last_seen: when(&s.last_seen_at),
        })
        .collect();
    let status = if errors.name.is_some() || errors.password.is_some() || errors.time_zone.is_some()
    {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let frame = Frame::signed_in(state, current, "Profile and sessions")
        .await?
        .with_notice(notice);
    let (password_field, password_error) = match errors.password {
        Some((field, message)) => (field, Some(message)),
        None => (String::new(), None),
    };
    Ok(render_status(
        status,
        &ProfilePage {
            name: current.caller.user.name.clone(),
            email: current.caller.user.email.clone(),
            frame,
            sessions,
            name_error: errors.name,
            password_error,
            password_field,
            zones: time_zones::all().collect(),
            time_zone_error: errors.time_zone,
        },
    ))
}

/// `GET /settings/profile`.
pub async fn page(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let about = done.about.clone().unwrap_or_default();
    let notice = match done.done.as_deref() {
        Some("password") if about != "0" && !about.is_empty() => Some(format!(
            "Your password was changed, and {about} other session{} signed out.",
            if about == "1" { " was" } else { "s were" }
        )),
        _ => done.notice(&[
            ("name", "Your name was changed."),
            ("time_zone", "Your time zone was saved."),
            ("password", "Your password was changed."),
            (
                "ended",
                "The session was ended: that browser is signed out.",
            ),
        ]),
    };
    page_with(&state, &current, Errors::default(), notice).await
}

/// The name form.
#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// `POST /settings/profile/name`.
pub async fn rename(
    State(state): State<AppState>,
    SignedForm { current, form }: SignedForm<NameForm>,
) -> Result<Response, PageError> {
    match sessions::rename(&state, &current.caller, &form.name).await {
        Ok(_) => Ok(see_other(&profile().done("name"))),
        Err(DomainError::Invalid { message, .. }) => {
            page_with(
                &state,
                &current,
                Errors {
                    name: Some(message),
                    ..Errors::default()
                },
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// The time zone form.
#[derive(Deserialize)]
pub struct TimeZoneForm {
    #[serde(default)]
    time_zone: String,
}

/// `POST /settings/profile/time-zone`.
pub async fn choose_time_zone(
    State(state): State<AppState>,
    SignedForm { current, form }: SignedForm<TimeZoneForm>,
) -> Result<Response, PageError> {
    match time_zones::choose(&state, &current.caller, &form.time_zone).await {
        Ok(_) => Ok(see_other(&profile().done("time_zone"))),
        Err(DomainError::Invalid { message, .. }) => {
            let errors = Errors {
                time_zone: Some(message),
                ..Errors::default()
            };
            page_with(&state, &current, errors, None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    end_others: Option<String>,
}

/// `POST /settings/profile/password`.
pub async fn change_password(
    State(state): State<AppState>,
    SignedForm { current, form }: SignedForm<PasswordForm>,
) -> Result<Response, PageError> {
    let refused = |field: &str, message: String| Errors {
        password: Some((field.to_owned(), message)),
        ..Errors::default()
    };
    if form.password != form.confirm {
        return page_with(
            &state,
            &current,
            refused("confirm", "The two new passwords are not the same.".into()),
            None,
        )
        .await;
    }
    match sessions::change_password(
        &state,
        &current.caller,
        Some(&form.current_password),
        &form.password,
        form.end_others.is_some(),
    )
    .await
    {
        Ok(ended) => Ok(see_other(
            &profile().done("password").about(&ended.to_string()),
        )),
        Err(DomainError::Invalid { field, message }) => {
            let field = field.unwrap_or_else(|| "password".into());
            page_with(&state, &current, refused(&field, message), None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /settings/profile/sessions/{id}/end`.
pub async fn end_session(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    SignedForm { current, .. }: SignedForm,
) -> Result<Response, PageError> {
    sessions::end(&state, &current.caller, id, "ended_from_profile").await?;
    if id == current.session.id {
        return Ok(see_other("/login"));
    }
    Ok(see_other(&profile().done("ended")))
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/settings/profile", get(page))
        .route("/settings/profile/name", post(rename))
        .route("/settings/profile/time-zone", post(choose_time_zone))
        .route("/settings/profile/password", post(change_password))
        .route("/settings/profile/sessions/{id}/end", post(end_session))
}
