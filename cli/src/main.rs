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
//! Output is readable text or aligned tables by default; `--json` prints the
//! API's JSON instead. Errors go to stderr as `error: <message>` and the exit
//! code tells what went wrong (listed in `vigilo --help`).

mod audit;
mod certs;
mod client;
mod config;
mod configure;
mod context;
mod dashboard;
mod fields;
mod integrations;
mod items;
mod members;
mod output;
mod playbooks;
mod plugins;
mod roles;
mod schedule;
mod templates;
mod tokens;
mod workspaces;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{ArgGroup, Args, Parser, Subcommand};

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

#[derive(Subcommand)]
enum Command {
    /// Verify a server URL, token and workspace and save them to ~/.vigilo/config.toml
    #[command(
        long_about = "Verify a server URL, API token and default workspace, then save \
                            them to ~/.vigilo/config.toml (mode 0600).\n\n\
                            Values come from --url, --token and --workspace; any that is \
                            missing is prompted for on stderr and read from stdin, with the \
                            current config value as default (answer `-` to clear the \
                            workspace). Nothing is saved if the token or workspace is rejected."
    )]
    Configure,
    /// Show who the API token belongs to
    Whoami,
    /// Manage your API tokens
    #[command(subcommand)]
    Token(TokenCmd),
    /// List, create and inspect workspaces
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
    /// Manage installation-level workspace templates
    #[command(subcommand)]
    Template(TemplateCmd),
    /// Inspect permissions and manage custom roles
    #[command(subcommand)]
    Role(RoleCmd),
    /// List, invite and remove workspace members
    #[command(subcommand)]
    Member(MemberCmd),
    /// List, revoke and accept invites
    #[command(subcommand)]
    Invite(InviteCmd),
    /// Read the workspace audit log
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Changes: draft → pending_approval → approved → in_progress → done (or rejected)
    #[command(subcommand)]
    Change(ItemCmd),
    /// Incidents: open → investigating → mitigated → resolved
    #[command(subcommand)]
    Incident(ItemCmd),
    /// Tasks: todo → doing → done
    #[command(subcommand)]
    Task(ItemCmd),
    /// Define the workspace's custom fields
    #[command(subcommand)]
    Field(FieldCmd),
    /// Show and arrange the workspace's dashboard
    #[command(subcommand)]
    Dashboard(DashboardCmd),
    /// List the server's plugins
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// The workspace's certificate inventory and expiry warnings
    #[command(subcommand)]
    Cert(CertCmd),
    /// The scheduler's periodic tasks and their runs (platform admins)
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// The workspace's integrations (configured adapters such as Slack or a webhook)
    #[command(subcommand)]
    Integration(IntegrationCmd),
    /// The workspace's playbooks: define, run, dry-run, and read run records
    #[command(subcommand)]
    Playbook(PlaybookCmd),
}

