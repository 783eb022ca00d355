//! `vigilo change|incident|task ...`: work items and their workflows.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::client::{exit, query, workspace_path, Client};
use crate::context::Ctx;
use crate::output::{self, field, list, text, when, Table};

/// The filters and order of `list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Only items in this status
    #[arg(long)]
    status: Option<String>,
    /// Only items whose title holds this text (any case)
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Only items you created
    #[arg(long)]
    mine: bool,
    /// Only items assigned to this member: `me` or their email
    #[arg(long, value_name = "EMAIL|me")]
    assignee: Option<String>,
    /// Only items whose custom field KEY holds VALUE (a number field's number, a yes/no field's yes or no)
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_text_field)]
    field: Option<(String, String)>,
    /// The order: newest (the default), oldest, title, updated, status, assignee, creator, or field:KEY
    #[arg(long, value_name = "ORDER")]
    sort: Option<String>,
    /// Start after this item in the order (the id the previous page ends with)
    #[arg(long, value_name = "ID")]
    after: Option<i64>,
    /// At most this many (1-500)
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// `vigilo change|incident|task ...`: the subcommands shared by the three kinds of work item.
#[derive(Subcommand)]
pub enum ItemCmd {
    /// List items, newest first or in the order asked for
    List(ListArgs),
    /// Create an item
    Create {
        /// One-line title
        #[arg(long)]
        title: String,
        /// Longer description
        #[arg(long)]
        description: Option<String>,
        /// A custom field value, KEY=VALUE (repeatable); VALUE is JSON when it parses as JSON, else text
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = parse_field)]
        fields: Vec<(String, serde_json::Value)>,
    },
    /// Show one item
    Show { id: i64 },
    /// Change an item's title, description or custom field values
    Update {
        id: i64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Set a custom field, KEY=VALUE (repeatable)
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = parse_field)]
        fields: Vec<(String, serde_json::Value)>,
        /// Remove a custom field value (repeatable)
        #[arg(long = "unset-field", value_name = "KEY")]
        unset: Vec<String>,
    },
    /// Move an item to another status of its workflow
    Move {
        id: i64,
        /// The new status
        status: String,
        /// Why (recorded in the audit log)
        #[arg(long)]
        comment: Option<String>,
    },
    /// Move several items to one status; each is checked as if moved alone, and those refused are listed with why (exit 8)
    MoveMany {
        /// The new status
        status: String,
        /// The items (up to 500)
        #[arg(required = true, num_args = 1..)]
        ids: Vec<i64>,
        /// Why (recorded with each move)
        #[arg(long)]
        comment: Option<String>,
    },
    /// Give an item to a member of the workspace: their email, `me`, or `nobody`
    Assign {
        id: i64,
        #[arg(value_name = "EMAIL|me|nobody")]
        who: String,
    },
    /// Write a comment on an item (plain text; `-` reads it from standard input)
    Comment { id: i64, text: String },
    /// List an item's comments, oldest first
    Comments { id: i64 },
    /// Change the text of a comment (yours, or any as an owner)
    EditComment {
        id: i64,
        /// The comment's number (see `comments`)
        comment: i64,
        /// The new text (`-` reads it from standard input)
        text: String,
    },
    /// Remove a comment (yours, or any as an owner); the audit log keeps its text
    RemoveComment {
        id: i64,
        /// The comment's number (see `comments`)
        comment: i64,
    },
    /// Approve a change pending approval (needs change.approve)
    Approve {
        id: i64,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a change pending approval (needs change.approve)
    Reject {
        id: i64,
        #[arg(long)]
        comment: Option<String>,
    },
}

