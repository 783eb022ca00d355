//! `vigilo dashboard ...`: the workspace's dashboard.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{exit, workspace_path, Client, Failure};
use crate::context::Ctx;
use crate::output::{self, cell, field, list, text, Layout, Table};

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
    /// Change a tile's options: the whole set (--config), or some of them
    /// (--set key=value, repeatable; a value that is JSON is read as JSON,
    /// anything else as text)
    Update {
        /// The tile's id (see `vigilo dashboard show`)
        id: i64,
        /// The new options as a JSON object, replacing the old
        #[arg(long, value_name = "JSON", conflicts_with = "set")]
        config: Option<String>,
        /// Set one option, keeping the others
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Remove a widget by its id
    Remove { id: i64 },
    /// Put the widgets in this order (every id, comma-separated)
    Order {
        #[arg(value_delimiter = ',', required = true)]
        ids: Vec<i64>,
    },
}

/// How far a tile's content is indented under its heading.
const INDENT: usize = 4;

/// At most this many characters of one value in a summary.
const MAX_VALUE: usize = 60;

/// At most this many rows of a list in a summary.
const MAX_ROWS: usize = 20;

/// At most this many columns of a list in a summary.
const MAX_COLUMNS: usize = 6;

/// One tile as a person reads it: a heading `[id] widget (plugin)`, then,
/// indented, its error message, or its data — the kanban overview as a
/// table of counts by status per kind, any other widget as a summary.
fn render_tile(tile: &Value, layout: Layout) -> String {
    let mut out = format!(
        "[{}] {} ({})\n",
        text(tile, "id"),
        text(tile, "widget"),
        text(tile, "plugin")
    );
    let margin = " ".repeat(INDENT);
    let error = field(tile, "error");
    if !error.is_null() {
        let code = match field(error, "code").as_str() {
            Some(code) if !code.is_empty() => format!(" ({code})"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{margin}error: {}{code}\n",
            text(error, "message")
        ));
        return out;
    }
    let data = field(tile, "data");
    let kanban = if text(tile, "widget") == "kanban_overview" {
        kanban_table(data)
    } else {
        None
    };
    match kanban {
        Some(Kanban::Empty) => out.push_str(&format!("{margin}no work items\n")),
        Some(Kanban::Counts(table)) => out.push_str(&table.render_in(layout, INDENT)),
        None => out.push_str(&summary(data, layout)),
    }
    out
}

/// What the kanban overview rendered, ready to print.
enum Kanban {
    /// No status has any item.
    Empty,
    /// One row per kind, a column per status, a total per row and, when
    /// there are several kinds, a row of totals.
    Counts(Table),
}

/// The kanban overview's data (`columns`, `rows` of `label`, `counts` and
/// `total`, `column_totals`, `total`) as a table; `None` when the data does
/// not have that shape.
fn kanban_table(data: &Value) -> Option<Kanban> {
    let columns: Vec<&str> = data
        .get("columns")?
        .as_array()?
        .iter()
        .map(Value::as_str)
        .collect::<Option<_>>()?;
    let rows = data.get("rows")?.as_array()?;
    if columns.is_empty() {
        return Some(Kanban::Empty);
    }
    let count = |counts: &Value, status: &str| match counts.get(status) {
        Some(n) => cell(n),
        None => "0".to_string(),
    };
    let mut headers = vec!["kind"];
    headers.extend(&columns);
    headers.push("total");
    let mut table = Table::new(&headers);
    for row in rows {
        let counts = row.get("counts")?;
        let mut cells = vec![match field(row, "label").as_str() {
            Some(label) => label.to_string(),
            None => text(row, "kind"),
        }];
        cells.extend(columns.iter().map(|status| count(counts, status)));
        cells.push(text(row, "total"));
        table.row(cells);
    }
    if rows.len() > 1 {
        let totals = field(data, "column_totals");
        let mut cells = vec!["All".to_string()];
        cells.extend(columns.iter().map(|status| count(totals, status)));
        cells.push(text(data, "total"));
        table.row(cells);
    }
    Some(Kanban::Counts(table))
}

