//! # kanban_overview: a reference `dashboard_widget` plugin
//!
//! Registers the dashboard widget **`kanban_overview`** ("Kanban overview"):
//! one tile counting a workspace's changes, incidents and tasks by status,
//! like the column headers of a kanban board.
//!
//! ## Where the data comes from
//!
//! A widget never reads the database; it asks the server through the host
//! API. `render` makes exactly one call,
//! [`work_items.count_by_status`](vigilo_sdk::WORK_ITEMS_COUNT_BY_STATUS)
//! with `{"workspace": "<slug>"}`, and expects
//!
//! ```json
//! {"changes": {"draft": 2, "approved": 1}, "incidents": {"open": 1}, "tasks": {"todo": 3, "done": 5}}
//! ```
//!
//! (a kind with no items may be absent or `{}`).
//!
//! ## What it renders
//!
//! ```json
//! {
//!   "workspace": "ops",
//!   "columns": ["draft", "approved", "todo", "open", "done"],
//!   "rows": [
//!     {"kind": "changes",   "label": "Changes",   "counts": {"draft": 2, "approved": 1, "todo": 0, "open": 0, "done": 0}, "total": 3},
//!     {"kind": "incidents", "label": "Incidents", "counts": {"draft": 0, "approved": 0, "todo": 0, "open": 1, "done": 0}, "total": 1},
//!     {"kind": "tasks",     "label": "Tasks",     "counts": {"draft": 0, "approved": 0, "todo": 3, "open": 0, "done": 5}, "total": 8}
//!   ],
//!   "column_totals": {"draft": 2, "approved": 1, "todo": 3, "open": 1, "done": 5},
//!   "total": 12
//! }
//! ```
//!
//! * `columns`: every status that has at least one item, in workflow order
//!   ([`STATUS_ORDER`]: early states first, finished states last); statuses
//!   the order does not know come just before the finished ones,
//!   alphabetically. The tile's config may pin columns first with
//!   `"columns": [...]` (those are shown even when empty).
//! * `rows`: one per kind, always in the order changes, incidents, tasks
//!   (config `"kinds"` may select a subset); `counts` has every column, zero
//!   filled, so the frontend can draw a grid without looking anything up.
//! * `column_totals` and `total` sum the rows shown.
//! * `lanes` (when the server says what each workflow's statuses are, in
//!   `work_items.count_by_status`'s `statuses`): one per kind shown, with
//!   `statuses: [{"status", "count"}]` listing every status of that kind's
//!   workflow, in workflow order, zeros included, and the kind's `total`.
//!   With `statuses` known, `columns` also holds every status of the kinds
//!   shown, so nothing is hidden for having no items yet.
//!
//! * `breakdown` (when the tile's option `breakdown` names a custom field
//!   of incidents, such as `severity`): the open incidents counted by that
//!   field's value, `{"field", "counts": {"high": 2}, "without", "total",
//!   "capped"}`, read with [`work_items.list`](vigilo_sdk::host::WORK_ITEMS_LIST)
//!   a status at a time (at most [`BREAKDOWN_LIMIT`] incidents).
//!
//! The plugin declares the one capability it uses, `work_items.read`.
//! Its options are checked against its schema by the server, then by
//! [`Widget::validate_config`] (a status pinned twice is refused).
//!
//! ## Frontend half
//!
//! `kanban_overview.js` is an ES module that defines the
//! `<kanban_overview-board>` custom element (declared with
//! [`Widget::element`], so the web app knows to use it): set its `data`
//! property to what `render` returned and it draws one lane per kind, every
//! status a column. It styles itself with a constructable stylesheet, as
//! the web app's Content-Security-Policy asks. `kanban_overview.css` styles
//! the same markup for pages that draw it without the element.

use std::collections::{BTreeMap, BTreeSet};

use vigilo_sdk::{
    json, Asset, Element, Host, Map, Plugin, PluginKind, PluginRegistry, Value, Widget,
    WidgetContext,
};

