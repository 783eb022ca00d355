//! A list's custom fields: a filter on one field's value, and columns for
//! the fields a person chooses (`?field=KEY&value=TEXT&col=KEY&col=KEY`).

use serde_json::Value;

use super::form::form_value;
use crate::store::{CustomField, WorkItem};

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

/// `text` as the value of `field`, typed as the field stores it: a number
/// for a number field, true or false for a yes/no field, text otherwise.
/// None when the text cannot be such a value.
pub fn typed(field: &CustomField, text: &str) -> Option<Value> {
    let text = text.trim();
    match field.field_type.as_str() {
        "number" => {
            if let Ok(i) = text.parse::<i64>() {
                Some(Value::from(i))
            } else {
                text.parse::<f64>().ok().map(Value::from)
            }
        }
        "boolean" => match text.to_lowercase().as_str() {
            "yes" | "true" | "1" => Some(Value::Bool(true)),
            "no" | "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => (!text.is_empty()).then(|| Value::from(text)),
    }
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
    use super::{asked_columns, typed};
    use crate::store::CustomField;
    use serde_json::json;

    fn field(field_type: &str) -> CustomField {
        CustomField {
            key: "k".into(),
            label: "K".into(),
            applies_to: vec!["task".into()],
            field_type: field_type.into(),
            required: false,
            options: vec![],
        }
    }

    #[test]
    fn values_are_typed_as_their_field_stores_them() {
        assert_eq!(typed(&field("number"), " 5 "), Some(json!(5)));
        assert_eq!(typed(&field("number"), "2.5"), Some(json!(2.5)));
        assert_eq!(typed(&field("number"), "five"), None);
        assert_eq!(typed(&field("boolean"), "Yes"), Some(json!(true)));
        assert_eq!(typed(&field("boolean"), "maybe"), None);
        assert_eq!(typed(&field("select"), "sev1"), Some(json!("sev1")));
        assert_eq!(typed(&field("text"), "  "), None);
    }

    #[test]
    fn columns_come_once_in_their_order() {
        assert_eq!(
            asked_columns(Some("q=x&col=b&col=a&col=b&col=")),
            ["b", "a"]
        );
        assert!(asked_columns(None).is_empty());
    }
}
