//! # cert_expiry_digest: a daily digest of expiring certificates
//!
//! A `celery_task` plugin. It registers the periodic task
//! **`cert_expiry_digest`** ("Certificate expiry digest"), which runs every
//! day at 07:00 UTC (`Schedule::Cron("0 7 * * *")`) and tells each workspace,
//! through the workspace's own integrations (Slack, webhooks, ...), which of
//! its TLS certificates expire soon or have expired.
//!
//! ## Configuration
//!
//! ```json
//! {"within_days": 30, "integration": "ops-slack"}
//! ```
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `within_days` | `30` | Report certificates expiring within this many days (1 to 3650). Expired certificates are always reported. |
//! | `integration` | all | The name of one integration to send the digest through. Without it, the server delivers to every integration of the workspace. A blank string means "all". |
//!
//! A configuration that breaks these rules fails the run with the reason.
//!
//! ## What a run does
//!
//! 1. Calls the host method [`CERTIFICATES_EXPIRING`] with
//!    `{"within_days": N}`. The server answers, soonest first, with only the
//!    workspaces that have something to report:
//!
//!    ```json
//!    {"workspaces": [{"workspace": "ops", "certificates": [
//!        {"id": 1, "name": "api.example.com", "subject": "CN=api.example.com",
//!         "not_after": "2026-12-01T00:00:00Z", "days_left": 3, "expired": false}]}]}
//!    ```
//!
//! 2. For each workspace, builds one event ([`digest_event`]):
//!
//!    ```json
//!    {
//!      "type": "certificate.expiry_digest",
//!      "workspace": "ops",
//!      "title": "2 certificates expiring within 30 days",
//!      "text": "api.example.com — expires 2026-12-01 (3 days left)\nold.example.com — EXPIRED 1 day ago",
//!      "data": {"within_days": 30, "certificates": [ ...as received... ]}
//!    }
//!    ```
//!
//!    One line per certificate, in the server's order: its `name` (else its
//!    `subject`, else `certificate #<id>`), then `expires <date>
//!    (<n> days left)` (`1 day left`, `less than a day left`), or, once
//!    `expired`, `EXPIRED <n> days ago` (`EXPIRED today`), where `n` is the
//!    whole days since expiry (`-days_left - 1`, as `days_left` rounds
//!    down).
//!
//! 3. Calls the host method [`INTEGRATIONS_NOTIFY`] with
//!    `{"workspace": "ops", "event": <event>}`, plus `"integration": "<name>"`
//!    when one is configured. The server answers with one entry per
//!    integration it delivered to:
//!
//!    ```json
//!    {"deliveries": [{"integration": "ops-slack", "adapter": "slack_notifier", "ok": true, "error": null}]}
//!    ```
//!
//! A failure for one workspace (the host call fails, or the answer has the
//! wrong shape) is recorded and the run carries on with the next.
//!
//! ## Result
//!
//! The run returns a summary for the task log:
//!
//! ```json
//! {"workspaces": 2, "certificates": 5, "deliveries_ok": 2, "deliveries_failed": 1,
//!  "errors": ["dev: delivery through dev-hook (webhook) failed: the webhook at ... answered HTTP 500: ..."]}
//! ```
//!
//! `errors` also notes a workspace whose notification reached no
//! integration. The run fails (`Err`) only when the configuration is
//! invalid, when `certificates.expiring` fails or answers with the wrong
//! shape, or when the notification failed for *every* workspace. A run with
//! nothing to report succeeds with zeros and sends nothing.

use vigilo_sdk::{
    json, CertificatesExpiringRequest, Delivery, Event, Host, Map, NotifyRequest, Plugin,
    PluginKind, PluginRegistry, Schedule, Task, TaskContext, Value,
};

/// The host methods the task calls, under the names this crate has always
/// exported; they are the SDK's ([`vigilo_sdk::host`] documents their
/// shapes).
pub use vigilo_sdk::{CERTIFICATES_EXPIRING, INTEGRATIONS_NOTIFY};

/// The type of the digest event.
pub const EVENT_TYPE: &str = "certificate.expiry_digest";

