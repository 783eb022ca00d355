//! Server configuration: built-in defaults, then the TOML file, then `VIGILO_*`
//! environment variables, in that order of precedence.
//!
//! Secrets (the database password inside `database_url`, the SMTP password)
//! are redacted by the `Debug` implementations so a config can be logged.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod env;
mod isolation;
mod validate;

pub use isolation::Isolation;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Outgoing mail. When absent, invite links are only returned to the inviter
/// and kept in the outbox table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name of the SMTP relay.
    pub host: String,
    /// Port of the SMTP relay (default 25).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The `From:` address of outgoing mail.
    pub from: String,
    /// Optional user name for `AUTH PLAIN`.
    #[serde(default)]
    pub username: Option<String>,
    /// Optional password for `AUTH PLAIN` (never logged).
    #[serde(default)]
    pub password: Option<String>,
    /// How the connection is encrypted (default `starttls`).
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of certificates to trust for the relay besides the public
    /// web roots (an internal CA, or the relay's own certificate).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// How the mailer encrypts its SMTP connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS before anything else is
    /// sent; a server that does not offer it gets nothing.
    #[default]
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only for a relay on this host or a trusted network.
    None,
}

fn default_smtp_port() -> u16 {
    25
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// What happens to an in-process plugin that keeps panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PanicPolicy {
    /// It is moved to the worker tier, for good (recorded in the
    /// installation's policies).
    #[default]
    Worker,
    /// It is disabled (`disabled_after_panics`).
    Disable,
}

/// Address space a worker's plugin may use by default, beyond what the
/// worker needs to start: 256 MiB (`plugin_worker_memory_mb`).
pub const DEFAULT_WORKER_MEMORY_MB: u64 = 256;

