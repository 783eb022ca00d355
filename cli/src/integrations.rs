//! `vigilo integration ...`: the workspace's configured adapters.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::client::{exit, seg, workspace_path, Client, Failure};
use crate::context::Ctx;
use crate::output::{self, field, list, text, when, yes_no, Table};

/// `vigilo integration ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum IntegrationCmd {
    /// List the adapters the server's plugins provide, with their settings
    Adapters,
    /// List the workspace's integrations (secrets are never shown)
    List,
    /// Add an integration
    Add {
        /// Unique name in the workspace, such as ops-slack
        name: String,
        /// The adapter (see `vigilo integration adapters`)
        #[arg(long)]
        adapter: String,
        /// A setting as KEY=VALUE (repeatable); VALUE is JSON if it parses, else text
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Read a secret setting from the environment variable VAR: KEY=VAR
        /// (keeps it out of shell history and process lists)
        #[arg(long = "secret-env", value_name = "KEY=VAR")]
        secret_env: Vec<String>,
    },
    /// Show one integration
    Show { name: String },
    /// Change settings (secret settings left out keep their values) or turn it on or off
    Update {
        name: String,
        /// A setting as KEY=VALUE (repeatable); `KEY=null` removes it
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Read a secret setting from the environment variable VAR: KEY=VAR
        #[arg(long = "secret-env", value_name = "KEY=VAR")]
        secret_env: Vec<String>,
        /// Deliver events through it
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop delivering events through it
        #[arg(long)]
        disable: bool,
    },
    /// Remove an integration
    Remove { name: String },
    /// Send a test message; exits 11 if it was not delivered
    Test {
        name: String,
        /// The message text
        #[arg(long)]
        text: Option<String>,
    },
    /// The integration's delivery log, newest first
    Deliveries {
        name: String,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// Parses `KEY=VALUE` settings (VALUE as JSON when it parses, else text)
/// and `KEY=VAR` secrets read from the environment.
fn settings(set: &[String], secret_env: &[String]) -> Result<Map<String, Value>> {
    let mut config = Map::new();
    for pair in set {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Failure::new(exit::USAGE, format!("--set `{pair}` is not KEY=VALUE")))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        config.insert(key.trim().to_owned(), value);
    }
    for pair in secret_env {
        let (key, var) = pair.split_once('=').ok_or_else(|| {
            Failure::new(exit::USAGE, format!("--secret-env `{pair}` is not KEY=VAR"))
        })?;
        let value = std::env::var(var).map_err(|_| {
            Failure::new(
                exit::USAGE,
                format!("--secret-env {key}: the environment variable {var} is not set"),
            )
        })?;
        config.insert(key.trim().to_owned(), Value::String(value));
    }
    Ok(config)
}

fn describe(i: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("name", text(i, "name")),
        ("adapter", text(i, "adapter")),
        ("enabled", yes_no(i, "enabled")),
        ("adapter loaded", yes_no(i, "adapter_loaded")),
        ("settings", text(i, "config")),
        ("secrets set", text(i, "secrets_set")),
        ("created", when(i, "created_at")),
        ("updated", when(i, "updated_at")),
    ]
}

