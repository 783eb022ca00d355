//! How a plugin is named before its manifest is known.

use std::path::Path;

/// The file name of `path`, for plugins whose manifest is unknown.
pub(crate) fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
