//! `vigilo playbook ...`: define, run and dry-run playbooks, and read run
//! records.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::client::{exit, query, seg, workspace_path, Client, Failure};
use crate::context::Ctx;
use crate::output::{self, field, list, text, when, Table};

/// `vigilo playbook ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum PlaybookCmd {
    /// List the workspace's playbooks
    List,
    /// Show a playbook's steps
    Show {
        /// Id or name
        playbook: String,
    },
    /// Create a playbook from a JSON file ({"name", "description", "steps": [...]})
    Create {
        /// The definition file (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Replace a playbook's definition from a JSON file
    Update {
        /// Id or name
        playbook: String,
        /// The definition file (`-` for stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a playbook (its run records stay)
    Remove {
        /// Id or name
        playbook: String,
    },
    /// Run a playbook and show each step's outcome; exits 11 if a step failed
    Run {
        /// Id or name
        playbook: String,
        /// Evaluate every step without side effects and say what each would do
        #[arg(long)]
        dry_run: bool,
        /// An input variable as KEY=VALUE for {{input.KEY}} (repeatable)
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// List run records, newest first
    Runs {
        /// Only runs of this playbook (id or name)
        #[arg(long)]
        playbook: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one run record with each step's status, output and error
    ShowRun { id: i64 },
}

fn definition(file: &Path) -> Result<Value> {
    let mut raw = String::new();
    let read = if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut raw).map(drop)
    } else {
        std::fs::read_to_string(file).map(|t| raw = t)
    };
    read.map_err(|e| {
        Failure::new(
            exit::UNEXPECTED,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    Ok(serde_json::from_str(&raw).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("{} is not a JSON playbook definition: {e}", file.display()),
        )
    })?)
}

/// The step table of a run record.
fn print_run(run: &Value) -> Result<()> {
    let dry = field(run, "dry_run").as_bool().unwrap_or(false);
    output::line(format!(
        "{} {} of playbook {}: {}",
        if dry { "Dry run" } else { "Run" },
        text(run, "id"),
        text(run, "playbook"),
        text(run, "status")
    ))?;
    let mut table = Table::new(&["#", "step", "type", "status", "output / error"]);
    for step in field(run, "steps").as_array().into_iter().flatten() {
        let output = step.get("output").filter(|o| !o.is_null());
        let detail = match (output, field(step, "error").as_str()) {
            (Some(o), Some(e)) => format!("{} ({e})", output::cell(o)),
            (None, Some(e)) => e.to_owned(),
            (Some(o), None) => output::cell(o),
            (None, None) => String::new(),
        };
        table.row(vec![
            text(step, "index"),
            text(step, "name"),
            text(step, "type"),
            text(step, "status"),
            detail,
        ]);
    }
    table.print()
}

fn run_failed(run: &Value) -> bool {
    matches!(field(run, "status").as_str(), Some("failed" | "would_fail"))
}

/// Run one `vigilo playbook` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: PlaybookCmd) -> Result<u8> {
    let client = ctx.client()?;
    let slug = ctx.workspace()?;
    let base = format!("{}/playbooks", workspace_path(slug));
    match cmd {
        PlaybookCmd::List => {
            let response = client.get(&base)?;
            let playbooks = list(&response, "playbooks")?;
            let mut table = Table::new(&["id", "name", "steps", "description", "updated"]);
            for p in playbooks {
                table.row(vec![
                    text(p, "id"),
                    text(p, "name"),
                    field(p, "steps").as_array().map_or(0, Vec::len).to_string(),
                    text(p, "description"),
                    when(p, "updated_at"),
                ]);
            }
            output::list_or_table(ctx.json, playbooks, &table)?;
        }
        PlaybookCmd::Show { playbook } => return show(ctx, &client, &base, &playbook),
        PlaybookCmd::Create { file } => {
            let created = client.post(&base, &definition(&file)?)?;
            if ctx.json {
                return output::json(&created).map(|()| exit::OK);
            }
            output::line(format!(
                "Created playbook {} (id {}) with {} steps.",
                text(&created, "name"),
                text(&created, "id"),
                field(&created, "steps").as_array().map_or(0, Vec::len)
            ))?;
        }
        PlaybookCmd::Update { playbook, file } => {
            let updated = client.put(&format!("{base}/{}", seg(&playbook)), &definition(&file)?)?;
            if ctx.json {
                return output::json(&updated).map(|()| exit::OK);
            }
            output::line(format!("Updated playbook {}.", text(&updated, "name")))?;
        }
        PlaybookCmd::Remove { playbook } => {
            client.delete(&format!("{base}/{}", seg(&playbook)))?;
            if ctx.json {
                return output::json(&json!({"removed": playbook})).map(|()| exit::OK);
            }
            output::line(format!("Removed playbook {playbook}."))?;
        }
        PlaybookCmd::Run {
            playbook,
            dry_run,
            vars,
        } => return run_playbook(ctx, &client, &base, &playbook, dry_run, &vars),
        PlaybookCmd::Runs { playbook, limit } => return runs(ctx, &client, slug, playbook, limit),
        PlaybookCmd::ShowRun { id } => {
            let run = client.get(&format!("{}/playbook-runs/{id}", workspace_path(slug)))?;
            if ctx.json {
                return output::json(&run).map(|()| exit::OK);
            }
            print_run(&run)?;
        }
    }
    Ok(exit::OK)
}

