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
