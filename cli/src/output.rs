//! Rendering: aligned tables, key/value blocks, JSON, and small accessors
//! that turn API JSON values into display text.

use std::io::{self, IsTerminal, Write};

use anyhow::Result;
use comfy_table::ContentArrangement;
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

/// How a [`Table`] is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// For pipes and files: columns padded with spaces and two spaces
    /// apart, no lines, no trailing blanks; one line per row after the
    /// header, so scripts can cut and grep it.
    Plain,
    /// For a person at a terminal: a boxed table whose long cells wrap so
    /// that it fits in `width` columns.
    Terminal {
        /// The terminal's width in columns.
        width: u16,
    },
}

impl Layout {
    /// [`Layout::Terminal`] when stdout is a terminal, else [`Layout::Plain`].
    pub fn for_stdout() -> Self {
        if !io::stdout().is_terminal() {
            return Layout::Plain;
        }
        let width = console::Term::stdout()
            .size_checked()
            .map_or(80, |(_rows, columns)| columns);
        Layout::Terminal { width }
    }
}

/// A table with an upper-case header row, drawn with `comfy-table` in the
/// [`Layout`] that suits where stdout goes.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers (shown in upper case).
    pub fn new<S: AsRef<str>>(headers: &[S]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.as_ref().to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row; line breaks and tabs in cells become spaces.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| c.replace(['\n', '\r', '\t'], " "))
                .collect(),
        );
    }

    /// The table as text for stdout, every line ending in a newline.
    pub fn render(&self) -> String {
        self.render_in(Layout::for_stdout(), 0)
    }

    /// The table as text with every line indented by `indent` spaces (the
    /// terminal layout leaves room for the indent).
    pub fn render_indented(&self, indent: usize) -> String {
        self.render_in(Layout::for_stdout(), indent)
    }

    /// The table as text in `layout`, every line indented by `indent` spaces.
    pub fn render_in(&self, layout: Layout, indent: usize) -> String {
        let columns = self.headers.len();
        let mut table = comfy_table::Table::new();
        table.set_header(self.headers.clone());
        for row in &self.rows {
            let mut cells: Vec<&str> = row.iter().map(String::as_str).take(columns).collect();
            cells.resize(columns, "");
            table.add_row(cells);
        }
        let lines: Vec<String> = match layout {
            Layout::Plain => {
                table
                    .load_preset(comfy_table::presets::NOTHING)
                    .set_content_arrangement(ContentArrangement::Disabled);
                for (i, column) in table.column_iter_mut().enumerate() {
                    column.set_padding(if i == 0 { (0, 0) } else { (2, 0) });
                }
                table.lines().map(|l| l.trim_end().to_string()).collect()
            }
            Layout::Terminal { width } => {
                let indent_width = u16::try_from(indent).unwrap_or(u16::MAX);
                table
                    .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
                    .apply_modifier(comfy_table::modifiers::UTF8_ROUND_CORNERS)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(width.saturating_sub(indent_width).max(20));
                table.lines().collect()
            }
        };
        let margin = " ".repeat(indent);
        lines
            .iter()
            .map(|line| format!("{margin}{line}\n"))
            .collect()
    }

    /// Print the table to stdout.
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
    let utc = match (time.find('T'), time.rfind('.')) {
        (Some(t), Some(dot)) if dot > t => {
            let fraction_end = time[dot + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(time.len(), |i| dot + 1 + i);
            format!("{}{}", &time[..dot], &time[fraction_end..])
        }
        _ => time.to_string(),
    };
    match ZONE.get() {
        Some(Zone::Local(fallback)) => local(&utc, *fallback).unwrap_or(utc),
        Some(Zone::Utc) | None => utc,
    }
}

/// The time zone times are printed in.
#[derive(Debug, Clone, Copy)]
enum Zone {
    /// `--utc`.
    Utc,
    /// This computer's, with the offset it has now, for when the offset of
    /// another moment cannot be read.
    Local(time::UtcOffset),
}

static ZONE: std::sync::OnceLock<Zone> = std::sync::OnceLock::new();

/// Prints times from now on in this computer's time zone (the `TZ`
/// variable, else the system's), or in UTC when `utc`. Called first
/// thing, while the process has one thread: the C library's time zone
/// may only be read then.
pub fn print_times_in(utc: bool) {
    let zone = if utc {
        Zone::Utc
    } else {
        time::UtcOffset::current_local_offset().map_or(Zone::Utc, Zone::Local)
    };
    let _ = ZONE.set(zone);
}

/// An RFC 3339 time in this computer's time zone: its offset at that moment
/// when it can be read, else `fallback`'s; `Z` for UTC itself.
fn local(time: &str, fallback: time::UtcOffset) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(time, &Rfc3339).ok()?;
    let offset = time::UtcOffset::local_offset_at(at).unwrap_or(fallback);
    in_offset(at, offset)
}

/// `at` as `2026-12-07T14:11:20+01:00` (seconds, no fraction), or with `Z`
/// when `offset` is UTC.
fn in_offset(at: time::OffsetDateTime, offset: time::UtcOffset) -> Option<String> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    let text = at.to_offset(offset).format(&format).ok()?;
    Some(match text.strip_suffix("+00:00") {
        Some(utc) => format!("{utc}Z"),
        None => text,
    })
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
            table.render_in(Layout::Plain, 0),
            "ID  NAME    LAST USED\n1   laptop  -\n12  ci      2026\n"
        );
        assert_eq!(
            table.render_in(Layout::Plain, 2),
            "  ID  NAME    LAST USED\n  1   laptop  -\n  12  ci      2026\n"
        );
    }

    #[test]
    fn plain_tables_keep_their_shape() {
        let mut table = Table::new(&["key", "value"]);
        assert_eq!(table.render_in(Layout::Plain, 0), "KEY  VALUE\n");
        table.row(vec!["only-one-cell".into()]);
        table.row(vec!["a".into(), "two\nlines\tand a tab".into()]);
        assert_eq!(
            table.render_in(Layout::Plain, 0),
            "KEY            VALUE\nonly-one-cell\na              two lines and a tab\n"
        );
    }

    #[test]
    fn terminal_tables_fit_the_width() {
        let mut table = Table::new(&["id", "description"]);
        table.row(vec!["1".into(), "word ".repeat(40)]);
        let rendered = table.render_in(Layout::Terminal { width: 40 }, 4);
        for line in rendered.lines() {
            assert!(line.starts_with("    "), "{line:?}");
            assert!(line.chars().count() <= 40, "{line:?} is wider than 40");
        }
        assert!(
            rendered.contains("ID") && rendered.contains("word"),
            "{rendered}"
        );
        assert!(
            rendered.lines().count() > 4,
            "the long cell wraps: {rendered}"
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
    fn times_read_in_an_offset() {
        use time::format_description::well_known::Rfc3339;
        let at = time::OffsetDateTime::parse("2026-11-23T21:57:34.5Z", &Rfc3339).unwrap();
        let offset = |h, m| time::UtcOffset::from_hms(h, m, 0).unwrap();
        assert_eq!(
            super::in_offset(at, offset(5, 30)).unwrap(),
            "2026-11-24T03:27:34+05:30"
        );
        assert_eq!(
            super::in_offset(at, offset(-8, 0)).unwrap(),
            "2026-11-23T13:57:34-08:00"
        );
        assert_eq!(
            super::in_offset(at, offset(0, 0)).unwrap(),
            "2026-11-23T21:57:34Z"
        );
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
