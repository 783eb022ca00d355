//! Comments on work items, as `vigilo change|incident|task comment(s)`
//! prints and reads them.

use std::io::Read;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::context::Ctx;
use crate::output::{self, list, text, when};

/// `text`, or standard input when it is `-`.
pub fn text_or_stdin(text: String) -> Result<String> {
    if text != "-" {
        return Ok(text);
    }
    let mut read = String::new();
    std::io::stdin()
        .read_to_string(&mut read)
        .context("reading the comment from standard input")?;
    Ok(read)
}

/// Prints a list of comments: each one's number, author and time, then its
/// text, indented.
pub fn print(ctx: &Ctx, response: &Value) -> Result<()> {
    let comments = list(response, "comments")?;
    if ctx.json {
        return output::json(response);
    }
    if comments.is_empty() {
        return output::line("No comments.");
    }
    let total = response["total"].as_i64().unwrap_or(0);
    if total > comments.len() as i64 {
        output::line(format!(
            "The latest {} of {total} comments:",
            comments.len()
        ))?;
    }
    for comment in comments {
        let edited = if comment["edited_at"].is_string() {
            " (edited)"
        } else {
            ""
        };
        output::line(format!(
            "#{} {} {}{edited}",
            text(comment, "id"),
            text(comment, "author"),
            when(comment, "created_at")
        ))?;
        for line in comment["body"].as_str().unwrap_or_default().lines() {
            output::line(format!("    {line}"))?;
        }
    }
    Ok(())
}
