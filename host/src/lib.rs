//! `vigilo-host`: the Vigilo server.
//!
//! Vigilo is a self-hosted operations platform. This crate is its server: a
//! REST API under `/api/v1` (axum on tokio) and a server-rendered web app on
//! the same origin ([`web`]), over a store that runs on an embedded SQLite
//! file by default and on PostgreSQL for production and several replicas
//! (sqlx, with one migration folder per dialect).
//!
//! A request reads top to bottom: [`app`] puts the API ([`http::router`])
//! and the web app ([`web::router`]) on one router →
//! `http/<feature>.rs` extracts it (the caller through
//! [`http::extract::Principal`], the body through `ApiJson`, which applies
//! the [`input`] rules: objects where records are expected, no NUL
//! character) → one function
//! of the [`domain`] layer, handed the [`domain::Context`] it works with,
//! applies the rule: it checks the caller's
//! [`domain::Access`] for one [`domain::authz::Permission`], opens the write
//! transaction in the [`store`] (which holds every SQL statement), appends
//! to the [`audit`] log in that same transaction and commits → the handler
//! turns the typed result into its JSON view, or the [`domain::DomainError`]
//! comes back through `?` to [`error::ApiError`], the one place errors
//! become HTTP. The playbook engine and the plugins' host callbacks call the
//! same domain functions, so a rule exists once. The closed sets every
//! layer speaks are types in [`model`] (roles and permissions, a work
//! item's kind and status with the workflows, a custom field's type),
//! parsed once where a word comes in and never guessed; times are stored
//! and read as [`clock`] writes them.
//!
//! A page of the web app reads the same way: `web/<area>.rs` states in its
//! signature what it needs ([`web::extract`]): the signed-in person from
//! the session cookie ([`web::session`]; sessions, their expiry and sign-in
//! throttling are [`domain::sessions`], Argon2id passwords
//! [`domain::passwords`]), their access to the workspace, a form whose CSRF
//! token matched; it calls the same [`domain`] function, and renders an askama template from
//! `host/templates/` (a [`domain::DomainError`] becomes an error page, or a
//! redirect to the sign-in page). Every page carries the strict
//! [`web::CSP`]. The app's own CSS and ES modules are embedded from
//! `host/assets/` and served at content-hashed URLs ([`web::assets`]);
//! plugins' frontend files are served at URLs that carry their library's
//! hash, and their custom elements draw dashboard tiles and field editors.
//!
//! Native plugins live in [`plugins`]: loaded at startup with one WARN line
//! and a reason code for each file that cannot run, each in its tier (in
//! process, or in a confined worker process of its own, where a crash costs
//! one call: [`plugins::worker`]), kept in a registry that can gain and
//! disable plugins while the server runs, and called off the async executor
//! with a time limit; their calls back into the server are
//! answered by [`plugins::host_api`] within an explicit scope (a workspace,
//! or the installation for periodic tasks). Custom field values and
//! dashboard widgets go through them ([`domain::fields`],
//! [`domain::dashboards`]); integration adapters through [`integrations`]
//! (configurations validated by the adapter, secrets sealed by
//! [`secretbox`], every delivery recorded); periodic tasks through the
//! [`scheduler`], which also runs the core's own tasks and lets exactly one
//! of several servers run each tick. [`domain::playbooks`] runs a workspace's
//! ordered steps (notify, create a task, move an item, call a webhook), or
//! dry-runs them with no side effect.
//!
//! A `POST` with an `Idempotency-Key` records the key in its first write
//! transaction and stores its answer in that same transaction
//! ([`store::IdempotencyClaim`]), so a retry answers with the first
//! response and never runs twice; the claim is handed explicitly to the
//! tasks the domain spawns (playbook runs, task runs).
//!
//! [`serve`] takes an already-bound listener, so tests bind `127.0.0.1:0` and
//! run the real server. Its connections are served by
//! [`http::connections`]: header-read, body-read and idle timeouts, and a
//! connection cap under which the server keeps answering. When its shutdown
//! future resolves it stops accepting, ends long polls at once, stops the
//! scheduler (runs in progress are recorded as interrupted), and gives
//! in-flight requests the first part of `shutdown_grace_secs`; whatever is
//! still open then is closed, and [`serve`] returns before the grace period
//! ends:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = vigilo_host::config::Config::default();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! vigilo_host::serve(config, listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod app;
pub mod audit;
pub mod certs;
pub mod clock;
pub mod config;
pub mod domain;
pub mod edge;
pub mod error;
pub mod http;
pub mod input;
pub mod integrations;
pub mod keyfile;
pub mod mail;
pub mod model;
pub mod outbound;
pub mod plugin_install;
pub mod plugins;
pub mod scheduler;
pub mod secretbox;
pub mod secrets;
pub mod state;
pub mod store;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

