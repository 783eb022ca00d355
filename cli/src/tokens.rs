//! `vigilo whoami` and `vigilo token ...`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::exit;
use crate::context::Ctx;
use crate::output::{self, field, list, role_of, text, when, yes_no, Table};

/// `vigilo token ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a new API token for yourself
    Create {
        /// Name of the token
        #[arg(long)]
        name: String,
        /// Lifetime such as 30d, 12h, 45m, 90s or 2w (default: never expires)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires_in: Option<u64>,
    },
    /// List your API tokens
    List,
    /// Revoke one of your API tokens
    Revoke {
        /// Token id (see `vigilo token list`)
        id: u64,
    },
}

/// Parse `30d`, `12h`, `45m`, `90s` or `2w` into seconds.
pub fn parse_duration(raw: &str) -> Result<u64, String> {
    let raw = raw.trim().to_ascii_lowercase();
    let unit = raw
        .chars()
        .last()
        .ok_or("a duration such as 30d is required")?;
    let unit_seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 60 * 60,
        'd' => 24 * 60 * 60,
        'w' => 7 * 24 * 60 * 60,
        _ => {
            return Err(format!(
                "\"{raw}\" has no unit: use <n>s, <n>m, <n>h, <n>d or <n>w, e.g. 30d"
            ))
        }
    };
    let number = &raw[..raw.len() - unit.len_utf8()];
    let count: u64 = number
        .parse()
        .map_err(|_| format!("\"{raw}\" is not a duration such as 30d, 12h or 2w"))?;
    if count == 0 {
        return Err("the duration must be greater than zero".to_string());
    }
    count
        .checked_mul(unit_seconds)
        .ok_or_else(|| format!("\"{raw}\" is too long"))
}

/// Expiry text: `never` for a token without one.
fn expiry(token: &Value) -> String {
    if field(token, "expires_at").is_null() {
        "never".to_string()
    } else {
        when(token, "expires_at")
    }
}

/// Run `vigilo whoami`: the token's holder, the token and the memberships.
pub fn whoami(ctx: &Ctx) -> Result<u8> {
    let client = ctx.client()?;
    let me = client.get("/api/v1/me")?;
    if ctx.json {
        output::json(&me)?;
        return Ok(exit::OK);
    }
    let user = field(&me, "user");
    let token = field(&me, "token");
    output::key_values(&[
        ("Server", client.base().to_string()),
        ("User", text(user, "email")),
        ("Name", text(user, "name")),
        ("Platform admin", yes_no(user, "platform_admin")),
        (
            "Token",
            format!("{} ({})", text(token, "name"), text(token, "prefix")),
        ),
        ("Token status", text(token, "status")),
        ("Token expires", expiry(token)),
        (
            "Active workspace",
            ctx.workspace_opt().unwrap_or("-").to_string(),
        ),
    ])?;
    let memberships = list(&me, "memberships")?;
    if memberships.is_empty() {
        output::line("\nMemberships: none")?;
    } else {
        output::line("\nMemberships:")?;
        let mut table = Table::new(&["workspace", "name", "role"]);
        for m in memberships {
            table.row(vec![
                text(m, "workspace"),
                text(m, "workspace_name"),
                role_of(m),
            ]);
        }
        table.print()?;
    }
    Ok(exit::OK)
}

/// Run one `vigilo token` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: TokenCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        TokenCmd::Create { name, expires_in } => {
            let mut body = json!({ "name": name });
            if let Some(seconds) = expires_in {
                body["expires_in_seconds"] = json!(seconds);
            }
            let created = client.create("/api/v1/tokens", &body)?;
            if ctx.json {
                return output::json(&created).map(|()| exit::OK);
            }
            output::line(format!(
                "Created token \"{}\" (id {}, prefix {}, expires {}):",
                text(&created, "name"),
                text(&created, "id"),
                text(&created, "prefix"),
                expiry(&created)
            ))?;
            output::line(text(&created, "token"))?;
            output::line("Copy it now: it will not be shown again.")?;
        }
        TokenCmd::List => {
            let response = client.get("/api/v1/tokens")?;
            let tokens = list(&response, "tokens")?;
            let mut table = Table::new(&[
                "id",
                "name",
                "prefix",
                "status",
                "created",
                "expires",
                "last used",
            ]);
            for t in tokens {
                table.row(vec![
                    text(t, "id"),
                    text(t, "name"),
                    text(t, "prefix"),
                    text(t, "status"),
                    when(t, "created_at"),
                    when(t, "expires_at"),
                    when(t, "last_used_at"),
                ]);
            }
            output::list_or_table(ctx.json, tokens, &table)?;
        }
        TokenCmd::Revoke { id } => {
            let revoked = client.delete(&format!("/api/v1/tokens/{id}"))?;
            if ctx.json {
                return output::json(&revoked).map(|()| exit::OK);
            }
            output::line(format!(
                "Revoked token {} (\"{}\", {}).",
                text(&revoked, "id"),
                text(&revoked, "name"),
                text(&revoked, "prefix")
            ))?;
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("30d"), Ok(2_592_000));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("45m"), Ok(2_700));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("-1d").is_err());
        assert!(parse_duration("").is_err());
    }
}
