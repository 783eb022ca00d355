//! What an integration adapter is given to deliver: [`Event`]. Its own
//! module, because both the plugin traits ([`crate::Adapter`]) and the host
//! API ([`crate::host::NotifyRequest`]) speak of it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An event delivered to an integration adapter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The event type, for example `"incident.opened"`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The workspace's slug.
    pub workspace: String,
    /// A one-line title.
    #[serde(default)]
    pub title: String,
    /// Plain-text body.
    #[serde(default)]
    pub text: String,
    /// Structured details, specific to the event type.
    #[serde(default)]
    pub data: Value,
}
