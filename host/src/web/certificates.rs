//! `/w/{slug}/certificates`: the certificate inventory, soonest expiry
//! first, with days left marked in colour and words (expired, expiring
//! within 30 days), a filter "expiring within N days" in the URL, adding a
//! certificate or chain by pasting or uploading PEM (a bad PEM is refused
//! with the reason and nothing is stored), and removing one after
//! confirmation.

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use time::OffsetDateTime;

use super::items::{when, When};
use super::{render_status, see_other, workspace_access, Frame, PageError};
use crate::domain::authz::{Access, Permission};
use crate::domain::certificates;
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;
use crate::store::certificates::Certificate;
use crate::store::parse_time;
use crate::web::extract::SignedUpload;

/// Days left below which a certificate is marked as expiring soon.
const SOON_DAYS: i64 = 30;

/// A certificate in the list.
pub struct CertRow {
    id: i64,
    name: String,
    subject: String,
    sans: String,
    issuer: String,
    expires: When,
    /// Seconds until it expires (negative once it has).
    seconds_left: i64,
    /// `expired`, `soon` or `ok`.
    urgency: &'static str,
    chain_length: i64,
}

impl CertRow {
    fn days_text(&self) -> String {
        // Whole days, counted from now: 3 days and 5 hours ago is 3 days.
        let days = self.seconds_left / 86_400;
        if self.seconds_left < 0 {
            match -days {
                0 => "expired today".into(),
                1 => "expired yesterday".into(),
                d => format!("expired {d} days ago"),
            }
        } else {
            match days {
                0 => "expires today".into(),
                1 => "1 day left".into(),
                d => format!("{d} days left"),
            }
        }
    }
}

fn row(c: Certificate, now: OffsetDateTime) -> CertRow {
    let seconds_left = parse_time(&c.not_after)
        .map(|t| (t - now).whole_seconds())
        .unwrap_or(0);
    CertRow {
        id: c.id,
        urgency: if seconds_left < 0 {
            "expired"
        } else if seconds_left < SOON_DAYS * 86_400 {
            "soon"
        } else {
            "ok"
        },
        seconds_left,
        expires: when(&c.not_after),
        sans: c
            .sans
            .iter()
            .map(|s| s.split_once(':').map_or(s.as_str(), |(_, v)| v))
            .collect::<Vec<_>>()
            .join(", "),
        name: c.name,
        subject: c.subject,
        issuer: c.issuer,
        chain_length: c.chain_length,
    }
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct CertificatesPage {
    frame: Frame,
    slug: String,
    rows: Vec<CertRow>,
    within: String,
    expired: usize,
    soon: usize,
    can_manage: bool,
    name: String,
    pem: String,
    error: Option<String>,
}

/// `?within=N`: only those expiring within N days.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    within: String,
    done: Option<String>,
}

struct Typed {
    name: String,
    pem: String,
    error: Option<String>,
}

async fn page_with(
    state: &AppState,
    current: &Current,
    access: &Access,
    within: &str,
    typed: Typed,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (days, mut error) = match within.trim() {
        "" => (None, None),
        text => match text.parse::<i64>() {
            Ok(d) => (Some(d), None),
            Err(_) => (None, Some(format!("“{text}” is not a number of days."))),
        },
    };
    let (rows, status) = match certificates::list(state, access, days).await {
        Ok(list) => {
            let now = OffsetDateTime::now_utc();
            (list.into_iter().map(|c| row(c, now)).collect(), status)
        }
        Err(DomainError::Invalid { message, .. }) => {
            error = Some(message);
            (Vec::new(), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => return Err(e.into()),
    };
    let status = if error.is_some() && status == StatusCode::OK {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        status
    };
    let rows: Vec<CertRow> = rows;
    let frame = Frame::workspace(state, current, access, "certificates", "Certificates")
        .await?
        .with_notice(notice);
    Ok(render_status(
        status,
        &CertificatesPage {
            frame,
            slug: access.workspace.slug.clone(),
            expired: rows.iter().filter(|r| r.urgency == "expired").count(),
            soon: rows.iter().filter(|r| r.urgency == "soon").count(),
            rows,
            within: within.trim().to_owned(),
            can_manage: access.can(Permission::CertManage),
            name: typed.name,
            pem: typed.pem,
            error: typed.error.or(error),
        },
    ))
}

/// `GET /w/{slug}/certificates`.
pub async fn page(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::WorkspaceRead>,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    let notice = match filter.done.as_deref() {
        Some("added") => Some("The certificate was added to the inventory.".to_owned()),
        Some("removed") => Some("The certificate was removed from the inventory.".to_owned()),
        _ => None,
    };
    page_with(
        &state,
        &current,
        &access,
        &filter.within,
        Typed {
            name: String::new(),
            pem: String::new(),
            error: None,
        },
        notice,
        StatusCode::OK,
    )
    .await
}

/// `POST /w/{slug}/certificates` (a form with pasted PEM or an uploaded
/// file).
pub async fn add(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    SignedUpload { current, upload }: SignedUpload,
) -> Result<Response, PageError> {
    let (name, pasted) = (
        upload.field("name").to_owned(),
        upload.field("pem").to_owned(),
    );
    let file = upload.file("file").1.to_vec();
    let access = workspace_access(&state, &current, &slug, Permission::CertManage).await?;
    let pem = if pasted.trim().is_empty() {
        match String::from_utf8(file) {
            Ok(text) => text,
            Err(_) => {
                return refuse(
                    &state,
                    &current,
                    &access,
                    name,
                    String::new(),
                    "The file is not PEM text (a DER file? convert it with `openssl x509 -inform der`).".into(),
                )
                .await
            }
        }
    } else {
        pasted
    };
    if pem.trim().is_empty() {
        return refuse(
            &state,
            &current,
            &access,
            name,
            pem,
            "Paste the PEM text or choose a file.".into(),
        )
        .await;
    }
    let given = Some(name.trim()).filter(|n| !n.is_empty());
    match certificates::add(&state, &access, &pem, given).await {
        Ok(_) => Ok(see_other(&Workspace(&slug).certificates().done("added"))),
        Err(DomainError::Invalid { message, .. }) => {
            refuse(&state, &current, &access, name, pem, message).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn refuse(
    state: &AppState,
    current: &Current,
    access: &Access,
    name: String,
    pem: String,
    error: String,
) -> Result<Response, PageError> {
    page_with(
        state,
        current,
        access,
        "",
        Typed {
            name,
            pem,
            error: Some(error),
        },
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// `POST /w/{slug}/certificates/{id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
    MemberForm { access, .. }: MemberForm<need::CertManage>,
) -> Result<Response, PageError> {
    certificates::remove(&state, &access, id).await?;
    Ok(see_other(&Workspace(&slug).certificates().done("removed")))
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/w/{slug}/certificates", get(page).post(add))
        .route("/w/{slug}/certificates/{id}/remove", post(remove))
}
