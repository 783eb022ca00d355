//! The web app: server-rendered pages on the same origin as the API.
//!
//! Each page is a handler that states what it needs in its signature (see
//! [`extract`]: the signed-in person from a session cookie, their access to
//! the workspace holding a permission, a form whose CSRF token matched),
//! calls the same [`crate::domain`] functions as the JSON API, and renders
//! an askama template checked at compile time. What the domain refuses
//! becomes a page through one mapping ([`PageError`]); the addresses
//! handlers send people to are built in [`urls`].
//! Pages are plain links and forms (post, redirect, get); a validation
//! error re-renders the form with what was typed and the message next to
//! the field. A few small ES modules of the app's own ([`assets`]) do what
//! needs a script: loading plugins' custom elements into dashboard tiles and
//! field editors, refreshing tiles, copy buttons.
//!
//! Every page carries a strict Content-Security-Policy (no inline script or
//! style, no eval, no framing), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: same-origin` (`no-referrer` where the URL holds a
//! secret), and `Cache-Control: no-cache` (revalidated before any reuse;
//! `no-store` where a page shows a secret); every state-changing form
//! carries a CSRF token.
//!
//! One module per area: [`auth`] (signing in and out, unlock links,
//! accepting invites), [`dashboard`], [`items`] (changes, incidents,
//! tasks), [`certificates`], [`playbooks`], [`members`] (members and
//! invites a page at a time, bulk invites),
//! [`audit`] (the audit log, live, and verifying it), [`settings`] (the
//! workspace's custom fields, dashboard and settings), [`roles`],
//! [`integrations`], [`profile`] and [`tokens`] (a person's name, password,
//! sessions and API tokens) and [`admin`] (workspaces, templates, plugins,
//! periodic tasks; the admin's audit log is in [`audit`]).

pub mod admin;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod certificates;
pub mod dashboard;
mod dev;
mod error;
pub mod extract;
mod frame;
pub mod integrations;
pub mod items;
pub mod members;
pub mod playbooks;
mod plugin_assets;
mod plugin_costs;
pub mod profile;
pub mod roles;
pub mod session;
pub mod settings;
pub mod text;
mod tile_options;
pub mod tokens;
pub mod urls;

use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Router;

pub use dev::router as dev_router;
pub(crate) use error::plugin_status;
pub use error::{error_pages_keep_the_header, not_found, PageError};
pub use frame::{Frame, Nav};

use serde::Deserialize;

use crate::domain::authz::{Access, Permission};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;

pub use crate::edge::{security_headers, ANONYMOUS_FORM_LIMIT, CSP};

/// The web app's routes: each page module declares its own, and they are
/// put together here.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(dashboard::routes())
        .merge(settings::routes())
        .merge(tile_options::routes())
        .merge(members::routes())
        .merge(roles::routes())
        .merge(integrations::routes())
        .merge(audit::routes())
        .merge(certificates::routes())
        .merge(playbooks::routes())
        .merge(items::routes())
        .merge(tokens::routes())
        .merge(profile::routes())
        .merge(admin::routes())
        .merge(assets::routes())
        .merge(plugin_assets::routes())
}

/// Renders a template as a page.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => PageError::Domain(DomainError::Internal(format!("cannot render a page: {e}")))
            .into_response(),
    }
}

/// Renders a template with `status`.
pub fn render_status(status: StatusCode, template: &impl Template) -> Response {
    let mut response = render(template);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// A 303 to `to` (post, redirect, get).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `?done=` after a change (post, redirect, get): which notice to show,
/// and about what.
#[derive(Debug, Deserialize, Default)]
pub struct Done {
    /// The notice's code.
    pub done: Option<String>,
    /// What it is about (a plugin's name, an email...), when the notice
    /// names it.
    pub about: Option<String>,
}

impl Done {
    /// The text of the notice whose code was given, among `known`.
    pub fn notice(&self, known: &[(&str, &str)]) -> Option<String> {
        let done = self.done.as_deref()?;
        known
            .iter()
            .find(|(code, _)| *code == done)
            .map(|(_, text)| (*text).to_owned())
    }
}

/// The signed-in person's access to workspace `slug`, checking
/// `permission`.
pub async fn workspace_access(
    state: &AppState,
    current: &Current,
    slug: &str,
    permission: Permission,
) -> Result<Access, PageError> {
    Ok(current
        .caller
        .workspace(&state.store, slug, permission)
        .await?)
}

/// A submitted form (`application/x-www-form-urlencoded`, or the query of a
/// GET form), decoded with the same rules as the API's inputs: a NUL
/// character in any field, or a value of the wrong type, re-renders as a
/// 422 naming the field (see [`crate::input`]).
pub struct Form<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Form<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::RawForm(bytes) = axum::extract::RawForm::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        crate::input::pairs(&bytes).map(Form).map_err(|r| {
            PageError::Domain(DomainError::Invalid {
                field: r.field,
                message: r.message,
            })
            .into_response()
        })
    }
}

/// A form that sends nothing but its CSRF token (a button).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// A form sent as `multipart/form-data` (one with a file), read whole.
#[derive(Debug, Default)]
pub struct Upload {
    /// The text fields, by name (the last value of a repeated one).
    pub fields: std::collections::HashMap<String, String>,
    /// The files, by field name: the file's name as sent, and its bytes.
    pub files: std::collections::HashMap<String, (String, Vec<u8>)>,
}

impl Upload {
    /// Reads every part of `multipart`; a part that cannot be read refuses
    /// the whole form.
    pub async fn read(mut multipart: axum::extract::Multipart) -> Result<Self, PageError> {
        let unreadable = |e: axum::extract::multipart::MultipartError| {
            PageError::Domain(DomainError::Unreadable {
                code: "invalid_upload",
                message: format!("the upload could not be read: {}", e.body_text()),
            })
        };
        let mut upload = Upload::default();
        while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(file_name) => {
                    let bytes = field.bytes().await.map_err(unreadable)?.to_vec();
                    upload.files.insert(name, (file_name, bytes));
                }
                None => {
                    let text = field.text().await.map_err(unreadable)?;
                    if name.contains('\0') || text.contains('\0') {
                        let name = name.replace('\0', "\\u0000");
                        return Err(PageError::Domain(DomainError::invalid(
                            name.clone(),
                            crate::input::nul_message(&name),
                        )));
                    }
                    upload.fields.insert(name, text);
                }
            }
        }
        Ok(upload)
    }

    /// The text field `name` ("" when absent).
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// The file sent as `name`: its name and bytes (empty when none was
    /// chosen).
    pub fn file(&self, name: &str) -> (&str, &[u8]) {
        self.files
            .get(name)
            .map_or(("", &[][..]), |(n, b)| (n.as_str(), b.as_slice()))
    }
}

/// A file download of `body` named `file_name`.
pub fn download(content_type: &'static str, file_name: &str, body: impl Into<Body>) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file_name.replace(
            |c: char| !c.is_ascii_alphanumeric() && !"-_.".contains(c),
            "_"
        )
    );
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body.into(),
    )
        .into_response()
}

/// JSON to put inside `<script type="application/json">`: `<`, `>` and `&`
/// escaped, so no value can end the script element.
pub fn json_for_script(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}
