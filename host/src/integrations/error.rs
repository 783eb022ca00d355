//! [`IntegrationError`]: what the integrations runtime answers when it
//! refuses or fails.

use crate::plugins::host_api::Refusal;
use crate::plugins::PluginCallError;
use crate::store::StoreError;

/// Why the integrations runtime refused a request or failed; the domain
/// words it for people and the API.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// A setting is wrong: the request's field (`adapter`, `config`) and
    /// why.
    #[error("{message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The integration cannot deliver as it stands (it is disabled, or its
    /// stored secrets do not open).
    #[error("{0}")]
    NotReady(String),
    /// No loaded plugin provides the integration's adapter.
    #[error("{0}")]
    AdapterMissing(String),
    /// The adapter's plugin failed.
    #[error(transparent)]
    Plugin(PluginCallError),
    /// The store failed, or found nothing by that name.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server failed.
    #[error("{0}")]
    Internal(String),
}

impl IntegrationError {
    pub(super) fn invalid(field: &'static str, message: String) -> Self {
        IntegrationError::Invalid { field, message }
    }
}

/// What a plugin that asked for a delivery is told.
impl From<IntegrationError> for Refusal {
    fn from(e: IntegrationError) -> Self {
        match e {
            IntegrationError::Store(e) => Refusal::from(e),
            IntegrationError::Internal(detail) => Refusal::Server(detail),
            other => Refusal::Asked(other.to_string()),
        }
    }
}
