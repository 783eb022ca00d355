//! The plugin as the server sees it: through its ABI, in process.

use vigilo_sdk::harness::{PluginTestHarness, Registration};
use vigilo_sdk::wire::ElementSpec;
use vigilo_sdk::{json, PluginKind, Value};

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process(datepicker_with_holidays::vigilo_plugin_module)
}

fn validate(value: Value, settings: Value) -> Result<Value, String> {
    plugin().validate("holiday_aware_date", value, settings)
}

#[test]
fn is_a_valid_plugin() {
    plugin().assert_valid_plugin();
}

#[test]
fn manifest_describes_the_plugin() {
    let manifest = plugin().manifest();
    assert_eq!(manifest.name, "datepicker_with_holidays");
    assert_eq!(manifest.kind, PluginKind::FieldType);
    assert_eq!(manifest.version, "0.1.0");
    assert_eq!(manifest.compatible_with, ">=0.1, <0.2");
    assert_eq!(manifest.sdk_abi_version, vigilo_sdk::abi::SDK_ABI_VERSION);
    assert!(manifest.panic_unwind);
    assert_eq!(manifest.frontend_api, vigilo_sdk::FRONTEND_API_VERSION);
    let paths: Vec<_> = manifest.frontend.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["holiday_aware_date.js", "holiday_aware_date.css"]);
    assert!(manifest.check_compatible("0.1.0").is_ok());
    assert!(manifest.check_compatible("0.2.0").is_err());
}

#[test]
fn registers_the_field_type() {
    assert_eq!(
        plugin().registrations(),
        vec![Registration::FieldType {
            name: "holiday_aware_date".into(),
            label: "Date (skips weekends and holidays)".into(),
            description:
                "A working day: not a Saturday or Sunday, and not one of the dates in the \
                          workspace's `holidays` setting."
                    .into(),
            element: Some(ElementSpec {
                tag: "datepicker_with_holidays-picker".into(),
                module: "holiday_aware_date.js".into(),
                stylesheet: None,
            }),
        }]
    );
}

#[test]
fn a_working_day_is_accepted_and_normalised() {
    assert_eq!(
        validate(json!("2026-12-24"), Value::Null),
        Ok(json!("2026-12-24"))
    );
    assert_eq!(
        validate(json!(" 2026-3-2 "), Value::Null),
        Ok(json!("2026-03-02"))
    );
    // A holiday list that does not include the date changes nothing.
    assert_eq!(
        validate(json!("2026-12-24"), json!({"holidays": ["2026-12-25"]})),
        Ok(json!("2026-12-24"))
    );
}

#[test]
fn weekends_are_rejected() {
    assert_eq!(
        validate(json!("2026-12-26"), Value::Null),
        Err("2026-12-26 is a Saturday".into())
    );
    assert_eq!(
        validate(json!("2026-12-27"), Value::Null),
        Err("2026-12-27 is a Sunday".into())
    );
}

#[test]
fn configured_holidays_are_rejected() {
    let expected = Err("2026-12-25 is a holiday in this workspace".to_owned());
    assert_eq!(
        validate(
            json!("2026-12-25"),
            json!({"holidays": ["2026-12-25", "2026-12-31"]})
        ),
        expected
    );
    // A comma-separated string works too, and entries are normalised.
    assert_eq!(
        validate(
            json!("2026-12-25"),
            json!({"holidays": "2026-12-31, 2026-12-25"})
        ),
        expected
    );
    assert_eq!(
        validate(
            json!("2026-12-31"),
            json!({"holidays": "2026-12-31,2026-1-2"})
        ),
        Err("2026-12-31 is a holiday in this workspace".to_owned())
    );
}

#[test]
fn non_dates_are_rejected_with_a_reason() {
    assert_eq!(
        validate(json!("next friday"), Value::Null),
        Err("\"next friday\" is not a date: use YYYY-MM-DD, for example 2026-12-24".into())
    );
    assert_eq!(
        validate(json!("2026-02-30"), Value::Null),
        Err("2026-02-30 is not a date: February 2026 has 28 days".into())
    );
    assert_eq!(
        validate(json!(20261224), Value::Null),
        Err("a date must be text like 2026-12-24, not a number".into())
    );
    assert_eq!(
        validate(Value::Null, Value::Null),
        Err("a date is required, for example 2026-12-24".into())
    );
}

#[test]
fn a_broken_holidays_setting_is_reported_not_ignored() {
    let error = validate(json!("2026-12-24"), json!({"holidays": ["Christmas"]})).unwrap_err();
    assert!(
        error.contains("\"Christmas\", which is not a date"),
        "{error}"
    );
    let error = validate(json!("2026-12-24"), json!({"holidays": 25})).unwrap_err();
    assert!(error.contains("must be a list of dates"), "{error}");
}

#[test]
fn serves_its_frontend_half() {
    let plugin = plugin();
    let js = String::from_utf8(plugin.asset("holiday_aware_date.js").unwrap()).unwrap();
    assert!(js.contains("customElements.define"));
    // A form-associated element, so plain forms submit its value.
    assert!(js.contains("static formAssociated = true"));
    assert!(js.contains("\"datepicker_with_holidays-picker\""));
    let css = String::from_utf8(plugin.asset("holiday_aware_date.css").unwrap()).unwrap();
    assert!(css.contains(":host"));
    assert_eq!(plugin.asset("missing.js"), None);
}
