//! `vigilo dashboard ...`: the workspace's dashboard.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{exit, workspace_path, Failure};
use crate::context::Ctx;
use crate::output::{self, field, list, text, Table};

/// `vigilo dashboard ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum DashboardCmd {
    /// Show the dashboard with each widget's data
    Show,
    /// List the widgets this server offers
    Widgets,
    /// Add a widget at the end of the dashboard
    Add {
        /// Widget name (see `vigilo dashboard widgets`)
        widget: String,
        /// The widget's configuration as a JSON object
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
    },
    /// Remove a widget by its id
    Remove { id: i64 },
    /// Put the widgets in this order (every id, comma-separated)
    Order {
        #[arg(value_delimiter = ',', required = true)]
        ids: Vec<i64>,
    },
}

/// Run one `vigilo dashboard` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: DashboardCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        DashboardCmd::Show => {
            let slug = ctx.workspace()?;
            let response = client.get(&format!("{}/dashboard", workspace_path(slug)))?;
            if ctx.json {
                return output::json(&response).map(|()| exit::OK);
            }
            let widgets = list(&response, "widgets")?;
            if widgets.is_empty() {
                output::line(format!(
                    "The dashboard of {slug} is empty; add a widget with `vigilo dashboard add NAME`."
                ))?;
            }
            for w in widgets {
                output::line(format!(
                    "[{}] {} ({})",
                    text(w, "id"),
                    text(w, "widget"),
                    text(w, "plugin")
                ))?;
                match field(w, "error") {
                    Value::Null => output::line(format!(
                        "    {}",
                        serde_json::to_string_pretty(field(w, "data"))?.replace('\n', "\n    ")
                    ))?,
                    error => output::line(format!(
                        "    error: {} ({})",
                        text(error, "message"),
                        text(error, "code")
                    ))?,
                }
            }
        }
        DashboardCmd::Widgets => {
            let response = client.get("/api/v1/widgets")?;
            let widgets = list(&response, "widgets")?;
            let mut table = Table::new(&["name", "label", "plugin", "description"]);
            for w in widgets {
                table.row(vec![
                    text(w, "name"),
                    text(w, "label"),
                    text(w, "plugin"),
                    text(w, "description"),
                ]);
            }
            output::list_or_table(ctx.json, widgets, &table)?;
        }
        DashboardCmd::Add { widget, config } => {
            let slug = ctx.workspace()?;
            let config: Value = match config {
                Some(raw) => serde_json::from_str(&raw)
                    .map_err(|e| Failure::new(exit::USAGE, format!("--config is not JSON: {e}")))?,
                None => json!({}),
            };
            let added = client.post(
                &format!("{}/dashboard/widgets", workspace_path(slug)),
                &json!({"widget": widget, "config": config}),
            )?;
            if ctx.json {
                return output::json(&added).map(|()| exit::OK);
            }
            output::line(format!(
                "Added widget {} to the dashboard of {slug} (id {}).",
                text(&added, "widget"),
                text(&added, "id")
            ))?;
        }
        DashboardCmd::Remove { id } => {
            let slug = ctx.workspace()?;
            client.delete(&format!("{}/dashboard/widgets/{id}", workspace_path(slug)))?;
            if ctx.json {
                return output::json(&json!({"removed": id})).map(|()| exit::OK);
            }
            output::line(format!("Removed widget {id} from the dashboard of {slug}."))?;
        }
        DashboardCmd::Order { ids } => {
            let slug = ctx.workspace()?;
            client.put(
                &format!("{}/dashboard/order", workspace_path(slug)),
                &json!({"ids": ids}),
            )?;
            if ctx.json {
                return output::json(&json!({"order": ids})).map(|()| exit::OK);
            }
            output::line(format!("Reordered the dashboard of {slug}."))?;
        }
    }
    Ok(exit::OK)
}
