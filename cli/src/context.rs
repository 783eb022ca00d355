//! Per-invocation context handed to every command: output mode plus the
//! resolved URL, token and workspace, with helpful errors when one is missing.

use anyhow::Result;

use crate::client::{exit, Client, Failure};
use crate::config::{self, Resolved};
use crate::progress::Spinner;
use crate::GlobalArgs;

/// What every command gets: the output mode and the connection settings.
pub struct Ctx {
    /// `--json` was given.
    pub json: bool,
    resolved: Resolved,
}

impl Ctx {
    /// Resolve the settings from the flags, the environment and the config file.
    pub fn new(globals: &GlobalArgs) -> Result<Self> {
        Ok(Ctx {
            json: globals.json,
            resolved: Resolved::from_sources(globals)?,
        })
    }

    /// The server URL, validated and without a trailing slash.
    pub fn url(&self) -> Result<String> {
        match &self.resolved.url {
            Some(url) => config::normalize_url(url),
            None => Err(Failure::new(
                exit::USAGE,
                format!(
                    "no server URL is configured: pass --url URL, set {}, or run `vigilo configure`",
                    config::ENV_URL
                ),
            )
            .into()),
        }
    }

    /// The API token.
    pub fn token(&self) -> Result<&str> {
        self.resolved.token.as_deref().ok_or_else(|| {
            Failure::new(
                exit::UNAUTHENTICATED,
                format!(
                    "no API token is configured: pass --token TOKEN, set {}, or run `vigilo configure`",
                    config::ENV_TOKEN
                ),
            )
            .into()
        })
    }

    /// The active workspace, if any.
    pub fn workspace_opt(&self) -> Option<&str> {
        self.resolved.workspace.as_deref()
    }

    /// The active workspace; an error when none is set.
    pub fn workspace(&self) -> Result<&str> {
        self.workspace_opt().ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!(
                    "no workspace is selected: pass --workspace SLUG (or -w SLUG), set {}, \
                     or run `vigilo configure` to choose a default workspace",
                    config::ENV_WORKSPACE
                ),
            )
            .into()
        })
    }

    /// `explicit` if given, else the active workspace.
    pub fn workspace_or<'a>(&'a self, explicit: Option<&'a str>) -> Result<&'a str> {
        match explicit.map(str::trim).filter(|s| !s.is_empty()) {
            Some(slug) => Ok(slug),
            None => self.workspace(),
        }
    }

    /// A spinner on stderr for work that takes a while (silent with
    /// `--json` or when stderr is not a terminal).
    pub fn spinner(&self, message: impl Into<String>) -> Spinner {
        Spinner::start(self.json, message)
    }

    /// An authenticated client.
    pub fn client(&self) -> Result<Client> {
        let url = self.url()?;
        Ok(Client::new(&url, Some(self.token()?)))
    }
}