/// A widget's data in a few indented lines: an object as aligned
/// `key: value` lines, a list of objects as a table (the first rows and
/// columns), anything else as one line; long values are shortened.
fn summary(data: &Value, layout: Layout) -> String {
    let margin = " ".repeat(INDENT);
    match data {
        Value::Null => format!("{margin}no data\n"),
        Value::Object(map) if map.is_empty() => format!("{margin}no data\n"),
        Value::Object(map) => {
            let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            map.iter()
                .map(|(key, value)| {
                    let label = format!("{key}:");
                    format!("{margin}{label:<w$}  {}\n", brief(value), w = width + 1)
                })
                .collect()
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let mut keys: Vec<&str> = Vec::new();
            for item in items {
                for key in item.as_object().into_iter().flat_map(|m| m.keys()) {
                    if keys.len() < MAX_COLUMNS && !keys.contains(&key.as_str()) {
                        keys.push(key);
                    }
                }
            }
            let mut table = Table::new(&keys);
            for item in items.iter().take(MAX_ROWS) {
                table.row(keys.iter().map(|key| brief(field(item, key))).collect());
            }
            let mut out = table.render_in(layout, INDENT);
            if items.len() > MAX_ROWS {
                out.push_str(&format!("{margin}… and {} more\n", items.len() - MAX_ROWS));
            }
            out
        }
        other => format!("{margin}{}\n", brief(other)),
    }
}

