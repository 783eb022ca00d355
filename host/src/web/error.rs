//! How a page that cannot be shown answers: [`PageError`], the one
//! mapping from what went wrong (a [`DomainError`], a wrong address, an
//! expired form) to a page with a status, a heading, a sentence and a hint,
//! and [`error_pages_keep_the_header`], which draws that page inside the
//! signed-in person's own header.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::{render_status, session, Frame};
use crate::domain::authz::Permission;
use crate::domain::DomainError;
use crate::state::AppState;

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// The domain refused or failed.
    Domain(DomainError),
    /// The form's CSRF token is missing or wrong: nothing was changed.
    Csrf,
    /// No such page.
    NotFound(String),
    /// The form did not arrive in time.
    TimedOut,
    /// The request itself could not be used (the framework refused it with
    /// this status: a method the address does not take, a query or form
    /// that cannot be read).
    Refused(StatusCode),
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        PageError::Domain(e)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Domain(e.into())
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    frame: Frame,
    heading: String,
    message: String,
    hint: &'static str,
}

/// What an error page says, kept on its response so that
/// [`error_pages_keep_the_header`] can draw it again inside the signed-in
/// person's own header.
#[derive(Debug, Clone)]
struct ErrorParts {
    status: StatusCode,
    heading: &'static str,
    message: String,
    hint: &'static str,
}

/// A refusal in words: what the person may not do, and whom to ask.
fn refusal(missing: &str, message: String) -> (StatusCode, &'static str, String, &'static str) {
    if missing == "workspace.read" {
        // Not a member, or no such workspace: the same answer, so that
        // workspaces cannot be found by trying names.
        return (
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no workspace at this address, or you are not a member of it.".to_owned(),
            "Check the address, or ask someone in the workspace to invite you.",
        );
    }
    if missing == "platform_admin" {
        return (
            StatusCode::FORBIDDEN,
            "Only platform admins can do this",
            "This part of Vigilo is for the people who run it.".to_owned(),
            "Ask a platform admin if you need it.",
        );
    }
    let message = match missing.parse::<Permission>() {
        Ok(p) if message.contains('`') => format!(
            "You need permission to {} in this workspace.",
            p.description()
        ),
        _ => message,
    };
    (
        StatusCode::FORBIDDEN,
        "You cannot do this here",
        message,
        "Ask an owner of the workspace if you need it.",
    )
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message, hint) = match self {
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The page was open too long, or the form came from somewhere else. Nothing was changed.".to_owned(),
                "Go back, reload the page and try again.",
            ),
            PageError::NotFound(what) => (StatusCode::NOT_FOUND, "Not found", what, ""),
            PageError::Refused(status) => (
                status,
                "That did not work",
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    "This address does not take that kind of request.".to_owned()
                } else {
                    "The request could not be read.".to_owned()
                },
                "Go back and try again.",
            ),
            PageError::TimedOut => (
                StatusCode::REQUEST_TIMEOUT,
                "That took too long",
                "The form did not arrive in time. Nothing was changed.".to_owned(),
                "Check your connection and send it again.",
            ),
            PageError::Domain(e) => {
                let status = status_of(&e);
                match e {
                DomainError::Unauthenticated { .. } => return Redirect::to("/login").into_response(),
                DomainError::Forbidden {
                    missing,
                    message,
                    words,
                } => refusal(&missing, words.unwrap_or(message)),
                DomainError::NotFound(m) => (status, "Not found", m, ""),
                DomainError::Conflict(m) => (status, "That did not work", m, ""),
                DomainError::Invalid { message, .. } => {
                    (status, "That did not work", message, "")
                }
                DomainError::Unreadable { message, .. } => {
                    (status, "That file could not be read", message, "")
                }
                DomainError::Plugin { message, .. } => (
                    status,
                    "A plugin did not answer",
                    message,
                    "An operator can see the plugin's state under Admin → Plugins.",
                ),
                DomainError::ShuttingDown => (
                    status,
                    "Vigilo is restarting",
                    "The server is shutting down.".to_owned(),
                    "Reload the page in a few seconds.",
                ),
                DomainError::Internal(detail) => {
                    tracing::error!(error = %detail, "a page failed with an internal error");
                    (
                        status,
                        "Something went wrong",
                        "The server could not show this page. Its log has the details.".to_owned(),
                        "",
                    )
                }
                }
            }
        };
        let message = super::text::plain(&message);
        let mut response = render_status(
            status,
            &ErrorPage {
                frame: Frame::bare(heading),
                heading: heading.to_owned(),
                message: message.clone(),
                hint,
            },
        );
        response.extensions_mut().insert(ErrorParts {
            status,
            heading,
            message,
            hint,
        });
        response
    }
}