/// `within_days` when not configured.
pub const DEFAULT_WITHIN_DAYS: i64 = 30;

/// The largest `within_days` accepted (ten years).
pub const MAX_WITHIN_DAYS: i64 = 3650;

/// The plugin: registers [`CertExpiryDigest`].
pub struct CertExpiryDigestPlugin;

impl Plugin for CertExpiryDigestPlugin {
    fn capabilities(&self) -> Option<vigilo_sdk::Capabilities> {
        Some(
            vigilo_sdk::Capabilities::none()
                .with(vigilo_sdk::Capability::CertificatesRead)
                .with(vigilo_sdk::Capability::Notify),
        )
    }

    fn name(&self) -> &str {
        "cert_expiry_digest"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::CeleryTask
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn compatible_with(&self) -> &str {
        ">=0.1, <0.2"
    }

    fn description(&self) -> &str {
        "Sends each workspace a daily digest of its expiring TLS certificates."
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_task(CertExpiryDigest);
    }
}

vigilo_sdk::export_plugin!(CertExpiryDigestPlugin);

/// The `cert_expiry_digest` task.
pub struct CertExpiryDigest;

impl Task for CertExpiryDigest {
    fn name(&self) -> &str {
        "cert_expiry_digest"
    }

    fn label(&self) -> &str {
        "Certificate expiry digest"
    }

    fn description(&self) -> &str {
        "Every day at 07:00 UTC, notifies each workspace's integrations of its certificates \
         that expire soon or have expired."
    }

    fn schedule(&self) -> Schedule {
        Schedule::Cron("0 7 * * *".into())
    }

    fn config_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "within_days": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_WITHIN_DAYS,
                    "default": DEFAULT_WITHIN_DAYS,
                    "description": "Report certificates expiring within this many days (expired ones are always reported)."
                },
                "integration": {
                    "type": "string",
                    "description": "Name of the one workspace integration to notify (default: every enabled integration of the workspace)."
                }
            }
        })
    }

    fn run(&self, ctx: &TaskContext, host: &dyn Host) -> Result<Value, String> {
        let config = Config::parse(&ctx.config)?;
        let request = CertificatesExpiringRequest {
            within_days: config.within_days,
        };
        // The answer is read entry by entry (rather than as one
        // `CertificatesExpiring`) so that one malformed entry is reported and
        // skipped, and each certificate reaches the integrations as the
        // server sent it, fields added by newer servers included.
        let answer = host
            .call(
                CERTIFICATES_EXPIRING,
                &serde_json::to_value(request).map_err(encoding_error)?,
            )
            .map_err(|e| format!("host method {CERTIFICATES_EXPIRING} failed: {e}"))?;
        let workspaces = answer
            .get("workspaces")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                format!("host method {CERTIFICATES_EXPIRING} answered without a `workspaces` list")
            })?;

        let mut summary = Summary::default();
        let mut attempted = 0usize;
        let mut failed = 0usize;
        for entry in workspaces {
            let slug = entry
                .get("workspace")
                .and_then(Value::as_str)
                .filter(|slug| !slug.is_empty());
            let certificates = entry.get("certificates").and_then(Value::as_array);
            let (Some(slug), Some(certificates)) = (slug, certificates) else {
                attempted += 1;
                failed += 1;
                summary.errors.push(format!(
                    "host method {CERTIFICATES_EXPIRING} answered with a malformed entry: {entry}"
                ));
                continue;
            };
            if certificates.is_empty() {
                continue;
            }
            attempted += 1;
            summary.workspaces += 1;
            summary.certificates += certificates.len();
            if let Err(error) = notify(host, &config, slug, certificates, &mut summary) {
                failed += 1;
                summary.errors.push(format!("{slug}: {error}"));
            }
        }

        if attempted > 0 && failed == attempted {
            return Err(format!(
                "could not notify any workspace: {}",
                summary.errors.join("; ")
            ));
        }
        Ok(json!({
            "workspaces": summary.workspaces,
            "certificates": summary.certificates,
            "deliveries_ok": summary.deliveries_ok,
            "deliveries_failed": summary.deliveries_failed,
            "errors": summary.errors,
        }))
    }
}

