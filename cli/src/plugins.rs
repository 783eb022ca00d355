//! `vigilo plugin list`: the server's plugins, and with `--wide` what
//! each one's calls cost.

use anyhow::Result;
use clap::Subcommand;

use serde_json::{json, Value};

use crate::client::{exit, seg};
use crate::context::Ctx;
use crate::output::{self, list, text, Table};

/// `vigilo plugin ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum PluginCmd {
    /// List loaded plugins (name, kind, version, tier, compatible_with)
    List {
        /// Also list plugins that were skipped or disabled, with the reason (platform admins);
        /// of the versions a newer file replaced, only the latest row per plugin
        #[arg(long)]
        all: bool,
        /// With --all: every row, each replaced version included
        #[arg(long, requires = "all")]
        history: bool,
        /// One row per plugin and call kind, with what the calls cost: calls,
        /// errors, panics, crashes, timeouts, p50/p99 latency, and each
        /// worker's restarts, process id and resident memory
        #[arg(long)]
        wide: bool,
    },
    /// Stop using a loaded plugin until it is enabled again (platform admins)
    Disable { name: String },
    /// Use a disabled plugin again (platform admins)
    Enable { name: String },
    /// Approve what a plugin asks of the server (platform admins): its
    /// newest version's capabilities become the approved set, and a version
    /// waiting for them is enabled
    Approve { name: String },
    /// Choose where a plugin runs on every server (platform admins): in_process,
    /// worker, or config to hand the choice back to the configuration; a server
    /// applies it when it next loads the plugin (a restart or a new file)
    Tier {
        name: String,
        #[arg(value_parser = ["in_process", "worker", "config"])]
        tier: String,
    },
}

/// The rows of `plugins` without the versions a newer file `replaced`: a
/// plugin whose every row was replaced keeps its last one.
fn latest_rows(plugins: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let replaced = |p: &serde_json::Value| p["reason"] == "replaced";
    let mut kept: Vec<serde_json::Value> = Vec::new();
    for (at, p) in plugins.iter().enumerate() {
        let name = &p["name"];
        let superseded = replaced(p)
            && plugins.iter().enumerate().any(|(other, q)| {
                other != at && &q["name"] == name && (!replaced(q) || other > at)
            });
        if !superseded {
            kept.push(p.clone());
        }
    }
    kept
}

/// The plugin's state and why it is not loaded (for `--all`): the reason,
/// and for a tier the installation chose after a crash, what it was.
fn state_cells(p: &Value) -> [String; 3] {
    let reason = match (text(p, "reason"), text(p, "message")) {
        (r, _) if r == "-" => r,
        (r, m) => format!("{r}: {m}"),
    };
    let policy = output::field(p, "policy");
    let reason = match text(policy, "interrupted_call") {
        call if call == "-" => reason,
        call => {
            let noted = format!(
                "the server stopped during its in-process call {call} at {}; {}",
                text(policy, "interrupted_at"),
                text(policy, "reason")
            );
            if reason == "-" {
                noted
            } else {
                format!("{reason}; {noted}")
            }
        }
    };
    [text(p, "state"), reason, text(p, "path")]
}

