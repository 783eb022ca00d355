//! Signing in and out, the front door, and accepting an invite in the
//! browser (which signs the new member in).

use crate::web::extract::SignedForm;
use crate::web::urls::Workspace;
use crate::web::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::REFERRER_POLICY;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::session::{self, MaybeSignedIn};
use super::{render, render_status, see_other, Frame, PageError};
use crate::domain::invites::{self, Acceptance, InvitePreview};
use crate::domain::sessions::{self, SignIn};
use crate::domain::{workspaces, DomainError};
use crate::state::AppState;

/// `GET /`: a signed-in person's workspace, or the sign-in page.
pub async fn home(
    State(state): State<AppState>,
    MaybeSignedIn(current): MaybeSignedIn,
) -> Result<Response, PageError> {
    let Some(current) = current else {
        return Ok(see_other("/login"));
    };
    let visible = workspaces::visible(&state, &current.caller).await?;
    if let Some(first) = visible.first() {
        return Ok(see_other(&Workspace(&first.workspace.slug).home()));
    }
    #[derive(Template)]
    #[template(path = "home.html")]
    struct Home {
        frame: Frame,
        name: String,
        admin: bool,
    }
    Ok(render(&Home {
        frame: Frame::signed_in(&state, &current, "Welcome").await?,
        name: current.caller.user.name.clone(),
        admin: current.caller.user.platform_admin,
    }))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    frame: Frame,
    form_token: String,
    next: String,
    email: String,
    error: Option<String>,
}

/// `?next=` of the sign-in page, and `?device=known` after an unlock link.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    device: Option<String>,
}

fn login_form(state: &AppState, next: String, email: String, error: Option<String>) -> Response {
    login_form_with(state, next, email, error, None)
}

fn login_form_with(
    state: &AppState,
    next: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let (form_token, cookie) = session::form_token(state);
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    session::with_cookie(
        render_status(
            status,
            &LoginPage {
                frame: Frame::bare("Sign in").with_notice(notice),
                form_token,
                next,
                email,
                error,
            },
        ),
        cookie,
    )
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    MaybeSignedIn(current): MaybeSignedIn,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = session::safe_next(query.next.as_deref());
    if current.is_some() {
        return see_other(&next);
    }
    let notice = (query.device.as_deref() == Some("known")).then(|| {
        "This browser can now sign in to your account even while it is locked \
         for others. Sign in with your password."
            .to_owned()
    });
    login_form_with(&state, next, String::new(), None, notice)
}

