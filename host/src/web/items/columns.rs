//! A list's custom fields: a filter on one field's value, and columns for
//! the fields a person chooses (`?field=KEY&value=TEXT&col=KEY&col=KEY`).

use serde_json::Value;

use super::form::form_value;
use crate::store::work_items::WorkItem;

/// A custom field a list can filter on or show, and whether it is shown.
pub struct FieldChoice {
    /// Its key.
    pub key: String,
    /// Its label.
    pub label: String,
    /// Whether the list shows it as a column.
    pub shown: bool,
}

/// The `col` values of a raw query: the keys of the columns asked for, in
/// the order given, each once.
pub fn asked_columns(raw: Option<&str>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if name == "col" && !value.is_empty() && !keys.iter().any(|k| *k == value) {
            keys.push(value.into_owned());
        }
    }
    keys
}

/// The cell of `item` for the field `key`.
pub fn cell(item: &WorkItem, key: &str) -> String {
    match item.fields.get(key) {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::Bool(b)) => if *b { "Yes" } else { "No" }.to_owned(),
        Some(v) => form_value(v),
    }
}

#[cfg(test)]
mod tests {
    use super::asked_columns;

    #[test]
    fn columns_come_once_in_their_order() {
        assert_eq!(
            asked_columns(Some("q=x&col=b&col=a&col=b&col=")),
            ["b", "a"]
        );
        assert!(asked_columns(None).is_empty());
    }
}