/// The task's configuration.
struct Config {
    within_days: u32,
    integration: Option<String>,
}

impl Config {
    fn parse(config: &Value) -> Result<Config, String> {
        let empty = Map::new();
        let object = match config {
            Value::Null => &empty,
            Value::Object(object) => object,
            _ => return Err("the configuration must be a JSON object".into()),
        };
        let within_days = match object.get("within_days") {
            None | Some(Value::Null) => DEFAULT_WITHIN_DAYS,
            Some(value) => value.as_i64().ok_or_else(|| {
                format!("`within_days` must be a whole number of days, not {value}")
            })?,
        };
        let within_days = u32::try_from(within_days)
            .ok()
            .filter(|days| (1..=MAX_WITHIN_DAYS).contains(&i64::from(*days)))
            .ok_or_else(|| {
                format!("`within_days` must be between 1 and {MAX_WITHIN_DAYS}, not {within_days}")
            })?;
        let integration = match object.get("integration") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.trim().to_owned()).filter(|n| !n.is_empty()),
            Some(other) => {
                return Err(format!(
                    "`integration` must be the name of an integration (a string), not {other}"
                ))
            }
        };
        Ok(Config {
            within_days,
            integration,
        })
    }
}

/// What the run has done so far.
#[derive(Default)]
struct Summary {
    workspaces: usize,
    certificates: usize,
    deliveries_ok: usize,
    deliveries_failed: usize,
    errors: Vec<String>,
}

/// Sends one workspace's digest and counts its deliveries. `Err` when the
/// host call itself failed or answered with the wrong shape.
fn notify(
    host: &dyn Host,
    config: &Config,
    slug: &str,
    certificates: &[Value],
    summary: &mut Summary,
) -> Result<(), String> {
    let request = NotifyRequest {
        workspace: slug.to_owned(),
        event: digest(slug, i64::from(config.within_days), certificates),
        integration: config.integration.clone(),
    };
    let answer = host
        .call(
            INTEGRATIONS_NOTIFY,
            &serde_json::to_value(&request).map_err(encoding_error)?,
        )
        .map_err(|e| format!("host method {INTEGRATIONS_NOTIFY} failed: {e}"))?;
    let deliveries = answer
        .get("deliveries")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            format!("host method {INTEGRATIONS_NOTIFY} answered without a `deliveries` list")
        })?;
    if deliveries.is_empty() {
        summary
            .errors
            .push(format!("{slug}: no integration received the digest"));
    }
    for delivery in deliveries {
        // An entry that is not a delivery counts as a failed one.
        let delivery: Delivery = serde_json::from_value(delivery.clone()).unwrap_or_default();
        if delivery.ok {
            summary.deliveries_ok += 1;
            continue;
        }
        summary.deliveries_failed += 1;
        let name = Some(delivery.integration.as_str())
            .filter(|name| !name.is_empty())
            .unwrap_or("an integration");
        let adapter = Some(delivery.adapter.as_str())
            .filter(|adapter| !adapter.is_empty())
            .map(|adapter| format!(" ({adapter})"))
            .unwrap_or_default();
        let error = delivery.error.as_deref().unwrap_or("no reason given");
        summary.errors.push(format!(
            "{slug}: delivery through {name}{adapter} failed: {error}"
        ));
    }
    Ok(())
}

/// Why a host request could not be encoded (it always can: these types hold
/// only strings, numbers and JSON values).
fn encoding_error(error: serde_json::Error) -> String {
    format!("could not encode a host request: {error}")
}

/// The digest event for `workspace`'s `certificates` (as the host sent
/// them), as JSON.
pub fn digest_event(workspace: &str, within_days: i64, certificates: &[Value]) -> Value {
    serde_json::to_value(digest(workspace, within_days, certificates)).unwrap_or_default()
}