/// The plugin: registers [`KanbanOverview`].
pub struct KanbanOverviewPlugin;

impl Plugin for KanbanOverviewPlugin {
    fn capabilities(&self) -> Option<vigilo_sdk::Capabilities> {
        Some(vigilo_sdk::Capabilities::none().with(vigilo_sdk::Capability::WorkItemsRead))
    }

    fn name(&self) -> &str {
        "kanban_overview"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::DashboardWidget
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn compatible_with(&self) -> &str {
        ">=0.1, <0.2"
    }

    fn description(&self) -> &str {
        "A dashboard tile counting changes, incidents and tasks by status."
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_widget(KanbanOverview);
    }

    fn frontend(&self) -> Vec<Asset> {
        vec![
            Asset {
                path: "kanban_overview.js",
                content_type: "text/javascript",
                bytes: include_bytes!("../frontend/kanban_overview.js"),
            },
            Asset {
                path: "kanban_overview.css",
                content_type: "text/css",
                bytes: include_bytes!("../frontend/kanban_overview.css"),
            },
        ]
    }
}

vigilo_sdk::export_plugin!(KanbanOverviewPlugin);

/// The kinds of work item, in row order, with their labels.
pub const KINDS: [(&str, &str); 3] = [
    ("changes", "Changes"),
    ("incidents", "Incidents"),
    ("tasks", "Tasks"),
];

/// Workflow order of the statuses the widget knows. Everything up to and
/// including `"blocked"` is work in progress; the rest are finished states,
/// and unknown statuses are placed between the two groups.
pub const STATUS_ORDER: [&str; 21] = [
    "draft",
    "submitted",
    "pending_approval",
    "approved",
    "scheduled",
    "todo",
    "open",
    "acknowledged",
    "investigating",
    "in_progress",
    "implementing",
    "review",
    "mitigated",
    "blocked",
    // finished
    "done",
    "implemented",
    "resolved",
    "closed",
    "rejected",
    "cancelled",
    "failed",
];

const FIRST_FINISHED: usize = 14;

/// The `kanban_overview` widget.
pub struct KanbanOverview;

impl Widget for KanbanOverview {
    fn name(&self) -> &str {
        "kanban_overview"
    }

    fn label(&self) -> &str {
        "Kanban overview"
    }

    fn description(&self) -> &str {
        "Changes, incidents and tasks counted by status."
    }

    fn element(&self) -> Option<Element> {
        Some(Element::new("kanban_overview-board", "kanban_overview.js"))
    }

