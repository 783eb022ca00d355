//! `vigilo-server`: runs the Vigilo server, migrates its database, creates
//! a platform admin, unlocks a person's sign-in (`unlock-sign-in`), checks
//! a plugin file as the server would load it (`check-plugin`), and installs
//! or uninstalls plugin release bundles (`plugin install|uninstall`). See
//! `vigilo-server --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigilo_host::config::Config;

/// jemalloc, with its background thread purging freed pages, gives the
/// memory of a burst (many large uploads at once) back to the system once
/// it is over; glibc's allocator kept most of it (measured: 30 MiB at rest,
/// 153 MiB with 64 uploads held, still 123 MiB after they closed).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "vigilo-server", version = vigilo_host::VIGILO_VERSION, about = "The Vigilo server")]
struct Cli {
    /// Configuration file (TOML). VIGILO_* environment variables override it.
    #[arg(long, short, env = "VIGILO_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create (or reuse) a platform admin and print a fresh API token, alone, on stdout.
    CreateAdmin {
        /// The admin's email address.
        #[arg(long)]
        email: String,
        /// Display name for a new admin (default: the part before `@`).
        #[arg(long)]
        name: Option<String>,
        /// Also set the admin's web password, read from the first line of
        /// standard input (so it stays out of the shell history).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Clear the failed sign-ins that lock a person's account and print a
    /// link (valid for an hour) that lets their browser sign in even while
    /// someone else keeps failing at it.
    UnlockSignIn {
        /// The person's email address.
        #[arg(long)]
        email: String,
    },
    /// Install or uninstall plugin release bundles in the plugins directory
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Load one plugin library exactly as the server would and print its
    /// manifest, or why the server would skip it (then exit 1).
    CheckPlugin {
        /// The `.so`/`.dylib` file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also print the loader's full report when it refuses the file.
        #[arg(long, short)]
        verbose: bool,
        /// Load it in this tier: `in_process` (as the server loads a
        /// plugin into itself), or `worker` (in a confined worker process,
        /// as the server runs a worker-tier plugin; then each thing it
        /// registers is also called once, to show it works confined).
        #[arg(long, default_value = "in_process", value_parser = parse_isolation)]
        isolation: vigilo_host::plugins::Isolation,
    },
    /// Runs one plugin worker (started by the server, never by hand).
    #[command(name = "plugin-worker", hide = true)]
    PluginWorker,
}

fn parse_isolation(text: &str) -> Result<vigilo_host::plugins::Isolation, String> {
    vigilo_host::plugins::Isolation::parse(text)
        .ok_or_else(|| format!("`{text}` is not a tier (expected `in_process` or `worker`)"))
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Verify a bundle (signature, checksums, compatibility) and install its
    /// library for this host into the plugins directory
    Install {
        /// The bundle (.tar.gz) made by `vigilo-plugin package`
        bundle: PathBuf,
        /// Approve the capabilities the plugin asks for (what it may ask of
        /// the server) without asking; without it, they are shown and asked
        /// about on a terminal, and refused otherwise
        #[arg(long)]
        approve: bool,
    },
    /// Remove an installed plugin from the plugins directory
    Uninstall {
        /// The plugin's name
        name: String,
        /// Also delete what the plugin stored (its key-value entries in
        /// every workspace) and its approved capabilities
        #[arg(long)]
        purge: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::PluginWorker) => return vigilo_host::plugins::worker::run_worker(),
        Some(Command::CheckPlugin {
            path,
            json,
            verbose,
            isolation,
        }) => return check_plugin(path, *json, *verbose, *isolation),
        _ => {}
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigilo-server: {e}");
            return ExitCode::from(2);
        }
    };
    vigilo_host::init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigilo-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    // A server reports its end in its log, in the configured format; the
    // other commands are run by a person or a script and print one line.
    let serving = matches!(command, Command::Serve);
    let result = runtime.block_on(run(command, config));
    // Work still running on the runtime's threads (a plugin call that has
    // not returned) does not hold the process: the server's shutdown has
    // recorded what it must within the grace period.
    runtime.shutdown_timeout(std::time::Duration::from_millis(50));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if serving {
                tracing::error!("{e:#}");
            } else {
                eprintln!("vigilo-server: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs a command other than `check-plugin` and `plugin-worker`.
async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.bind)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
            vigilo_host::serve(config, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            let store = vigilo_host::open_store(&config).await?;
            store.close().await;
            tracing::info!("database is up to date");
            Ok(())
        }
        Command::CreateAdmin {
            email,
            name,
            password_stdin,
        } => create_admin(&config, &email, name.as_deref(), password_stdin).await,
        Command::UnlockSignIn { email } => unlock_sign_in(&config, &email).await,
        Command::CheckPlugin { .. } | Command::PluginWorker => {
            unreachable!("handled before the runtime starts")
        }
        Command::Plugin(PluginCommand::Install { bundle, approve }) => {
            install_plugin(&config, &bundle, approve).await
        }
        Command::Plugin(PluginCommand::Uninstall { name, purge }) => {
            let (path, purged) =
                vigilo_host::plugin_install::uninstall(&config, &name, purge).await?;
            println!("removed {name} ({})", path.display());
            if let Some(entries) = purged {
                println!("purged its data: {entries} stored entries, and its approval");
            }
            Ok(())
        }
    }
}