/// The server's whole configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Directory for the embedded database and other server state.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`. Empty means an
    /// SQLite file `vigilo.db` inside `data_dir`.
    pub database_url: String,
    /// Plugin library files to load at startup, each a path or
    /// `{ path = "...", sha256 = "..." }` to pin its checksum.
    pub installed_plugins: Vec<InstalledPlugin>,
    /// Directory scanned for plugin libraries. Empty means `data_dir/plugins`.
    pub plugins_dir: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// The URL users reach this server at; used to build invite links.
    /// Empty means `http://{bind}`.
    pub public_url: String,
    /// Days an invite stays valid.
    pub invite_ttl_days: u32,
    /// Minutes a browser session may go unused before it ends.
    pub session_idle_minutes: u64,
    /// Hours a browser session lasts at most, however much it is used.
    pub session_lifetime_hours: u64,
    /// Maximum connections in the database pool.
    pub database_max_connections: u32,
    /// Outgoing mail for invites.
    pub smtp: Option<SmtpConfig>,
    /// File holding the Ed25519 key that signs audit checkpoints (kept
    /// outside the database). Empty means `data_dir/audit-signing.key`,
    /// created on first start.
    pub audit_signing_key: Option<PathBuf>,
    /// Seconds between automatic audit checkpoints of every chain (0: only
    /// on demand).
    pub audit_checkpoint_interval_secs: u64,
    /// Milliseconds a call into a plugin may take before the request fails
    /// with `plugin_timeout`.
    pub plugin_call_timeout_ms: u64,
    /// Panics in a row after which a plugin is disabled
    /// (`disabled_after_panics`).
    pub plugin_panic_limit: u32,
    /// The tier plugins run in unless their own setting says otherwise:
    /// `worker` (the default: a confined process of its own) or
    /// `in_process` (loaded into the server).
    pub plugin_isolation: Isolation,
    /// Settings for single plugins, by plugin name:
    /// `[plugin_settings.NAME]` with `isolation` and `memory_limit_mb`.
    pub plugin_settings: std::collections::BTreeMap<String, PluginSettings>,
    /// For `vigilo-plugin dev` only: plugins whose frontend files are read
    /// from these directories on every request (and never cached) instead
    /// of from their libraries, and pages that reload themselves when a
    /// plugin or one of these files changes. Allowed with a loopback `bind`
    /// only.
    pub dev_frontend: std::collections::BTreeMap<String, PathBuf>,
    /// MiB of memory (address space) a worker-tier plugin may use beyond
    /// what its worker needs to start.
    pub plugin_worker_memory_mb: u64,
    /// Worker crashes or timeouts within `plugin_crash_window_secs` after
    /// which a worker-tier plugin is disabled (`disabled_after_crashes`).
    pub plugin_crash_limit: u32,
    /// See `plugin_crash_limit`.
    pub plugin_crash_window_secs: u64,
    /// What happens to an in-process plugin that panics
    /// `plugin_panic_limit` times in a row: `worker` (the default: it is
    /// moved to the worker tier for good) or `disable`.
    pub plugin_panic_policy: PanicPolicy,
    /// Hex SHA-256 of a token that may read `GET /metrics` (besides
    /// platform admins' API tokens); None: only platform admins may.
    pub metrics_token_sha256: Option<String>,
    /// The program started as a plugin worker; None means this server's own
    /// executable. Not a setting of the file: for embedding the server in
    /// another program (such as a test), whose executable is not a server.
    #[serde(skip)]
    pub plugin_worker_program: Option<PathBuf>,
    /// Refuse to start when any plugin in `installed_plugins` or the plugins
    /// directory cannot load (the default logs and skips it).
    pub strict_plugins: bool,
    /// Watch the plugins directory and load, replace and disable plugins as
    /// files appear, change and disappear, without a restart.
    pub watch_plugins_dir: bool,
    /// Hex Ed25519 public keys whose signatures `vigilo-server plugin
    /// install` accepts on plugin bundles.
    pub trusted_plugin_keys: Vec<String>,
    /// Let `vigilo-server plugin install` install unsigned bundles.
    pub allow_unsigned_plugins: bool,
    /// Milliseconds between the scheduler's looks for due tasks.
    pub scheduler_tick_ms: u64,
    /// Seconds a stopping server waits for in-flight requests before it
    /// closes the connections still open and exits; the process has exited
    /// by then.
    pub shutdown_grace_secs: u64,
    /// Seconds a request's line and headers may take to arrive, from their
    /// first byte.
    pub header_read_timeout_secs: u64,
    /// Seconds a request's body may take to arrive, from its headers
    /// (408 after that).
    pub body_read_timeout_secs: u64,
    /// Seconds a connection may stay open with no request in progress (kept
    /// alive after one, or new and silent).
    pub idle_timeout_secs: u64,
    /// Connections open at once, at most (see `http::connections`).
    pub max_connections: u64,
    /// Seconds a periodic task's run may take before it is recorded as
    /// `timed_out`.
    pub task_timeout_secs: u64,
    /// Days task runs, integration delivery records and outbox mail are
    /// kept (0: for ever). Playbook runs and the audit log are never pruned.
    pub record_retention_days: u32,
    /// Settings for periodic tasks, by task name: each table is handed to
    /// the task as its configuration; a `schedule` key in it
    /// (`{ every_seconds = N }` or `{ cron = "0 7 * * *" }`) replaces the
    /// task's own schedule, and a `workspaces` key (a list of slugs) limits
    /// the workspaces the task may act in through the host API (every one
    /// when left out).
    pub task_settings: std::collections::BTreeMap<String, serde_json::Value>,
    /// File holding the key that seals integration secrets at rest (kept
    /// outside the database; servers sharing a database must share it).
    /// Empty means `data_dir/secrets.key`, created on first start.
    pub secrets_key: Option<PathBuf>,
    /// Hosts (names or IP literals) playbook `webhook` steps may call even
    /// when they resolve to loopback or a private network, which is refused
    /// otherwise.
    pub webhook_allowed_hosts: Vec<String>,
    /// Let playbook `webhook` steps call any private or loopback address.
    pub webhook_allow_private_networks: bool,
}