    fn config_schema(&self) -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "kinds": {
                    "type": "array",
                    "items": {"enum": ["changes", "incidents", "tasks"]},
                    "uniqueItems": true,
                    "title": "Kinds shown",
                    "description": "Which kinds of work item to show (none ticked: all)."
                },
                "columns": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 64},
                    "maxItems": 20,
                    "title": "Statuses first",
                    "description": "Statuses to show first, in this order, even when empty."
                },
                "breakdown": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_.-]{1,64}$",
                    "title": "Break open incidents down by",
                    "description": "The key of a custom field of incidents, such as severity: \
                                    the tile also counts the open incidents by its value."
                }
            }
        })
    }

    fn validate_config(&self, config: &Value) -> Result<Value, String> {
        // What a schema cannot say: a status pinned twice, or an empty one.
        let parsed = Config::from_value(config)?;
        let mut seen = BTreeSet::new();
        for column in &parsed.columns {
            if column.trim().is_empty() {
                return Err("columns: a pinned status is empty; remove it or name a status".into());
            }
            if !seen.insert(column.trim()) {
                return Err(format!(
                    "columns: the status {} is pinned twice",
                    column.trim()
                ));
            }
        }
        let mut normalised = config.clone();
        if let Some(columns) = normalised.get_mut("columns") {
            *columns = json!(parsed
                .columns
                .iter()
                .map(|c| c.trim().to_owned())
                .collect::<Vec<_>>());
        }
        Ok(normalised)
    }

    fn render(&self, ctx: &WidgetContext, host: &dyn Host) -> Result<Value, String> {
        let config = Config::from_value(&ctx.config)?;
        let counts = host.work_items_count_by_status(&ctx.workspace)?;
        let by_kind: BTreeMap<&str, &BTreeMap<String, u64>> = [
            ("changes", &counts.changes),
            ("incidents", &counts.incidents),
            ("tasks", &counts.tasks),
        ]
        .into_iter()
        .collect();
        let kinds: Vec<(&str, &str)> = KINDS
            .into_iter()
            .filter(|(kind, _)| {
                config
                    .kinds
                    .as_ref()
                    .is_none_or(|kinds| kinds.contains(*kind))
            })
            .collect();

        // A server that says what each workflow's statuses are gets every
        // one of them as a column, with zeros, in workflow order.
        let workflows: Option<BTreeMap<&str, &Vec<String>>> = counts.statuses.as_ref().map(|s| {
            [
                ("changes", &s.changes),
                ("incidents", &s.incidents),
                ("tasks", &s.tasks),
            ]
            .into_iter()
            .collect()
        });
        let mut seen: BTreeSet<&str> = kinds
            .iter()
            .flat_map(|(kind, _)| by_kind[kind].iter())
            .filter(|(_, &count)| count > 0)
            .map(|(status, _)| status.as_str())
            .collect();
        if let Some(workflows) = &workflows {
            for (kind, _) in &kinds {
                seen.extend(workflows[kind].iter().map(String::as_str));
            }
        }
        let columns = column_order(&config.columns, &seen);
        let lanes: Option<Vec<Value>> = workflows.as_ref().map(|workflows| {
            kinds
                .iter()
                .map(|(kind, label)| {
                    let statuses: Vec<Value> = workflows[kind]
                        .iter()
                        .map(|status| {
                            let count = by_kind[kind].get(status).copied().unwrap_or(0);
                            json!({"status": status, "count": count})
                        })
                        .collect();
                    let total: u64 = by_kind[kind].values().sum();
                    json!({"kind": kind, "label": label, "statuses": statuses, "total": total})
                })
                .collect()
        });

        let mut rows = Vec::new();
        let mut column_totals: Map<String, Value> = Map::new();
        let mut total = 0u64;
        for column in &columns {
            column_totals.insert(column.clone(), json!(0));
        }
        for (kind, label) in kinds {
            let mut row_counts = Map::new();
            let mut row_total = 0u64;
            for column in &columns {
                let count = by_kind[kind].get(column).copied().unwrap_or(0);
                row_counts.insert(column.clone(), json!(count));
                row_total += count;
                let sum = column_totals[column].as_u64().unwrap_or(0) + count;
                column_totals.insert(column.clone(), json!(sum));
            }
            total += row_total;
            rows.push(
                json!({"kind": kind, "label": label, "counts": row_counts, "total": row_total}),
            );
        }

        let mut data = json!({
            "workspace": ctx.workspace,
            "columns": columns,
            "rows": rows,
            "column_totals": column_totals,
            "total": total,
        });
        if let Some(lanes) = lanes {
            data["lanes"] = json!(lanes);
        }
        if let Some(field) = &config.breakdown {
            let incidents = workflows.as_ref().map(|w| w["incidents"].clone());
            data["breakdown"] = breakdown(host, &ctx.workspace, field, incidents)?;
        }
        Ok(data)
    }
}

/// The most open incidents the breakdown counts.
pub const BREAKDOWN_LIMIT: usize = 5_000;

