//! `vigilo password`: set or change the password you sign in to the web app
//! with. Someone who joined with `vigilo invite accept` has none until they
//! set one here.

use std::io::{self, BufRead, IsTerminal};

use anyhow::{Context, Result};
use dialoguer::Password;
use serde_json::json;

use crate::client::{exit, Failure};
use crate::context::Ctx;
use crate::output::{self, field};

/// Set or change the password; with `stdin`, the new password is the first
/// line of standard input and the current one (if any) the second.
pub fn run(ctx: &Ctx, stdin: bool) -> Result<u8> {
    let (new, current) = if stdin {
        let mut lines = io::stdin().lock().lines();
        let new = lines
            .next()
            .transpose()
            .context("cannot read standard input")?
            .unwrap_or_default();
        let current = lines
            .next()
            .transpose()
            .context("cannot read standard input")?;
        (new, current.filter(|c| !c.is_empty()))
    } else if io::stdin().is_terminal() && io::stderr().is_terminal() {
        let current = Password::new()
            .with_prompt("Current password (empty if you have none yet)")
            .allow_empty_password(true)
            .interact()
            .context("cannot read the current password")?;
        let new = Password::new()
            .with_prompt("New password")
            .with_confirmation("New password again", "The two passwords are not the same")
            .interact()
            .context("cannot read the new password")?;
        (new, Some(current).filter(|c| !c.is_empty()))
    } else {
        return Err(Failure::new(
            exit::USAGE,
            "no terminal to ask for the password: pipe it in with --password-stdin",
        )
        .into());
    };
    let client = ctx.client()?;
    let answer = client.put(
        "/api/v1/me/password",
        &json!({"password": new, "current_password": current}),
    )?;
    if ctx.json {
        return output::json(&answer).map(|()| exit::OK);
    }
    let ended = field(&answer, "sessions_ended").as_u64().unwrap_or(0);
    output::line(format!(
        "Your password is set: sign in to the web app with it.{}",
        if ended > 0 {
            format!(" {ended} browser session(s) were signed out.")
        } else {
            String::new()
        }
    ))?;
    Ok(exit::OK)
}
