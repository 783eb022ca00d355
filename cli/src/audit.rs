//! `vigilo audit list`.

use anyhow::Result;

use crate::client::{exit, query, workspace_path};
use crate::context::Ctx;
use crate::output::{self, field, list, text, when, Table};
use crate::AuditCmd;

pub fn run(ctx: &Ctx, cmd: AuditCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        AuditCmd::List { after, limit } => {
            let slug = ctx.workspace()?;
            let mut params = Vec::new();
            if let Some(after) = after {
                params.push(("after", after.to_string()));
            }
            if let Some(limit) = limit {
                params.push(("limit", limit.to_string()));
            }
            let response =
                client.get(&format!("{}/audit{}", workspace_path(slug), query(&params)))?;
            let events = list(&response, "events")?;
            let mut table = Table::new(&["seq", "time", "actor", "action", "target"]);
            for e in events {
                table.row(vec![
                    text(e, "seq"),
                    when(e, "time"),
                    text(field(e, "actor"), "email"),
                    text(e, "action"),
                    text(e, "target"),
                ]);
            }
            output::list_or_table(ctx.json, events, &table)?;
        }
    }
    Ok(exit::OK)
}
