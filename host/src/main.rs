//! `vigilo-server`: runs the Vigilo server, migrates its database, or
//! creates a platform admin. See `vigilo-server --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigilo_host::config::Config;

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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
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
            Command::CreateAdmin { email, name } => {
                let token = vigilo_host::create_admin(&config, &email, name.as_deref()).await?;
                println!("{}", token.token);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("vigilo-server: {e:#}");
            ExitCode::FAILURE
        }
    }
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
