//! Times as Vigilo stores and exchanges them: RFC 3339 in UTC, to the
//! microsecond, so that stored times sort as strings.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The stored time format: RFC 3339, UTC, microseconds, `Z`.
const TIME_FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// Formats a time the way the store keeps it.
pub fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(TIME_FORMAT)
        .expect("a UTC time always formats")
}

/// The current time, formatted for the store.
pub fn now() -> String {
    format_time(OffsetDateTime::now_utc())
}

/// `now + seconds`, formatted for the store.
pub fn now_plus(seconds: i64) -> String {
    format_time(OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
}

/// Parses a stored (or any RFC 3339) time.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    // In UTC, so that a time the parser accepts but UTC cannot hold (such
    // as 9999-12-31T23:59:59-00:01) is refused here, not a panic later.
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()?
        .checked_to_offset(UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_sort_as_strings() {
        let a = format_time(OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(5));
        let b = format_time(OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(10));
        assert_eq!(a, "1970-01-01T00:00:00.000005Z");
        assert!(a < b);
        assert_eq!(
            parse_time(&a).unwrap(),
            OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(5)
        );
    }
}
