//! `vigilo workspace ...`, including `vigilo workspace settings ...`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::args::non_empty;
use crate::client::{exit, seg, workspace_path, Client, Failure};
use crate::context::Ctx;
use crate::output::{self, field, list, role_of, text, when, Table};

/// `vigilo workspace ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum WorkspaceCmd {
    /// List the workspaces you can see
    List,
    /// Create a workspace (platform admins only)
    Create {
        /// Display name
        #[arg(long)]
        name: String,
        /// URL-safe identifier: lower-case letters, digits and dashes
        #[arg(long)]
        slug: String,
        /// Region, e.g. us or eu
        #[arg(long)]
        region: String,
        /// Template to initialise the workspace from
        #[arg(long)]
        template: Option<String>,
    },
    /// Show a workspace (default: the active one)
    Show {
        /// Workspace slug (default: the active workspace)
        #[arg(long, value_name = "SLUG")]
        slug: Option<String>,
    },
    /// Print a workspace's configuration snapshot as JSON
    Export {
        /// Workspace slug (default: the active workspace)
        #[arg(long, value_name = "SLUG")]
        slug: Option<String>,
    },
    /// Read and change workspace settings
    Settings {
        /// Workspace slug (default: the active workspace)
        #[arg(long, global = true, value_name = "SLUG")]
        slug: Option<String>,
        #[command(subcommand)]
        command: SettingsCmd,
    },
}

/// `vigilo workspace settings ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum SettingsCmd {
    /// List all settings
    List,
    /// Print one setting
    Get {
        #[arg(value_parser = non_empty)]
        key: String,
    },
    /// Set a setting
    #[command(long_about = "Set a setting.\n\n\
                            VALUE is used as JSON when it parses as JSON (number, true, false, \
                            null, array, object, \"quoted string\"); otherwise a value with \
                            commas becomes an array of strings, and anything else a string. \
                            With --list it is always split on commas into an array of strings.")]
    Set {
        #[arg(value_parser = non_empty)]
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Treat VALUE as a comma-separated list of strings
        #[arg(long)]
        list: bool,
    },
    /// Remove a setting
    Unset {
        #[arg(value_parser = non_empty)]
        key: String,
    },
}

/// Run one `vigilo workspace` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: WorkspaceCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        WorkspaceCmd::List => {
            let response = client.get("/api/v1/workspaces")?;
            let workspaces = list(&response, "workspaces")?;
            let mut table = Table::new(&["slug", "name", "region", "role"]);
            for w in workspaces {
                table.row(vec![
                    text(w, "slug"),
                    text(w, "name"),
                    text(w, "region"),
                    role_of(w),
                ]);
            }
            output::list_or_table(ctx.json, workspaces, &table)?;
        }
        WorkspaceCmd::Create {
            name,
            slug,
            region,
            template,
        } => {
            let mut body = json!({ "name": name, "slug": slug, "region": region });
            if let Some(template) = template {
                body["template"] = json!(template);
            }
            let created = client.create("/api/v1/workspaces", &body)?;
            if ctx.json {
                return output::json(&created).map(|()| exit::OK);
            }
            output::line(format!(
                "Created workspace {} (\"{}\", region {}).",
                text(&created, "slug"),
                text(&created, "name"),
                text(&created, "region")
            ))?;
        }
        WorkspaceCmd::Show { slug } => {
            let slug = ctx.workspace_or(slug.as_deref())?;
            let workspace = client.get(&workspace_path(slug))?;
            if ctx.json {
                return output::json(&workspace).map(|()| exit::OK);
            }
            output::key_values(&[
                ("Slug", text(&workspace, "slug")),
                ("Name", text(&workspace, "name")),
                ("Region", text(&workspace, "region")),
                ("Created", when(&workspace, "created_at")),
                ("Your role", role_of(&workspace)),
            ])?;
            print_settings(field(&workspace, "settings"))?;
        }
        WorkspaceCmd::Export { slug } => {
            let slug = ctx.workspace_or(slug.as_deref())?;
            let snapshot = client.get(&format!("{}/export", workspace_path(slug)))?;
            output::json(&snapshot)?;
        }
        WorkspaceCmd::Settings { slug, command } => {
            let slug = ctx.workspace_or(slug.as_deref())?;
            settings(ctx, &client, slug, command)?;
        }
    }
    Ok(exit::OK)
}