pub use app::app;

use crate::config::{Config, LogFormat};
use crate::plugins::Plugins;
use crate::state::AppState;
use crate::store::users::TokenCreated;
use crate::store::Store;

pub use plugins::VIGILO_VERSION;

/// Installs the global tracing subscriber (stderr, `text` or `json`).
/// `RUST_LOG` overrides the default filter.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Connects to the configured database and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(config).await
}

/// Runs the server on `listener` until `shutdown` resolves, then finishes
/// in-flight requests and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let bound: SocketAddr = listener.local_addr()?;
    let Started {
        state,
        mailer,
        recorder,
        plugins_dir,
    } = start(config, bound).await?;
    let store = state.store.clone();
    let scheduler = state.scheduler.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The scheduler runs the core's periodic tasks (audit checkpoints,
    // invite expiry) and the plugins' tasks. It stops at the signal, not
    // after the grace period: no run starts after it, and runs in progress
    // are recorded as interrupted.
    let checkpointer = Some(tokio::spawn(scheduler.run(
        std::time::Duration::from_millis(state.config.scheduler_tick_ms.max(50)),
        state.stopping.subscribe(),
    )));
    let watcher = watch_plugins_dir(&state, &plugins_dir, &stop_rx);
    let mailer = mailer.map(|mailer| {
        tokio::spawn(mail::run(
            state.store.clone(),
            state.secrets.clone(),
            state.mail_queued.clone(),
            mailer,
            stop_rx.clone(),
        ))
    });
    tracing::info!(
        addr = %bound,
        version = VIGILO_VERSION,
        database = ?store.backend(),
        "vigilo-server listening"
    );
    let grace = std::time::Duration::from_secs(state.config.shutdown_grace_secs);
    let mut limits = http::connections::Limits::from_config(&state.config);
    limits.max_connections = http::connections::fit_connections(limits.max_connections);
    // On the signal the server stops accepting, long polls end at once
    // (503 `shutting_down`, which clients treat as "reconnect"), the
    // scheduler stops, and in-flight requests get the grace period to
    // finish; connections still open near its end are closed, so no client
    // can hold the process open. The last part of the grace period (a
    // quarter, at most a second) is kept for the rest of the shutdown, so
    // that the process has exited when the grace period ends.
    let (deadline_tx, deadline_rx) = tokio::sync::watch::channel(None);
    let stop = {
        let stopping = state.stopping.clone();
        async move {
            shutdown.await;
            tracing::info!(grace_secs = grace.as_secs(), "vigilo-server stopping");
            let _ = deadline_tx.send(Some(tokio::time::Instant::now() + grace));
            let _ = stopping.send(true);
        }
    };
    let reserve = (grace / 4).min(std::time::Duration::from_secs(1));
    let deadline = |keep| keep_before_deadline(deadline_rx.clone(), keep);
    http::connections::serve(listener, app(state), limits, stop, deadline(reserve)).await;
    let _ = stop_tx.send(true);
    // Whatever is still running gets what remains of the grace period.
    // The recorder ends once the registry (and its event sender) is gone.
    let background = [mailer, checkpointer, watcher, Some(recorder)];
    let finishing = async {
        for task in background.into_iter().flatten() {
            let _ = task.await;
        }
    };
    let margin = (reserve / 4).min(std::time::Duration::from_millis(100));
    tokio::select! {
        () = finishing => {}
        () = deadline(margin * 2) => tracing::warn!(
            "background work still running at the end of the shutdown grace period was stopped"
        ),
    }
    let closing = margin.max(std::time::Duration::from_millis(10));
    let _ = tokio::time::timeout(closing, store.close()).await;
    tracing::info!("vigilo-server stopped");
    Ok(())
}