/// The settings of one plugin (`[plugin_settings.NAME]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Its tier, over `plugin_isolation`.
    pub isolation: Option<Isolation>,
    /// MiB it may use in a worker, over `plugin_worker_memory_mb`.
    pub memory_limit_mb: Option<u64>,
}

/// One entry of `installed_plugins`: a path, optionally with the SHA-256 the
/// file must have (a mismatch skips the plugin as `checksum_mismatch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstalledPlugin {
    /// Just the path.
    Path(PathBuf),
    /// A path and its pinned checksum.
    Pinned {
        /// The library file.
        path: PathBuf,
        /// Hex SHA-256 the file must have.
        sha256: String,
    },
}

/// The table form of an [`InstalledPlugin`] entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinnedEntry {
    path: PathBuf,
    sha256: String,
}

impl<'de> Deserialize<'de> for InstalledPlugin {
    /// A string is a path; a table is `{ path, sha256 }`, and a misspelt
    /// key in it is named in the error.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = InstalledPlugin;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path, or a table { path = \"...\", sha256 = \"...\" }")
            }

            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<Self::Value, E> {
                Ok(InstalledPlugin::Path(PathBuf::from(path)))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let PinnedEntry { path, sha256 } =
                    PinnedEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(InstalledPlugin::Pinned { path, sha256 })
            }
        }
        deserializer.deserialize_any(Entry)
    }
}

impl InstalledPlugin {
    /// The library file.
    pub fn path(&self) -> &Path {
        match self {
            InstalledPlugin::Path(path) | InstalledPlugin::Pinned { path, .. } => path,
        }
    }

    /// The pinned checksum, lower-case, if any.
    pub fn sha256(&self) -> Option<String> {
        match self {
            InstalledPlugin::Path(_) => None,
            InstalledPlugin::Pinned { sha256, .. } => Some(sha256.trim().to_ascii_lowercase()),
        }
    }

    /// Parses `PATH` or `PATH#sha256=HEX` (the environment variable's form).
    pub fn parse(text: &str) -> Self {
        match text.split_once("#sha256=") {
            Some((path, sha)) => InstalledPlugin::Pinned {
                path: PathBuf::from(path.trim()),
                sha256: sha.trim().to_owned(),
            },
            None => InstalledPlugin::Path(PathBuf::from(text.trim())),
        }
    }
}

