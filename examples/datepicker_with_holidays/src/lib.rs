//! # datepicker_with_holidays: a reference `field_type` plugin
//!
//! Registers the custom field type **`holiday_aware_date`** ("Date (skips
//! weekends and holidays)"): a calendar date that may not fall on a Saturday
//! or Sunday, nor on one of the workspace's holidays.
//!
//! ## Contract
//!
//! * **Value**: a JSON string holding an ISO date, `YYYY-MM-DD`. Surrounding
//!   whitespace and one-digit months or days (`2026-3-2`) are accepted and
//!   normalised, so the stored value is always `YYYY-MM-DD`
//!   (`"2026-03-02"`).
//! * **Workspace settings**: `holidays`, either a list of ISO dates
//!   (`["2026-12-25", "2026-12-31"]`) or one comma-separated string
//!   (`"2026-12-25, 2026-12-31"`). Absent or null means no holidays.
//! * **Rejections** (the message is shown to the user as is):
//!   `"2026-12-26 is a Saturday"`, `"2026-12-25 is a holiday in this
//!   workspace"`, `"\"next friday\" is not a date: use YYYY-MM-DD, for
//!   example 2026-12-24"`, `"2026-02-30 is not a date: February 2026 has 28
//!   days"`. A holidays setting that is not a list of dates is reported too,
//!   since silently ignoring it would let holidays through.
//!
//! ## Frontend half
//!
//! `holiday_aware_date.js` is an ES module that defines the
//! `<datepicker_with_holidays-picker>` custom element (declared with
//! [`FieldType::element`], so the web app uses it as the editor of every
//! `holiday_aware_date` field): a form-associated element, so plain forms
//! submit its value, with a month calendar whose weekend and holiday days
//! cannot be picked, given the same workspace settings, and a text box for
//! typing a date. `holiday_aware_date.css` styles it, linked inside its
//! shadow root. Both are embedded in the library (see [`Plugin::frontend`]),
//! and the server serves them to the web app.
//!
//! Weekdays are computed here (days since 1970-01-01 with Howard Hinnant's
//! `days_from_civil`), so the plugin needs no date crate.

use vigilo_sdk::{
    Asset, Element, FieldContext, FieldType, Plugin, PluginKind, PluginRegistry, Value,
};

/// The plugin: registers [`HolidayAwareDate`].
pub struct DatepickerWithHolidays;

impl Plugin for DatepickerWithHolidays {
    fn capabilities(&self) -> Option<vigilo_sdk::Capabilities> {
        // It validates with the holidays the server hands it: no host calls.
        Some(vigilo_sdk::Capabilities::none())
    }

    fn name(&self) -> &str {
        "datepicker_with_holidays"
    }

    fn kind(&self) -> PluginKind {
        PluginKind::FieldType
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn compatible_with(&self) -> &str {
        ">=0.1, <0.2"
    }

    fn description(&self) -> &str {
        "A date field that refuses weekends and the workspace's holidays."
    }

    fn register(&self, registry: &mut PluginRegistry) {
        registry.register_field_type(HolidayAwareDate);
    }

    fn frontend(&self) -> Vec<Asset> {
        vec![
            Asset {
                path: "holiday_aware_date.js",
                content_type: "text/javascript",
                bytes: include_bytes!("../frontend/holiday_aware_date.js"),
            },
            Asset {
                path: "holiday_aware_date.css",
                content_type: "text/css",
                bytes: include_bytes!("../frontend/holiday_aware_date.css"),
            },
        ]
    }
}

vigilo_sdk::export_plugin!(DatepickerWithHolidays);

/// The `holiday_aware_date` field type.
pub struct HolidayAwareDate;

impl FieldType for HolidayAwareDate {
    fn name(&self) -> &str {
        "holiday_aware_date"
    }

    fn label(&self) -> &str {
        "Date (skips weekends and holidays)"
    }

    fn description(&self) -> &str {
        "A working day: not a Saturday or Sunday, and not one of the dates in the \
         workspace's `holidays` setting."
    }

    fn element(&self) -> Option<Element> {
        Some(Element::new(
            "datepicker_with_holidays-picker",
            "holiday_aware_date.js",
        ))
    }

