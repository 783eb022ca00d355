//! Plugins' frontend halves: which paths may be served.
//!
//! A plugin lists its embedded files (JavaScript, CSS, images) in its
//! manifest; the server serves exactly those paths, at
//! `/plugins/{name}/assets/{path}`, with the content type the manifest
//! gives, and only while the plugin is loaded. Paths are looked up, never
//! joined onto a directory, so `..` cannot reach anything; a manifest that
//! lists such a path is refused at load time anyway.

/// Whether `path` is a plain relative path: non-empty segments separated by
/// `/`, none of them `.` or `..`, no backslashes, no leading `/` (the rule
/// the loader applies to manifests, so a listed path is always servable).
pub use vigilo_sdk::loader::safe_relative_path;

/// The URL the web app loads a plugin's asset from.
pub fn asset_url(plugin: &str, path: &str) -> String {
    format!("/plugins/{plugin}/assets/{path}")
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