impl From<PathBuf> for InstalledPlugin {
    fn from(path: PathBuf) -> Self {
        InstalledPlugin::Path(path)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            installed_plugins: Vec::new(),
            plugins_dir: None,
            log_format: LogFormat::Text,
            public_url: String::new(),
            invite_ttl_days: 7,
            session_idle_minutes: 8 * 60,
            session_lifetime_hours: 7 * 24,
            database_max_connections: 8,
            smtp: None,
            audit_signing_key: None,
            audit_checkpoint_interval_secs: 3600,
            plugin_call_timeout_ms: 5000,
            plugin_panic_limit: 3,
            plugin_isolation: Isolation::Worker,
            plugin_settings: Default::default(),
            dev_frontend: Default::default(),
            plugin_worker_memory_mb: DEFAULT_WORKER_MEMORY_MB,
            plugin_crash_limit: 3,
            plugin_crash_window_secs: 3600,
            plugin_panic_policy: PanicPolicy::Worker,
            metrics_token_sha256: None,
            plugin_worker_program: None,
            strict_plugins: false,
            watch_plugins_dir: true,
            trusted_plugin_keys: Vec::new(),
            allow_unsigned_plugins: false,
            scheduler_tick_ms: 1000,
            shutdown_grace_secs: 10,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 60,
            idle_timeout_secs: 60,
            max_connections: 1024,
            task_timeout_secs: 300,
            record_retention_days: 30,
            task_settings: Default::default(),
            secrets_key: None,
            webhook_allowed_hosts: Vec::new(),
            webhook_allow_private_networks: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("installed_plugins", &self.installed_plugins)
            .field("plugins_dir", &self.plugins_dir)
            .field("dev_frontend", &self.dev_frontend)
            .field("log_format", &self.log_format)
            .field("public_url", &self.public_url)
            .field("invite_ttl_days", &self.invite_ttl_days)
            .field("session_idle_minutes", &self.session_idle_minutes)
            .field("session_lifetime_hours", &self.session_lifetime_hours)
            .field("database_max_connections", &self.database_max_connections)
            .field("smtp", &self.smtp)
            .field("audit_signing_key", &self.audit_signing_key)
            .field(
                "audit_checkpoint_interval_secs",
                &self.audit_checkpoint_interval_secs,
            )
            .field("plugin_call_timeout_ms", &self.plugin_call_timeout_ms)
            .field("plugin_panic_limit", &self.plugin_panic_limit)
            .field("plugin_isolation", &self.plugin_isolation)
            .field("plugin_settings", &self.plugin_settings)
            .field("plugin_worker_memory_mb", &self.plugin_worker_memory_mb)
            .field("plugin_crash_limit", &self.plugin_crash_limit)
            .field("plugin_crash_window_secs", &self.plugin_crash_window_secs)
            .field("plugin_panic_policy", &self.plugin_panic_policy)
            .field(
                "metrics_token_sha256",
                &self.metrics_token_sha256.as_ref().map(|_| "<set>"),
            )
            .field("plugin_worker_program", &self.plugin_worker_program)
            .field("strict_plugins", &self.strict_plugins)
            .field("watch_plugins_dir", &self.watch_plugins_dir)
            .field("trusted_plugin_keys", &self.trusted_plugin_keys)
            .field("allow_unsigned_plugins", &self.allow_unsigned_plugins)
            .field("scheduler_tick_ms", &self.scheduler_tick_ms)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("body_read_timeout_secs", &self.body_read_timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("task_timeout_secs", &self.task_timeout_secs)
            .field("record_retention_days", &self.record_retention_days)
            .field(
                "task_settings",
                &self.task_settings.keys().collect::<Vec<_>>(),
            )
            .field("secrets_key", &self.secrets_key)
            .field("webhook_allowed_hosts", &self.webhook_allowed_hosts)
            .field(
                "webhook_allow_private_networks",
                &self.webhook_allow_private_networks,
            )
            .finish()
    }
}

/// Replaces the password of a `scheme://user:password@host` URL with
/// `<redacted>`, and any `password=` query parameter too.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map(|i| rest_start + i)
            .unwrap_or(out.len());
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let at = rest_start + at;
            if let Some(colon) = out[rest_start..at].find(':') {
                let colon = rest_start + colon;
                out.replace_range(colon + 1..at, "<redacted>");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=<redacted>"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, as the TOML parser says it.
        message: String,
    },
    /// An environment variable holds a bad value.
    #[error("invalid value for {var}: {message}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A setting is outside the range the server can work with.
    #[error("{setting} = {value} is out of range (allowed: {min} to {max})")]
    OutOfRange {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// A setting holds a value the server cannot use.
    #[error("invalid {setting}: {message}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Defaults, then `path` (if any), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Reads one TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
    }

    /// The database URL actually used: the configured one, or an SQLite file
    /// in the data directory.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("vigilo.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The plugins directory actually used.
    pub fn effective_plugins_dir(&self) -> PathBuf {
        self.plugins_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("plugins"))
    }

    /// The audit signing key file actually used.
    pub fn effective_audit_signing_key(&self) -> PathBuf {
        self.audit_signing_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-signing.key"))
    }

    /// The secrets key file actually used.
    pub fn effective_secrets_key(&self) -> PathBuf {
        self.secrets_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets.key"))
    }

    /// The base URL used in links sent to users, without a trailing slash.
    pub fn effective_public_url(&self, bound: SocketAddr) -> String {
        if self.public_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }
}

#[cfg(test)]
mod tests;
