//! The two tiers a plugin can run in, as the configuration and the API
//! name them.

use serde::{Deserialize, Serialize};

/// Where a plugin's code runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Loaded into the server's own process.
    InProcess,
    /// In a confined worker process of its own.
    #[default]
    Worker,
}

impl Isolation {
    /// The wire and config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::InProcess => "in_process",
            Isolation::Worker => "worker",
        }
    }

    /// Parses a wire or config name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "in_process" => Some(Isolation::InProcess),
            "worker" => Some(Isolation::Worker),
            _ => None,
        }
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