/// Parses `--field KEY=VALUE` of `list`: the value as text, which the
/// server reads as the field's type.
fn parse_text_field(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("`{raw}` is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("`{raw}` has an empty key"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Parses `KEY=VALUE`; VALUE is JSON when it parses as JSON, else text.
pub fn parse_field(raw: &str) -> Result<(String, Value), String> {
    let (key, value) = parse_text_field(raw)?;
    let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
    Ok((key, value))
}

fn show(ctx: &Ctx, item: &Value) -> Result<()> {
    if ctx.json {
        return output::json(item);
    }
    let mut pairs = vec![
        ("id", text(item, "id")),
        ("kind", text(item, "kind")),
        ("title", text(item, "title")),
        ("status", text(item, "status")),
        ("next", text(item, "next_statuses")),
        ("created by", text(item, "created_by")),
        ("assignee", text(item, "assignee")),
        ("created", when(item, "created_at")),
        ("updated", when(item, "updated_at")),
    ];
    let description = text(item, "description");
    if description != "-" {
        pairs.push(("description", description));
    }
    if let Some(fields) = field(item, "fields").as_object() {
        for (key, value) in fields {
            pairs.push(("field", format!("{key} = {}", output::cell(value))));
        }
    }
    output::key_values(&pairs)
}

/// Run one subcommand on work items of `kind` (`change`, `incident` or `task`); returns the exit code.
pub fn run(ctx: &Ctx, kind: &str, cmd: ItemCmd) -> Result<u8> {
    let client = ctx.client()?;
    let slug = ctx.workspace()?;
    let base = format!("{}/items", workspace_path(slug));
    let move_to = |id: i64, status: &str, comment: Option<String>| -> Result<Value> {
        let item = client.get(&format!("{base}/{id}"))?;
        if text(&item, "kind") != kind {
            return Err(crate::client::Failure::new(
                exit::NOT_FOUND,
                format!("item {id} is a {}, not a {kind}", text(&item, "kind")),
            )
            .into());
        }
        client.post(
            &format!("{base}/{id}/transition"),
            &json!({"status": status, "comment": comment.unwrap_or_default()}),
        )
    };
    match cmd {
        ItemCmd::List(args) => print_list(ctx, &client, &base, kind, args)?,
        ItemCmd::Create {
            title,
            description,
            fields,
        } => {
            let fields: Map<String, Value> = fields.into_iter().collect();
            let item = client.create(
                &base,
                &json!({"kind": kind, "title": title, "description": description.unwrap_or_default(), "fields": fields}),
            )?;
            if ctx.json {
                return output::json(&item).map(|()| exit::OK);
            }
            output::line(format!(
                "Created {kind} {} ({}).",
                text(&item, "id"),
                text(&item, "status")
            ))?;
        }
        ItemCmd::Show { id } => {
            let item = client.get(&format!("{base}/{id}"))?;
            show(ctx, &item)?;
        }
        ItemCmd::Update {
            id,
            title,
            description,
            fields,
            unset,
        } => {
            let body = update_body(title, description, fields, unset);
            let item = client.patch(&format!("{base}/{id}"), &body)?;
            show(ctx, &item)?;
        }
        ItemCmd::Move {
            id,
            status,
            comment,
        } => {
            let item = move_to(id, &status, comment)?;
            show(ctx, &item)?;
        }
        ItemCmd::MoveMany {
            status,
            ids,
            comment,
        } => {
            let report = client.post(
                &format!("{base}/transitions"),
                &json!({"kind": kind, "ids": ids, "status": status, "comment": comment.unwrap_or_default()}),
            )?;
            return print_bulk(ctx, &status, &report);
        }
        ItemCmd::Assign { id, who } => {
            let assignee = match who.trim() {
                "nobody" | "none" => Value::Null,
                who => json!(who),
            };
            let item = client.patch(&format!("{base}/{id}"), &json!({"assignee": assignee}))?;
            show(ctx, &item)?;
        }
        ItemCmd::Comment { .. }
        | ItemCmd::Comments { .. }
        | ItemCmd::EditComment { .. }
        | ItemCmd::RemoveComment { .. } => comment_command(ctx, &client, &base, kind, cmd)?,
        ItemCmd::Approve { id, comment } => {
            let item = move_to(id, "approved", comment)?;
            show(ctx, &item)?;
        }
        ItemCmd::Reject { id, comment } => {
            let item = move_to(id, "rejected", comment)?;
            show(ctx, &item)?;
        }
    }
    Ok(exit::OK)
}

/// Prints what a bulk move did: a table of each item and its outcome, then
/// a summary; exit 8 when some were refused.
/// `list`: a page of the kind's items as a table (or JSON), and how to
/// ask for the next page.
fn print_list(ctx: &Ctx, client: &Client, base: &str, kind: &str, args: ListArgs) -> Result<()> {
    let pairs = list_filters(kind, args);
    let response = client.get(&format!("{base}{}", query(&pairs)))?;
    let items = list(&response, "items")?;
    let mut table = Table::new(&["id", "status", "title", "assignee", "fields", "updated"]);
    for item in items {
        table.row(vec![
            text(item, "id"),
            text(item, "status"),
            text(item, "title"),
            text(item, "assignee"),
            text(item, "fields"),
            when(item, "updated_at"),
        ]);
    }
    output::list_or_table(ctx.json, items, &table)?;
    if let (false, Some(next)) = (ctx.json, response["next_after"].as_i64()) {
        output::line(format!(
            "\nMore follow: add --after {next} for the next page."
        ))?;
    }
    Ok(())
}

/// The comment commands: add, list, edit and remove an item's comments.
fn comment_command(ctx: &Ctx, client: &Client, base: &str, kind: &str, cmd: ItemCmd) -> Result<()> {
    match cmd {
        ItemCmd::Comment { id, text: body } => {
            let body = crate::comments::text_or_stdin(body)?;
            let comment =
                client.create(&format!("{base}/{id}/comments"), &json!({"body": body}))?;
            if ctx.json {
                return output::json(&comment);
            }
            output::line(format!(
                "Comment {} added to {kind} {id}.",
                text(&comment, "id")
            ))?;
        }
        ItemCmd::Comments { id } => {
            let response = client.get(&format!("{base}/{id}/comments"))?;
            crate::comments::print(ctx, &response)?;
        }
        ItemCmd::EditComment {
            id,
            comment,
            text: body,
        } => {
            let body = crate::comments::text_or_stdin(body)?;
            let comment = client.patch(
                &format!("{base}/{id}/comments/{comment}"),
                &json!({"body": body}),
            )?;
            if ctx.json {
                return output::json(&comment);
            }
            output::line(format!("Comment {} saved.", text(&comment, "id")))?;
        }
        ItemCmd::RemoveComment { id, comment } => {
            client.delete(&format!("{base}/{id}/comments/{comment}"))?;
            if !ctx.json {
                output::line(format!("Comment {comment} removed."))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn print_bulk(ctx: &Ctx, status: &str, report: &Value) -> Result<u8> {
    let moved = list(report, "moved")?;
    let refused = list(report, "refused")?;
    if ctx.json {
        output::json(report)?;
    } else {
        let mut table = Table::new(&["id", "outcome", "reason"]);
        for item in moved {
            table.row(vec![text(item, "id"), "moved".into(), "-".into()]);
        }
        for r in refused {
            table.row(vec![
                text(r, "id"),
                "refused".into(),
                r["error"]["message"].as_str().unwrap_or("-").to_owned(),
            ]);
        }
        table.print()?;
        output::line(format!(
            "\nMoved {} of {} to {status}.",
            moved.len(),
            moved.len() + refused.len()
        ))?;
    }
    Ok(if refused.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

/// The query of `list`: the kind, then the filters and order given.
fn list_filters(kind: &str, args: ListArgs) -> Vec<(&'static str, String)> {
    let mut pairs = vec![("kind", kind.to_owned()), ("limit", args.limit.to_string())];
    let given = [
        ("status", args.status),
        ("q", args.search),
        ("created_by", args.mine.then(|| "me".to_owned())),
        ("assignee", args.assignee),
        ("sort", args.sort),
        ("after", args.after.map(|id| id.to_string())),
    ];
    pairs.extend(
        given
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?))),
    );
    if let Some((key, value)) = args.field {
        pairs.push(("field", key));
        pairs.push(("value", value));
    }
    pairs
}

/// The body of `update`: the fields set and unset, and the title and
/// description when given.
fn update_body(
    title: Option<String>,
    description: Option<String>,
    fields: Vec<(String, Value)>,
    unset: Vec<String>,
) -> Value {
    let mut values: Map<String, Value> = fields.into_iter().collect();
    for key in unset {
        values.insert(key, Value::Null);
    }
    let mut body = json!({"fields": values});
    if let Some(title) = title {
        body["title"] = json!(title);
    }
    if let Some(description) = description {
        body["description"] = json!(description);
    }
    body
}
