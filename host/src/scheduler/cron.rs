//! Five-field cron expressions (minute hour day-of-month month day-of-week),
//! evaluated in UTC: `*`, numbers, ranges `a-b`, lists `a,b`, and steps
//! `*/n`, `a/n` or `a-b/n`. Day-of-week 0 and 7 are Sunday. When both day
//! fields are restricted, a day matches if either does; when either starts
//! with `*` (`*`, `*/2`), a day must match both (as in Vixie cron). An
//! expression that can never match (`0 0 30 2 *`) is refused when the task
//! is scheduled. The `croner` crate evaluates the expression; this module
//! holds it to that syntax and names the field at fault.

use std::cmp::Ordering;

use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};
use croner::{CivilDateTime, CronDateTime, Resolution, Weekday};
use time::{Duration, OffsetDateTime};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// Boxed: croner's parsed pattern is large, and tasks are many.
    schedule: Box<croner::Cron>,
}

/// The fields in order, with their names in messages.
const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// The values each field takes.
const RANGES: [&str; 5] = ["0-59", "0-23", "1-31", "1-12", "0-7"];

/// A step this large or larger leaves only its start in any field.
const WIDEST_STEP: u32 = 60;

/// Checks one field's syntax (numbers, `*`, `-`, `,` and steps) and returns
/// it with every step no wider than [`WIDEST_STEP`].
fn field(text: &str, what: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                Some(
                    step.parse::<u32>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("bad step `{step}` in the {what} field"))?,
                ),
            ),
            None => (part, None),
        };
        if range != "*" {
            for bound in range.split('-') {
                if bound.is_empty() || !bound.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("`{bound}` is not a number in the {what} field"));
                }
            }
        }
        parts.push(match step {
            Some(step) => format!("{range}/{}", step.min(WIDEST_STEP)),
            None => range.to_owned(),
        });
    }
    Ok(parts.join(","))
}

fn parser(day: &str, weekday: &str) -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        // `a/n` means from a to the end of the field, as in Vixie cron.
        .sloppy_ranges(true)
        // As in Vixie cron: a day field starting with `*` (`*`, `*/2`) does
        // not count as restricted, so both must match.
        .dom_and_dow(day.starts_with('*') || weekday.starts_with('*'))
        .build()
}

impl Cron {
    /// Parses `0 7 * * *`-style text.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [_, _, day, _, weekday] = parts[..] else {
            return Err(format!(
                "`{text}` is not a cron expression: it needs five fields (minute hour day month weekday)"
            ));
        };
        let fields = parts
            .iter()
            .zip(FIELDS)
            .map(|(part, what)| field(part, what))
            .collect::<Result<Vec<String>, String>>()?;
        let parser = parser(day, weekday);
        match parser.parse(&fields.join(" ")) {
            Ok(schedule) => Ok(Cron {
                schedule: Box::new(schedule),
            }),
            Err(e) => Err(blame(&parser, &fields, e)),
        }
    }

    /// The first matching minute strictly after `after`, within five years.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let limit = after + Duration::days(5 * 366);
        self.schedule
            .find_next_occurrence(&Utc(after), false)
            .ok()
            .map(|next| next.0)
            .filter(|next| *next < limit)
    }
}

/// Says which field `error` is about: the first one refused on its own.
fn blame(parser: &CronParser, fields: &[String], error: CronError) -> String {
    for (i, what) in FIELDS.iter().enumerate() {
        let mut alone = ["*"; 5];
        alone[i] = fields[i].as_str();
        if let Err(e) = parser.parse(&alone.join(" ")) {
            return format!(
                "`{}` is not a valid {what} field (values {}): {e}",
                fields[i], RANGES[i]
            );
        }
    }
    format!("`{}` is not a cron expression: {error}", fields.join(" "))
}

/// A UTC instant as croner searches over it.
#[derive(Debug, Clone, Copy)]
struct Utc(OffsetDateTime);

impl CronDateTime for Utc {
    fn to_civil(&self) -> CivilDateTime {
        let t = self.0;
        CivilDateTime::from_ymd_hms_opt(
            t.year(),
            u8::from(t.month()).into(),
            t.day().into(),
            t.hour().into(),
            t.minute().into(),
            t.second().into(),
        )
        .expect("a UTC time is a valid civil time")
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(self.0.weekday().number_days_from_sunday().into())
    }

