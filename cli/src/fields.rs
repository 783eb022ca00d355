//! `vigilo field ...`: custom field definitions and the types on offer.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{exit, seg, workspace_path};
use crate::context::Ctx;
use crate::output::{self, list, text, yes_no, Table};

/// `vigilo field ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum FieldCmd {
    /// List the workspace's custom fields
    List,
    /// List the field types this server offers (built-in and from plugins)
    Types,
    /// Define a custom field
    Add {
        /// Key used in items' fields
        #[arg(long)]
        key: String,
        /// Label shown in forms
        #[arg(long)]
        label: String,
        /// A built-in type (text, number, boolean, date, select) or a plugin's (see `vigilo field types`)
        #[arg(long = "type", value_name = "TYPE")]
        field_type: String,
        /// Which kinds carry it (comma-separated: change, incident, task)
        #[arg(long, value_delimiter = ',', default_value = "change,incident,task")]
        applies_to: Vec<String>,
        /// Every new item must have a value
        #[arg(long)]
        required: bool,
        /// For select: the allowed values (comma-separated)
        #[arg(long, value_delimiter = ',')]
        options: Vec<String>,
    },
    /// Delete a custom field definition
    Remove { key: String },
}

/// Run one `vigilo field` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: FieldCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        FieldCmd::List => {
            let slug = ctx.workspace()?;
            let response = client.get(&format!("{}/fields", workspace_path(slug)))?;
            let fields = list(&response, "fields")?;
            let mut table =
                Table::new(&["key", "label", "type", "applies_to", "required", "options"]);
            for f in fields {
                table.row(vec![
                    text(f, "key"),
                    text(f, "label"),
                    text(f, "type"),
                    text(f, "applies_to"),
                    yes_no(f, "required"),
                    text(f, "options"),
                ]);
            }
            output::list_or_table(ctx.json, fields, &table)?;
        }
        FieldCmd::Types => {
            let response = client.get("/api/v1/field-types")?;
            let types = list(&response, "field_types")?;
            let mut table = Table::new(&["name", "label", "source", "plugin"]);
            for t in types {
                table.row(vec![
                    text(t, "name"),
                    text(t, "label"),
                    text(t, "source"),
                    text(t, "plugin"),
                ]);
            }
            output::list_or_table(ctx.json, types, &table)?;
        }
        FieldCmd::Add {
            key,
            label,
            field_type,
            applies_to,
            required,
            options,
        } => {
            let slug = ctx.workspace()?;
            let mut body = json!({
                "key": key, "label": label, "type": field_type,
                "applies_to": applies_to.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>(),
                "required": required,
            });
            if !options.is_empty() {
                body["options"] = Value::from(options);
            }
            let created = client.post(&format!("{}/fields", workspace_path(slug)), &body)?;
            if ctx.json {
                return output::json(&created).map(|()| exit::OK);
            }
            output::line(format!(
                "Added field {} ({}) to workspace {slug}.",
                text(&created, "key"),
                text(&created, "type")
            ))?;
        }
        FieldCmd::Remove { key } => {
            let slug = ctx.workspace()?;
            client.delete(&format!("{}/fields/{}", workspace_path(slug), seg(&key)))?;
            if ctx.json {
                return output::json(&json!({"deleted": key})).map(|()| exit::OK);
            }
            output::line(format!("Removed field {key} from workspace {slug}."))?;
        }
    }
    Ok(exit::OK)
}
