//! The workflows of work items, as the domain checks them: the table of
//! statuses and moves is [`crate::model::workflow`]; a kind named in a
//! request is checked here.

pub use crate::model::workflow::{all_statuses, workflow, Workflow, KINDS};

use super::error::{DomainError, DomainResult};

/// The workflow of `kind`, or an invalid `field`.
pub fn check_kind(field: &str, kind: &str) -> DomainResult<&'static Workflow> {
    workflow(kind).ok_or_else(|| {
        DomainError::invalid(
            field,
            format!("unknown kind `{kind}`: use change, incident or task"),
        )
    })
}
