//! Moving many items at once: each one checked and moved as if it were
//! moved alone (its workflow, the caller's permissions, its own audited
//! event), and a report of which moved and why the others did not.

use std::collections::BTreeSet;

use super::transition;
use crate::domain::authz::{Access, Permission};
use crate::domain::{DomainError, DomainResult, Reach};
use crate::store::work_items::WorkItem;

/// The most items one bulk move takes.
pub const MAX_BULK: usize = 500;

/// What a bulk move did.
#[derive(Debug)]
pub struct BulkOutcome {
    /// The items moved, as they are now, in the order asked.
    pub moved: Vec<WorkItem>,
    /// The items not moved, each with why.
    pub refused: Vec<(i64, DomainError)>,
}

/// Moves each of `ids` to `status` (needs `item.write`; approving or
/// rejecting a change needs `change.approve`), each in a transaction of its
/// own, audited as if moved alone, with `comment`. One item's refusal
/// (its workflow does not allow the move, it does not exist or is not of
/// `kind` when given, a permission it needs is missing) does not stop the
/// others.
pub async fn bulk_transition(
    state: &dyn Reach,
    access: &Access,
    kind: Option<&str>,
    ids: &[i64],
    status: &str,
    comment: &str,
) -> DomainResult<BulkOutcome> {
    let kind = kind.map(|k| super::check_kind("kind", k)).transpose()?;
    access.require(Permission::ItemWrite)?;
    if ids.is_empty() {
        return Err(DomainError::invalid(
            "ids",
            "Choose at least one item to move.",
        ));
    }
    if ids.len() > MAX_BULK {
        return Err(DomainError::invalid(
            "ids",
            format!(
                "At most {MAX_BULK} items move at once; {} were chosen.",
                ids.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let ids: Vec<i64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    super::check_comment(comment)?;
    let known = super::Status::parse(status).is_some();
    if status.is_empty() {
        return Err(DomainError::invalid(
            "status",
            "Choose the status to move to.",
        ));
    }
    if !known {
        return Err(DomainError::invalid(
            "status",
            format!("No kind of work item has a status {status}."),
        ));
    }
    let mut outcome = BulkOutcome {
        moved: Vec::new(),
        refused: Vec::new(),
    };
    for id in ids {
        if let Some(kind) = kind {
            let of_kind = match state.store().work_item(access.workspace.id, id).await {
                Ok(item) => item.kind == kind,
                Err(crate::store::StoreError::NotFound(_)) => false,
                Err(e) => return Err(e.into()),
            };
            if !of_kind {
                let refusal =
                    DomainError::NotFound(format!("There is no {kind} {id} in this workspace."));
                outcome.refused.push((id, refusal));
                continue;
            }
        }
        match transition(state, access, id, status, comment).await {
            Ok(item) => outcome.moved.push(item),
            Err(e @ DomainError::Internal(_)) => return Err(e),
            Err(e) => outcome.refused.push((id, e)),
        }
    }
    Ok(outcome)
}
