//! `vigilo member ...` and `vigilo invite ...`.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

use crate::args::non_empty;
use crate::client::{exit, seg, workspace_path, Client};
use crate::context::Ctx;
use crate::output::{self, field, list, role_of, text, when, Table};
use crate::paging::{PagedList, Take, Walked};

/// `vigilo member ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum MemberCmd {
    /// List the members of the workspace, by email (a page of 100; see --limit, --all)
    List {
        #[command(flatten)]
        pages: PageArgs,
        /// Start after the member with this email (the next page)
        #[arg(long, value_name = "EMAIL")]
        after: Option<String>,
        /// Start before the member with this email (the previous page)
        #[arg(long, value_name = "EMAIL")]
        before: Option<String>,
    },
    /// Invite someone by email
    Invite(InviteArgs),
    /// Give a member another role (owners; the last owner stays an owner)
    Role(RoleArgs),
    /// Remove a member
    Remove {
        /// Email of the member
        #[arg(value_parser = non_empty)]
        email: String,
    },
    /// Invite many people from a CSV file (header: email,role,custom_role_name)
    BulkInvite {
        /// CSV file to upload
        #[arg(long, value_name = "FILE")]
        csv: PathBuf,
    },
}

/// The arguments of `vigilo member invite`: an email and exactly one role.
#[derive(Args)]
#[command(group(ArgGroup::new("grant").required(true).args(["role", "custom_role"])))]
pub struct InviteArgs {
    /// Email address to invite
    #[arg(long)]
    pub email: String,
    /// Built-in role to grant
    #[arg(long)]
    pub role: Option<String>,
    /// Custom role to grant
    #[arg(long, value_name = "NAME")]
    pub custom_role: Option<String>,
}

/// The arguments of `vigilo member role`: an email and exactly one role.
#[derive(Args)]
#[command(group(ArgGroup::new("grant").required(true).args(["role", "custom_role"])))]
pub struct RoleArgs {
    /// Email of the member
    #[arg(value_parser = non_empty)]
    pub email: String,
    /// Built-in role to give
    #[arg(long)]
    pub role: Option<String>,
    /// Custom role to give
    #[arg(long, value_name = "NAME")]
    pub custom_role: Option<String>,
}

/// How much of a list to show.
#[derive(Args)]
#[command(group(ArgGroup::new("how_many").args(["limit", "all"])))]
pub struct PageArgs {
    /// Show at most N rows (reading as many pages as it takes)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Show every row (reading every page)
    #[arg(long)]
    pub all: bool,
}

impl PageArgs {
    fn take(&self) -> Take {
        match (self.limit, self.all) {
            (_, true) => Take::All,
            (Some(n), false) => Take::UpTo(n),
            (None, false) => Take::Page,
        }
    }
}

/// Prints a walked list as a table (or a JSON array) and, on standard
/// error, how to see the rows not shown.
fn print_walked(ctx: &Ctx, paged: &PagedList, walked: &Walked, table: &Table) -> Result<()> {
    output::list_or_table(ctx.json, &walked.rows, table)?;
    if let Some(hint) = paged.hint(walked) {
        eprintln!("{hint}");
    }
    Ok(())
}

/// `vigilo invite ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum InviteCmd {
    /// List the invites of the workspace, newest first (a page of 100; see --limit, --all)
    List {
        #[command(flatten)]
        pages: PageArgs,
        /// Only invites older than the one with this id (the next page)
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
        /// Only invites newer than the one with this id (the previous page)
        #[arg(long, value_name = "ID")]
        after: Option<u64>,
    },
    /// Revoke a pending invite
    Revoke {
        /// Invite id (see `vigilo invite list`)
        id: u64,
    },
    /// Send a pending or expired invite again, with a new link
    Resend {
        /// Invite id (see `vigilo invite list`)
        id: u64,
    },
    /// Accept an invite (uses --url; no token needed for a new user)
    Accept {
        /// The invite token (vgi_...) from the accept link
        #[arg(value_name = "TOKEN", value_parser = non_empty)]
        invite_token: String,
        /// Your name (for a new account)
        #[arg(long, required_unless_present = "use_token")]
        name: Option<String>,
        /// Send the configured API token (when you already have an account)
        #[arg(long)]
        use_token: bool,
    },
}