/// Run one `vigilo integration` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: IntegrationCmd) -> Result<u8> {
    let client = ctx.client()?;
    if let IntegrationCmd::Adapters = cmd {
        let response = client.get("/api/v1/adapters")?;
        let adapters = list(&response, "adapters")?;
        let mut table = Table::new(&["name", "label", "plugin", "required settings", "secrets"]);
        for a in adapters {
            table.row(vec![
                text(a, "name"),
                text(a, "label"),
                text(a, "plugin"),
                output::cell(&field(field(a, "config_schema"), "required").clone()),
                text(a, "secret_fields"),
            ]);
        }
        output::list_or_table(ctx.json, adapters, &table)?;
        return Ok(exit::OK);
    }
    let slug = ctx.workspace()?;
    let base = format!("{}/integrations", workspace_path(slug));
    match cmd {
        IntegrationCmd::Adapters => unreachable!("handled above"),
        IntegrationCmd::List => {
            let response = client.get(&base)?;
            let integrations = list(&response, "integrations")?;
            let mut table = Table::new(&["name", "adapter", "enabled", "settings", "secrets set"]);
            for i in integrations {
                table.row(vec![
                    text(i, "name"),
                    text(i, "adapter"),
                    yes_no(i, "enabled"),
                    text(i, "config"),
                    text(i, "secrets_set"),
                ]);
            }
            output::list_or_table(ctx.json, integrations, &table)?;
        }
        IntegrationCmd::Add {
            name,
            adapter,
            set,
            secret_env,
        } => {
            let config = settings(&set, &secret_env)?;
            let created = client.post(
                &base,
                &json!({"name": name, "adapter": adapter, "config": config}),
            )?;
            if ctx.json {
                return output::json(&created).map(|()| exit::OK);
            }
            output::line(format!(
                "Added integration {} ({}) to workspace {slug}.",
                text(&created, "name"),
                text(&created, "adapter")
            ))?;
        }
        IntegrationCmd::Show { name } => {
            let i = client.get(&format!("{base}/{}", seg(&name)))?;
            if ctx.json {
                return output::json(&i).map(|()| exit::OK);
            }
            output::key_values(&describe(&i))?;
        }
        IntegrationCmd::Update {
            name,
            set,
            secret_env,
            enable,
            disable,
        } => {
            let mut body = json!({"config": settings(&set, &secret_env)?});
            if enable || disable {
                body["enabled"] = json!(enable);
            }
            let i = client.patch(&format!("{base}/{}", seg(&name)), &body)?;
            if ctx.json {
                return output::json(&i).map(|()| exit::OK);
            }
            output::key_values(&describe(&i))?;
        }
        IntegrationCmd::Remove { name } => {
            client.delete(&format!("{base}/{}", seg(&name)))?;
            if ctx.json {
                return output::json(&json!({"removed": name})).map(|()| exit::OK);
            }
            output::line(format!("Removed integration {name} from workspace {slug}."))?;
        }
        IntegrationCmd::Test {
            name,
            text: message,
        } => return test(ctx, &client, &base, &name, message),
        IntegrationCmd::Deliveries { name, limit } => {
            return deliveries(ctx, &client, &base, &name, limit)
        }
    }
    Ok(exit::OK)
}

/// `integration deliveries`: the latest deliveries through one integration.
fn deliveries(ctx: &Ctx, client: &Client, base: &str, name: &str, limit: u32) -> Result<u8> {
    let response = client.get(&format!("{base}/{}/deliveries?limit={limit}", seg(name)))?;
    let deliveries = list(&response, "deliveries")?;
    let mut table = Table::new(&["id", "when", "event", "source", "ok", "detail / error"]);
    for d in deliveries {
        let detail = match field(d, "error").as_str() {
            Some(error) => error.to_owned(),
            None => text(d, "detail"),
        };
        table.row(vec![
            text(d, "id"),
            when(d, "created_at"),
            text(d, "event_type"),
            text(d, "source"),
            yes_no(d, "ok"),
            detail,
        ]);
    }
    output::list_or_table(ctx.json, deliveries, &table)?;
    Ok(exit::OK)
}

/// `integration test`: sends a test message and prints the delivery.
fn test(ctx: &Ctx, client: &Client, base: &str, name: &str, message: Option<String>) -> Result<u8> {
    let outcome = client.post(
        &format!("{base}/{}/test", seg(name)),
        &json!({"text": message}),
    )?;
    let ok = field(&outcome, "ok").as_bool().unwrap_or(false);
    if ctx.json {
        output::json(&outcome)?;
    } else if ok {
        output::line(format!(
            "Delivered a test message through {name} ({}).",
            text(&outcome, "detail")
        ))?;
    } else {
        output::line(format!(
            "NOT delivered through {name}: {}",
            text(&outcome, "error")
        ))?;
    }
    if !ok {
        return Ok(exit::RUN_FAILED);
    }
    Ok(exit::OK)
}
