//! Reading JSON text into a value, refusing a key given twice in one
//! object, at any depth.
//!
//! `serde_json` keeps the last of two equal keys, so
//! `{"kind": "task", "kind": "change"}` would quietly be a change; a client
//! that sent it has a bug, and is told which key it repeated.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

thread_local! {
    /// The key found twice by the visitor below, for the error's path.
    static REPEATED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Why JSON text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not JSON: what the parser said.
    Syntax(String),
    /// A key given twice: its path (`fields.risk`, `steps[1].type`).
    Repeated(String),
}

/// `text` as a JSON value, unless it is not JSON or repeats a key.
pub fn parse(text: &[u8]) -> Result<Value, Refused> {
    REPEATED.with(|r| r.borrow_mut().take());
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = serde_path_to_error::deserialize::<_, Strict>(&mut de);
    match parsed {
        Ok(Strict(value)) => match de.end() {
            Ok(()) => Ok(value),
            Err(e) => Err(Refused::Syntax(e.to_string())),
        },
        Err(e) => match REPEATED.with(|r| r.borrow_mut().take()) {
            Some(key) => {
                let at = e.path().to_string();
                Err(Refused::Repeated(if at == "." || at.is_empty() {
                    key
                } else {
                    format!("{at}.{key}")
                }))
            }
            None => Err(Refused::Syntax(e.into_inner().to_string())),
        },
    }
}

/// A JSON value read with every object checked for repeated keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|Strict(v)| v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                let message = format!("the key `{key}` is given twice");
                REPEATED.with(|r| *r.borrow_mut() = Some(key));
                return Err(de::Error::custom(message));
            }
            let Strict(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Refused};
    use serde_json::json;

    #[test]
    fn a_repeated_key_is_named_with_its_path() {
        assert_eq!(
            parse(br#"{"kind":"task","kind":"change","title":"dup"}"#),
            Err(Refused::Repeated("kind".into()))
        );
        assert_eq!(
            parse(br#"{"fields":{"risk":1,"risk":2}}"#),
            Err(Refused::Repeated("fields.risk".into()))
        );
        assert_eq!(
            parse(br#"{"steps":[{"type":"a"},{"type":"b","type":"c"}]}"#),
            Err(Refused::Repeated("steps[1].type".into()))
        );
        assert_eq!(
            parse(br#"{"a":{"b":[{"c":{"d":1,"d":1}}]}}"#),
            Err(Refused::Repeated("a.b[0].c.d".into()))
        );
    }

    #[test]
    fn json_reads_as_serde_json_reads_it() {
        let text = br#"{"a":[1,-2,3.5,true,null,"x"],"b":{"c":{}},"big":18446744073709551615}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<serde_json::Value>(text).unwrap()
        );
        assert_eq!(parse(b"[1,2]").unwrap(), json!([1, 2]));
        assert!(matches!(parse(b"{\"a\": 1,"), Err(Refused::Syntax(_))));
        assert!(matches!(parse(b"{} x"), Err(Refused::Syntax(_))));
    }
}
