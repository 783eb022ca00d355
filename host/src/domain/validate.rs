//! Input checks shared by every area. Each failure is a
//! [`DomainError::Invalid`] naming the field.

use super::{DomainError, DomainResult};

/// Checks `value` has at most `max` characters as sent (the limit the API
/// document states), then trims it and checks something is left.
pub fn text(field: &str, value: &str, max: usize) -> DomainResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(DomainError::invalid(
            field,
            format!("`{field}` must not be empty"),
        ));
    }
    let n = value.chars().count();
    if n > max {
        return Err(DomainError::invalid(
            field,
            format!("`{field}` is {n} characters long; the limit is {max}"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            format!("`{field}` must not contain control characters"),
        ));
    }
    Ok(v.to_string())
}

/// The characters [`text`] trims from either end: Unicode's White_Space, as
/// `str::trim` reads it (a character class body, in the escapes JSON
/// Schema, ECMAScript, Python and Rust regular expressions share).
pub(crate) const WHITE_SPACE: &str =
    "\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// The characters [`text`] refuses once trimmed: control characters
/// (`char::is_control`), as a character class body.
const CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";

/// Control characters but line breaks and tabs, as a character class body:
/// what several lines of text (a comment) may not hold once trimmed.
const CONTROL_BUT_BREAKS: &str = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f";

/// What a text of several lines accepts (a comment, before its length
/// limit), as a regular expression for the API's document: something other
/// than white space, no control characters but line breaks and tabs, white
/// space of any kind around it.
pub fn lines_pattern() -> String {
    format!(
        "^[{WHITE_SPACE}]*[^{CONTROL_BUT_BREAKS}{WHITE_SPACE}](?:[^{CONTROL_BUT_BREAKS}]*[^{CONTROL_BUT_BREAKS}{WHITE_SPACE}])?[{WHITE_SPACE}]*$"
    )
}

/// What [`text`] accepts (before its length limit), as a regular expression
/// for the API's document: something other than white space, no control
/// characters, white space of any kind around it.
pub fn text_pattern() -> String {
    format!(
        "^[{WHITE_SPACE}]*[^{CONTROL}{WHITE_SPACE}](?:[^{CONTROL}]*[^{CONTROL}{WHITE_SPACE}])?[{WHITE_SPACE}]*$"
    )
}

/// Checks a slug: 2–63 characters of `a-z`, `0-9` and `-`, starting with a
/// letter or digit.
pub fn slug(field: &str, value: &str) -> DomainResult<String> {
    let ok = (2..=63).contains(&value.len())
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(value.to_string())
    } else {
        Err(DomainError::invalid(
            field,
            format!(
                "`{value}` is not a valid {field}: use 2 to 63 lower-case letters, digits and dashes, starting with a letter or digit"
            ),
        ))
    }
}

/// Checks and normalises (trims, lower-cases) an email address.
pub fn email(field: &str, value: &str) -> DomainResult<String> {
    email_address(value).map_err(|m| DomainError::invalid(field, m))
}

fn email_address(value: &str) -> Result<String, String> {
    let v = value.trim().to_ascii_lowercase();
    if v.is_empty() {
        return Err("the email address is empty".into());
    }
    if v.len() > 254 {
        return Err(format!(
            "the email address is {} characters long; the limit is 254",
            v.len()
        ));
    }
    let Some((local, domain)) = v.split_once('@') else {
        return Err(format!("`{v}` is not an email address (no `@`)"));
    };
    let valid_local = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let valid_domain = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid_local && valid_domain {
        Ok(v)
    } else {
        Err(format!("`{v}` is not a valid email address"))
    }
}

/// What [`email`] accepts, as regular expressions for the API's document,
/// every one of which an address matches: its shape (white space around
/// it, a local part in dot-separated runs, `@`, two or more domain
/// labels), at most 254 characters without the white space, and a local
/// part of at most 64.
pub fn email_patterns() -> [String; 3] {
    let run = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
    let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    [
        format!("^[{WHITE_SPACE}]*{run}(?:\\.{run})*@{label}(?:\\.{label})+[{WHITE_SPACE}]*$"),
        format!("^[{WHITE_SPACE}]*[^{WHITE_SPACE}]{{1,254}}[{WHITE_SPACE}]*$"),
        format!("^[{WHITE_SPACE}]*[^@{WHITE_SPACE}]{{1,64}}@"),
    ]
}

