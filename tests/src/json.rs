//! Reading the JSON lists the API and the CLI print.

use serde_json::Value;

/// The string `key` of every element of the array `list`.
#[track_caller]
pub fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    elements(list)
        .iter()
        .map(|e| {
            e[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} is not a string in {e}"))
        })
        .collect()
}

/// The first element of the array `list` whose `key` equals `value`.
#[track_caller]
pub fn find<'a, T>(list: &'a Value, key: &str, value: T) -> Option<&'a Value>
where
    Value: PartialEq<T>,
{
    elements(list).iter().find(|e| e[key] == value)
}

#[track_caller]
fn elements(list: &Value) -> &Vec<Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
}