/// The digest event for `workspace`'s `certificates` (as the host sent
/// them).
pub fn digest(workspace: &str, within_days: i64, certificates: &[Value]) -> Event {
    let count = certificates.len();
    let title = format!(
        "{count} {} expiring within {within_days} {}",
        if count == 1 {
            "certificate"
        } else {
            "certificates"
        },
        if within_days == 1 { "day" } else { "days" },
    );
    let text = certificates
        .iter()
        .map(certificate_line)
        .collect::<Vec<_>>()
        .join("\n");
    Event {
        event_type: EVENT_TYPE.to_owned(),
        workspace: workspace.to_owned(),
        title,
        text,
        data: json!({"within_days": within_days, "certificates": certificates}),
    }
}

/// `api.example.com — expires 2026-12-01 (3 days left)` or
/// `api.example.com — EXPIRED 2 days ago`.
pub fn certificate_line(certificate: &Value) -> String {
    let text = |key: &str| {
        certificate
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = match (text("name"), text("subject"), certificate.get("id")) {
        (Some(name), _, _) | (None, Some(name), _) => name.to_owned(),
        (None, None, Some(id)) => format!("certificate #{id}"),
        (None, None, None) => "a certificate".to_owned(),
    };
    // A nonsensical value (the server's "unknown") is treated as absent.
    let days_left = certificate
        .get("days_left")
        .and_then(Value::as_i64)
        .filter(|days| days.unsigned_abs() <= 100 * 366);
    let expired = certificate
        .get("expired")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| days_left.is_some_and(|days| days < 0));
    if expired {
        // `days_left` rounds down (expired a minute ago is -1), so the
        // whole days since expiry are one less than its magnitude.
        return match days_left.map(|days| (-days - 1).max(0)) {
            Some(0) => format!("{name} — EXPIRED today"),
            Some(1) => format!("{name} — EXPIRED 1 day ago"),
            Some(days) => format!("{name} — EXPIRED {days} days ago"),
            None => format!("{name} — EXPIRED"),
        };
    }
    let mut line = format!("{name} — expires");
    if let Some(not_after) = text("not_after") {
        line.push(' ');
        line.push_str(not_after.get(..10).unwrap_or(not_after));
    }
    match days_left {
        Some(0) => line.push_str(" (less than a day left)"),
        Some(1) => line.push_str(" (1 day left)"),
        Some(days) => line.push_str(&format!(" ({days} days left)")),
        None => {}
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let cert = |days: i64, expired: bool| {
            json!({"id": 1, "name": "api.example.com", "subject": "CN=api.example.com",
                   "not_after": "2026-12-01T00:00:00Z", "days_left": days, "expired": expired})
        };
        assert_eq!(
            certificate_line(&cert(3, false)),
            "api.example.com — expires 2026-12-01 (3 days left)"
        );
        assert_eq!(
            certificate_line(&cert(1, false)),
            "api.example.com — expires 2026-12-01 (1 day left)"
        );
        assert_eq!(
            certificate_line(&cert(0, false)),
            "api.example.com — expires 2026-12-01 (less than a day left)"
        );
        // `days_left` rounds down: -1 is "expired less than a day ago".
        assert_eq!(
            certificate_line(&cert(-3, true)),
            "api.example.com — EXPIRED 2 days ago"
        );
        assert_eq!(
            certificate_line(&cert(-2, true)),
            "api.example.com — EXPIRED 1 day ago"
        );
        assert_eq!(
            certificate_line(&cert(-1, true)),
            "api.example.com — EXPIRED today"
        );
        assert_eq!(
            certificate_line(&cert(i64::MIN, true)),
            "api.example.com — EXPIRED"
        );
        assert_eq!(
            certificate_line(&json!({"id": 9, "subject": "CN=db", "days_left": 12})),
            "CN=db — expires (12 days left)"
        );
        assert_eq!(
            certificate_line(&json!({"id": 9, "days_left": -4})),
            "certificate #9 — EXPIRED 3 days ago"
        );
    }

    #[test]
    fn titles_count_certificates_and_days() {
        let one = [json!({"name": "a", "days_left": 1, "expired": false})];
        assert_eq!(
            digest_event("ops", 1, &one)["title"],
            "1 certificate expiring within 1 day"
        );
        let two = [one[0].clone(), one[0].clone()];
        assert_eq!(
            digest_event("ops", 30, &two)["title"],
            "2 certificates expiring within 30 days"
        );
    }
}