/// A name used as an identifier (custom roles, templates, settings keys):
/// 1–64 characters of `a-z`, `A-Z`, `0-9`, `_`, `-` and `.`.
pub fn identifier(field: &str, value: &str) -> DomainResult<String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(value.to_string())
    } else {
        Err(DomainError::invalid(
            field,
            format!(
                "`{value}` is not a valid {field}: use 1 to 64 letters, digits, `_`, `-` and `.`"
            ),
        ))
    }
}

/// An [`identifier`] that is not all digits: for things addressed by id or
/// name in one path segment, where `7` must mean one thing.
pub fn name_not_number(field: &str, value: &str) -> DomainResult<String> {
    let name = identifier(field, value)?;
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid(
            field,
            format!("`{field}` cannot be only digits (it would read as an id)"),
        ));
    }
    Ok(name)
}

/// A `limit` query parameter: `default` when absent, else 1 to `max`.
pub fn limit(value: Option<i64>, default: i64, max: i64) -> DomainResult<i64> {
    let limit = value.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(DomainError::invalid(
            "limit",
            format!("`limit` must be between 1 and {max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("e", " Alice@Acme.com ").unwrap(), "alice@acme.com");
        for bad in [
            "",
            "alice",
            "alice@",
            "@acme.com",
            "a b@acme.com",
            "alice@acme",
            "a..b@acme.com",
            "alice@-acme.com",
        ] {
            assert!(email("e", bad).is_err(), "{bad} accepted");
        }
        assert!(email("e", &format!("{}@acme.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn the_text_pattern_accepts_what_text_accepts() {
        let pattern = regex_automata::dfa::regex::Regex::new(&text_pattern()).unwrap();
        let mut samples: Vec<String> = vec![
            String::new(),
            " ".into(),
            "\t\n \u{3000}".into(),
            "a".into(),
            " Acme ".into(),
            "\u{85}a b\u{a0}".into(),
            "a\tb".into(),
            "a\u{a0}b".into(),
            "\u{feff}".into(),
        ];
        for c in (0..0x3100u32)
            .chain([0xfeff, 0xfffd, 0x1f600])
            .filter_map(char::from_u32)
        {
            for s in [
                format!("{c}"),
                format!("a{c}b"),
                format!("{c}ab"),
                format!("ab{c}"),
                format!("{c} {c}"),
            ] {
                samples.push(s);
            }
        }
        for s in samples {
            assert_eq!(
                pattern.is_match(s.as_str()),
                text("t", &s, usize::MAX).is_ok(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_email_patterns_accept_what_email_accepts() {
        let patterns =
            email_patterns().map(|p| regex_automata::dfa::regex::Regex::new(&p).unwrap());
        let local = "a".repeat(64);
        let domain = format!(
            "{}.{}.{}.co",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(60)
        );
        let mut samples: Vec<String> = vec![
            format!("{local}@b.co"),
            format!("a{local}@b.co"),
            format!(" {local}@{domain} "),
            format!("{local}@{domain}"),
            format!("a@{domain}"),
            format!("a@{domain}e"),
        ];
        samples.extend(
            [
                "",
                "a@b.co",
                " Alice@Acme.com\t",
                "a.b@c.d.e",
                ".a@b.co",
                "a.@b.co",
                "a..b@c.co",
                "a@b",
                "a@-b.co",
                "a@b-.co",
                "a@b..co",
                "a@b.c-d.co",
                "a b@c.co",
                "a@@b.co",
                "o'brien+x@b.co",
                "\"a\"@b.co",
                "a@[1.2.3.4]",
                "ä@b.co",
                "a@b.co.",
                "@b.co",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        for c in (0..0x3100u32).filter_map(char::from_u32) {
            samples.push(format!("a{c}b@c.co"));
            samples.push(format!("ab@c{c}d.co"));
            samples.push(format!("{c}ab@c.co{c}"));
        }
        for s in samples {
            let matched = patterns.iter().all(|p| p.is_match(s.as_str()));
            assert_eq!(matched, email("e", &s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn slugs_and_text() {
        assert!(slug("slug", "acme-eu1").is_ok());
        for bad in ["A", "a", "-acme", "acme_eu", "ACME", &"a".repeat(64)] {
            assert!(slug("slug", bad).is_err(), "{bad} accepted");
        }
        assert!(text("name", "  ", 10).is_err());
        assert!(text("name", &"x".repeat(11), 10).is_err());
        assert_eq!(text("name", " Acme ", 10).unwrap(), "Acme");
    }
}