/// Run one `vigilo member` subcommand; returns the exit code.
pub fn run_member(ctx: &Ctx, cmd: MemberCmd) -> Result<u8> {
    let client = ctx.client()?;
    let slug = ctx.workspace()?;
    let base = workspace_path(slug);
    match cmd {
        MemberCmd::List {
            pages,
            after,
            before,
        } => {
            let paged = PagedList {
                path: format!("{base}/members"),
                rows: "members",
                noun: "members",
                command: "vigilo member list",
                next_param: "after",
                prev_param: "before",
                next_field: "next_after",
                prev_field: "prev_before",
            };
            let walked = paged.walk(&client, after, before, pages.take())?;
            let mut table = Table::new(&["email", "name", "role", "joined"]);
            for m in &walked.rows {
                table.row(vec![
                    text(m, "email"),
                    text(m, "name"),
                    role_of(m),
                    when(m, "joined_at"),
                ]);
            }
            print_walked(ctx, &paged, &walked, &table)?;
        }
        MemberCmd::Invite(args) => {
            let body = match (args.role, args.custom_role) {
                (_, Some(custom)) => json!({ "email": args.email, "custom_role": custom }),
                (role, None) => json!({ "email": args.email, "role": role }),
            };
            let invite = client.create(&format!("{base}/invites"), &body)?;
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
        MemberCmd::Role(args) => {
            let body = match (args.role, args.custom_role) {
                (_, Some(custom)) => json!({ "custom_role": custom }),
                (role, None) => json!({ "role": role }),
            };
            let member = client.patch(&format!("{base}/members/{}", seg(&args.email)), &body)?;
            if ctx.json {
                return output::json(&member).map(|()| exit::OK);
            }
            output::line(format!(
                "{} is now {} in workspace {slug}.",
                text(&member, "email"),
                role_of(&member)
            ))?;
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
            // Rows after the header line.
            let rows = bytes
                .split(|b| *b == b'\n')
                .skip(1)
                .filter(|line| !line.trim_ascii().is_empty())
                .count();
            let spinner = ctx.spinner(format!(
                "Inviting {rows} row{} of {} to {slug}",
                if rows == 1 { "" } else { "s" },
                csv.display()
            ));
            let report = client.create_raw(&format!("{base}/invites/bulk"), "text/csv", &bytes)?;
            drop(spinner);
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

/// Run one `vigilo invite` subcommand; returns the exit code.
pub fn run_invite(ctx: &Ctx, cmd: InviteCmd) -> Result<u8> {
    match cmd {
        InviteCmd::List {
            pages,
            before,
            after,
        } => {
            let client = ctx.client()?;
            let slug = ctx.workspace()?;
            let paged = PagedList {
                path: format!("{}/invites", workspace_path(slug)),
                rows: "invites",
                noun: "invites",
                command: "vigilo invite list",
                next_param: "before",
                prev_param: "after",
                next_field: "next_before",
                prev_field: "prev_after",
            };
            let walked = paged.walk(
                &client,
                after.map(|id| id.to_string()),
                before.map(|id| id.to_string()),
                pages.take(),
            )?;
            let mut table = Table::new(&[
                "id",
                "email",
                "role",
                "status",
                "invited by",
                "created",
                "expires",
            ]);
            for i in &walked.rows {
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
            print_walked(ctx, &paged, &walked, &table)?;
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
        InviteCmd::Resend { id } => {
            let client = ctx.client()?;
            let slug = ctx.workspace()?;
            let invite = client.create(
                &format!("{}/invites/{id}/resend", workspace_path(slug)),
                &json!({}),
            )?;
            if ctx.json {
                return output::json(&invite).map(|()| exit::OK);
            }
            output::line(format!(
                "Sent invite {id} to {} again as invite {} (expires {}); the old link no longer works.",
                text(&invite, "email"),
                text(&invite, "id"),
                when(&invite, "expires_at")
            ))?;
            output::line(format!("Accept link: {}", text(&invite, "accept_url")))?;
        }
        InviteCmd::Accept {
            invite_token,
            name,
            use_token,
        } => return accept(ctx, &invite_token, name, use_token),
    }
    Ok(exit::OK)
}

/// `invite accept`: joins the workspace, and shows a new account its first token.
fn accept(ctx: &Ctx, invite_token: &str, name: Option<String>, use_token: bool) -> Result<u8> {
    let url = ctx.url()?;
    let token = if use_token { Some(ctx.token()?) } else { None };
    let client = Client::new(&url, token);
    let body = match name {
        Some(name) => json!({ "name": name }),
        None => json!({}),
    };
    let accepted = client.post(
        &format!("/api/v1/invites/{}/accept", seg(invite_token)),
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
    Ok(exit::OK)
}
