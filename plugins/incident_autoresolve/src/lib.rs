//! # incident_autoresolve: a first-party periodic task that writes
//!
//! Registers the task **`incident_autoresolve`** (daily at 06:00 UTC): in
//! every workspace it may act in, it moves each incident that has been
//! `mitigated` and unchanged for `after_days` days (7 by default) to
//! `resolved`, with a comment saying why. Each move goes through the same
//! workflow rules as a person's and is audited in the workspace's chain as
//! `plugin:incident_autoresolve`.
//!
//! ## What it asks of the server
//!
//! It declares exactly the capabilities it uses: `work_items.read`
//! (`workspaces.list`, `work_items.list`), `work_items.write`
//! (`work_items.transition`), `storage` (the last run's summary per
//! workspace, under the key `last-run`, kept 90 days) and `log` (one line
//! per workspace where it resolved something).
//!
//! ## Configuration (`task_settings.incident_autoresolve`)
//!
//! * `after_days`: whole days an incident must have stayed mitigated and
//!   unchanged (1 to 365; default 7).
//! * `workspaces`: the slugs it may act in (the server's setting; every
//!   workspace when left out).
//!
//! ## What a run returns
//!
//! ```json
//! {"after_days": 7, "cutoff": "2026-11-29T06:00:00Z", "resolved": 2,
//!  "workspaces": [{"workspace": "ops", "resolved": [12, 15], "failed": []}]}
//! ```
//!
//! An incident that cannot be moved (someone changed it meanwhile) is
//! listed under `failed` with the server's reason; the others go on.

use vigilo_sdk::host::{KvSet, LogLevel, WorkItemMove, WorkItemsQuery};
use vigilo_sdk::{
    json, Capabilities, Capability, Host, Plugin, PluginKind, PluginRegistry, Schedule, Task,
    TaskContext, Value,
};

/// The plugin: registers [`Autoresolve`].
pub struct IncidentAutoresolvePlugin;

impl Plugin for IncidentAutoresolvePlugin {
    fn name(&self) -> &str {
        "incident_autoresolve"
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
        "Resolves incidents left mitigated and unchanged for a number of days."
    }

    fn capabilities(&self) -> Option<Capabilities> {
        Some(
            Capabilities::none()
                .with(Capability::WorkItemsRead)
                .with(Capability::WorkItemsWrite)
                .with(Capability::Storage)
                .with(Capability::Log),
        )
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_task(Autoresolve);
    }
}

vigilo_sdk::export_plugin!(IncidentAutoresolvePlugin);

/// Days an incident stays mitigated before it is resolved, by default.
pub const DEFAULT_AFTER_DAYS: i64 = 7;
/// How long a workspace's `last-run` summary is kept (90 days).
const SUMMARY_TTL_SECONDS: u64 = 90 * 24 * 3600;

/// The `incident_autoresolve` task.
pub struct Autoresolve;

impl Task for Autoresolve {
    fn name(&self) -> &str {
        "incident_autoresolve"
    }

    fn label(&self) -> &str {
        "Resolve long-mitigated incidents"
    }

    fn description(&self) -> &str {
        "Moves incidents mitigated and unchanged for `after_days` days to resolved."
    }

    fn schedule(&self) -> Schedule {
        Schedule::Cron("0 6 * * *".into())
    }

    fn config_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "after_days": {"type": "integer", "minimum": 1, "maximum": 365,
                           "description": "Days an incident must stay mitigated and unchanged."}
        }})
    }

    fn run(&self, ctx: &TaskContext, host: &dyn Host) -> Result<Value, String> {
        let after_days = match ctx.config.get("after_days") {
            None | Some(Value::Null) => DEFAULT_AFTER_DAYS,
            Some(value) => value
                .as_i64()
                .filter(|d| (1..=365).contains(d))
                .ok_or_else(|| {
                    format!(
                        "`after_days` must be a whole number of days from 1 to 365, not {value}"
                    )
                })?,
        };
        let cutoff = days_before(&ctx.now, after_days)?;
        let comment =
            format!("Resolved automatically: mitigated and unchanged for {after_days} days.");
        let mut total = 0usize;
        let mut report = Vec::new();
        for workspace in host.workspaces()?.workspaces {
            let mut resolved = Vec::new();
            let mut failed = Vec::new();
            let mut query = WorkItemsQuery::new(&workspace.slug);
            query.kind = Some("incident".into());
            query.status = Some("mitigated".into());
            query.updated_before = Some(cutoff.clone());
            query.limit = Some(500);
            loop {
                let page = host.work_items_list(&query)?;
                for item in &page.items {
                    let moved = host.move_work_item(&WorkItemMove {
                        workspace: workspace.slug.clone(),
                        id: item.id,
                        status: "resolved".into(),
                        comment: comment.clone(),
                    });
                    match moved {
                        Ok(_) => resolved.push(item.id),
                        Err(error) => failed.push(json!({"id": item.id, "error": error})),
                    }
                }
                match page.next_before {
                    Some(before) => query.before = Some(before),
                    None => break,
                }
            }
            total += resolved.len();
            let summary = json!({"at": ctx.now, "resolved": resolved, "failed": failed});
            host.kv_set(&KvSet {
                workspace: Some(workspace.slug.clone()),
                key: "last-run".into(),
                value: summary,
                expected_version: None,
                ttl_seconds: Some(SUMMARY_TTL_SECONDS),
            })?;
            if !resolved.is_empty() {
                // A dropped line (too many too fast) is not worth failing for.
                let _ = host.log(
                    LogLevel::Info,
                    &format!(
                        "resolved {} incidents mitigated for {after_days} days in {}",
                        resolved.len(),
                        workspace.slug
                    ),
                );
            }
            report
                .push(json!({"workspace": workspace.slug, "resolved": resolved, "failed": failed}));
        }
        Ok(
            json!({"after_days": after_days, "cutoff": cutoff, "resolved": total, "workspaces": report}),
        )
    }
}

/// `now` (RFC 3339, as the scheduler gives it) moved back `days` days, as
/// `YYYY-MM-DDTHH:MM:SSZ` in UTC. The time of day is kept; an offset other
/// than `Z` is refused (the scheduler always sends UTC).
pub fn days_before(now: &str, days: i64) -> Result<String, String> {
    let bad = || format!("`now` is not a UTC time like 2026-12-07T06:00:00Z: {now}");
    let (date, rest) = now.split_once('T').ok_or_else(bad)?;
    if !rest.ends_with('Z') || rest.len() < 9 {
        return Err(bad());
    }
    let clock = &rest[..8];
    let mut parts = date.splitn(3, '-');
    let mut next =
        || -> Result<i64, String> { parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad) };
    let (y, m, d) = (next()?, next()?, next()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let (y, m, d) = civil_from_days(days_from_civil(y, m, d) - days);
    Ok(format!("{y:04}-{m:02}-{d:02}T{clock}Z"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` days after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
