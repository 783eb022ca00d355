//! `vigilo` — the command-line client for Vigilo, a self-hosted operations
//! platform.
//!
//! The CLI only talks HTTP to a Vigilo server's REST API (`/api/v1`,
//! described by the server at `/api/openapi.json`); it shares no code with
//! the server.
//!
//! # Configuration
//!
//! Every command needs the server URL and most need an API token and an
//! active workspace. Each value is taken from the first source that has it:
//!
//! 1. the global flags `--url URL`, `--token TOKEN`, `--workspace SLUG` (`-w`);
//! 2. the environment variables `VIGILO_URL`, `VIGILO_TOKEN`, `VIGILO_WORKSPACE`;
//! 3. the config file `$HOME/.vigilo/config.toml` (keys `url`, `token`,
//!    `workspace`), written by `vigilo configure` with mode 0600.
//!
//! Output is readable text or aligned tables by default, its times in this
//! computer's time zone (`--utc` prints them in UTC); `--json` prints the
//! API's JSON, times as the server stores them (UTC), instead. Errors go to stderr as `error: <message>` and the exit
//! code tells what went wrong (listed in `vigilo --help`).

mod args;
mod audit;
mod certs;
mod client;
mod comments;
mod completions;
mod config;
mod configure;
mod context;
mod dashboard;
mod fields;
mod integrations;
mod items;
mod members;
mod output;
mod paging;
mod password;
mod playbooks;
mod plugins;
mod progress;
mod roles;
mod schedule;
mod templates;
mod tokens;
mod workspaces;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::context::Ctx;

/// Help text listing configuration sources and exit codes.
const EXIT_CODES: &str = "\
Configuration (first match wins):
  1. --url, --token, --workspace/-w flags
  2. VIGILO_URL, VIGILO_TOKEN, VIGILO_WORKSPACE environment variables
  3. ~/.vigilo/config.toml (keys url, token, workspace; written by `vigilo configure`)

Exit codes:
  0  success
  1  unexpected error (local I/O, bad local file, unreadable response)
  2  usage error (bad arguments, no URL or workspace configured)
  3  not authenticated (no token configured, or HTTP 401)
  4  forbidden (HTTP 403)
  5  not found (HTTP 404)
  6  rejected input or conflict (HTTP 400, 409, 410, 413, 415, 422)
  7  server unreachable or server error (connection failure, HTTP 5xx)
  8  partial failure (bulk invite where some rows failed)
  9  audit verify found tampering
  10 cert list --fail-if-any listed at least one certificate
  11 a playbook run failed, a dry run found a step that would fail, an
     integration test message was not delivered, or `schedule run` did not
     succeed";

/// The whole command line: global flags and one subcommand.
#[derive(Parser)]
#[command(
    name = "vigilo",
    version,
    about = "Command-line client for the Vigilo operations platform",
    long_about = "Command-line client for the Vigilo operations platform.\n\n\
                  Talks to a Vigilo server over its REST API. Run `vigilo configure` \
                  once to store the server URL, an API token and a default workspace.",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    globals: GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

/// Flags accepted before or after any subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Print times in UTC instead of this computer's time zone
    #[arg(long, global = true)]
    pub utc: bool,

    /// Server base URL, e.g. http://127.0.0.1:8080 [env: VIGILO_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,

    /// API token (vgl_...) [env: VIGILO_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Workspace slug to act on [env: VIGILO_WORKSPACE]
    #[arg(short = 'w', long, global = true, value_name = "SLUG")]
    pub workspace: Option<String>,
}

