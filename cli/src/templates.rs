//! `vigilo template ...`: installation-level workspace templates.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::args::non_empty;
use crate::client::{exit, seg, Failure};
use crate::context::Ctx;
use crate::output::{self, field, list, text, when, Table};

/// `vigilo template ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum TemplateCmd {
    /// List templates
    List,
    /// Show a template and its snapshot
    Show {
        #[arg(value_parser = non_empty)]
        name: String,
    },
    /// Create a template from a workspace export file (platform admins only)
    Create {
        /// Template name
        #[arg(long)]
        name: String,
        /// JSON file written by `vigilo workspace export`
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Free-text description
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Delete a template (platform admins only)
    Delete {
        #[arg(value_parser = non_empty)]
        name: String,
    },
}

fn template_path(name: &str) -> String {
    format!("/api/v1/templates/{}", seg(name))
}

/// Run one `vigilo template` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: TemplateCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        TemplateCmd::List => {
            let response = client.get("/api/v1/templates")?;
            let templates = list(&response, "templates")?;
            let mut table = Table::new(&["name", "description", "created"]);
            for t in templates {
                table.row(vec![
                    text(t, "name"),
                    text(t, "description"),
                    when(t, "created_at"),
                ]);
            }
            output::list_or_table(ctx.json, templates, &table)?;
        }
        TemplateCmd::Show { name } => {
            let template = client.get(&template_path(&name))?;
            if ctx.json {
                return output::json(&template).map(|()| exit::OK);
            }
            output::key_values(&[
                ("Name", text(&template, "name")),
                ("Description", text(&template, "description")),
                ("Created", when(&template, "created_at")),
            ])?;
            output::line("Snapshot:")?;
            output::json(field(&template, "snapshot"))?;
        }
        TemplateCmd::Create {
            name,
            from,
            description,
        } => {
            let raw = fs::read_to_string(&from)
                .with_context(|| format!("cannot read {}", from.display()))?;
            let parsed: Value = serde_json::from_str(&raw).map_err(|e| {
                Failure::new(
                    exit::UNEXPECTED,
                    format!("{} is not valid JSON: {e}", from.display()),
                )
            })?;
            let snapshot = unwrap_snapshot(parsed);
            if !snapshot.is_object() {
                return Err(Failure::new(
                    exit::UNEXPECTED,
                    format!(
                        "{} does not contain a workspace snapshot (a JSON object written by \
                         `vigilo workspace export`)",
                        from.display()
                    ),
                )
                .into());
            }
            let mut body = json!({ "name": name, "snapshot": snapshot });
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let created = client.post("/api/v1/templates", &body)?;
            if ctx.json {
                return output::json(&created).map(|()| exit::OK);
            }
            output::line(format!(
                "Created template {} from {}.",
                text(&created, "name"),
                from.display()
            ))?;
        }
        TemplateCmd::Delete { name } => {
            client.delete(&template_path(&name))?;
            if ctx.json {
                return output::json(&json!({ "deleted": name })).map(|()| exit::OK);
            }
            output::line(format!("Deleted template {name}."))?;
        }
    }
    Ok(exit::OK)
}

/// Accept either a bare snapshot (the export file) or a saved template
/// object (`{"name":..,"snapshot":{..}}`, as printed by `template show --json`).
fn unwrap_snapshot(value: Value) -> Value {
    match value {
        Value::Object(mut map)
            if !map.contains_key("schema_version")
                && map.get("snapshot").is_some_and(Value::is_object) =>
        {
            map.remove("snapshot").unwrap_or(Value::Null)
        }
        other => other,
    }
}