    fn resolve_civil(&self, civil: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let month = u8::try_from(civil.month())
            .ok()
            .and_then(|m| time::Month::try_from(m).ok())
            .ok_or(CronError::InvalidDate)?;
        let date = time::Date::from_calendar_date(civil.year(), month, civil.day() as u8)
            .map_err(|_| CronError::InvalidDate)?;
        let at = date
            .with_hms(
                civil.hour() as u8,
                civil.minute() as u8,
                civil.second() as u8,
            )
            .map_err(|_| CronError::InvalidTime)?;
        Ok(Resolution::Single(Utc(at.assume_utc())))
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0.checked_add(Duration::seconds(seconds)).map(Utc)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn next_runs() {
        let daily = Cron::parse("0 7 * * *").unwrap();
        assert_eq!(
            daily.next_after(datetime!(2026-11-24 06:59:30 UTC)),
            Some(datetime!(2026-11-24 07:00 UTC))
        );
        assert_eq!(
            daily.next_after(datetime!(2026-11-24 07:00 UTC)),
            Some(datetime!(2026-11-25 07:00 UTC))
        );
        let quarter = Cron::parse("*/15 9-17 * * 1-5").unwrap();
        // Saturday 2026-11-28 → Monday 09:00.
        assert_eq!(
            quarter.next_after(datetime!(2026-11-27 17:50 UTC)),
            Some(datetime!(2026-11-30 09:00 UTC))
        );
        let new_year = Cron::parse("0 0 1 1 *").unwrap();
        assert_eq!(
            new_year.next_after(datetime!(2026-11-24 00:00 UTC)),
            Some(datetime!(2027-01-01 00:00 UTC))
        );
        let sundays = Cron::parse("30 6 * * 7").unwrap();
        assert_eq!(
            sundays.next_after(datetime!(2026-11-24 00:00 UTC)),
            Some(datetime!(2026-11-29 06:30 UTC))
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        assert!(Cron::parse("0 7 * *").unwrap_err().contains("five fields"));
        assert!(Cron::parse("61 * * * *").unwrap_err().contains("minute"));
        assert!(Cron::parse("*/0 * * * *").unwrap_err().contains("step"));
        assert!(Cron::parse("a * * * *")
            .unwrap_err()
            .contains("not a number"));
        assert!(Cron::parse("0 0 31 2 *")
            .unwrap()
            .next_after(datetime!(2026-01-01 00:00 UTC))
            .is_none());
        // A huge step is one value, not a wrap-around.
        let once = Cron::parse("59/4294967295 * * * *").unwrap();
        assert_eq!(
            once.next_after(datetime!(2026-11-24 00:00 UTC)),
            Some(datetime!(2026-11-24 00:59 UTC))
        );
    }

    #[test]
    fn star_steps_in_day_fields_do_not_widen_the_days() {
        // Odd days of the month that are Mondays (AND, as in Vixie cron,
        // because the day-of-month field starts with `*`): Mon 2026-11-30
        // is even, Mon 2026-12-07 is odd.
        let cron = Cron::parse("0 0 */2 * 1").unwrap();
        assert_eq!(
            cron.next_after(datetime!(2026-11-24 00:00 UTC)),
            Some(datetime!(2026-12-07 00:00 UTC))
        );
        // Both restricted: either matches (the 1st, or any Monday).
        let either = Cron::parse("0 0 1 * 1").unwrap();
        assert_eq!(
            either.next_after(datetime!(2026-11-24 00:00 UTC)),
            Some(datetime!(2026-11-30 00:00 UTC))
        );
    }

    #[test]
    fn impossible_dates_never_match() {
        let started = std::time::Instant::now();
        for text in ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"] {
            let cron = Cron::parse(text).unwrap();
            assert!(
                cron.next_after(datetime!(2026-01-01 00:00 UTC)).is_none(),
                "{text}"
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // The 29th of February comes in leap years.
        assert_eq!(
            Cron::parse("0 0 29 2 *")
                .unwrap()
                .next_after(datetime!(2026-01-01 00:00 UTC)),
            Some(datetime!(2028-02-29 00:00 UTC))
        );
        assert!(Cron::parse("0 24 * * *").unwrap_err().contains("hour"));
        assert!(Cron::parse("0 0 * 13 *").unwrap_err().contains("month"));
        assert!(Cron::parse("0 0 0 * *")
            .unwrap_err()
            .contains("day-of-month"));
        assert!(Cron::parse("0 0 * * 8")
            .unwrap_err()
            .contains("day-of-week"));
        assert!(Cron::parse("0 0 * * MON")
            .unwrap_err()
            .contains("not a number"));
    }
}
