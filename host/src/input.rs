//! Rules every piece of text from a request obeys, whichever way it comes
//! in (a JSON body, a web form, a query string, a URL path), and the
//! decoding of those inputs into typed requests with messages in the user's
//! terms.
//!
//! - A JSON request body is an object, and so is every value in it where
//!   an object is expected. An array is refused: serde would otherwise fill
//!   a struct from it by position, around `deny_unknown_fields`.
//! - No text holds a NUL character (U+0000): PostgreSQL cannot store one in
//!   a text column, so refusing it everywhere keeps both databases alike.
//! - No JSON object gives a key twice, at any depth ([`strict`]): the
//!   answer is a 422 naming the key, never "the last one wins".
//! - Decoding errors never show Rust type names: "expected a JSON object,
//!   got an array", "`limit` must be a whole number".

mod objects;
pub mod strict;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A refused input: the field (a path such as `fields.risk` or
/// `steps[0].title`, when there is one) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Where, when known.
    pub field: Option<String>,
    /// What is wrong, in the user's terms.
    pub message: String,
    /// Whether the input held a NUL character (a 422 wherever it is).
    pub nul: bool,
}

/// The message for a NUL character found in `field`.
pub fn nul_message(field: &str) -> String {
    format!("`{field}` contains a NUL character (U+0000), which is not allowed in text")
}

/// The path of the first string (or object key) in `value` that holds a NUL
/// character: `description`, `fields.risk`, `steps[0].title`.
pub fn first_nul(value: &Value) -> Option<String> {
    fn walk(value: &Value, here: &str) -> Option<String> {
        match value {
            Value::String(s) if s.contains('\0') => Some(here.to_owned()),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{here}[{i}]"))),
            Value::Object(map) => map.iter().find_map(|(k, v)| {
                let path = if here.is_empty() {
                    k.replace('\0', "\\u0000")
                } else {
                    format!("{here}.{}", k.replace('\0', "\\u0000"))
                };
                if k.contains('\0') {
                    Some(path)
                } else {
                    walk(v, &path)
                }
            }),
            _ => None,
        }
    }
    walk(value, "")
}

/// Decodes a JSON request body: it must be an object, hold no NUL
/// character, and have the shape of `T`.
pub fn json_body<T: DeserializeOwned>(mut value: Value) -> Result<T, Refusal> {
    if !value.is_object() {
        return Err(Refusal {
            field: None,
            nul: false,
            message: format!(
                "the request body must be a JSON object, not {}",
                json_kind(&value)
            ),
        });
    }
    if let Some(field) = first_nul(&value) {
        return Err(Refusal {
            message: nul_message(&field),
            field: Some(field),
            nul: true,
        });
    }
    whole_numbers(&mut value);
    serde_path_to_error::deserialize(objects::Objects(value)).map_err(|e| {
        let field = field_of(e.path());
        let message = plain(&e.inner().to_string());
        Refusal {
            message: match &field {
                Some(f) if !message.contains(&format!("`{f}`")) => {
                    format!("`{f}`: {message}")
                }
                _ => message,
            },
            field,
            nul: false,
        }
    })
}

/// JSON does not tell `3` from `3.0`: a number without a fraction is a
/// whole number wherever one is expected.
fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    // In range: exact as an integer.
                    #[allow(clippy::cast_possible_truncation)]
                    let i = f as i64;
                    *value = Value::from(i);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Decodes `name=value` pairs (a query string or a web form): no NUL
/// character in any name or value, and the shape of `T`.
pub fn pairs<T: DeserializeOwned>(encoded: &[u8]) -> Result<T, Refusal> {
    for (name, value) in form_urlencoded_pairs(encoded) {
        if name.contains('\0') || value.contains('\0') {
            let field = name.replace('\0', "\\u0000");
            return Err(Refusal {
                message: nul_message(&field),
                field: Some(field),
                nul: true,
            });
        }
    }
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(encoded));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field_of(e.path());
        let inner = e.inner().to_string();
        let message = match &field {
            Some(f) => pair_message(f, &inner),
            None => plain(&inner),
        };
        Refusal {
            field,
            message,
            nul: false,
        }
    })
}

/// The first NUL character in a percent-encoded URL path, if any.
pub fn path_has_nul(path: &str) -> bool {
    percent_encoding::percent_decode_str(path).any(|b| b == 0)
}

