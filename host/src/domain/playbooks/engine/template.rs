//! Placeholders in a step's text: `{{ path }}`, filled from the run's
//! context (see the [parent module](super)), and the default webhook body.

use serde_json::{json, Value};

use super::MAX_RENDERED;

/// A template split into literal text and `{{ path }}` placeholders.
pub(super) enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

pub(super) fn parse_template(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed placeholder in `{text}`"))?;
        let path = after[..end].trim();
        if path.is_empty()
            || !path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "`{{{{{}}}}}` is not a placeholder (use a path such as {{{{input.host}}}})",
                &after[..end]
            ));
        }
        pieces.push(Piece::Var(path));
        rest = &after[end + 2..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// What [`parse_template`] accepts, as a regular expression for the API's
/// document: text in which every `{{` opens a placeholder, `{{ path }}`,
/// whose path is letters, digits, `_`, `-` and `.` (white space around it
/// allowed), with no NUL character anywhere (see [`crate::input`]).
pub fn template_pattern() -> String {
    use crate::domain::validate::WHITE_SPACE;
    // One piece after another: a character other than `{`, a `{` followed
    // by one, or a placeholder; a text may end with a lone `{`.
    format!(
        "^(?:[^{{\\u0000]|\\{{[^{{\\u0000]|\\{{\\{{[{WHITE_SPACE}]*[A-Za-z0-9_.-]+[{WHITE_SPACE}]*\\}}\\}})*\\{{?$"
    )
}

/// Looks `path` up in `context`.
pub(super) fn lookup<'a>(context: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(context, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Fills `text`'s placeholders from `context`. In a dry run, a placeholder
/// for an earlier step's output (which does not exist yet) is shown as
/// `<steps.name.key>`.
pub(super) fn render(text: &str, context: &Value, dry_run: bool) -> Result<String, String> {
    let mut budget = MAX_RENDERED;
    render_within(text, context, dry_run, &mut budget)
}

/// [`render`], failing once the output would pass `budget` bytes, so no
/// playbook can make the server build an unbounded string.
pub(super) fn render_within(
    text: &str,
    context: &Value,
    dry_run: bool,
    budget: &mut usize,
) -> Result<String, String> {
    let mut out = String::new();
    for piece in parse_template(text)? {
        let added = match piece {
            Piece::Text(t) => t.to_owned(),
            Piece::Var(path) => match lookup(context, path) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None if dry_run && path.starts_with("steps.") => {
                    format!("<{path}>")
                }
                Some(Value::Null) | None => {
                    return Err(format!(
                        "the placeholder {{{{{path}}}}} has no value in this run"
                    ))
                }
                Some(other) => other.to_string(),
            },
        };
        if added.len() > *budget {
            return Err(format!(
                "the filled-in text is longer than {MAX_RENDERED} bytes"
            ));
        }
        *budget -= added.len();
        out.push_str(&added);
    }
    Ok(out)
}

/// `render` over every string inside a JSON value, within one budget.
pub(super) fn render_value(value: &Value, context: &Value, dry_run: bool) -> Result<Value, String> {
    fn walk(
        value: &Value,
        context: &Value,
        dry_run: bool,
        budget: &mut usize,
    ) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(render_within(s, context, dry_run, budget)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| walk(v, context, dry_run, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), walk(v, context, dry_run, budget)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
    let mut budget = MAX_RENDERED;
    walk(value, context, dry_run, &mut budget)
}

/// A `webhook` step's body when it gives none: the workspace, playbook, run
/// and input (not earlier steps' outputs).
pub(super) fn default_body(context: &Value) -> Value {
    json!({
        "workspace": context["workspace"],
        "playbook": context["playbook"],
        "run": context["run"],
        "input": context["input"],
    })
}