/// Draws an error page again inside the signed-in person's header (their
/// workspaces, account menu and sign-out), so that a refusal or a wrong
/// address does not strand them. Pages for someone not signed in, and
/// every other answer, pass as they are.
pub async fn error_pages_keep_the_header(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let cookie = request.headers().get(axum::http::header::COOKIE).cloned();
    let response = next.run(request).await;
    let (Some(parts), Some(cookie)) = (response.extensions().get::<ErrorParts>(), cookie) else {
        return response;
    };
    let parts = parts.clone();
    let mut head = Request::new(());
    head.headers_mut()
        .insert(axum::http::header::COOKIE, cookie);
    let (mut head, ()) = head.into_parts();
    let current = match <session::MaybeSignedIn as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut head, &state).await {
        Ok(session::MaybeSignedIn(Some(current))) => current,
        _ => return response,
    };
    let Ok(frame) = Frame::signed_in(&state, &current, parts.heading).await else {
        return response;
    };
    let mut again = render_status(
        parts.status,
        &ErrorPage {
            frame,
            heading: parts.heading.to_owned(),
            message: parts.message,
            hint: parts.hint,
        },
    );
    // Keep what the first answer said besides its page (Retry-After, say).
    for (name, value) in response.headers() {
        if !again.headers().contains_key(name) {
            again.headers_mut().insert(name.clone(), value.clone());
        }
    }
    again
}

/// The status of a page that shows `e`: the one mapping from what the
/// domain said to a status, for error pages and for forms shown again with
/// their message alike.
pub fn status_of(e: &DomainError) -> StatusCode {
    match e {
        DomainError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        DomainError::Forbidden { missing, .. } if missing == "workspace.read" => {
            StatusCode::NOT_FOUND
        }
        DomainError::Forbidden { .. } => StatusCode::FORBIDDEN,
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        DomainError::Conflict(_) => StatusCode::CONFLICT,
        DomainError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::Unreadable { .. } => StatusCode::BAD_REQUEST,
        DomainError::Plugin { failure, .. } => plugin_status(*failure),
        DomainError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// How a form shows a refusal again: the page's status, the field the
/// message belongs to (empty: the whole form), and the message.
#[derive(Debug, Default)]
pub struct FormRefusal {
    /// 200 when nothing was refused.
    pub status: StatusCode,
    /// The field the message is about.
    pub field: String,
    /// What was wrong, as the domain said it.
    pub message: Option<String>,
}

impl FormRefusal {
    /// `refusal` as a form shows it: a value the domain refused, next to
    /// its field; a conflict (a name or key taken), next to
    /// `conflict_field`. Anything else is a page of its own.
    pub fn of(refusal: Option<DomainError>, conflict_field: &str) -> Result<Self, PageError> {
        let status = refusal.as_ref().map_or(StatusCode::OK, status_of);
        match refusal {
            None => Ok(Self {
                status,
                ..Self::default()
            }),
            Some(DomainError::Invalid { field, message }) => Ok(Self {
                status,
                field: field.unwrap_or_default(),
                message: Some(message),
            }),
            Some(DomainError::Conflict(message)) => Ok(Self {
                status,
                field: conflict_field.to_owned(),
                message: Some(message),
            }),
            Some(e) => Err(e.into()),
        }
    }
}

/// A page that is not there (the web app's fallback).
pub async fn not_found() -> Response {
    PageError::NotFound("There is no page at this address.".into()).into_response()
}

/// The status of a page a plugin failed: 503 when it is not running, 504
/// when it did not answer in time, 502 when it failed, panicked or crashed.
pub(crate) fn plugin_status(failure: crate::domain::PluginFailure) -> StatusCode {
    use crate::domain::PluginFailure as P;
    match failure {
        P::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        P::TimedOut => StatusCode::GATEWAY_TIMEOUT,
        P::Failed | P::Panicked | P::Crashed => StatusCode::BAD_GATEWAY,
    }
}