/// Print a settings object as `key = json` lines.
fn print_settings(settings: &Value) -> Result<()> {
    match settings.as_object() {
        Some(map) if !map.is_empty() => {
            output::line("Settings:")?;
            let mut table = Table::new(&["key", "value"]);
            for (key, value) in map {
                table.row(vec![key.clone(), value.to_string()]);
            }
            // Indent the table under the heading.
            output::emit(&table.render_indented(2))
        }
        _ => output::line("Settings:   none"),
    }
}

fn settings_map(response: &Value) -> Result<Map<String, Value>> {
    field(response, "settings")
        .as_object()
        .cloned()
        .ok_or_else(|| {
            Failure::new(
                exit::UNEXPECTED,
                "unexpected response from the server: no \"settings\" object",
            )
            .into()
        })
}

fn settings(ctx: &Ctx, client: &Client, slug: &str, cmd: SettingsCmd) -> Result<()> {
    let base = format!("{}/settings", workspace_path(slug));
    match cmd {
        SettingsCmd::List => {
            let map = settings_map(&client.get(&base)?)?;
            if ctx.json {
                return output::json(&Value::Object(map));
            }
            let mut table = Table::new(&["key", "value"]);
            for (key, value) in &map {
                table.row(vec![key.clone(), value.to_string()]);
            }
            table.print()
        }
        SettingsCmd::Get { key } => {
            let map = settings_map(&client.get(&base)?)?;
            let Some(value) = map.get(&key) else {
                return Err(Failure::new(
                    exit::NOT_FOUND,
                    format!("setting \"{key}\" is not set in workspace {slug}"),
                )
                .into());
            };
            match value {
                Value::String(s) if !ctx.json => output::line(s),
                _ if ctx.json => output::json(value),
                _ => output::line(value.to_string()),
            }
        }
        SettingsCmd::Set { key, value, list } => {
            let value = parse_setting_value(&value, list);
            let response =
                client.put(&format!("{base}/{}", seg(&key)), &json!({ "value": value }))?;
            if ctx.json {
                return output::json(&Value::Object(settings_map(&response)?));
            }
            output::line(format!("Set {key} = {value} in workspace {slug}."))
        }
        SettingsCmd::Unset { key } => {
            let response = client.delete(&format!("{base}/{}", seg(&key)))?;
            if ctx.json {
                return output::json(&Value::Object(settings_map(&response)?));
            }
            output::line(format!("Removed setting {key} from workspace {slug}."))
        }
    }
}

/// Interpret a command-line setting value (see `vigilo workspace settings set --help`).
pub fn parse_setting_value(raw: &str, as_list: bool) -> Value {
    let split = || {
        Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        )
    };
    if as_list {
        return split();
    }
    if let Ok(value) = serde_json::from_str::<Value>(raw) {
        return value;
    }
    if raw.contains(',') {
        return split();
    }
    Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_setting_value;
    use serde_json::json;

    #[test]
    fn interprets_values() {
        assert_eq!(
            parse_setting_value("2026-12-25,2026-12-26", false),
            json!(["2026-12-25", "2026-12-26"])
        );
        assert_eq!(
            parse_setting_value("2026-12-25", false),
            json!("2026-12-25")
        );
        assert_eq!(
            parse_setting_value("2026-12-25", true),
            json!(["2026-12-25"])
        );
        assert_eq!(parse_setting_value("42", false), json!(42));
        assert_eq!(parse_setting_value("true", false), json!(true));
        assert_eq!(parse_setting_value("null", false), json!(null));
        assert_eq!(parse_setting_value("[1,2]", false), json!([1, 2]));
        assert_eq!(parse_setting_value(r#"{"a":1}"#, false), json!({"a": 1}));
        assert_eq!(parse_setting_value(r#""a,b""#, false), json!("a,b"));
        assert_eq!(
            parse_setting_value("a, b ,c", false),
            json!(["a", "b", "c"])
        );
        assert_eq!(parse_setting_value("", true), json!([]));
        assert_eq!(parse_setting_value("hello", false), json!("hello"));
    }
}
