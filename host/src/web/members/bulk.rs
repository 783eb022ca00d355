//! Inviting many people from a CSV file: the file is checked and previewed
//! row by row before anything is sent, then the per-row report offers the
//! failed rows as a CSV file to fix and upload again.

use crate::web::extract::{need, MemberForm};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{page_with, Shown};
use crate::domain::authz::{Access, Permission};
use crate::domain::invites::{self, BulkReport, RowOutcome};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;
use crate::web::extract::SignedUpload;
use crate::web::{render, workspace_access, Frame, PageError};

/// One row of a bulk preview or report.
pub struct BulkRowView {
    line: u64,
    email: String,
    role: String,
    outcome: &'static str,
    outcome_label: &'static str,
    reason: String,
    /// The accept link of an invited row (shown when no mail is sent).
    accept_url: String,
}

#[derive(Template)]
#[template(path = "members/bulk.html")]
struct BulkPage {
    frame: Frame,
    slug: String,
    file_name: String,
    preview: bool,
    invited: usize,
    skipped: usize,
    failed: usize,
    rows: Vec<BulkRowView>,
    /// The file, hex-encoded, for the confirmation form.
    file_hex: String,
    /// The failed rows as a `data:` URL to download.
    failed_csv_url: String,
    /// Whether the server mails invites; if not, the report shows each
    /// invited row's link to pass on.
    mails: bool,
}

/// `data:` URL text: everything but unreserved characters percent-encoded.
fn data_url(content_type: &str, text: &str) -> String {
    let mut out = format!("data:{content_type},");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn bulk_page(
    mails: bool,
    frame: Frame,
    slug: &str,
    file_name: &str,
    file: &[u8],
    report: &BulkReport,
    preview: bool,
) -> BulkPage {
    let rows = report
        .rows
        .iter()
        .map(|r| {
            let (outcome, outcome_label) = match r.outcome {
                RowOutcome::Invited => ("invited", "Invited"),
                RowOutcome::WouldInvite => ("would_invite", "Will be invited"),
                RowOutcome::Skipped => ("skipped", "Skipped"),
                RowOutcome::Failed => ("failed", "Failed"),
            };
            BulkRowView {
                line: r.row,
                email: r.email.clone(),
                role: match (r.role.as_str(), r.custom_role_name.as_str()) {
                    (_, c) if !c.is_empty() => format!("{c} (custom)"),
                    (role, _) => role.to_owned(),
                },
                outcome,
                outcome_label,
                reason: r.reason.clone().unwrap_or_default(),
                accept_url: r.accept_url.clone().unwrap_or_default(),
            }
        })
        .collect();
    BulkPage {
        frame,
        slug: slug.to_owned(),
        file_name: file_name.to_owned(),
        preview,
        invited: report.invited,
        skipped: report.skipped,
        failed: report.failed,
        rows,
        file_hex: hex::encode(file),
        failed_csv_url: data_url("text/csv;charset=utf-8", &report.failed_rows_csv()),
        mails,
    }
}

/// `POST /w/{slug}/invites/bulk` (a file upload): checks every row and
/// shows what would happen, sending nothing.
pub async fn bulk_preview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    SignedUpload { current, upload }: SignedUpload,
) -> Result<Response, PageError> {
    let (file_name, file) = upload.file("file");
    let file_name = if file_name.is_empty() {
        "invites.csv"
    } else {
        file_name
    };
    let access = workspace_access(&state, &current, &slug, Permission::MemberInvite).await?;
    if file.is_empty() {
        return refuse_file(
            &state,
            &current,
            &access,
            "Choose a CSV file to upload.".into(),
        )
        .await;
    }
    let rows = match invites::parse_csv(file) {
        Ok(rows) => rows,
        Err(e @ DomainError::Unreadable { .. }) => {
            return refuse_file(&state, &current, &access, e.to_string()).await
        }
        Err(e) => return Err(e.into()),
    };
    let report = invites::bulk(&state, &access, rows, true).await?;
    let frame =
        Frame::workspace(&state, &current, &access, "members", "Bulk invite: preview").await?;
    Ok(render(&bulk_page(
        state.config.smtp.is_some(),
        frame,
        &slug,
        file_name,
        file,
        &report,
        true,
    )))
}

async fn refuse_file(
    state: &AppState,
    current: &Current,
    access: &Access,
    message: String,
) -> Result<Response, PageError> {
    page_with(
        state,
        current,
        access,
        Shown {
            bulk_error: Some(message),
            ..Shown::default()
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// The confirmation form: the previewed file, hex-encoded.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    file: String,
    #[serde(default)]
    file_name: String,
}

/// `POST /w/{slug}/invites/bulk/confirm`: invites the good rows and shows
/// the per-row report.
pub async fn bulk_confirm(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MemberForm {
        current,
        access,
        form,
        ..
    }: MemberForm<need::MemberInvite, ConfirmForm>,
) -> Result<Response, PageError> {
    let file = hex::decode(form.file.trim()).map_err(|_| {
        PageError::Domain(DomainError::Unreadable {
            code: "invalid_upload",
            message: "the confirmed file was damaged on the way; upload it again".into(),
        })
    })?;
    let rows = invites::parse_csv(&file)?;
    let report = invites::bulk(&state, &access, rows, false).await?;
    let frame =
        Frame::workspace(&state, &current, &access, "members", "Bulk invite: report").await?;
    let mut response = render(&bulk_page(
        state.config.smtp.is_some(),
        frame,
        &slug,
        &form.file_name,
        &file,
        &report,
        false,
    ));
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
