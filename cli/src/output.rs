//! Rendering: aligned tables, key/value blocks, JSON, and small accessors
//! that turn API JSON values into display text.

use std::io::{self, Write};

use anyhow::Result;
use serde_json::Value;

use crate::client::{exit, Failure};

/// Write text to stdout as is.
pub fn emit(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Write one line to stdout.
pub fn line(text: impl AsRef<str>) -> Result<()> {
    emit(&format!("{}\n", text.as_ref()))
}

/// Pretty-print a JSON value to stdout.
pub fn json(value: &Value) -> Result<()> {
    line(serde_json::to_string_pretty(value)?)
}

/// Whether an error is just stdout having been closed (e.g. `| head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A table with an upper-case header row and space-padded columns.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: AsRef<str>>(headers: &[S]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.as_ref().to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| c.replace(['\n', '\r', '\t'], " "))
                .collect(),
        );
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(cell);
                let len = cell.chars().count();
                if len < *width {
                    text.push_str(&" ".repeat(width - len));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) -> Result<()> {
        emit(&self.render())
    }
}

/// Print `Label:  value` lines with the values aligned.
pub fn key_values(pairs: &[(&str, String)]) -> Result<()> {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let label = format!("{key}:");
        out.push_str(&format!("{label:<w$}  {value}\n", w = width + 1));
    }
    emit(&out)
}

/// `value[key]`, or `null` when absent.
pub fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&Value::Null)
}

/// Display text for a JSON value: `-` for null, strings as is, arrays
/// comma-joined, objects as compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) if s.is_empty() => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => yes_no_str(*b).to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(cell).collect();
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(",")
            }
        }
        Value::Object(_) => value.to_string(),
    }
}

/// Display text for `value[key]`.
pub fn text(value: &Value, key: &str) -> String {
    cell(field(value, key))
}

/// A timestamp `value[key]` without its fractional seconds, or `-`.
pub fn when(value: &Value, key: &str) -> String {
    match field(value, key) {
        Value::String(t) => short_time(t),
        other => cell(other),
    }
}

/// `2026-11-23T21:57:34.123456Z` → `2026-11-23T21:57:34Z`.
pub fn short_time(time: &str) -> String {
    match (time.find('T'), time.rfind('.')) {
        (Some(t), Some(dot)) if dot > t => {
            let fraction_end = time[dot + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(time.len(), |i| dot + 1 + i);
            format!("{}{}", &time[..dot], &time[fraction_end..])
        }
        _ => time.to_string(),
    }
}

fn yes_no_str(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `yes`/`no` for a boolean `value[key]` (absent counts as no).
pub fn yes_no(value: &Value, key: &str) -> String {
    yes_no_str(field(value, key).as_bool().unwrap_or(false)).to_string()
}

/// The custom role name if set, else the built-in role, else `-`.
pub fn role_of(value: &Value) -> String {
    match field(value, "custom_role") {
        Value::String(name) if !name.is_empty() => name.clone(),
        _ => text(value, "role"),
    }
}

/// `value[key]` as an array; a malformed response is an error.
pub fn list<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    field(value, key).as_array().ok_or_else(|| {
        Failure::new(
            exit::UNEXPECTED,
            format!("unexpected response from the server: no \"{key}\" list"),
        )
        .into()
    })
}

/// Print a list response: the array itself with `--json`, else the table.
pub fn list_or_table(json_mode: bool, items: &[Value], table: &Table) -> Result<()> {
    if json_mode {
        json(&Value::Array(items.to_vec()))
    } else {
        table.print()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_aligned_tables() {
        let mut table = Table::new(&["id", "name", "last used"]);
        table.row(vec!["1".into(), "laptop".into(), "-".into()]);
        table.row(vec!["12".into(), "ci".into(), "2026".into()]);
        assert_eq!(
            table.render(),
            "ID  NAME    LAST USED\n1   laptop  -\n12  ci      2026\n"
        );
    }

    #[test]
    fn shortens_times() {
        assert_eq!(
            short_time("2026-11-23T21:57:34.123456Z"),
            "2026-11-23T21:57:34Z"
        );
        assert_eq!(short_time("2026-11-23T21:57:34Z"), "2026-11-23T21:57:34Z");
    }

    #[test]
    fn formats_cells() {
        let v = json!({"a": null, "b": ["x", "y"], "c": 3, "custom_role": null, "role": "owner"});
        assert_eq!(text(&v, "a"), "-");
        assert_eq!(text(&v, "missing"), "-");
        assert_eq!(text(&v, "b"), "x,y");
        assert_eq!(text(&v, "c"), "3");
        assert_eq!(role_of(&v), "owner");
    }
}