/// One value in at most [`MAX_VALUE`] characters: text and numbers as they
/// are, a list of plain values comma-separated, a list of anything else by
/// its length, an object as `key=value` pairs.
fn brief(value: &Value) -> String {
    let full = match value {
        Value::Array(items) if items.iter().any(|i| i.is_array() || i.is_object()) => {
            match items.len() {
                1 => "1 item".to_string(),
                n => format!("{n} items"),
            }
        }
        Value::Object(map) if map.is_empty() => "-".to_string(),
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| match value {
                Value::Array(_) | Value::Object(_) => format!("{key}=…"),
                plain => format!("{key}={}", cell(plain)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        plain => cell(plain).replace(['\n', '\r', '\t'], " "),
    };
    if full.chars().count() > MAX_VALUE {
        let mut short: String = full.chars().take(MAX_VALUE - 1).collect();
        short.push('…');
        short
    } else {
        full
    }
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
            let layout = Layout::for_stdout();
            for tile in widgets {
                output::emit(&render_tile(tile, layout))?;
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
        DashboardCmd::Update { id, config, set } => return update(ctx, &client, id, config, &set),
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

/// `dashboard update`: new options for one widget, given whole or key by key.
fn update(
    ctx: &Ctx,
    client: &Client,
    id: i64,
    config: Option<String>,
    set: &[String],
) -> Result<u8> {
    let slug = ctx.workspace()?;
    let config: Value = match config {
        Some(raw) => serde_json::from_str(&raw)
            .map_err(|e| Failure::new(exit::USAGE, format!("--config is not JSON: {e}")))?,
        None if set.is_empty() => {
            return Err(Failure::new(
                exit::USAGE,
                "give the new options: --config JSON, or --set KEY=VALUE",
            )
            .into())
        }
        None => {
            let dashboard = client.get(&format!("{}/dashboard", workspace_path(slug)))?;
            let tile = dashboard["widgets"]
                .as_array()
                .and_then(|tiles| tiles.iter().find(|t| t["id"] == id))
                .ok_or_else(|| {
                    Failure::new(
                        exit::NOT_FOUND,
                        format!("no widget {id} on the dashboard of {slug}"),
                    )
                })?;
            let mut options = tile["config"].as_object().cloned().unwrap_or_default();
            for pair in set {
                let (key, raw) = pair.split_once('=').ok_or_else(|| {
                    Failure::new(exit::USAGE, format!("--set takes KEY=VALUE, not `{pair}`"))
                })?;
                let value =
                    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
                options.insert(key.to_owned(), value);
            }
            Value::Object(options)
        }
    };
    let updated = client.put(
        &format!("{}/dashboard/widgets/{id}", workspace_path(slug)),
        &json!({ "config": config }),
    )?;
    if ctx.json {
        return output::json(&updated).map(|()| exit::OK);
    }
    output::line(format!(
        "Changed the options of widget {id} ({}) on the dashboard of {slug}: {}.",
        text(&updated, "widget"),
        updated["config"]
    ))?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kanban_overview_is_a_table_of_counts() {
        let tile = json!({
            "id": 3, "widget": "kanban_overview", "plugin": "kanban_overview",
            "data": {
                "workspace": "ops",
                "columns": ["todo", "doing", "open"],
                "rows": [
                    {"kind": "changes", "label": "Changes", "counts": {"todo": 0, "doing": 0, "open": 0}, "total": 0},
                    {"kind": "incidents", "label": "Incidents", "counts": {"todo": 0, "doing": 0, "open": 1}, "total": 1},
                    {"kind": "tasks", "label": "Tasks", "counts": {"todo": 2, "doing": 1, "open": 0}, "total": 3}
                ],
                "column_totals": {"todo": 2, "doing": 1, "open": 1},
                "total": 4
            }
        });
        assert_eq!(
            render_tile(&tile, Layout::Plain),
            "[3] kanban_overview (kanban_overview)\n\
             \x20   KIND       TODO  DOING  OPEN  TOTAL\n\
             \x20   Changes    0     0      0     0\n\
             \x20   Incidents  0     0      1     1\n\
             \x20   Tasks      2     1      0     3\n\
             \x20   All        2     1      1     4\n"
        );
    }

    #[test]
    fn an_empty_kanban_overview_says_so() {
        let tile = json!({"id": 1, "widget": "kanban_overview", "plugin": "kanban_overview",
            "data": {"columns": [], "rows": [], "column_totals": {}, "total": 0}});
        assert_eq!(
            render_tile(&tile, Layout::Plain),
            "[1] kanban_overview (kanban_overview)\n    no work items\n"
        );
    }

    #[test]
    fn a_failed_tile_shows_its_error() {
        let tile = json!({"id": 2, "widget": "kanban_overview", "plugin": null,
            "error": {"code": "plugin_unavailable", "message": "the plugin is not loaded"}});
        assert_eq!(
            render_tile(&tile, Layout::Plain),
            "[2] kanban_overview (-)\n    error: the plugin is not loaded (plugin_unavailable)\n"
        );
    }

    #[test]
    fn other_widgets_are_summarised() {
        let tile = json!({"id": 4, "widget": "open_incidents", "plugin": "guide",
            "data": {"open": 2, "oldest": {"id": 7, "title": "db down", "tags": ["a"]},
                     "by_team": [{"team": "db", "open": 1}], "note": "x".repeat(100)}});
        let text = render_tile(&tile, Layout::Plain);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "[4] open_incidents (guide)",
                "    by_team:  1 item",
                &format!("    note:     {}…", "x".repeat(59)),
                "    oldest:   id=7, tags=…, title=db down",
                "    open:     2",
            ]
        );
        let list = json!({"id": 5, "widget": "w", "plugin": "p",
            "data": [{"name": "a", "n": 1}, {"name": "b", "extra": true}]});
        assert_eq!(
            render_tile(&list, Layout::Plain),
            "[5] w (p)\n    N  NAME  EXTRA\n    1  a     -\n    -  b     yes\n"
        );
        let plain = json!({"id": 6, "widget": "w", "plugin": "p", "data": 42});
        assert_eq!(render_tile(&plain, Layout::Plain), "[6] w (p)\n    42\n");
        let none = json!({"id": 7, "widget": "w", "plugin": "p", "data": {}});
        assert_eq!(
            render_tile(&none, Layout::Plain),
            "[7] w (p)\n    no data\n"
        );
    }
}
