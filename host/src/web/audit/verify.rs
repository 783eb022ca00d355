//! Verifying a chain in the browser: the verify page runs the chain check
//! and shows each break with its class, says when the chain was last
//! verified, by whom, and against which signed checkpoint; checkpoints and
//! the public key can be downloaded. For one workspace and, for platform
//! admins, for every chain.

use crate::web::extract::{need, Member, MemberForm, SignedForm};
use crate::web::urls::{admin, Workspace};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::chain_labels;
use crate::audit::verify::ChainReport;
use crate::domain::audit;
use crate::domain::DomainError;
use crate::state::AppState;
use crate::store::audit::Verification;
use crate::web::items::{when, when_text, When};
use crate::web::session::SignedIn;
use crate::web::{download, render, see_other, Done, Frame, PageError};

/// A break as the verify page lists it.
pub struct BreakRow {
    seq: i64,
    class: String,
    message: String,
}

/// One chain's latest verification, as shown.
pub struct ChainResult {
    label: String,
    verified_at: When,
    verified_by: String,
    intact: bool,
    mode: String,
    events_checked: u64,
    head_seq: i64,
    checkpoint: Option<(i64, String)>,
    checkpoints_checked: usize,
    breaks: Vec<BreakRow>,
}

fn result(label: String, v: Verification) -> ChainResult {
    let ChainReport {
        mode,
        events_checked,
        head_seq,
        latest_checkpoint,
        checkpoints_checked,
        intact,
        breaks,
        ..
    } = v.report;
    ChainResult {
        label,
        verified_at: when(&v.verified_at),
        verified_by: v.verified_by,
        intact,
        mode,
        events_checked,
        head_seq,
        checkpoint: latest_checkpoint.map(|c| (c.seq, when_text(&c.signed_at))),
        checkpoints_checked,
        breaks: breaks
            .into_iter()
            .map(|b| BreakRow {
                seq: b.seq,
                class: b.class,
                message: b.message,
            })
            .collect(),
    }
}

/// A checkpoint as listed.
pub struct CheckpointRow {
    chain: String,
    seq: i64,
    hash: String,
    signed_at: When,
}

#[derive(Template)]
#[template(path = "audit/verify.html")]
struct VerifyPage {
    frame: Frame,
    base: String,
    /// Chains never verified, by label.
    never: Vec<String>,
    results: Vec<ChainResult>,
    checkpoints: Vec<CheckpointRow>,
    public_key: String,
    key_id: String,
    admin: bool,
}

/// `GET /w/{slug}/audit/verify`.
pub async fn verify_page(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::AuditRead>,
    Path(slug): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let last = audit::last_verification(&state, &access).await?;
    let checkpoints = audit::checkpoints(&state, &access).await?;
    let export = audit::export(&state, Vec::new());
    let frame = Frame::workspace(&state, &current, &access, "audit", "Verify the audit log")
        .await?
        .with_notice(done.notice(&[
            ("verified", "The chain was verified: the result is below."),
            ("signed", "The chain's head was signed as a new checkpoint."),
        ]));
    let label = format!("{} ({})", access.workspace.name, access.workspace.slug);
    Ok(render(&VerifyPage {
        frame,
        base: Workspace(&slug).audit().into(),
        never: if last.is_none() {
            vec![label.clone()]
        } else {
            Vec::new()
        },
        results: last.into_iter().map(|v| result(label.clone(), v)).collect(),
        checkpoints: checkpoints
            .into_iter()
            .rev()
            .map(|c| CheckpointRow {
                chain: access.workspace.slug.clone(),
                seq: c.seq,
                hash: c.hash,
                signed_at: when(&c.signed_at),
            })
            .collect(),
        public_key: export.public_key,
        key_id: export.key_id,
        admin: false,
    }))
}

/// The verify form.
#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    /// `true`: from the start instead of from the latest checkpoint.
    #[serde(default)]
    full: Option<String>,
}

/// `POST /w/{slug}/audit/verify`.
pub async fn verify(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MemberForm { access, form, .. }: MemberForm<need::AuditRead, VerifyForm>,
) -> Result<Response, PageError> {
    audit::verify(&state, &access, form.full.is_some()).await?;
    Ok(see_other(&Workspace(&slug).audit_verify().done("verified")))
}