/// Resolves `keep` before the shutdown deadline, once the signal has set
/// one (never before).
async fn keep_before_deadline(
    mut deadline: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
    keep: std::time::Duration,
) {
    let at = deadline
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|at| *at);
    if let Some(at) = at {
        tokio::time::sleep_until(at - keep).await;
    }
}

/// With `watch_plugins_dir`, the task that loads, reloads and unloads the
/// plugins directory's files as they change, until `stop`.
fn watch_plugins_dir(
    state: &AppState,
    plugins_dir: &std::path::Path,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !state.config.watch_plugins_dir {
        return None;
    }
    if let Err(e) = std::fs::create_dir_all(plugins_dir) {
        tracing::warn!(dir = %plugins_dir.display(), error = %e, "cannot create the plugins directory");
    }
    let installed = state
        .config
        .installed_plugins
        .iter()
        .map(|p| p.path().to_path_buf())
        .collect();
    Some(tokio::spawn(plugins::watch::run(
        state.plugins.clone(),
        plugins_dir.to_path_buf(),
        installed,
        stop.clone(),
    )))
}

/// The plugin registry, with the plugins of `installed_plugins` and the
/// plugins directory loaded (failures are logged and skipped, unless
/// `strict_plugins` makes them stop the server).
/// What [`serve`] starts before it listens.
struct Started {
    state: AppState,
    mailer: Option<Arc<mail::Mailer>>,
    /// Records the plugins' events until the registry is gone.
    recorder: tokio::task::JoinHandle<()>,
    plugins_dir: std::path::PathBuf,
}

/// Opens the store, loads the keys and the plugins, and assembles the
/// server's state.
async fn start(config: Config, bound: SocketAddr) -> anyhow::Result<Started> {
    let store = open_store(&config).await?;
    let signer = Arc::new(audit::checkpoint::Signer::load_or_create(
        &config.effective_audit_signing_key(),
    )?);
    let (plugin_events, plugin_events_rx) = tokio::sync::mpsc::unbounded_channel();
    let recorder = tokio::spawn(domain::plugins::record_events(
        store.clone(),
        plugin_events_rx,
    ));
    let plugins_dir = config.effective_plugins_dir();
    let plugins = start_plugins(&config, &store, plugin_events, &plugins_dir).await?;
    let secrets = Arc::new(secretbox::SecretBox::load_or_create(
        &config.effective_secrets_key(),
    )?);
    let mailer = match &config.smtp {
        Some(smtp) => Some(Arc::new(mail::Mailer::new(smtp.clone())?)),
        None => None,
    };
    let public_url = config.effective_public_url(bound);
    let state = AppState::assemble(domain::Context::new(
        config, store, plugins, signer, secrets, public_url,
    ));
    Ok(Started {
        state,
        mailer,
        recorder,
        plugins_dir,
    })
}

async fn start_plugins(
    config: &Config,
    store: &store::Store,
    plugin_events: tokio::sync::mpsc::UnboundedSender<plugins::PluginEvent>,
    plugins_dir: &std::path::Path,
) -> anyhow::Result<Arc<Plugins>> {
    let call_log = open_call_log(config, store).await?;
    let tiers = plugins::Tiers::read(config, store).await?;
    let approvals = plugin_approvals(store).await?;
    let plugins = Arc::new(
        Plugins::new(
            VIGILO_VERSION,
            std::time::Duration::from_millis(config.plugin_call_timeout_ms.max(1)),
            config.plugin_panic_limit,
            Some(plugin_events),
        )
        .with_tiers(tiers)
        .with_approvals(approvals)
        .with_call_log(call_log)
        .with_panic_policy(config.plugin_panic_policy)
        .with_private_dir(config.data_dir.join("plugin-cache"))
        .with_context(|| {
            format!(
                "cannot prepare the private plugin directory {}",
                config.data_dir.join("plugin-cache").display()
            )
        })?,
    );
    {
        let plugins = plugins.clone();
        let (installed, dir) = (config.installed_plugins.clone(), plugins_dir.to_path_buf());
        tokio::task::spawn_blocking(move || plugins.load_startup(&installed, &dir))
            .await
            .context("loading plugins failed")?;
    }
    if config.strict_plugins {
        let failures = plugins.failures();
        if !failures.is_empty() {
            let list: Vec<String> = failures
                .iter()
                .map(|e| {
                    format!(
                        "{} ({}): {}",
                        e.path.display(),
                        e.reason().map(|r| r.code()).unwrap_or("?"),
                        e.message().unwrap_or_default()
                    )
                })
                .collect();
            anyhow::bail!(
                "strict_plugins is set and {} plugin(s) cannot load:\n  {}",
                failures.len(),
                list.join("\n  ")
            );
        }
    }
    Ok(plugins)
}