/// `GET /login/device/{token}`: an unlock link from `vigilo-server
/// unlock-sign-in` makes this browser a known device of its account, then
/// shows the sign-in page.
pub async fn unlock_link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match sessions::device_from_unlock_link(&state.secrets, &token)
        .and_then(|device| session::device_cookie(&state, &device))
    {
        Some(cookie) => session::with_cookie(see_other("/login?device=known"), cookie),
        None => {
            let mut response = login_form(
                &state,
                "/".into(),
                String::new(),
                Some(
                    "This unlock link is not valid or has expired. Ask a platform admin \
                     for a new one."
                        .into(),
                ),
            );
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    form_token: String,
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    session::check_form_token(&parts, &state, &form.form_token)?;
    let next = session::safe_next(Some(&form.next));
    let attempt = SignIn {
        email: form.email.clone(),
        password: form.password,
        client: session::client(&parts),
        user_agent: session::user_agent(&parts),
        device: session::cookie(&parts, session::device_cookie_name(&state)).map(str::to_owned),
    };
    match sessions::sign_in(&state, &attempt).await {
        Ok(started) => {
            let mut response = session::with_cookie(
                see_other(&next),
                session::session_cookie(&state, &started.secret),
            );
            if let Some(cookie) = started
                .device
                .as_deref()
                .and_then(|device| session::device_cookie(&state, device))
            {
                response = session::with_cookie(response, cookie);
            }
            Ok(response)
        }
        Err(DomainError::Unauthenticated { message, .. }) => {
            Ok(login_form(&state, next, form.email, Some(message)))
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    SignedForm { current, .. }: SignedForm,
) -> Result<Response, PageError> {
    sessions::sign_out(&state, &current).await?;
    Ok(session::with_cookie(
        see_other("/login"),
        session::clear_session_cookie(&state),
    ))
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    frame: Frame,
    preview: InvitePreview,
    role: String,
    form_token: String,
    signed_in_as_invitee: bool,
    /// Signed in, as someone other than the invitee.
    signed_in_as: Option<String>,
    here: String,
    name: String,
    field: String,
    field_error: String,
    error: Option<String>,
    public_url: String,
}

/// What the invite form re-shows after a refusal.
#[derive(Default)]
struct Typed {
    name: String,
    field: String,
    field_error: String,
    error: Option<String>,
}

async fn invite_form(
    state: &AppState,
    token: &str,
    current: Option<&sessions::Current>,
    typed: Typed,
    status: StatusCode,
) -> Result<Response, PageError> {
    let preview = invites::preview(state, token).await?;
    let (form_token, cookie) = session::form_token(state);
    let signed_in_as_invitee = current.is_some_and(|c| c.caller.user.email == preview.invite.email);
    let mut frame = match current {
        Some(current) => Frame::signed_in(state, current, "Join a workspace").await?,
        None => Frame::bare("Join a workspace"),
    };
    if current.is_some() {
        // The sign-out form is offered; the join form carries its own token.
        frame.nav = None;
    }
    let page = InvitePage {
        frame,
        role: preview
            .invite
            .custom_role
            .clone()
            .unwrap_or_else(|| preview.invite.role.name().to_owned()),
        preview,
        form_token,
        signed_in_as_invitee,
        signed_in_as: current
            .map(|c| c.caller.user.email.clone())
            .filter(|_| !signed_in_as_invitee),
        here: session::urlencode(&format!("/invites/{token}")),
        name: typed.name,
        field: typed.field,
        field_error: typed.field_error,
        error: typed.error,
        public_url: state.public_url.clone(),
    };
    let mut response = session::with_cookie(render_status(status, &page), cookie);
    // The URL holds the invite's secret: never send it on.
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// `GET /invites/{token}`.
pub async fn invite_page(
    State(state): State<AppState>,
    MaybeSignedIn(current): MaybeSignedIn,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    invite_form(
        &state,
        &token,
        current.as_ref(),
        Typed::default(),
        StatusCode::OK,
    )
    .await
}

/// The invite form.
#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// How the invite form shows a refused acceptance: the field at fault
/// (name, password) or a message above the form, and the status. Other
/// failures are the error page's.
fn refused_acceptance(name: &str, e: DomainError) -> Result<(Typed, StatusCode), DomainError> {
    match e {
        DomainError::Invalid { field, message } => {
            let field = field.unwrap_or_default();
            let typed = if field == "name" || field == "password" {
                Typed {
                    name: name.to_owned(),
                    field: field.to_owned(),
                    field_error: message,
                    error: None,
                }
            } else {
                Typed {
                    name: name.to_owned(),
                    error: Some(message),
                    ..Typed::default()
                }
            };
            Ok((typed, StatusCode::UNPROCESSABLE_ENTITY))
        }
        e @ (DomainError::Conflict(_)
        | DomainError::Unauthenticated { .. }
        | DomainError::Forbidden { .. }) => Ok((
            Typed {
                name: name.to_owned(),
                error: Some(e.to_string()),
                ..Typed::default()
            },
            StatusCode::CONFLICT,
        )),
        e => Err(e),
    }
}

/// `POST /invites/{token}`: accepts, and signs a new member in.
pub async fn accept_invite(
    State(state): State<AppState>,
    Path(token): Path<String>,
    parts: Parts,
    Form(form): Form<AcceptForm>,
) -> Result<Response, PageError> {
    session::check_form_token(&parts, &state, &form.form_token)?;
    let current = match session::cookie(&parts, session::session_cookie_name(&state)) {
        Some(secret) => sessions::resolve(&state.store, &state.config, secret)
            .await
            .ok(),
        None => None,
    };
    let refuse = |field: &str, message: String| Typed {
        name: form.name.clone(),
        field: field.to_owned(),
        field_error: message,
        error: None,
    };
    // Signed in, someone joins with their account; signed out, with a new
    // one (the page is the same whether or not the address has one).
    let joining_with_account = current.is_some();
    if !joining_with_account && form.password != form.confirm {
        let typed = refuse("confirm", "The two passwords are not the same.".into());
        return invite_form(
            &state,
            &token,
            current.as_ref(),
            typed,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let acceptance = Acceptance {
        token: token.clone(),
        name: match &current {
            Some(c) => c.caller.user.name.clone(),
            None => form.name.clone(),
        },
        password: (!joining_with_account).then(|| form.password.clone()),
        first_token: false,
    };
    let accepted =
        match invites::accept(&state, current.as_ref().map(|c| &c.caller), &acceptance).await {
            Ok(accepted) => accepted,
            Err(e) => {
                let (typed, status) = refused_acceptance(&form.name, e)?;
                return invite_form(&state, &token, current.as_ref(), typed, status).await;
            }
        };
    let to = Workspace(&accepted.workspace).home();
    if current.is_some() {
        return Ok(see_other(&to));
    }
    let started = sessions::start(
        &state,
        accepted.user,
        &session::client(&parts),
        &session::user_agent(&parts),
    )
    .await?;
    Ok(session::with_cookie(
        see_other(&to),
        session::session_cookie(&state, &started.secret),
    ))
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::extract::DefaultBodyLimit;
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(home))
        .route(
            "/login",
            get(login_page)
                .post(login)
                .layer(DefaultBodyLimit::max(super::ANONYMOUS_FORM_LIMIT)),
        )
        .route("/login/device/{token}", get(unlock_link))
        .route("/logout", post(logout))
        .route(
            "/invites/{token}",
            get(invite_page)
                .post(accept_invite)
                .layer(DefaultBodyLimit::max(super::ANONYMOUS_FORM_LIMIT)),
        )
}
