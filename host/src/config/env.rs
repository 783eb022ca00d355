//! `VIGILO_*` environment variables over the configuration file.

use std::path::PathBuf;

use super::{Config, ConfigError, InstalledPlugin, Isolation, LogFormat};

impl Config {
    /// Applies `VIGILO_BIND`, `VIGILO_DATA_DIR`, `VIGILO_DATABASE_URL`,
    /// `VIGILO_PLUGINS_DIR`, `VIGILO_INSTALLED_PLUGINS` (comma-separated, each
    /// `PATH` or `PATH#sha256=HEX`), `VIGILO_STRICT_PLUGINS`,
    /// `VIGILO_LOG_FORMAT`, `VIGILO_PUBLIC_URL`,
    /// `VIGILO_WEBHOOK_ALLOWED_HOSTS` (comma-separated),
    /// `VIGILO_WEBHOOK_ALLOW_PRIVATE_NETWORKS`, `VIGILO_METRICS_TOKEN_SHA256`
    /// and `VIGILO_PLUGIN_ISOLATION`
    /// (comma-separated: a bare `worker` or `in_process` is the default
    /// tier, `NAME=TIER` sets one plugin's).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("VIGILO_BIND") {
            self.bind = v.parse().map_err(|e| ConfigError::Env {
                var: "VIGILO_BIND",
                message: format!("{e} (expected HOST:PORT such as 127.0.0.1:8080)"),
            })?;
        }
        if let Some(v) = get("VIGILO_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("VIGILO_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("VIGILO_PLUGINS_DIR") {
            self.plugins_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("VIGILO_INSTALLED_PLUGINS") {
            self.installed_plugins = env_list(&v).map(InstalledPlugin::parse).collect();
        }
        if let Some(v) = get("VIGILO_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::Env {
                        var: "VIGILO_LOG_FORMAT",
                        message: format!("`{other}` (expected `text` or `json`)"),
                    })
                }
            };
        }
        if let Some(v) = get("VIGILO_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = get("VIGILO_METRICS_TOKEN_SHA256") {
            self.metrics_token_sha256 =
                Some(v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("VIGILO_STRICT_PLUGINS") {
            self.strict_plugins = env_bool("VIGILO_STRICT_PLUGINS", &v)?;
        }
        if let Some(v) = get("VIGILO_WEBHOOK_ALLOWED_HOSTS") {
            self.webhook_allowed_hosts = env_list(&v).map(str::to_owned).collect();
        }
        if let Some(v) = get("VIGILO_WEBHOOK_ALLOW_PRIVATE_NETWORKS") {
            self.webhook_allow_private_networks =
                env_bool("VIGILO_WEBHOOK_ALLOW_PRIVATE_NETWORKS", &v)?;
        }
        if let Some(v) = get("VIGILO_PLUGIN_ISOLATION") {
            for entry in env_list(&v) {
                let (name, tier) = match entry.split_once('=') {
                    Some((name, tier)) => (Some(name.trim()), tier.trim()),
                    None => (None, entry),
                };
                let isolation = Isolation::parse(tier).ok_or_else(|| ConfigError::Env {
                    var: "VIGILO_PLUGIN_ISOLATION",
                    message: format!(
                        "`{entry}` (expected `worker`, `in_process`, or NAME=worker / NAME=in_process)"
                    ),
                })?;
                match name {
                    Some(name) => {
                        self.plugin_settings
                            .entry(name.to_owned())
                            .or_default()
                            .isolation = Some(isolation)
                    }
                    None => self.plugin_isolation = isolation,
                }
            }
        }
        Ok(())
    }
}

/// The entries of a comma-separated environment value, trimmed, empty ones
/// left out.
fn env_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A true/false environment value.
fn env_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "" => Ok(false),
        other => Err(ConfigError::Env {
            var,
            message: format!("`{other}` (expected true or false)"),
        }),
    }
}
