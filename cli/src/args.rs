//! Clap value parsers shared by the arguments of several commands.

/// Clap value parser rejecting empty (or blank) values.
pub fn non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(value.to_string())
    }
}
