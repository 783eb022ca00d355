//! Plugins' frontend halves: which paths may be served, and where.
//!
//! A plugin lists its embedded files (JavaScript, CSS, images) in its
//! manifest; the server serves exactly those paths, with the content type
//! the manifest gives, and only while the plugin is loaded, at one address
//! per build: `/plugins/{name}/v/{version}/{path}`, where the version is
//! the start of the loaded library's SHA-256 (`web::plugin_assets` serves
//! them, immutable). The plain `/plugins/{name}/assets/{path}` leads there.
//! Paths are looked up, never joined onto a directory, so `..` cannot reach
//! anything; a manifest that lists such a path is refused at load time
//! anyway.

use super::PluginEntry;

/// Whether `path` is a plain relative path: non-empty segments separated by
/// `/`, none of them `.` or `..`, no backslashes, no leading `/` (the rule
/// the loader applies to manifests, so a listed path is always servable).
pub use vigilo_sdk::loader::safe_relative_path;

/// The version part of a plugin's asset URLs: the first 16 hex digits of
/// its library's SHA-256 (hashing the library the first time takes a
/// millisecond or so).
pub fn version(entry: &PluginEntry) -> String {
    entry
        .sha256()
        .map(|sha| sha[..16].to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// The URL of `path` of `entry`'s loaded build.
pub fn url(entry: &PluginEntry, path: &str) -> String {
    format!(
        "/plugins/{}/v/{}/{path}",
        entry.name().unwrap_or("unknown"),
        version(entry)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_safe() {
        assert!(safe_relative_path("holiday_aware_date.js"));
        assert!(safe_relative_path("css/tile.css"));
        for bad in [
            "",
            "/etc/passwd",
            "../x.js",
            "a/../../b",
            "a//b",
            "./a",
            "a\\b",
            "a/",
        ] {
            assert!(!safe_relative_path(bad), "{bad:?} must be refused");
        }
    }
}
