//! `vigilo configure`: verify credentials, then save them to the config file.
//!
//! Values come from the global `--url`, `--token` and `--workspace` flags.
//! Each missing one defaults to its environment variable (`VIGILO_URL`,
//! `VIGILO_TOKEN`, `VIGILO_WORKSPACE`), else to the existing config file's
//! value. When stdin and stderr are terminals, each missing value is asked
//! for with that default; otherwise nothing is asked and the default is
//! used, and a missing URL or token is a usage error naming its flag.
//! `-` as the workspace (flag, variable or answer) means none.

use std::io::{self, IsTerminal};

use anyhow::{Context, Result};
use dialoguer::{Input, Password};
use serde_json::{json, Value};

use crate::client::{self, exit, workspace_path, Client, Failure};
use crate::config::{self, clean, FileConfig};
use crate::output::{self, field, list, text};
use crate::GlobalArgs;

/// The long help of `vigilo configure`.
pub const LONG_ABOUT: &str = "Verify a server URL, API token and default workspace, then save \
                              them to ~/.vigilo/config.toml (mode 0600).\n\n\
                              Values come from --url, --token and --workspace. Any that is \
                              missing defaults to VIGILO_URL, VIGILO_TOKEN or VIGILO_WORKSPACE, \
                              else to the current config value. On a terminal each missing value \
                              is asked for, with that default; without one nothing is asked, the \
                              defaults are used, and a missing URL or token is a usage error. \
                              `--workspace -` (or the answer `-`) means no default workspace. \
                              Nothing is saved if the token or workspace is rejected.";

/// The workspace value that means "no default workspace".
const NO_WORKSPACE: &str = "-";

/// Show a stored token as a default without revealing the secret.
fn mask(token: &str) -> String {
    match token.get(..12) {
        Some(prefix) if token.len() > 16 => format!("{prefix}…"),
        _ => "****".to_string(),
    }
}

/// Whether questions may be asked: stdin (the answers) and stderr (the
/// questions) are both terminals.
fn interactive() -> bool {
    io::stdin().is_terminal() && io::stderr().is_terminal()
}

/// An environment variable, trimmed; empty counts as unset.
fn env(name: &str) -> Option<String> {
    clean(std::env::var(name).ok())
}

/// Ask for the server URL until a valid one is given.
fn ask_url(default: Option<String>) -> Result<String> {
    let mut input = Input::<String>::new()
        .with_prompt("Server URL")
        .validate_with(|url: &String| {
            config::normalize_url(url)
                .map(drop)
                .map_err(|e| e.to_string())
        });
    if let Some(default) = default {
        input = input.default(default);
    }
    input.interact_text().context("cannot read the server URL")
}

/// Ask for the API token without echoing it; an empty answer keeps `default`.
fn ask_token(default: Option<String>) -> Result<Option<String>> {
    let prompt = match &default {
        Some(token) => format!("API token [{}]", mask(token)),
        None => "API token".to_string(),
    };
    let answer = Password::new()
        .with_prompt(prompt)
        .allow_empty_password(default.is_some())
        .interact()
        .context("cannot read the API token")?;
    Ok(clean(Some(answer)).or(default))
}

/// Ask for the default workspace; an empty answer keeps `default`.
fn ask_workspace(default: Option<String>) -> Result<String> {
    let mut input = Input::<String>::new()
        .with_prompt("Default workspace slug (`-` for none)")
        .allow_empty(true);
    if let Some(default) = default {
        input = input.default(default);
    }
    input
        .interact_text()
        .context("cannot read the workspace slug")
}

/// A workspace value as saved: `-` (or nothing) means none.
fn workspace_choice(value: Option<String>) -> Option<String> {
    clean(value).filter(|slug| slug != NO_WORKSPACE)
}

/// Keep the exit code but say that nothing was written.
fn not_saved(err: anyhow::Error) -> anyhow::Error {
    let mut failure = Failure::new(
        client::exit_code(&err),
        format!("{err:#}\nthe configuration was not saved"),
    );
    failure.status = client::http_status(&err);
    failure.into()
}

/// The usage error for a required value that no source gave.
fn missing(what: &str, flag: &str, env_name: &str) -> anyhow::Error {
    Failure::new(
        exit::USAGE,
        format!(
            "no {what} given: pass {flag} or set {env_name} \
             (nothing is asked without a terminal)"
        ),
    )
    .into()
}

/// Run `vigilo configure`; returns the exit code.
pub fn run(globals: &GlobalArgs) -> Result<u8> {
    let path = config::config_path()?;
    let existing = config::load(&path).unwrap_or_else(|err| {
        eprintln!("warning: ignoring the existing configuration: {err:#}");
        FileConfig::default()
    });
    let default_url = env(config::ENV_URL).or_else(|| clean(existing.url));
    let default_token = env(config::ENV_TOKEN).or_else(|| clean(existing.token));
    let default_workspace = env(config::ENV_WORKSPACE).or_else(|| clean(existing.workspace));
    let ask = interactive();

    let url = match clean(globals.url.clone()) {
        Some(url) => url,
        None if ask => ask_url(default_url)?,
        None => default_url.ok_or_else(|| missing("server URL", "--url URL", config::ENV_URL))?,
    };
    let url = config::normalize_url(&url)?;

    let token = match clean(globals.token.clone()) {
        Some(token) => token,
        None if ask => ask_token(default_token)?
            .ok_or_else(|| Failure::new(exit::USAGE, "no API token given: pass --token TOKEN"))?,
        None => {
            default_token.ok_or_else(|| missing("API token", "--token TOKEN", config::ENV_TOKEN))?
        }
    };

    let workspace = match clean(globals.workspace.clone()) {
        Some(slug) => workspace_choice(Some(slug)),
        None if ask => workspace_choice(Some(ask_workspace(default_workspace)?)),
        None => workspace_choice(default_workspace),
    };

    let client = Client::new(&url, Some(&token));
    let me = client.get("/api/v1/me").map_err(not_saved)?;
    let user = field(&me, "user");
    let email = text(user, "email");

    if let Some(slug) = &workspace {
        let memberships = list(&me, "memberships").map_err(not_saved)?;
        let is_member = memberships
            .iter()
            .any(|m| field(m, "workspace").as_str() == Some(slug.as_str()));
        if !is_member {
            if field(user, "platform_admin").as_bool() == Some(true) {
                client.get(&workspace_path(slug)).map_err(not_saved)?;
            } else {
                let mine: Vec<String> = memberships.iter().map(|m| text(m, "workspace")).collect();
                let known = if mine.is_empty() {
                    "you are not a member of any workspace".to_string()
                } else {
                    format!("your workspaces: {}", mine.join(", "))
                };
                return Err(not_saved(
                    Failure::new(
                        exit::REJECTED,
                        format!("{email} is not a member of workspace \"{slug}\" ({known})"),
                    )
                    .into(),
                ));
            }
        }
    }

    config::save(&path, &url, &token, workspace.as_deref())?;

    if globals.json {
        output::json(&json!({
            "path": path.display().to_string(),
            "url": url,
            "user": email,
            "workspace": workspace.as_ref().map_or(Value::Null, |w| json!(w)),
        }))?;
    } else {
        let workspace_text = match &workspace {
            Some(slug) => format!("workspace {slug}"),
            None => "no workspace".to_string(),
        };
        output::line(format!(
            "Saved configuration to {} (user {email}, {workspace_text})",
            path.display()
        ))?;
    }
    Ok(exit::OK)
}