#[derive(Subcommand)]
pub enum IntegrationCmd {
    /// List the adapters the server's plugins provide, with their settings
    Adapters,
    /// List the workspace's integrations (secrets are never shown)
    List,
    /// Add an integration
    Add {
        /// Unique name in the workspace, such as ops-slack
        name: String,
        /// The adapter (see `vigilo integration adapters`)
        #[arg(long)]
        adapter: String,
        /// A setting as KEY=VALUE (repeatable); VALUE is JSON if it parses, else text
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Read a secret setting from the environment variable VAR: KEY=VAR
        /// (keeps it out of shell history and process lists)
        #[arg(long = "secret-env", value_name = "KEY=VAR")]
        secret_env: Vec<String>,
    },
    /// Show one integration
    Show { name: String },
    /// Change settings (secret settings left out keep their values) or turn it on or off
    Update {
        name: String,
        /// A setting as KEY=VALUE (repeatable); `KEY=null` removes it
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Read a secret setting from the environment variable VAR: KEY=VAR
        #[arg(long = "secret-env", value_name = "KEY=VAR")]
        secret_env: Vec<String>,
        /// Deliver events through it
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop delivering events through it
        #[arg(long)]
        disable: bool,
    },
    /// Remove an integration
    Remove { name: String },
    /// Send a test message; exits 11 if it was not delivered
    Test {
        name: String,
        /// The message text
        #[arg(long)]
        text: Option<String>,
    },
    /// The integration's delivery log, newest first
    Deliveries {
        name: String,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum PlaybookCmd {
    /// List the workspace's playbooks
    List,
    /// Show a playbook's steps
    Show {
        /// Id or name
        playbook: String,
    },
    /// Create a playbook from a JSON file ({"name", "description", "steps": [...]})
    Create {
        /// The definition file (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Replace a playbook's definition from a JSON file
    Update {
        /// Id or name
        playbook: String,
        /// The definition file (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a playbook (its run records stay)
    Remove {
        /// Id or name
        playbook: String,
    },
    /// Run a playbook and show each step's outcome; exits 11 if a step failed
    Run {
        /// Id or name
        playbook: String,
        /// Evaluate every step without side effects and say what each would do
        #[arg(long)]
        dry_run: bool,
        /// An input variable as KEY=VALUE for {{input.KEY}} (repeatable)
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// List run records, newest first
    Runs {
        /// Only runs of this playbook (id or name)
        #[arg(long)]
        playbook: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one run record with each step's status, output and error
    ShowRun { id: i64 },
}

#[derive(Subcommand)]
pub enum ScheduleCmd {
    /// List the periodic tasks with their schedule, next run and last outcome
    List,
    /// Run a task now, outside its schedule, and show the outcome
    Run {
        /// The task's name
        name: String,
    },
    /// Show a task's runs, newest first
    Runs {
        /// The task's name
        name: String,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum CertCmd {
    /// Upload a certificate or a chain (PEM, leaf first)
    Add {
        /// The PEM file
        #[arg(long, value_name = "FILE")]
        pem: PathBuf,
        /// Display name (default: the certificate's common name)
        #[arg(long)]
        name: Option<String>,
    },
    /// List certificates, soonest expiry first
    List {
        /// Only those expiring within DAYS (expired ones included)
        #[arg(long, value_name = "DAYS")]
        expiring_within: Option<u32>,
        /// Exit with status 10 when anything is listed (for cron alerts)
        #[arg(long)]
        fail_if_any: bool,
    },
    /// Show one certificate with its PEM text
    Show { id: i64 },
    /// Remove a certificate from the inventory
    Remove { id: i64 },
}

#[derive(Subcommand)]
pub enum ItemCmd {
    /// List items, newest first
    List {
        /// Only items in this status
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1-500)
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Create an item
    Create {
        /// One-line title
        #[arg(long)]
        title: String,
        /// Longer description
        #[arg(long)]
        description: Option<String>,
        /// A custom field value, KEY=VALUE (repeatable); VALUE is JSON when it parses as JSON, else text
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = items::parse_field)]
        fields: Vec<(String, serde_json::Value)>,
    },
    /// Show one item
    Show { id: i64 },
    /// Change an item's title, description or custom field values
    Update {
        id: i64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Set a custom field, KEY=VALUE (repeatable)
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = items::parse_field)]
        fields: Vec<(String, serde_json::Value)>,
        /// Remove a custom field value (repeatable)
        #[arg(long = "unset-field", value_name = "KEY")]
        unset: Vec<String>,
    },
    /// Move an item to another status of its workflow
    Move {
        id: i64,
        /// The new status
        status: String,
        /// Why (recorded in the audit log)
        #[arg(long)]
        comment: Option<String>,
    },
    /// Approve a change pending approval (needs change.approve)
    Approve {
        id: i64,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a change pending approval (needs change.approve)
    Reject {
        id: i64,
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum FieldCmd {
    /// List the workspace's custom fields
    List,
    /// List the field types this server offers (built-in and from plugins)
    Types,
    /// Define a custom field
    Add {
        /// Key used in items' fields
        #[arg(long)]
        key: String,
        /// Label shown in forms
        #[arg(long)]
        label: String,
        /// A built-in type (text, number, boolean, date, select) or a plugin's (see `vigilo field types`)
        #[arg(long = "type", value_name = "TYPE")]
        field_type: String,
        /// Which kinds carry it (comma-separated: change, incident, task)
        #[arg(long, value_delimiter = ',', default_value = "change,incident,task")]
        applies_to: Vec<String>,
        /// Every new item must have a value
        #[arg(long)]
        required: bool,
        /// For select: the allowed values (comma-separated)
        #[arg(long, value_delimiter = ',')]
        options: Vec<String>,
    },
    /// Delete a custom field definition
    Remove { key: String },
}

#[derive(Subcommand)]
pub enum DashboardCmd {
    /// Show the dashboard with each widget's data
    Show,
    /// List the widgets this server offers
    Widgets,
    /// Add a widget at the end of the dashboard
    Add {
        /// Widget name (see `vigilo dashboard widgets`)
        widget: String,
        /// The widget's configuration as a JSON object
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
    },
    /// Remove a widget by its id
    Remove { id: i64 },
    /// Put the widgets in this order (every id, comma-separated)
    Order {
        #[arg(value_delimiter = ',', required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Subcommand)]
pub enum PluginCmd {
    /// List loaded plugins (name, kind, version, compatible_with)
    List {
        /// Also list plugins that were skipped or disabled, with the reason (platform admins)
        #[arg(long)]
        all: bool,
    },
    /// Stop using a loaded plugin until it is enabled again (platform admins)
    Disable { name: String },
    /// Use a disabled plugin again (platform admins)
    Enable { name: String },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a new API token for yourself
    Create {
        /// Name of the token
        #[arg(long)]
        name: String,
        /// Lifetime such as 30d, 12h, 45m, 90s or 2w (default: never expires)
        #[arg(long, value_name = "DURATION", value_parser = tokens::parse_duration)]
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

#[derive(Subcommand)]
pub enum WorkspaceCmd {
    /// List the workspaces you can see
    List,
    /// Create a workspace (platform admins only)
    Create {
        /// Display name
        #[arg(long)]
        name: String,
        /// URL-safe identifier: lower-case letters, digits and dashes
        #[arg(long)]
        slug: String,
        /// Region, e.g. us or eu
        #[arg(long)]
        region: String,
        /// Template to initialise the workspace from
        #[arg(long)]
        template: Option<String>,
    },
    /// Show a workspace (default: the active one)
    Show {
        /// Workspace slug (default: the active workspace)
        #[arg(long, value_name = "SLUG")]
        slug: Option<String>,
    },
    /// Print a workspace's configuration snapshot as JSON
    Export {
        /// Workspace slug (default: the active workspace)
        #[arg(long, value_name = "SLUG")]
        slug: Option<String>,
    },
    /// Read and change workspace settings
    Settings {
        /// Workspace slug (default: the active workspace)
        #[arg(long, global = true, value_name = "SLUG")]
        slug: Option<String>,
        #[command(subcommand)]
        command: SettingsCmd,
    },
}

#[derive(Subcommand)]
pub enum SettingsCmd {
    /// List all settings
    List,
    /// Print one setting
    Get {
        #[arg(value_parser = non_empty)]
        key: String,
    },
    /// Set a setting
    #[command(long_about = "Set a setting.\n\n\
                            VALUE is used as JSON when it parses as JSON (number, true, false, \
                            null, array, object, \"quoted string\"); otherwise a value with \
                            commas becomes an array of strings, and anything else a string. \
                            With --list it is always split on commas into an array of strings.")]
    Set {
        #[arg(value_parser = non_empty)]
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Treat VALUE as a comma-separated list of strings
        #[arg(long)]
        list: bool,
    },
    /// Remove a setting
    Unset {
        #[arg(value_parser = non_empty)]
        key: String,
    },
}

#[derive(Subcommand)]
pub enum TemplateCmd {
    /// List templates
    List,
    /// Show a template and its snapshot
    Show {
        #[arg(value_parser = non_empty)]
        name: String,
    },
    /// Create a template from a workspace export file (platform admins only)
    Create {
        /// Template name
        #[arg(long)]
        name: String,
        /// JSON file written by `vigilo workspace export`
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Free-text description
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Delete a template (platform admins only)
    Delete {
        #[arg(value_parser = non_empty)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum RoleCmd {
    /// Show the built-in permission matrix
    Permissions,
    /// List the roles of the workspace
    List,
    /// Create a custom role derived from a built-in role
    Create {
        /// Name of the new role
        #[arg(long)]
        name: String,
        /// Built-in role to start from
        #[arg(long, value_name = "ROLE")]
        base: String,
        /// Permissions to add (comma-separated or repeated)
        #[arg(long, value_name = "PERMISSIONS", value_delimiter = ',')]
        add: Vec<String>,
        /// Permissions to remove (comma-separated or repeated)
        #[arg(long, value_name = "PERMISSIONS", value_delimiter = ',')]
        remove: Vec<String>,
    },
    /// Delete a custom role
    Delete {
        #[arg(value_parser = non_empty)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum MemberCmd {
    /// List the members of the workspace
    List,
    /// Invite someone by email
    Invite(InviteArgs),
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

#[derive(Subcommand)]
pub enum InviteCmd {
    /// List the invites of the workspace
    List,
    /// Revoke a pending invite
    Revoke {
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

#[derive(Subcommand)]
pub enum AuditCmd {
    /// List audit events of the active workspace
    List {
        /// Only events with a sequence number greater than SEQ
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// Maximum number of events
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Print recent events, then follow new ones until interrupted
    Tail {
        /// Every chain, the installation's and every workspace's (platform admins)
        #[arg(long)]
        all: bool,
        /// Only matching events: action=, actor= or target=; a trailing * matches
        /// a prefix (action=member.*); several filters must all match
        #[arg(long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Start at this time: RFC 3339, or a duration ago such as 30m, 2h, 7d
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// How many recent events to start with (without --since)
        #[arg(long, value_name = "N", default_value_t = 20)]
        recent: u32,
        /// Print what is there now and exit instead of following
        #[arg(long)]
        no_follow: bool,
    },
    /// Verify the active workspace's chain (or every chain with --all)
    #[command(after_help = VERIFY_EXIT)]
    Verify {
        /// Every chain (platform admins)
        #[arg(long)]
        all: bool,
        /// Re-read whole chains instead of starting at the newest good checkpoint
        #[arg(long)]
        full: bool,
    },
    /// Sign the head of the active workspace's chain now (every chain with --all)
    Checkpoint {
        /// Every chain (platform admins)
        #[arg(long)]
        all: bool,
    },
    /// Export signed checkpoints with the public key, for independent checking
    Checkpoints {
        /// Every chain (platform admins)
        #[arg(long)]
        all: bool,
    },
    /// Print the public key that signs checkpoints
    PublicKey,
}

const VERIFY_EXIT: &str = "\
Exit codes for cron:
  0  every chain verified is intact
  9  tampering found: at least one break, or a chain no longer contains the
     head this machine verified last
  (3, 4, 7 and the other codes of `vigilo --help` when verification could not run)";

/// Clap value parser rejecting empty (or blank) values.
fn non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(value.to_string())
    }
}

fn run(cli: Cli) -> Result<u8> {
    if let Command::Configure = cli.command {
        return configure::run(&cli.globals);
    }
    let ctx = Ctx::new(&cli.globals)?;
    match cli.command {
        Command::Configure => unreachable!("handled above"),
        Command::Whoami => tokens::whoami(&ctx),
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
    use clap::CommandFactory;

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
}
