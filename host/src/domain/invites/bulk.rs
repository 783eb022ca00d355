//! Inviting many people from a CSV file (`email,role,custom_role_name`):
//! every row checked, the good ones invited even when others fail, a
//! preview that sends nothing, and the failed rows as a file to fix.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use super::{resolve_grant, Grant, InviteCreated, Inviter};
use crate::domain::authz::{Access, Permission};
use crate::domain::roles::ensure_grantable;
use crate::domain::Context;
use crate::domain::{validate, DomainError, DomainResult};
use crate::store::audit::ChainAppender;
use crate::store::workspaces::CustomRole;

/// The columns a bulk-invite CSV must have, in this order.
pub const BULK_COLUMNS: [&str; 3] = ["email", "role", "custom_role_name"];
/// The most rows one file may have.
pub const MAX_BULK_ROWS: usize = 50_000;

/// One data row of a bulk-invite file.
#[derive(Debug, Clone)]
pub struct CsvRow {
    /// Line number in the file (the header is line 1).
    pub line: u64,
    /// The row's cells, trimmed.
    pub cells: Vec<String>,
}

fn unreadable(message: String) -> DomainError {
    DomainError::Unreadable {
        code: "invalid_csv",
        message,
    }
}

/// Reads a bulk-invite file: UTF-8, header exactly `email,role,custom_role_name`
/// (a byte-order mark and letter case are forgiven), at most
/// [`MAX_BULK_ROWS`] rows; blank rows are skipped. A wrong header refuses
/// the whole file, naming the expected columns.
pub fn parse_csv(body: &[u8]) -> DomainResult<Vec<CsvRow>> {
    let text = std::str::from_utf8(body)
        .map_err(|e| unreadable(format!("the file is not UTF-8 text: {e}")))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| unreadable(format!("cannot read the CSV header: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if header != BULK_COLUMNS {
        return Err(unreadable(format!(
            "wrong CSV header `{}`: the first line must be exactly `{}`",
            header.join(","),
            BULK_COLUMNS.join(",")
        )));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| unreadable(format!("cannot read the CSV file: {e}")))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        rows.push(CsvRow {
            line: record.position().map(|p| p.line()).unwrap_or(0),
            cells: record.iter().map(str::to_owned).collect(),
        });
        if rows.len() > MAX_BULK_ROWS {
            return Err(unreadable(format!(
                "the file has more than {MAX_BULK_ROWS} rows; split it"
            )));
        }
    }
    Ok(rows)
}

/// What became (or, in a preview, would become) of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    /// Invited.
    Invited,
    /// Preview only: would be invited.
    WouldInvite,
    /// Already a member or already invited: nothing to do.
    Skipped,
    /// Refused, with a reason.
    Failed,
}

/// One row's outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkRow {
    /// Line number in the file (the header is line 1).
    pub row: u64,
    /// The address (normalised once it was read).
    pub email: String,
    /// The role cell as given.
    #[serde(skip)]
    pub role: String,
    /// The custom role cell as given.
    #[serde(skip)]
    pub custom_role_name: String,
    /// `invited`, `would_invite` (preview), `skipped` (already a member or
    /// already invited) or `failed`.
    pub outcome: RowOutcome,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// The accept link of an invited row.
    pub accept_url: Option<String>,
    /// The accept token of an invited row.
    pub accept_token: Option<String>,
}

/// The per-row report of a bulk invite.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkReport {
    /// Rows invited (in a preview: rows that would be).
    pub invited: usize,
    /// Rows skipped.
    pub skipped: usize,
    /// Rows refused.
    pub failed: usize,
    /// Every row, in file order.
    pub rows: Vec<BulkRow>,
}

impl BulkReport {
    /// The failed rows as a CSV file with the bulk-invite header, ready to
    /// fix and upload again.
    pub fn failed_rows_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let _ = writer.write_record(BULK_COLUMNS);
        for row in self.rows.iter().filter(|r| r.outcome == RowOutcome::Failed) {
            let _ = writer.write_record([&row.email, &row.role, &row.custom_role_name]);
        }
        String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// Why a row is not invited: skipped (nothing to do) or failed.
enum Refusal {
    Skipped(String),
    Failed(String),
}

/// How long one transaction of a bulk invite may go on adding rows before
/// it commits and lets other writers in (on SQLite there is one writer for
/// every workspace). With the commit, the writer is held for well under
/// 100 ms at a time.
pub const BATCH_TIME: Duration = Duration::from_millis(25);

/// What each row of a bulk invite is checked against.
struct RowCheck<'a> {
    access: &'a Access,
    customs: &'a [CustomRole],
    /// The workspace's members' emails.
    members: HashSet<String>,
    /// The emails with a pending invite.
    pending: HashSet<String>,
    /// The emails of the rows checked so far, with their line.
    seen: HashMap<String, u64>,
}

impl RowCheck<'_> {
    /// The email and grant of `record` (read into `row`), or why it is
    /// skipped or failed.
    fn check(&mut self, record: &CsvRow, row: &BulkRow) -> Result<(String, Grant), Refusal> {
        if record.cells.len() != BULK_COLUMNS.len() {
            return Err(Refusal::Failed(format!(
                "expected {} columns, found {}",
                BULK_COLUMNS.len(),
                record.cells.len()
            )));
        }
        let email = validate::email("email", &row.email)
            .map_err(|e| Refusal::Failed(format!("malformed email: {e}")))?;
        let grant = resolve_grant(Some(&row.role), Some(&row.custom_role_name), self.customs)
            .map_err(|e| Refusal::Failed(e.to_string()))?;
        if let Some(first) = self.seen.get(&email) {
            return Err(Refusal::Failed(format!(
                "duplicate of row {first} in this file"
            )));
        }
        self.seen.insert(email.clone(), record.line);
        if self.members.contains(&email) {
            return Err(Refusal::Skipped("already a member".into()));
        }
        if self.pending.contains(&email) {
            return Err(Refusal::Skipped("already invited".into()));
        }
        ensure_grantable(self.access, &grant.permissions(), "this invite")
            .map_err(|e| Refusal::Failed(e.to_string()))?;
        Ok((email, grant))
    }
}

