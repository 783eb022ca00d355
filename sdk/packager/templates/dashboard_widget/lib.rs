//! # {{name}}: a Vigilo `dashboard_widget` plugin
//!
//! Registers the dashboard widget `{{name}}` ("{{label}}"): a tile with the
//! number of work items of one kind (the tile's `kind` option: `changes`,
//! `incidents` or `tasks`; all of them by default) that are not finished
//! yet. A widget never reads the database: [`Widget::render`] asks the
//! server through the host API and returns JSON, which the frontend half
//! (`frontend/{{name}}.js`, the element `<{{tag}}>`) draws.

use vigilo_sdk::{
    json, Asset, Element, Host, Plugin, PluginKind, PluginRegistry, Value, Widget, WidgetContext,
};

/// The plugin: registers [`OpenWork`].
pub struct ThisPlugin;

impl Plugin for ThisPlugin {
    fn name(&self) -> &str {
        "{{name}}"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::DashboardWidget
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn compatible_with(&self) -> &str {
        "{{compatible_with}}"
    }

    fn description(&self) -> &str {
        env!("CARGO_PKG_DESCRIPTION")
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_widget(OpenWork);
    }

    fn frontend(&self) -> Vec<Asset> {
        vec![Asset {
            path: "{{name}}.js",
            content_type: "text/javascript",
            bytes: include_bytes!("../frontend/{{name}}.js"),
        }]
    }
}

/// Statuses in which a work item is finished.
pub const FINISHED: [&str; 7] = [
    "done",
    "implemented",
    "resolved",
    "closed",
    "rejected",
    "cancelled",
    "failed",
];

/// The `{{name}}` widget.
pub struct OpenWork;

impl Widget for OpenWork {
    fn name(&self) -> &str {
        "{{name}}"
    }

    fn label(&self) -> &str {
        "{{label}}"
    }

    fn description(&self) -> &str {
        "How many work items are not finished yet."
    }

    fn config_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "kind": {
                    "enum": ["changes", "incidents", "tasks"],
                    "description": "Count only this kind of work item (default: all)."
                }
            },
            "additionalProperties": false
        })
    }

    fn render(&self, ctx: &WidgetContext, host: &dyn Host) -> Result<Value, String> {
        let kind = ctx.config.get("kind").and_then(Value::as_str);
        let counts = host.work_items_count_by_status(&ctx.workspace)?;
        let kinds = [
            ("changes", &counts.changes),
            ("incidents", &counts.incidents),
            ("tasks", &counts.tasks),
        ];
        let open: u64 = kinds
            .iter()
            .filter(|(name, _)| kind.is_none_or(|k| k == *name))
            .flat_map(|(_, by_status)| by_status.iter())
            .filter(|(status, _)| !FINISHED.contains(&status.as_str()))
            .map(|(_, count)| count)
            .sum();
        Ok(json!({"open": open, "kind": kind.unwrap_or("all")}))
    }

    fn element(&self) -> Option<Element> {
        Some(Element::new("{{tag}}", "{{name}}.js"))
    }
}

vigilo_sdk::export_plugin!(ThisPlugin);