/// What the plugin declares it asks of the server: `work_items.read,
/// http (hooks.slack.com)`, `none`, or `undeclared` for a plugin built
/// before capabilities existed.
fn capabilities_cell(p: &Value) -> String {
    let declared = output::field(p, "capabilities");
    let Some(uses) = declared.get("uses").and_then(Value::as_array) else {
        return "undeclared".to_owned();
    };
    if uses.is_empty() {
        return "none".to_owned();
    }
    let hosts: Vec<&str> = declared
        .get("http_hosts")
        .and_then(Value::as_array)
        .map(|h| h.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    uses.iter()
        .filter_map(Value::as_str)
        .map(|c| match c {
            "http" if !hosts.is_empty() => format!("http ({})", hosts.join(" ")),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// name, kind, version, tier, compatible_with, capabilities (and with
/// `all`: state, reason, path).
fn narrow_table(plugins: &[Value], all: bool) -> Table {
    let mut headers = vec![
        "name",
        "kind",
        "version",
        "tier",
        "compatible_with",
        "capabilities",
    ];
    if all {
        headers.extend(["state", "reason", "path"]);
    }
    let mut table = Table::new(&headers);
    for p in plugins {
        let mut row = vec![
            text(p, "name"),
            text(p, "kind"),
            text(p, "version"),
            text(p, "isolation"),
            text(p, "compatible_with"),
            capabilities_cell(p),
        ];
        if all {
            row.extend(state_cells(p));
        }
        table.row(row);
    }
    table
}

/// One row per plugin and call kind, with what the calls cost.
fn wide_table(plugins: &[Value], all: bool) -> Table {
    let mut headers = vec![
        "name", "tier", "call", "calls", "errors", "rejected", "panics", "crashes", "timeouts",
        "p50_ms", "p99_ms", "restarts", "pid", "rss_mib",
    ];
    if all {
        headers.extend(["state", "reason", "path"]);
    }
    let mut table = Table::new(&headers);
    let none = Value::Null;
    for p in plugins {
        let worker = output::field(p, "worker");
        let rss = match worker.get("resident_bytes").and_then(Value::as_u64) {
            Some(bytes) => format!("{:.1}", bytes as f64 / (1024.0 * 1024.0)),
            None => "-".to_owned(),
        };
        let calls: Vec<&Value> = match p.get("calls").and_then(Value::as_array) {
            Some(calls) if !calls.is_empty() => calls.iter().collect(),
            _ => vec![&none],
        };
        for c in calls {
            let mut row = vec![text(p, "name"), text(p, "isolation"), text(c, "call")];
            for key in [
                "calls", "errors", "rejected", "panics", "crashes", "timeouts", "p50_ms", "p99_ms",
            ] {
                row.push(text(c, key));
            }
            row.extend([text(worker, "restarts"), text(worker, "pid"), rss.clone()]);
            if all {
                row.extend(state_cells(p));
            }
            table.row(row);
        }
    }
    table
}

/// Run one `vigilo plugin` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: PluginCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        PluginCmd::List { all, history, wide } => {
            let path = if all {
                "/api/v1/plugins?all=true"
            } else {
                "/api/v1/plugins"
            };
            let response = client.get(path)?;
            let listed = list(&response, "plugins")?;
            let plugins = if history {
                listed.to_vec()
            } else {
                latest_rows(listed)
            };
            let plugins = &plugins;
            let table = if wide {
                wide_table(plugins, all)
            } else {
                narrow_table(plugins, all)
            };
            output::list_or_table(ctx.json, plugins, &table)?;
        }
        PluginCmd::Disable { name } => {
            let plugin = client.post(
                &format!("/api/v1/plugins/{}/disable", seg(&name)),
                &json!({}),
            )?;
            if ctx.json {
                return output::json(&plugin).map(|()| exit::OK);
            }
            output::line(format!(
                "Disabled plugin {name}: {}.",
                text(&plugin, "message")
            ))?;
        }
        PluginCmd::Tier { name, tier } => {
            let plugin = client.put(
                &format!("/api/v1/plugins/{}/tier", seg(&name)),
                &json!({"tier": tier}),
            )?;
            if ctx.json {
                return output::json(&plugin).map(|()| exit::OK);
            }
            let chosen = if tier == "config" {
                "the tier the configuration gives".to_owned()
            } else {
                format!("the {tier} tier")
            };
            output::line(format!(
                "Plugin {name} runs in {chosen} from its next load (a restart or a new file); \
                 it runs {} now.",
                text(&plugin, "isolation")
            ))?;
        }
        PluginCmd::Approve { name } => {
            let plugin = client.post(
                &format!("/api/v1/plugins/{}/approve", seg(&name)),
                &json!({}),
            )?;
            if ctx.json {
                return output::json(&plugin).map(|()| exit::OK);
            }
            output::line(format!(
                "Approved for plugin {name} {}: {}. It is {}.",
                text(&plugin, "version"),
                capabilities_cell(&plugin),
                text(&plugin, "state")
            ))?;
        }
        PluginCmd::Enable { name } => {
            let plugin = client.post(
                &format!("/api/v1/plugins/{}/enable", seg(&name)),
                &json!({}),
            )?;
            if ctx.json {
                return output::json(&plugin).map(|()| exit::OK);
            }
            output::line(format!(
                "Plugin {name} {} is {}.",
                text(&plugin, "version"),
                text(&plugin, "state")
            ))?;
        }
    }
    Ok(exit::OK)
}