/// `playbook runs`: the latest runs, of one playbook or all.
fn runs(
    ctx: &Ctx,
    client: &Client,
    slug: &str,
    playbook: Option<String>,
    limit: u32,
) -> Result<u8> {
    let mut pairs = vec![("limit", limit.to_string())];
    if let Some(p) = playbook {
        pairs.push(("playbook", p));
    }
    let response = client.get(&format!(
        "{}/playbook-runs{}",
        workspace_path(slug),
        query(&pairs)
    ))?;
    let runs = list(&response, "runs")?;
    let mut table = Table::new(&["id", "playbook", "dry run", "status", "started", "by"]);
    for r in runs {
        table.row(vec![
            text(r, "id"),
            text(r, "playbook"),
            output::yes_no(r, "dry_run"),
            text(r, "status"),
            when(r, "started_at"),
            text(r, "started_by"),
        ]);
    }
    output::list_or_table(ctx.json, runs, &table)?;
    Ok(exit::OK)
}

/// `playbook run` and `--dry-run`: runs it and prints the run.
fn run_playbook(
    ctx: &Ctx,
    client: &Client,
    base: &str,
    playbook: &str,
    dry_run: bool,
    vars: &[String],
) -> Result<u8> {
    let mut input = Map::new();
    for pair in vars {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Failure::new(exit::USAGE, format!("--var `{pair}` is not KEY=VALUE")))?;
        input.insert(key.trim().to_owned(), Value::String(value.to_owned()));
    }
    let action = if dry_run { "dry-run" } else { "run" };
    let spinner = ctx.spinner(if dry_run {
        format!("Dry-running playbook {playbook}")
    } else {
        format!("Running playbook {playbook}")
    });
    let run = client.create_and_wait(
        &format!("{base}/{}/{action}", seg(playbook)),
        &json!({"input": input}),
    )?;
    drop(spinner);
    if ctx.json {
        output::json(&run)?;
    } else {
        print_run(&run)?;
    }
    if run_failed(&run) {
        return Ok(exit::RUN_FAILED);
    }
    Ok(exit::OK)
}

/// `playbook show`: its settings and steps.
fn show(ctx: &Ctx, client: &Client, base: &str, playbook: &str) -> Result<u8> {
    let p = client.get(&format!("{base}/{}", seg(playbook)))?;
    if ctx.json {
        return output::json(&p).map(|()| exit::OK);
    }
    output::key_values(&[
        ("id", text(&p, "id")),
        ("name", text(&p, "name")),
        ("description", text(&p, "description")),
        ("updated", when(&p, "updated_at")),
    ])?;
    let mut table = Table::new(&["#", "step", "type", "settings"]);
    for (i, step) in field(&p, "steps")
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut settings = step.as_object().cloned().unwrap_or_default();
        settings.remove("type");
        settings.remove("name");
        table.row(vec![
            (i + 1).to_string(),
            text(step, "name"),
            text(step, "type"),
            Value::Object(settings).to_string(),
        ]);
    }
    table.print()?;
    Ok(exit::OK)
}
