//! Five-field cron expressions (minute hour day-of-month month day-of-week),
//! evaluated in UTC: `*`, numbers, ranges `a-b`, lists `a,b`, and steps
//! `*/n` or `a-b/n`. Day-of-week 0 and 7 are Sunday. When both day fields
//! are restricted, a day matches if either does; when either starts with
//! `*` (`*`, `*/2`), a day must match both (as in Vixie cron). An expression that can never match (`0 0 30 2 *`)
//! is refused when the task is scheduled.

use time::{Duration, OffsetDateTime};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, min: u32, max: u32, what: &str) -> Result<Vec<bool>, String> {
    let mut allowed = vec![false; max as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("bad step `{step}` in the {what} field"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a, what)?, number(b, what)?)
        } else {
            let n = number(range, what)?;
            (n, if part.contains('/') { max } else { n })
        };
        if from < min || to > max || from > to {
            return Err(format!(
                "`{range}` is out of range {min}-{max} in the {what} field"
            ));
        }
        let mut v = from;
        while v <= to {
            allowed[v as usize] = true;
            match v.checked_add(step) {
                Some(next) => v = next,
                None => break,
            }
        }
    }
    Ok(allowed)
}

fn number(text: &str, what: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number in the {what} field"))
}

impl Cron {
    /// Parses `0 7 * * *`-style text.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = parts[..] else {
            return Err(format!(
                "`{text}` is not a cron expression: it needs five fields (minute hour day month weekday)"
            ));
        };
        let mut weekdays = field(weekday, 0, 7, "day-of-week")?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Cron {
            minutes: field(minute, 0, 59, "minute")?,
            hours: field(hour, 0, 23, "hour")?,
            days: field(day, 1, 31, "day-of-month")?,
            months: field(month, 1, 12, "month")?,
            weekdays,
            // As in Vixie cron: a field starting with `*` (`*`, `*/2`) does
            // not restrict the day for the either-day-field rule.
            days_restricted: !day.starts_with('*'),
            weekdays_restricted: !weekday.starts_with('*'),
        })
    }

    fn matches(&self, t: OffsetDateTime) -> bool {
        let day_ok = self.days[t.day() as usize];
        let weekday_ok = self.weekdays[t.weekday().number_days_from_sunday() as usize];
        // Both restricted: either may match. Otherwise both must (a field
        // that is `*` allows every day anyway; `*/2` still filters).
        let day_matches = if self.days_restricted && self.weekdays_restricted {
            day_ok || weekday_ok
        } else {
            day_ok && weekday_ok
        };
        self.minutes[t.minute() as usize]
            && self.hours[t.hour() as usize]
            && self.months[u8::from(t.month()) as usize]
            && day_matches
    }

    /// The first matching minute strictly after `after`, within five years.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut t =
            after.replace_second(0).ok()?.replace_nanosecond(0).ok()? + Duration::minutes(1);
        let limit = after + Duration::days(5 * 366);
        while t < limit {
            if !self.months[u8::from(t.month()) as usize] {
                // Jump to the first minute of the next month.
                let (year, month) = match t.month() {
                    time::Month::December => (t.year() + 1, time::Month::January),
                    m => (t.year(), m.next()),
                };
                t = time::Date::from_calendar_date(year, month, 1)
                    .ok()?
                    .midnight()
                    .assume_utc();
                continue;
            }
            if self.matches(t) {
                return Some(t);
            }
            t += Duration::minutes(1);
        }
        None
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
}
