//! The ranges and rules a configuration must keep, checked once it is
//! read: a value out of range is refused at start with its name.

use super::{Config, ConfigError};

impl Config {
    /// Checks that numeric settings are in ranges the server's time
    /// arithmetic can hold (a typo of a few digits is refused at startup
    /// rather than failing later, in the middle of a request or a task).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks = self.ranges();
        let per_plugin = self.plugin_settings.values().filter_map(|s| {
            s.memory_limit_mb
                .map(|mb| ("plugin_settings.*.memory_limit_mb", mb, 16, 1 << 20))
        });
        if !self.dev_frontend.is_empty() && !self.bind.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                setting: "dev_frontend",
                message: "serves plugin files from disk for `vigilo-plugin dev` and is allowed \
                          only with a loopback `bind` such as 127.0.0.1:8700"
                    .into(),
            });
        }
        if let Some(hash) = &self.metrics_token_sha256 {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::Invalid {
                    setting: "metrics_token_sha256",
                    message: "must be the SHA-256 of the token as 64 hexadecimal digits \
                              (for example the first word `sha256sum` prints)"
                        .into(),
                });
            }
        }
        for (setting, value, min, max) in checks.into_iter().chain(per_plugin) {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::OutOfRange {
                    setting,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Each numeric setting with its value and the smallest and largest
    /// value it may take.
    fn ranges(&self) -> Vec<(&'static str, u64, u64, u64)> {
        const DAY: u64 = 86_400;
        vec![
            ("invite_ttl_days", self.invite_ttl_days.into(), 1, 3_650),
            (
                "session_idle_minutes",
                self.session_idle_minutes,
                1,
                90 * 24 * 60,
            ),
            (
                "session_lifetime_hours",
                self.session_lifetime_hours,
                1,
                366 * 24,
            ),
            (
                "record_retention_days",
                self.record_retention_days.into(),
                0,
                36_500,
            ),
            ("task_timeout_secs", self.task_timeout_secs, 1, 7 * DAY),
            (
                "audit_checkpoint_interval_secs",
                self.audit_checkpoint_interval_secs,
                0,
                365 * DAY,
            ),
            ("scheduler_tick_ms", self.scheduler_tick_ms, 1, 3_600_000),
            ("shutdown_grace_secs", self.shutdown_grace_secs, 0, 3_600),
            (
                "header_read_timeout_secs",
                self.header_read_timeout_secs,
                1,
                3_600,
            ),
            (
                "body_read_timeout_secs",
                self.body_read_timeout_secs,
                1,
                DAY,
            ),
            ("idle_timeout_secs", self.idle_timeout_secs, 1, DAY),
            ("max_connections", self.max_connections, 1, 1_000_000),
            (
                "plugin_call_timeout_ms",
                self.plugin_call_timeout_ms,
                1,
                3_600_000,
            ),
            (
                "database_max_connections",
                self.database_max_connections.into(),
                1,
                1_000,
            ),
            (
                "plugin_worker_memory_mb",
                self.plugin_worker_memory_mb,
                16,
                1 << 20,
            ),
            (
                "plugin_crash_limit",
                self.plugin_crash_limit.into(),
                1,
                1_000,
            ),
            (
                "plugin_crash_window_secs",
                self.plugin_crash_window_secs,
                1,
                7 * DAY,
            ),
        ]
    }
}
