//! `vigilo plugin list`: the server's plugins.

use anyhow::Result;
use clap::Subcommand;

use serde_json::json;

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
    },
    /// Stop using a loaded plugin until it is enabled again (platform admins)
    Disable { name: String },
    /// Use a disabled plugin again (platform admins)
    Enable { name: String },
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

/// Run one `vigilo plugin` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: PluginCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        PluginCmd::List { all, history } => {
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
            let mut headers = vec!["name", "kind", "version", "tier", "compatible_with"];
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
                ];
                if all {
                    let reason = match (text(p, "reason"), text(p, "message")) {
                        (r, _) if r == "-" => r,
                        (r, m) => format!("{r}: {m}"),
                    };
                    row.extend([text(p, "state"), reason, text(p, "path")]);
                }
                table.row(row);
            }
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