fn form_urlencoded_pairs(encoded: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(encoded).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

fn field_of(path: &serde_path_to_error::Path) -> Option<String> {
    let p = path.to_string();
    (p != "." && !p.is_empty() && p != "?").then_some(p)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A query or form value's decoding error: the standard library's parse
/// errors say nothing of the field, so say it here.
fn pair_message(field: &str, inner: &str) -> String {
    let whole = [
        "invalid digit found in string",
        "cannot parse integer from empty string",
        "number too large to fit in target type",
        "number too small to fit in target type",
    ];
    if whole.contains(&inner) {
        format!("`{field}` must be a whole number")
    } else if inner == "invalid float literal" {
        format!("`{field}` must be a number")
    } else if inner.contains("`true` or `false`") {
        format!("`{field}` must be `true` or `false`")
    } else {
        let message = plain(inner);
        if message.contains(&format!("`{field}`")) {
            message
        } else {
            format!("`{field}`: {message}")
        }
    }
}

/// Rewrites a serde error message into the user's terms.
pub fn plain(message: &str) -> String {
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((got, expected)) = rest.split_once(", expected ") {
                return format!(
                    "expected {}, got {}",
                    expected_term(expected),
                    got_term(got)
                );
            }
        }
    }
    if message.starts_with("invalid length ") {
        return "the list has the wrong number of items".into();
    }
    if looks_rusty(&message) {
        return "the value has the wrong type".into();
    }
    message
}

fn expected_term(expected: &str) -> String {
    let e = expected.trim();
    let term = match e {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, zero or more",
        "f32" | "f64" => "a number",
        "a string" | "a borrowed string" | "a character" | "a string or bytes" => "a string",
        "a boolean" | "bool" => "true or false",
        "a map" | "map" => "a JSON object",
        "a sequence" | "sequence" | "a tuple" => "a JSON array",
        "unit" | "null" => "null",
        "option" => "a value or null",
        _ if e.starts_with("struct ")
            || e.starts_with("internally tagged enum")
            || e.starts_with("adjacently tagged enum")
            || e.starts_with("map with a single key")
            || e.starts_with("struct variant") =>
        {
            "a JSON object"
        }
        _ if e.starts_with("a sequence") || e.starts_with("tuple") || e.starts_with("an array") => {
            "a JSON array"
        }
        _ if e.starts_with("enum ") || e.starts_with("variant identifier") => {
            "one of the allowed values"
        }
        _ if e.starts_with("a nonzero") => "a whole number other than 0",
        _ if looks_rusty(e) => "a value of another type",
        _ => return e.to_owned(),
    };
    term.to_owned()
}

fn got_term(got: &str) -> String {
    let g = got.trim();
    match g {
        "sequence" => "an array".into(),
        "map" => "an object".into(),
        "null" | "unit value" | "unit" => "null".into(),
        "boolean `true`" => "`true`".into(),
        "boolean `false`" => "`false`".into(),
        _ if g.starts_with("string ") || g.starts_with("character ") => "a string".into(),
        _ if g.starts_with("integer ") || g.starts_with("floating point ") => {
            let n = g.split('`').nth(1).unwrap_or("");
            format!("the number {n}")
        }
        _ if looks_rusty(g) => "a value of another type".into(),
        _ => g.to_owned(),
    }
}

/// Whether a message names a Rust type (`struct X`, `i64`, `core::...`).
fn looks_rusty(s: &str) -> bool {
    s.contains("::")
        || s.contains("struct ")
        || s.contains("tuple struct")
        || s.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
            matches!(
                w,
                "i8" | "i16"
                    | "i32"
                    | "i64"
                    | "u8"
                    | "u16"
                    | "u32"
                    | "u64"
                    | "usize"
                    | "isize"
                    | "f32"
                    | "f64"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        kind: String,
        title: String,
        #[serde(default)]
        fields: std::collections::BTreeMap<String, Value>,
        #[serde(default)]
        limit: Option<i64>,
    }

    #[test]
    fn an_array_is_not_an_object() {
        let e = json_body::<Item>(json!(["task", "t"])).unwrap_err();
        assert_eq!(e.field, None);
        assert!(e.message.contains("must be a JSON object"), "{}", e.message);
    }

    #[test]
    fn nul_is_found_with_its_path() {
        let e = json_body::<Item>(
            json!({"kind": "task", "title": "t", "fields": {"risk": ["a", "b\u{0}"]}}),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("fields.risk[1]"));
        let e = json_body::<Item>(json!({"kind": "task", "title": "a\u{0}"})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("title"));
        assert!(pairs::<std::collections::BTreeMap<String, String>>(b"q=a%00b").is_err());
        assert!(path_has_nul("/api/v1/workspaces/a%00"));
        assert!(!path_has_nul("/api/v1/workspaces/a%20b"));
    }

    #[test]
    fn messages_name_no_rust_types() {
        let e = json_body::<Item>(json!({"kind": "task", "title": "t", "limit": "x"})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("limit"));
        assert!(!e.message.contains("i64"), "{}", e.message);
        assert!(e.message.contains("whole number"), "{}", e.message);
        let e = json_body::<Item>(json!({"kind": 1, "title": "t"})).unwrap_err();
        assert!(
            e.message.contains("expected a string, got the number 1"),
            "{}",
            e.message
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<i64>,
        }
        let e = pairs::<Q>(b"limit=abc").unwrap_err();
        assert_eq!(e.message, "`limit` must be a whole number");
        assert_eq!(
            plain("invalid type: sequence, expected struct CreateItem"),
            "expected a JSON object, got an array"
        );
    }
}