    fn validate(&self, value: &Value, ctx: &FieldContext) -> Result<Value, String> {
        let text = match value {
            Value::String(text) => text,
            Value::Null => return Err("a date is required, for example 2026-12-24".to_owned()),
            other => {
                return Err(format!(
                    "a date must be text like 2026-12-24, not {}",
                    json_type(other)
                ))
            }
        };
        let date = Date::parse(text)?;
        match date.weekday() {
            Weekday::Saturday | Weekday::Sunday => {
                return Err(format!("{date} is a {}", date.weekday().name()))
            }
            _ => {}
        }
        if holidays(ctx)?.contains(&date) {
            return Err(format!("{date} is a holiday in this workspace"));
        }
        Ok(Value::String(date.to_string()))
    }
}

/// The workspace's holidays, from `settings.holidays`.
fn holidays(ctx: &FieldContext) -> Result<Vec<Date>, String> {
    let bad_setting = |entry: &str| {
        format!(
            "the workspace's `holidays` setting contains {entry:?}, which is not a date \
             (YYYY-MM-DD); ask a workspace owner to correct it"
        )
    };
    let entries: Vec<String> = match ctx.setting("holidays") {
        None => return Ok(vec![]),
        Some(Value::String(list)) => list.split(',').map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(bad_setting(&other.to_string())),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(
                "the workspace's `holidays` setting must be a list of dates (YYYY-MM-DD); \
                 ask a workspace owner to correct it"
                    .to_owned(),
            )
        }
    };
    entries
        .iter()
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| Date::parse(entry).map_err(|_| bad_setting(entry.trim())))
        .collect()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A proleptic Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    year: i32,
    month: u32,
    day: u32,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// The English name.
    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "Monday",
            Weekday::Tuesday => "Tuesday",
            Weekday::Wednesday => "Wednesday",
            Weekday::Thursday => "Thursday",
            Weekday::Friday => "Friday",
            Weekday::Saturday => "Saturday",
            Weekday::Sunday => "Sunday",
        }
    }
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Date {
    /// Parses `YYYY-MM-DD` (one-digit month and day allowed; surrounding
    /// whitespace ignored). The error is a message for the user.
    pub fn parse(text: &str) -> Result<Date, String> {
        let trimmed = text.trim();
        let not_a_date =
            || format!("{trimmed:?} is not a date: use YYYY-MM-DD, for example 2026-12-24");
        let mut parts = trimmed.split('-');
        let (Some(year), Some(month), Some(day), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(not_a_date());
        };
        let digits = |part: &str, min: usize, max: usize| {
            (min..=max).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit())
        };
        if !(digits(year, 4, 4) && digits(month, 1, 2) && digits(day, 1, 2)) {
            return Err(not_a_date());
        }
        let (year, month, day): (i32, u32, u32) = (
            year.parse().map_err(|_| not_a_date())?,
            month.parse().map_err(|_| not_a_date())?,
            day.parse().map_err(|_| not_a_date())?,
        );
        if !(1..=12).contains(&month) {
            return Err(format!(
                "{trimmed:?} is not a date: there is no month {month}"
            ));
        }
        let days_in_month = days_in_month(year, month);
        if day == 0 || day > days_in_month {
            return Err(format!(
                "{year:04}-{month:02}-{day:02} is not a date: {} {year} has {days_in_month} days",
                MONTH_NAMES[month as usize - 1]
            ));
        }
        Ok(Date { year, month, day })
    }

    /// Days since 1970-01-01 (negative before it): Howard Hinnant's
    /// `days_from_civil`, which counts in 400-year eras starting in March so
    /// that the leap day falls at the end of each year.
    pub fn days_since_epoch(self) -> i64 {
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400; // [0, 399]
        let month_from_march = (i64::from(self.month) + 9) % 12; // March = 0
        let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(self.day) - 1; // [0, 365]
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The day of the week (1970-01-01 was a Thursday).
    pub fn weekday(self) -> Weekday {
        match (self.days_since_epoch() + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_of_known_dates() {
        let weekday = |text: &str| Date::parse(text).unwrap().weekday();
        assert_eq!(weekday("1970-01-01"), Weekday::Thursday);
        assert_eq!(weekday("2000-02-29"), Weekday::Tuesday);
        assert_eq!(weekday("1969-12-31"), Weekday::Wednesday);
        assert_eq!(weekday("1900-03-01"), Weekday::Thursday);
        assert_eq!(weekday("2026-12-24"), Weekday::Thursday);
        assert_eq!(weekday("2026-12-26"), Weekday::Saturday);
        assert_eq!(weekday("2026-12-27"), Weekday::Sunday);
        assert_eq!(weekday("2024-03-04"), Weekday::Monday);
    }

    #[test]
    fn consecutive_days_are_consecutive() {
        let mut previous = Date::parse("1599-12-31").unwrap().days_since_epoch();
        for year in 1600..=2400 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let days = Date { year, month, day }.days_since_epoch();
                    assert_eq!(days, previous + 1, "{year}-{month}-{day}");
                    previous = days;
                }
            }
        }
    }

    #[test]
    fn parsing_normalises_and_explains() {
        assert_eq!(Date::parse(" 2026-3-2 ").unwrap().to_string(), "2026-03-02");
        assert_eq!(
            Date::parse("2026-02-30").unwrap_err(),
            "2026-02-30 is not a date: February 2026 has 28 days"
        );
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert_eq!(
            Date::parse("2026-13-01").unwrap_err(),
            "\"2026-13-01\" is not a date: there is no month 13"
        );
        for bad in [
            "",
            "2026",
            "26-12-24",
            "2026-12-24T10:00",
            "2026/12/24",
            "+026-01-01",
            "2026-12-24-1",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad:?}");
        }
    }
}