/// `POST /w/{slug}/audit/checkpoints`: signs the chain's head now.
pub async fn sign(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MemberForm { access, .. }: MemberForm<need::AuditRead>,
) -> Result<Response, PageError> {
    audit::checkpoint(&state, &access).await?;
    Ok(see_other(&Workspace(&slug).audit_verify().done("signed")))
}

fn json_download(file_name: &str, value: &impl Serialize) -> Result<Response, PageError> {
    let body = serde_json::to_string_pretty(value)
        .map_err(|e| DomainError::Internal(format!("cannot encode a download: {e}")))?;
    Ok(download("application/json", file_name, format!("{body}\n")))
}

/// `GET /w/{slug}/audit/checkpoints.json`: the checkpoints with the public
/// key, as `vigilo audit checkpoints` saves them.
pub async fn checkpoints_download(
    State(state): State<AppState>,
    Member { access, .. }: Member<need::AuditRead>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let checkpoints = audit::checkpoints(&state, &access).await?;
    json_download(
        &format!("{slug}-checkpoints.json"),
        &audit::export(&state, checkpoints),
    )
}

/// `GET /audit/public-key.json`: the key that signs checkpoints.
pub async fn public_key(State(state): State<AppState>) -> Result<Response, PageError> {
    let mut export = serde_json::to_value(audit::export(&state, Vec::new()))
        .map_err(|e| DomainError::Internal(format!("cannot encode the key: {e}")))?;
    if let Some(map) = export.as_object_mut() {
        map.remove("checkpoints");
    }
    json_download("vigilo-audit-public-key.json", &export)
}

/// `GET /admin/audit/verify`: every chain's latest verification.
pub async fn admin_verify_page(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let last = audit::last_verifications(&state, &current.caller).await?;
    let labels = chain_labels(&state, &current).await?;
    let label = |chain: i64| {
        labels
            .iter()
            .find(|(c, _)| *c == chain)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| format!("Chain {chain}"))
    };
    let checkpoints = audit::all_checkpoints(&state, &current.caller).await?;
    let export = audit::export(&state, Vec::new());
    let frame = Frame::admin(&state, &current, "audit", "Verify every audit chain")
        .await?
        .with_notice(done.notice(&[
            (
                "verified",
                "Every chain was verified: the results are below.",
            ),
            (
                "signed",
                "The head of every chain was signed as a new checkpoint.",
            ),
        ]));
    let mut never = Vec::new();
    let mut results = Vec::new();
    for (chain, v) in last {
        match v {
            Some(v) => results.push(result(label(chain), v)),
            None => never.push(label(chain)),
        }
    }
    let mut checkpoints: Vec<CheckpointRow> = checkpoints
        .into_iter()
        .map(|c| CheckpointRow {
            chain: label(c.chain_id),
            seq: c.seq,
            hash: c.hash,
            signed_at: when(&c.signed_at),
        })
        .collect();
    checkpoints.sort_by(|a, b| b.signed_at.cmp(&a.signed_at));
    checkpoints.truncate(100);
    Ok(render(&VerifyPage {
        frame,
        base: "/admin/audit".into(),
        never,
        results,
        checkpoints,
        public_key: export.public_key,
        key_id: export.key_id,
        admin: true,
    }))
}

/// `POST /admin/audit/verify`.
pub async fn admin_verify(
    State(state): State<AppState>,
    SignedForm { current, form }: SignedForm<VerifyForm>,
) -> Result<Response, PageError> {
    audit::verify_all(&state, &current.caller, form.full.is_some()).await?;
    Ok(see_other(&admin::audit_verify().done("verified")))
}

/// `POST /admin/audit/checkpoints`: signs every chain's head now.
pub async fn admin_sign(
    State(state): State<AppState>,
    SignedForm { current, .. }: SignedForm,
) -> Result<Response, PageError> {
    audit::checkpoint_all(&state, &current.caller).await?;
    Ok(see_other(&admin::audit_verify().done("signed")))
}

/// `GET /admin/audit/checkpoints.json`: every chain's checkpoints.
pub async fn admin_checkpoints_download(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
) -> Result<Response, PageError> {
    let all = audit::all_checkpoints(&state, &current.caller).await?;
    json_download("vigilo-checkpoints.json", &audit::export(&state, all))
}