/// The top-level subcommands; each wraps the subcommands of its module.
#[derive(Subcommand)]
enum Command {
    /// Verify a server URL, token and workspace and save them to ~/.vigilo/config.toml
    #[command(long_about = configure::LONG_ABOUT)]
    Configure,
    /// Show who the API token belongs to
    Whoami,
    /// Set or change the password you sign in to the web app with
    Password {
        /// Read the new password from the first line of standard input (and
        /// the current one, if you have one, from the second)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Manage your API tokens
    #[command(subcommand)]
    Token(tokens::TokenCmd),
    /// List, create and inspect workspaces
    #[command(subcommand)]
    Workspace(workspaces::WorkspaceCmd),
    /// Manage installation-level workspace templates
    #[command(subcommand)]
    Template(templates::TemplateCmd),
    /// Inspect permissions and manage custom roles
    #[command(subcommand)]
    Role(roles::RoleCmd),
    /// List, invite and remove workspace members
    #[command(subcommand)]
    Member(members::MemberCmd),
    /// List, revoke and accept invites
    #[command(subcommand)]
    Invite(members::InviteCmd),
    /// Read the workspace audit log
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Changes: draft → pending_approval → approved → in_progress → done (or rejected)
    #[command(subcommand)]
    Change(items::ItemCmd),
    /// Incidents: open → investigating → mitigated → resolved
    #[command(subcommand)]
    Incident(items::ItemCmd),
    /// Tasks: todo → doing → done
    #[command(subcommand)]
    Task(items::ItemCmd),
    /// Define the workspace's custom fields
    #[command(subcommand)]
    Field(fields::FieldCmd),
    /// Show and arrange the workspace's dashboard
    #[command(subcommand)]
    Dashboard(dashboard::DashboardCmd),
    /// List the server's plugins
    #[command(subcommand)]
    Plugin(plugins::PluginCmd),
    /// The workspace's certificate inventory and expiry warnings
    #[command(subcommand)]
    Cert(certs::CertCmd),
    /// The scheduler's periodic tasks and their runs (platform admins)
    #[command(subcommand)]
    Schedule(schedule::ScheduleCmd),
    /// The workspace's integrations (configured adapters such as Slack or a webhook)
    #[command(subcommand)]
    Integration(integrations::IntegrationCmd),
    /// The workspace's playbooks: define, run, dry-run, and read run records
    #[command(subcommand)]
    Playbook(playbooks::PlaybookCmd),
    /// Print a shell completion script (bash, zsh, fish or powershell)
    #[command(long_about = completions::LONG_ABOUT)]
    Completions(completions::CompletionsArgs),
}

/// Hand the parsed command to its module; returns the exit code.
fn run(cli: Cli) -> Result<u8> {
    output::print_times_in(cli.globals.utc);
    // These two need no connection settings (and configure makes them).
    match &cli.command {
        Command::Configure => return configure::run(&cli.globals),
        Command::Completions(args) => return completions::run(args, Cli::command()),
        _ => {}
    }
    let ctx = Ctx::new(&cli.globals)?;
    match cli.command {
        Command::Configure | Command::Completions(_) => unreachable!("handled above"),
        Command::Whoami => tokens::whoami(&ctx),
        Command::Password { password_stdin } => password::run(&ctx, password_stdin),
        Command::Token(cmd) => tokens::run(&ctx, cmd),
        Command::Workspace(cmd) => workspaces::run(&ctx, cmd),
        Command::Template(cmd) => templates::run(&ctx, cmd),
        Command::Role(cmd) => roles::run(&ctx, cmd),
        Command::Member(cmd) => members::run_member(&ctx, cmd),
        Command::Invite(cmd) => members::run_invite(&ctx, cmd),
        Command::Audit(cmd) => audit::run(&ctx, cmd),
        Command::Change(cmd) => items::run(&ctx, "change", cmd),
        Command::Incident(cmd) => items::run(&ctx, "incident", cmd),
        Command::Task(cmd) => items::run(&ctx, "task", cmd),
        Command::Field(cmd) => fields::run(&ctx, cmd),
        Command::Dashboard(cmd) => dashboard::run(&ctx, cmd),
        Command::Plugin(cmd) => plugins::run(&ctx, cmd),
        Command::Cert(cmd) => certs::run(&ctx, cmd),
        Command::Schedule(cmd) => schedule::run(&ctx, cmd),
        Command::Integration(cmd) => integrations::run(&ctx, cmd),
        Command::Playbook(cmd) => playbooks::run(&ctx, cmd),
    }
}

/// Parse the command line, run it, and turn an error into `error: ...` on
/// stderr and its exit code.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(client::exit_code(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_after_subcommand() {
        let cli = Cli::try_parse_from(["vigilo", "token", "list", "--json", "-w", "acme"]).unwrap();
        assert!(cli.globals.json);
        assert_eq!(cli.globals.workspace.as_deref(), Some("acme"));
    }

    #[test]
    fn invite_needs_exactly_one_role() {
        let base = ["vigilo", "member", "invite", "--email", "a@b.c"];
        assert!(Cli::try_parse_from(base).is_err());
        assert!(
            Cli::try_parse_from(base.iter().chain(&["--role", "x", "--custom-role", "y"])).is_err()
        );
        assert!(Cli::try_parse_from(base.iter().chain(&["--custom-role", "y"])).is_ok());
    }

    #[test]
    fn completion_scripts_cover_the_commands() {
        use completions::{script, Shell};
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Powershell] {
            let text = script(shell, &mut Cli::command());
            for word in ["vigilo", "bulk-invite", "workspace", "expiring-within"] {
                assert!(text.contains(word), "{shell:?} script lacks {word}");
            }
        }
        assert!(Cli::try_parse_from(["vigilo", "completions", "elvish"]).is_err());
    }
}