/// Open incidents counted by the value of custom field `field`, listed
/// through `work_items.list`, a status at a time (the unfinished statuses
/// of the incident workflow):
/// `{"field": "severity", "counts": {"high": 2, "low": 1}, "without": 1, "total": 4}`.
fn breakdown(
    host: &dyn Host,
    workspace: &str,
    field: &str,
    workflow: Option<Vec<String>>,
) -> Result<Value, String> {
    let statuses: Vec<String> = workflow
        .unwrap_or_else(|| vec!["open".into(), "investigating".into(), "mitigated".into()])
        .into_iter()
        .filter(|s| !is_finished(s))
        .collect();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut without, mut total, mut capped) = (0u64, 0usize, false);
    'statuses: for status in statuses {
        let mut query = vigilo_sdk::host::WorkItemsQuery::new(workspace);
        query.kind = Some("incident".into());
        query.status = Some(status);
        query.limit = Some(500);
        loop {
            let page = host.work_items_list(&query)?;
            for item in &page.items {
                if total == BREAKDOWN_LIMIT {
                    capped = true;
                    break 'statuses;
                }
                total += 1;
                match item.fields.get(field) {
                    Some(Value::String(value)) => *counts.entry(value.clone()).or_default() += 1,
                    Some(Value::Null) | None => without += 1,
                    Some(other) => *counts.entry(other.to_string()).or_default() += 1,
                }
            }
            match page.next_before {
                Some(before) => query.before = Some(before),
                None => break,
            }
        }
    }
    Ok(json!({
        "field": field,
        "counts": counts,
        "without": without,
        "total": total,
        "capped": capped,
    }))
}

/// Whether `status` is a finished state ([`STATUS_ORDER`]).
fn is_finished(status: &str) -> bool {
    STATUS_ORDER
        .iter()
        .position(|s| *s == status)
        .is_some_and(|i| i >= FIRST_FINISHED)
}

/// The tile's configuration.
struct Config {
    columns: Vec<String>,
    kinds: Option<BTreeSet<String>>,
    breakdown: Option<String>,
}

impl Config {
    fn from_value(config: &Value) -> Result<Config, String> {
        let strings = |key: &str| -> Result<Option<Vec<String>>, String> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("config `{key}` must be a list of strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(format!("config `{key}` must be a list of strings")),
            }
        };
        let kinds = strings("kinds")?;
        if let Some(unknown) = kinds
            .iter()
            .flatten()
            .find(|kind| !KINDS.iter().any(|(known, _)| known == kind))
        {
            return Err(format!(
                "config `kinds` contains {unknown:?}; use changes, incidents or tasks"
            ));
        }
        let breakdown = match config.get("breakdown") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) if key.trim().is_empty() => None,
            Some(Value::String(key)) => Some(key.trim().to_owned()),
            Some(_) => return Err("config `breakdown` must be a custom field's key".into()),
        };
        Ok(Config {
            columns: strings("columns")?.unwrap_or_default(),
            // No kind ticked is every kind.
            kinds: kinds
                .filter(|kinds| !kinds.is_empty())
                .map(|kinds| kinds.into_iter().collect()),
            breakdown,
        })
    }
}

/// Pinned columns first, then the statuses seen, in workflow order.
fn column_order(pinned: &[String], seen: &BTreeSet<&str>) -> Vec<String> {
    let rank = |status: &str| match STATUS_ORDER.iter().position(|known| *known == status) {
        Some(index) if index < FIRST_FINISHED => (0, index),
        None => (1, 0),
        Some(index) => (2, index),
    };
    let mut rest: Vec<&str> = seen
        .iter()
        .copied()
        .filter(|status| !pinned.iter().any(|p| p == status))
        .collect();
    // `seen` is sorted, and the sort is stable: unknown statuses stay
    // alphabetical within their group.
    rest.sort_by_key(|status| rank(status));
    let mut columns: Vec<String> = Vec::new();
    for status in pinned.iter().map(String::as_str).chain(rest) {
        if !columns.iter().any(|c| c == status) {
            columns.push(status.to_owned());
        }
    }
    columns
}
