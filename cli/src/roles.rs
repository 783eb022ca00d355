//! `vigilo role ...`: the built-in permission matrix and custom roles.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::args::non_empty;
use crate::client::{exit, seg, workspace_path};
use crate::context::Ctx;
use crate::output::{self, field, list, text, yes_no, Table};

/// `vigilo role ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum RoleCmd {
    /// Show the built-in permission matrix
    Permissions,
    /// List the roles of the workspace
    List,
    /// Create a custom role derived from a built-in role
    Create {
        /// Name of the new role
        #[arg(long)]
        name: String,
        /// Built-in role to start from
        #[arg(long, value_name = "ROLE")]
        base: String,
        /// Permissions to add (comma-separated or repeated)
        #[arg(long, value_name = "PERMISSIONS", value_delimiter = ',')]
        add: Vec<String>,
        /// Permissions to remove (comma-separated or repeated)
        #[arg(long, value_name = "PERMISSIONS", value_delimiter = ',')]
        remove: Vec<String>,
    },
    /// Delete a custom role
    Delete {
        #[arg(value_parser = non_empty)]
        name: String,
    },
}

/// The permission names of a role object.
fn permissions_of(role: &Value) -> Vec<String> {
    field(role, "permissions")
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Trim, drop empty entries and duplicates, keeping order.
fn clean_list(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let item = item.trim().to_string();
        if !item.is_empty() && !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Run one `vigilo role` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: RoleCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        RoleCmd::Permissions => {
            let response = client.get("/api/v1/roles")?;
            if ctx.json {
                return output::json(&response).map(|()| exit::OK);
            }
            let roles = list(&response, "roles")?;
            let role_permissions: Vec<Vec<String>> = roles.iter().map(permissions_of).collect();
            let mut names: Vec<String> = list(&response, "permissions")?
                .iter()
                .map(|p| text(p, "name"))
                .collect();
            for permission in role_permissions.iter().flatten() {
                if !names.contains(permission) {
                    names.push(permission.clone());
                }
            }
            let mut headers = vec!["permission".to_string()];
            headers.extend(roles.iter().map(|r| text(r, "name")));
            let mut table = Table::new(&headers);
            for name in &names {
                let mut row = vec![name.clone()];
                row.extend(
                    role_permissions
                        .iter()
                        .map(|perms| if perms.contains(name) { "x" } else { "" }.to_string()),
                );
                table.row(row);
            }
            table.print()?;
        }
        RoleCmd::List => {
            let slug = ctx.workspace()?;
            let response = client.get(&format!("{}/roles", workspace_path(slug)))?;
            let roles = list(&response, "roles")?;
            let mut table = Table::new(&["name", "builtin", "base", "permissions"]);
            for r in roles {
                table.row(vec![
                    text(r, "name"),
                    yes_no(r, "builtin"),
                    text(r, "base_role"),
                    text(r, "permissions"),
                ]);
            }
            output::list_or_table(ctx.json, roles, &table)?;
        }
        RoleCmd::Create {
            name,
            base,
            add,
            remove,
        } => {
            let slug = ctx.workspace()?;
            let body = json!({
                "name": name,
                "base_role": base,
                "add": clean_list(add),
                "remove": clean_list(remove),
            });
            let role = client.post(&format!("{}/roles", workspace_path(slug)), &body)?;
            if ctx.json {
                return output::json(&role).map(|()| exit::OK);
            }
            output::line(format!(
                "Created role {} in workspace {slug} (based on {}).",
                text(&role, "name"),
                text(&role, "base_role")
            ))?;
            output::line(format!("Permissions: {}", text(&role, "permissions")))?;
        }
        RoleCmd::Delete { name } => {
            let slug = ctx.workspace()?;
            client.delete(&format!("{}/roles/{}", workspace_path(slug), seg(&name)))?;
            if ctx.json {
                return output::json(&json!({ "deleted": name })).map(|()| exit::OK);
            }
            output::line(format!("Deleted role {name} from workspace {slug}."))?;
        }
    }
    Ok(exit::OK)
}
