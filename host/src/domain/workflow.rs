//! The workflows of work items, as the domain checks them: the kinds,
//! statuses and moves are [`crate::model::workflow`]; a kind or a status
//! named in a request is parsed here, once, into its type.

pub use crate::model::workflow::{Kind, Status, Workflow};

use super::error::{DomainError, DomainResult};

/// The kind named `kind`, or an invalid `field`.
pub fn check_kind(field: &str, kind: &str) -> DomainResult<Kind> {
    kind.parse()
        .map_err(|message| DomainError::invalid(field, message))
}

/// The status of `flow` named `status`, or an invalid `status` that names
/// the kind's statuses.
pub fn check_status(flow: &Workflow, status: &str) -> DomainResult<Status> {
    flow.status(status).ok_or_else(|| {
        let statuses: Vec<&str> = flow.statuses.iter().map(|s| s.as_str()).collect();
        DomainError::invalid(
            "status",
            format!(
                "a {} has no status `{status}`; its statuses are {}",
                flow.kind,
                statuses.join(", ")
            ),
        )
    })
}
