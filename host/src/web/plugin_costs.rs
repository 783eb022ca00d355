//! What the admin plugins page says about a plugin's calls and the
//! installation's policy for it.

/// What the installation's stored policy says about a plugin, in a
/// sentence.
pub(super) fn policy_words(note: &crate::plugins::PolicyNote) -> String {
    format!(
        "{} (decided by {}, {}).",
        capitalised(&note.reason),
        note.decided_by,
        note.updated_at
    )
}

/// `text` with its first letter in capitals.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// What a plugin's calls cost, per call kind: the kind, and a sentence.
/// Nothing for a plugin that is not loaded.
pub(super) fn cost_words(
    entry: &crate::plugins::PluginEntry,
    loaded: bool,
) -> Vec<(String, String)> {
    if !loaded {
        return Vec::new();
    }
    entry
        .call_figures()
        .into_iter()
        .map(|f| {
            let mut words = match f.calls {
                1 => "1 call".to_owned(),
                n => format!("{n} calls"),
            };
            for (count, one, many) in [
                (f.errors, "error", "errors"),
                (f.rejected, "refused input", "refused inputs"),
                (f.panics, "panic", "panics"),
                (f.crashes, "crash", "crashes"),
                (f.timeouts, "timeout", "timeouts"),
            ] {
                if count > 0 || one == "error" {
                    let what = if count == 1 { one } else { many };
                    words.push_str(&format!(", {count} {what}"));
                }
            }
            if let (Some(p50), Some(p99)) = (f.p50_ms, f.p99_ms) {
                words.push_str(&format!("; p50 {p50:.3} ms, p99 {p99:.3} ms"));
            }
            (f.call, words)
        })
        .collect()
}
