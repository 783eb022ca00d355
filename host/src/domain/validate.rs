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