/// Invites every good row of a bulk file (needs `member.invite`), or with
/// `preview` only checks them and sends nothing.
///
/// The rows are checked first, without writing; the good ones are then
/// invited in batches of one transaction each (see [`BATCH_TIME`]), every
/// invite with its mail and its `member.invite` event in the same
/// transaction. The batches run to the end even when the client stops
/// waiting. Should the server stop part way, the batches committed until
/// then stay (each whole, with its audit events and mail) and the rest are
/// not invited: sending the same file again skips the addresses already
/// invited and invites the rest.
pub async fn bulk(
    state: &Context,
    access: &Access,
    rows: Vec<CsvRow>,
    preview: bool,
) -> DomainResult<BulkReport> {
    access.require(Permission::MemberInvite)?;
    let workspace = access.workspace.id;
    let customs = state.store.list_custom_roles(workspace).await?;
    if !preview {
        super::expire_in_batches(&state.store, Some(workspace)).await?;
    }
    let mut checks = RowCheck {
        access,
        customs: &customs,
        members: state
            .store
            .member_emails(workspace)
            .await?
            .into_iter()
            .collect(),
        pending: state
            .store
            .pending_invite_emails(workspace)
            .await?
            .into_iter()
            .collect(),
        seen: HashMap::new(),
    };
    let mut report = Vec::with_capacity(rows.len());
    let mut to_invite: Vec<(usize, Grant)> = Vec::new();
    for record in &rows {
        let cell = |i: usize| record.cells.get(i).cloned().unwrap_or_default();
        let mut row = BulkRow {
            row: record.line,
            email: cell(0),
            role: cell(1),
            custom_role_name: cell(2),
            outcome: RowOutcome::Failed,
            reason: None,
            accept_url: None,
            accept_token: None,
        };
        let checked = checks.check(record, &row);
        match checked {
            Ok((email, grant)) => {
                row.email = email;
                if preview {
                    row.outcome = RowOutcome::WouldInvite;
                } else {
                    to_invite.push((report.len(), grant));
                }
            }
            Err(Refusal::Skipped(reason)) => {
                row.outcome = RowOutcome::Skipped;
                row.reason = Some(reason);
            }
            Err(Refusal::Failed(reason)) => row.reason = Some(reason),
        }
        report.push(row);
    }
    if !preview {
        // Once begun, the batches go on to the end even if the client stops
        // waiting for the report.
        let (state, access) = (state.clone(), access.clone());
        report = crate::domain::detached("the bulk invite", async move {
            invite_in_batches(&state, &access, &mut report, to_invite).await;
            Ok(report)
        })
        .await?;
    }
    let count = |o: RowOutcome| report.iter().filter(|r| r.outcome == o).count();
    let report = BulkReport {
        invited: count(RowOutcome::Invited) + count(RowOutcome::WouldInvite),
        skipped: count(RowOutcome::Skipped),
        failed: count(RowOutcome::Failed),
        rows: report,
    };
    tracing::info!(workspace = %access.workspace.slug, preview, invited = report.invited, skipped = report.skipped, failed = report.failed, "bulk invite");
    Ok(report)
}

/// Invites the checked rows `to_invite` (an index into `report` and what
/// to grant), one transaction per [`BATCH_TIME`], and records each row's
/// outcome in `report` once its batch has committed. Should a batch fail,
/// its rows and those after it are reported failed, naming why, and the
/// batches before it stand.
async fn invite_in_batches(
    state: &Context,
    access: &Access,
    report: &mut [BulkRow],
    to_invite: Vec<(usize, Grant)>,
) {
    let inviter = Inviter {
        state,
        access,
        actor: access.actor(),
    };
    let mut queue = to_invite.into_iter().peekable();
    let mut batches = 0;
    while queue.peek().is_some() {
        let mut done: Vec<(usize, Option<InviteCreated>)> = Vec::new();
        let batch = async {
            let mut tx = state.store.begin_write().await?;
            let began = Instant::now();
            let mut chain = ChainAppender::open(&mut tx, Some(access.workspace.id)).await?;
            while began.elapsed() < BATCH_TIME {
                let Some((index, grant)) = queue.next() else {
                    break;
                };
                let email = report[index].email.clone();
                done.push((
                    index,
                    inviter.invite(&mut tx, &mut chain, &email, &grant).await?,
                ));
            }
            super::wake_mailer(state, &mut tx);
            tx.commit().await?;
            Ok::<_, DomainError>(())
        }
        .await;
        batches += 1;
        if let Err(e) = batch {
            tracing::warn!(workspace = %access.workspace.slug, batches, error = %e, "bulk invite stopped part way");
            let reason = format!("not invited: {e}; send the file again to invite the rest");
            for index in done
                .iter()
                .map(|(index, _)| *index)
                .chain(queue.by_ref().map(|(index, _)| index))
            {
                report[index].reason = Some(reason.clone());
            }
            break;
        }
        for (index, created) in done {
            let row = &mut report[index];
            match created {
                Some(created) => {
                    row.outcome = RowOutcome::Invited;
                    row.accept_url = Some(created.accept_url);
                    row.accept_token = Some(created.accept_token);
                }
                None => {
                    row.outcome = RowOutcome::Skipped;
                    row.reason = Some("already invited".into());
                }
            }
        }
    }
}
