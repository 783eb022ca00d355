//! # {{name}}: a Vigilo `celery_task` plugin (a periodic task)
//!
//! Registers the task `{{name}}` ("{{label}}"): every hour it counts the
//! work items of the workspace named in its configuration (`workspace`)
//! that are not finished yet, and returns the count as its run's summary,
//! which the server keeps in the task's run log (`vigilo schedule runs`).
//! An operator enables it and sets its configuration in the server's
//! configuration file, and may override its schedule there.

use std::time::Duration;

use vigilo_sdk::{
    json, Host, Plugin, PluginKind, PluginRegistry, Schedule, Task, TaskContext, Value,
};

/// The plugin: registers [`Count`].
pub struct ThisPlugin;

impl Plugin for ThisPlugin {
    fn name(&self) -> &str {
        "{{name}}"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::CeleryTask
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
        registry.register_task(Count);
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

/// The `{{name}}` task.
pub struct Count;

impl Task for Count {
    fn name(&self) -> &str {
        "{{name}}"
    }

    fn label(&self) -> &str {
        "{{label}}"
    }

    fn description(&self) -> &str {
        "Counts a workspace's unfinished work items every hour."
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(Duration::from_secs(3600))
    }

    fn config_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["workspace"],
            "properties": {
                "workspace": {"type": "string", "description": "The workspace's slug."}
            }
        })
    }

    fn run(&self, ctx: &TaskContext, host: &dyn Host) -> Result<Value, String> {
        let workspace = ctx.config["workspace"]
            .as_str()
            .ok_or("no workspace is configured: set `workspace` in the task's configuration")?;
        let counts = host.work_items_count_by_status(workspace)?;
        let open: u64 = [&counts.changes, &counts.incidents, &counts.tasks]
            .into_iter()
            .flat_map(|by_status| by_status.iter())
            .filter(|(status, _)| !FINISHED.contains(&status.as_str()))
            .map(|(_, count)| count)
            .sum();
        Ok(json!({"at": ctx.now, "workspace": workspace, "open": open}))
    }
}

vigilo_sdk::export_plugin!(ThisPlugin);