/// Clears the failed sign-ins counted against the account with `email`
/// (and its known devices) and returns a link, valid for an hour, that lets
/// the browser which opens it sign in to that account even while others
/// keep it locked (`vigilo-server unlock-sign-in`).
pub async fn unlock_sign_in(
    config: &Config,
    email: &str,
) -> anyhow::Result<domain::sessions::Unlocked> {
    let secrets = secretbox::SecretBox::load_or_create(&config.effective_secrets_key())?;
    let store = open_store(config).await?;
    let unlocked = domain::sessions::unlock(&store, &secrets, email).await;
    store.close().await;
    Ok(unlocked?)
}

/// Opens the record of in-process plugin calls in the data directory,
/// after applying the policy to any plugin whose call the last process
/// died in (named in the log, moved to the worker tier for good, recorded
/// in the audit chain).
async fn open_call_log(
    config: &Config,
    store: &Store,
) -> anyhow::Result<plugins::forensics::CallLog> {
    use plugins::forensics::{CallLog, FILE_NAME};
    let path = config.data_dir.join(FILE_NAME);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let found = CallLog::interrupted(&path)
        .with_context(|| format!("cannot read the plugin call record {}", path.display()))?;
    for call in &found {
        tracing::error!(
            plugin = %call.plugin,
            call = %call.call,
            started_at = %call.started_at,
            "the server stopped during an in-process call into plugin `{}` ({}, started at {}): \
             the plugin runs in a worker from now on",
            call.plugin,
            call.call,
            call.started_at
        );
        domain::plugins::record_interrupted_call(store, call)
            .await
            .with_context(|| format!("cannot record the policy for plugin `{}`", call.plugin))?;
    }
    CallLog::open(&path)
        .with_context(|| format!("cannot open the plugin call record {}", path.display()))
}

/// The capabilities the installation approved for each plugin. A stored
/// approval that cannot be read approves nothing (its plugin then waits for
/// a new approval).
pub async fn plugin_approvals(
    store: &Store,
) -> anyhow::Result<Vec<(String, vigilo_sdk::Capabilities)>> {
    let stored = store
        .plugin_approvals()
        .await
        .context("cannot read the plugins' approved capabilities")?;
    Ok(stored
        .into_iter()
        .map(|a| {
            let approved = serde_json::from_str(&a.capabilities).unwrap_or_else(|e| {
                tracing::warn!(plugin = %a.name, error = %e, "the approved capabilities of a plugin cannot be read; it approves nothing");
                vigilo_sdk::Capabilities::none()
            });
            (a.name, approved)
        })
        .collect())
}

/// Creates (or reuses) a platform admin with `email` and returns a fresh API
/// token for them.
pub async fn create_admin(
    config: &Config,
    email: &str,
    name: Option<&str>,
) -> anyhow::Result<TokenCreated> {
    create_admin_with_password(config, email, name, None).await
}

/// [`create_admin`], also setting the admin's web password when one is
/// given (checked against the password rules first: a refused password
/// creates nothing).
pub async fn create_admin_with_password(
    config: &Config,
    email: &str,
    name: Option<&str>,
    password: Option<&str>,
) -> anyhow::Result<TokenCreated> {
    let store = open_store(config).await?;
    let created = async {
        if let Some(password) = password {
            let email = domain::validate::email("email", email)?;
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or("admin"));
            domain::passwords::check_new(password, &email, name)?;
        }
        let token = domain::tokens::create_admin(&store, email, name).await?;
        if let Some(password) = password {
            let (caller, _) = domain::tokens::authenticate(&store, &token.token).await?;
            domain::sessions::set_password(&store, &caller.user, password).await?;
        }
        Ok::<_, domain::DomainError>(token)
    }
    .await;
    store.close().await;
    Ok(created?)
}
