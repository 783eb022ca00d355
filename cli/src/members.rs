//! `vigilo member ...` and `vigilo invite ...`.

use std::fs;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::client::{exit, seg, workspace_path, Client};
use crate::context::Ctx;
use crate::output::{self, field, list, role_of, text, when, Table};
use crate::{InviteCmd, MemberCmd};

pub fn run_member(ctx: &Ctx, cmd: MemberCmd) -> Result<u8> {
    let client = ctx.client()?;
    let slug = ctx.workspace()?;
    let base = workspace_path(slug);
    match cmd {
        MemberCmd::List => {
            let response = client.get(&format!("{base}/members"))?;
            let members = list(&response, "members")?;
            let mut table = Table::new(&["email", "name", "role", "joined"]);
            for m in members {
                table.row(vec![
                    text(m, "email"),
                    text(m, "name"),
                    role_of(m),
                    when(m, "joined_at"),
                ]);
            }
            output::list_or_table(ctx.json, members, &table)?;
        }
        MemberCmd::Invite(args) => {
            let body = match (args.role, args.custom_role) {
                (_, Some(custom)) => json!({ "email": args.email, "custom_role": custom }),
                (role, None) => json!({ "email": args.email, "role": role }),
            };
            let invite = client.post(&format!("{base}/invites"), &body)?;
            if ctx.json {
                return output::json(&invite).map(|()| exit::OK);
            }
            output::line(format!(
                "Invited {} to workspace {slug} as {} (invite {}, expires {}).",
                text(&invite, "email"),
                role_of(&invite),
                text(&invite, "id"),
                when(&invite, "expires_at")
            ))?;
            output::line(format!("Accept link: {}", text(&invite, "accept_url")))?;
        }
        MemberCmd::Remove { email } => {
            let removed = client.delete(&format!("{base}/members/{}", seg(&email)))?;
            if ctx.json {
                return output::json(&removed).map(|()| exit::OK);
            }
            output::line(format!(
                "Removed {} from workspace {slug}.",
                text(&removed, "email")
            ))?;
        }
        MemberCmd::BulkInvite { csv } => {
            let bytes = fs::read(&csv).with_context(|| format!("cannot read {}", csv.display()))?;
            let report = client.post_raw(&format!("{base}/invites/bulk"), "text/csv", &bytes)?;
            return bulk_report(ctx, &report);
        }
    }
    Ok(exit::OK)
}

/// Print the bulk-invite report; exit 8 when some rows failed.
fn bulk_report(ctx: &Ctx, report: &Value) -> Result<u8> {
    let count = |key: &str| field(report, key).as_u64().unwrap_or(0);
    let (invited, skipped, failed) = (count("invited"), count("skipped"), count("failed"));
    let summary = format!("invited {invited}, skipped {skipped}, failed {failed}");
    if ctx.json {
        output::json(report)?;
        eprintln!("{summary}");
    } else {
        let rows = list(report, "rows")?;
        let mut table = Table::new(&["row", "email", "outcome", "reason"]);
        for r in rows {
            table.row(vec![
                text(r, "row"),
                text(r, "email"),
                text(r, "outcome"),
                text(r, "reason"),
            ]);
        }
        table.print()?;
        let links: Vec<&Value> = rows
            .iter()
            .filter(|r| field(r, "accept_url").is_string())
            .collect();
        if !links.is_empty() {
            output::line("\nAccept links:")?;
            let mut table = Table::new(&["email", "accept link"]);
            for r in links {
                table.row(vec![text(r, "email"), text(r, "accept_url")]);
            }
            table.print()?;
        }
        output::line(format!("\n{summary}"))?;
    }
    Ok(if failed > 0 { exit::PARTIAL } else { exit::OK })
}

pub fn run_invite(ctx: &Ctx, cmd: InviteCmd) -> Result<u8> {
    match cmd {
        InviteCmd::List => {
            let client = ctx.client()?;
            let slug = ctx.workspace()?;
            let response = client.get(&format!("{}/invites", workspace_path(slug)))?;
            let invites = list(&response, "invites")?;
            let mut table = Table::new(&[
                "id",
                "email",
                "role",
                "status",
                "invited by",
                "created",
                "expires",
            ]);
            for i in invites {
                table.row(vec![
                    text(i, "id"),
                    text(i, "email"),
                    role_of(i),
                    text(i, "status"),
                    text(i, "invited_by"),
                    when(i, "created_at"),
                    when(i, "expires_at"),
                ]);
            }
            output::list_or_table(ctx.json, invites, &table)?;
        }
        InviteCmd::Revoke { id } => {
            let client = ctx.client()?;
            let slug = ctx.workspace()?;
            let revoked = client.delete(&format!("{}/invites/{id}", workspace_path(slug)))?;
            if ctx.json {
                return output::json(&revoked).map(|()| exit::OK);
            }
            output::line(format!(
                "Revoked invite {} for {}.",
                text(&revoked, "id"),
                text(&revoked, "email")
            ))?;
        }
        InviteCmd::Accept {
            invite_token,
            name,
            use_token,
        } => {
            let url = ctx.url()?;
            let token = if use_token { Some(ctx.token()?) } else { None };
            let client = Client::new(&url, token);
            let body = match name {
                Some(name) => json!({ "name": name }),
                None => json!({}),
            };
            let accepted = client.post(
                &format!("/api/v1/invites/{}/accept", seg(&invite_token)),
                &body,
            )?;
            if ctx.json {
                return output::json(&accepted).map(|()| exit::OK);
            }
            let workspace = text(&accepted, "workspace");
            output::line(format!(
                "Joined workspace {workspace} as {}.",
                role_of(&accepted)
            ))?;
            let new_token = field(&accepted, "token");
            if new_token.is_object() {
                let secret = text(new_token, "token");
                output::line("Your first API token (it will not be shown again):")?;
                output::line(&secret)?;
                output::line("To use it, run:")?;
                output::line(format!(
                    "  vigilo configure --url {url} --token {secret} --workspace {workspace}"
                ))?;
            } else {
                output::line("No new token was issued: keep using your existing API token.")?;
            }
        }
    }
    Ok(exit::OK)
}
