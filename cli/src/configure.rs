//! `vigilo configure`: verify credentials, then save them to the config file.
//!
//! Values come from the global `--url`, `--token` and `--workspace` flags;
//! each missing one is prompted for on stderr and read from stdin, with the
//! existing config file's value offered as the default. Environment
//! variables are deliberately not used as answers.

use std::io::{self, BufRead, Write};

use anyhow::Result;
use serde_json::{json, Value};

use crate::client::{self, exit, workspace_path, Client, Failure};
use crate::config::{self, clean, FileConfig};
use crate::output::{self, field, list, text};
use crate::GlobalArgs;

/// The long help of `vigilo configure`.
pub const LONG_ABOUT: &str = "Verify a server URL, API token and default workspace, then save \
                              them to ~/.vigilo/config.toml (mode 0600).\n\n\
                              Values come from --url, --token and --workspace; any that is \
                              missing is prompted for on stderr and read from stdin, with the \
                              current config value as default (answer `-` to clear the \
                              workspace). Nothing is saved if the token or workspace is rejected.";

/// Show a stored token as a default without revealing the secret.
fn mask(token: &str) -> String {
    match token.get(..12) {
        Some(prefix) if token.len() > 16 => format!("{prefix}…"),
        _ => "****".to_string(),
    }
}

/// Ask one question. `None` means "keep the default" (empty answer or EOF).
fn ask(
    input: &mut impl BufRead,
    question: &str,
    shown_default: Option<&str>,
) -> Result<Option<String>> {
    let mut err = io::stderr().lock();
    match shown_default {
        Some(default) => write!(err, "{question} [{default}]: ")?,
        None => write!(err, "{question}: ")?,
    }
    err.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(clean(Some(answer)))
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

fn missing(what: &str, flag: &str) -> anyhow::Error {
    Failure::new(
        exit::USAGE,
        format!("no {what} given: pass {flag} or answer the prompt"),
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
    let existing_url = clean(existing.url);
    let existing_token = clean(existing.token);
    let existing_workspace = clean(existing.workspace);

    let stdin = io::stdin();
    let mut input = stdin.lock();

    let url = match clean(globals.url.clone()) {
        Some(url) => url,
        None => ask(&mut input, "Server URL", existing_url.as_deref())?
            .or(existing_url)
            .ok_or_else(|| missing("server URL", "--url"))?,
    };
    let url = config::normalize_url(&url)?;

    let token = match clean(globals.token.clone()) {
        Some(token) => token,
        None => ask(
            &mut input,
            "API token",
            existing_token.as_deref().map(mask).as_deref(),
        )?
        .or(existing_token)
        .ok_or_else(|| missing("API token", "--token"))?,
    };

    let workspace = match clean(globals.workspace.clone()) {
        Some(slug) => Some(slug),
        None => {
            match ask(
                &mut input,
                "Default workspace slug (`-` for none)",
                existing_workspace.as_deref(),
            )? {
                Some(answer) if answer == "-" => None,
                Some(answer) => Some(answer),
                None => existing_workspace,
            }
        }
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