/// `create-admin`: prints the new admin's API token.
async fn create_admin(
    config: &Config,
    email: &str,
    name: Option<&str>,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            anyhow::bail!("--password-stdin was given, but standard input held no password");
        }
        Some(password)
    } else {
        None
    };
    let token =
        vigilo_host::create_admin_with_password(config, email, name, password.as_deref()).await?;
    println!("{}", token.token);
    Ok(())
}

/// `unlock-sign-in`: clears an account's failed sign-ins and prints a link
/// that lets its owner's browser in.
async fn unlock_sign_in(config: &Config, email: &str) -> anyhow::Result<()> {
    let unlocked = vigilo_host::unlock_sign_in(config, email).await?;
    let base = if config.public_url.is_empty() {
        format!("http://{}", config.bind)
    } else {
        config.public_url.trim_end_matches('/').to_owned()
    };
    eprintln!(
        "Cleared {} failed-sign-in count(s) of {}. Give them this link; opened within {} minutes, it lets their browser sign in even while the account is locked for others:",
        unlocked.cleared,
        unlocked.user.email,
        vigilo_host::domain::sessions::UNLOCK_LINK_MINUTES
    );
    println!("{base}{}", unlocked.link_path);
    Ok(())
}

/// `plugin install`: asks before approving new capabilities, unless
/// `approve`.
async fn install_plugin(
    config: &Config,
    bundle: &std::path::Path,
    approve: bool,
) -> anyhow::Result<()> {
    let ask = |question: &str| {
        use std::io::{BufRead, IsTerminal, Write};
        if approve {
            println!("{question}: approved (--approve)");
            return true;
        }
        if !std::io::stdin().is_terminal() {
            return false;
        }
        print!("{question}. Approve? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    };
    let installed = vigilo_host::plugin_install::install(config, bundle, ask).await?;
    println!(
        "installed {} {} ({}) as {}",
        installed.name,
        installed.version,
        match &installed.signed {
            vigilo_plugin_bundle::Signed::By(key) => format!("signed by {key}"),
            vigilo_plugin_bundle::Signed::Unsigned => "unsigned".to_owned(),
        },
        installed.path.display()
    );
    Ok(())
}

/// `check-plugin`: exit 0 when the server would load the file (and, in
/// the worker tier, every smoke call was answered), 1 otherwise.
fn check_plugin(
    path: &std::path::Path,
    json: bool,
    verbose: bool,
    isolation: vigilo_host::plugins::Isolation,
) -> ExitCode {
    use vigilo_host::plugins::smoke::{smoke, SmokeOutcome};
    use vigilo_host::plugins::{
        load_file_with, Isolation, LoadOptions, Plugins, TierSource, Tiers,
    };
    let registry = std::sync::Arc::new(
        Plugins::new(
            vigilo_host::VIGILO_VERSION,
            std::time::Duration::from_secs(5),
            1,
            None,
        )
        .with_tiers(Tiers::all(isolation, TierSource::Manual)),
    );
    let options = LoadOptions {
        tiers: registry.tiers(),
        ..LoadOptions::default()
    };
    let entry = registry.add(load_file_with(path, vigilo_host::VIGILO_VERSION, &options));
    let mut loaded = entry.is_loaded();
    // In process a crashing call would end this command: calls are made in
    // the worker tier only.
    let calls = if loaded && isolation == Isolation::Worker {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(smoke(&registry, &entry)),
            Err(e) => {
                eprintln!("vigilo-server: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Vec::new()
    };
    loaded &= !calls
        .iter()
        .any(|c| matches!(c.outcome, SmokeOutcome::Broken(_)));
    // The frontend rules vigilo-plugin and `plugin install` apply too: a
    // module that breaks one fails in the browser, so the check fails.
    let frontend = vigilo_sdk::loader::check_frontend(&entry.registrations, |path| {
        entry.asset(path).map(|(_, bytes)| bytes)
    });
    let report = CheckReport {
        entry: &entry,
        loaded,
        calls: &calls,
        frontend: &frontend,
        isolation,
    };
    if json {
        report.print_json();
    } else {
        report.print_text(verbose);
    }
    if loaded && frontend.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What `check-plugin` found, to print.
struct CheckReport<'a> {
    entry: &'a vigilo_host::plugins::PluginEntry,
    loaded: bool,
    calls: &'a [vigilo_host::plugins::smoke::SmokeCall],
    frontend: &'a [vigilo_sdk::loader::FrontendProblem],
    isolation: vigilo_host::plugins::Isolation,
}

/// A smoke call's outcome as `check-plugin` names it, with its message.
fn outcome_words(
    outcome: &vigilo_host::plugins::smoke::SmokeOutcome,
) -> (&'static str, Option<String>) {
    use vigilo_host::plugins::smoke::SmokeOutcome;
    match outcome {
        SmokeOutcome::Answered => ("answered", None),
        SmokeOutcome::AnsweredWithError(m) => ("answered_with_error", Some(m.clone())),
        SmokeOutcome::Broken(m) => ("broken", Some(m.clone())),
    }
}

impl CheckReport<'_> {
    /// `check-plugin --json`.
    fn print_json(&self) {
        let entry = self.entry;
        let smoke_calls: Vec<_> = self
            .calls
            .iter()
            .map(|c| {
                let (outcome, message) = outcome_words(&c.outcome);
                serde_json::json!({
                    "kind": c.registration.kind(), "name": c.registration.name(),
                    "outcome": outcome, "message": message,
                })
            })
            .collect();
        let registrations: Vec<_> = entry.registrations.iter().map(registration_json).collect();
        let frontend_problems: Vec<_> = self
            .frontend
            .iter()
            .map(|p| serde_json::json!({"module": p.module, "rule": p.rule, "message": p.message}))
            .collect();
        let report = serde_json::json!({
            "path": entry.path,
            "sha256": entry.sha256(),
            "would_load": self.loaded,
            "reason": entry.reason(),
            "message": entry.message(),
            "detail": entry.detail,
            "manifest": entry.manifest,
            "registrations": registrations,
            "frontend_problems": frontend_problems,
            "isolation": self.isolation,
            "confinement": entry.worker().map(|w| w.confinement().to_owned()),
            "smoke_calls": smoke_calls,
            "server_version": vigilo_host::VIGILO_VERSION,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }

    /// `check-plugin`, in lines people read.
    fn print_text(&self, verbose: bool) {
        let CheckReport {
            entry,
            loaded,
            calls,
            frontend,
            isolation,
        } = *self;
        println!("file:            {}", entry.path.display());
        if let Some(sha) = entry.sha256() {
            println!("sha256:          {sha}");
        }
        if let Some(m) = &entry.manifest {
            println!("name:            {}", m.name);
            println!("kind:            {}", m.kind);
            println!("version:         {}", m.version);
            println!(
                "compatible_with: {} (this server is {})",
                m.compatible_with,
                vigilo_host::VIGILO_VERSION
            );
            println!(
                "sdk:             vigilo-sdk {} (plugin ABI {})",
                m.sdk_version, m.sdk_abi_version
            );
            println!(
                "panic strategy:  {}",
                if m.panic_unwind { "unwind" } else { "abort" }
            );
            if !m.description.is_empty() {
                println!("description:     {}", m.description);
            }
            match &m.capabilities {
                Some(declared) => println!("capabilities:    {}", declared.summary()),
                None => println!(
                    "capabilities:    none declared (it may call only what plugins could before \
                 capabilities existed: work item counts, certificates, notify, HTTP)"
                ),
            }
            for asset in &m.frontend {
                println!("frontend:        {} ({})", asset.path, asset.content_type);
            }
        }
        for r in &entry.registrations {
            println!(
                "registers:       {} `{}` ({})",
                r.kind(),
                r.name(),
                r.label()
            );
        }
        println!("tier:            {isolation}");
        if let Some(worker) = entry.worker() {
            println!("confinement:     {}", worker.confinement());
        }
        for c in calls {
            let (outcome, message) = outcome_words(&c.outcome);
            println!(
                "smoke call:      {} `{}`: {}{}",
                c.registration.kind(),
                c.registration.name(),
                outcome.replace('_', " "),
                message.map(|m| format!(": {m}")).unwrap_or_default()
            );
        }
        for problem in frontend {
            println!(
                "frontend:        {}: {}: {}",
                problem.module, problem.rule, problem.message
            );
        }
        match entry.reason() {
            None if !frontend.is_empty() => println!(
                "result:          the server would load it, but its frontend half would fail in \
             the browser ({} problem(s) above)",
                frontend.len()
            ),
            None if !loaded => println!(
                "result:          the plugin loads, but a call failed in the {isolation} tier"
            ),
            None => println!("result:          the server would load this plugin"),
            Some(reason) => println!(
                "result:          the server would skip this plugin: {reason}: {}",
                entry.message().unwrap_or_default()
            ),
        }
        if let (true, Some(detail)) = (verbose, &entry.detail) {
            println!("\nthe loader's full report:\n{detail}");
        }
    }
}

/// A registration as `check-plugin --json` lists it: its kind, name and
/// label, its element (tag, module, stylesheet), its options schema and its
/// schedule (null where the kind has none).
fn registration_json(r: &vigilo_sdk::loader::Registration) -> serde_json::Value {
    use vigilo_sdk::loader::Registration;
    let (options_schema, schedule) = match r {
        Registration::DashboardWidget { config_schema, .. }
        | Registration::IntegrationAdapter { config_schema, .. } => (Some(config_schema), None),
        Registration::CeleryTask {
            config_schema,
            schedule,
            ..
        } => (Some(config_schema), Some(schedule)),
        Registration::FieldType { .. } => (None, None),
    };
    serde_json::json!({
        "kind": r.kind(), "name": r.name(), "label": r.label(),
        "element": r.element(),
        "options_schema": options_schema,
        "schedule": schedule,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received Ctrl-C, shutting down"),
        _ = term => tracing::info!("received SIGTERM, shutting down"),
    }
}
