//! How a worker's end is told in words: its exit status or signal, with
//! the worker's last lines when they explain it.

use std::process::ExitStatus;

/// "killed by SIGSEGV (invalid memory access)" or "exited with status 0",
/// with the worker's last words when they explain it.
pub(super) fn describe_end(status: Option<ExitStatus>, last_lines: &[String]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let mut text = match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("the worker exited with status {code}"),
            (None, Some(signal)) => format!("the worker was killed by {}", signal_name(signal)),
            (None, None) => format!("the worker ended ({status})"),
        },
        None => "the worker ended".to_owned(),
    };
    // The lines Rust's runtime writes before it aborts say what happened.
    let telling: Vec<&str> = last_lines
        .iter()
        .map(String::as_str)
        .filter(|l| {
            l.contains("memory allocation of")
                || l.contains("overflowed its stack")
                || l.contains("panicked at")
                || l.contains("fatal runtime error")
        })
        .collect();
    if let Some(last) = telling.first() {
        text.push_str(&format!(" after: {last}"));
    }
    text
}

/// A signal's name and what it usually means.
fn signal_name(signal: i32) -> String {
    let (name, meaning) = match signal {
        1 => ("SIGHUP", "hang-up"),
        2 => ("SIGINT", "interrupted"),
        3 => ("SIGQUIT", "quit"),
        4 => ("SIGILL", "illegal instruction"),
        5 => ("SIGTRAP", "trap"),
        6 => ("SIGABRT", "aborted"),
        7 => ("SIGBUS", "bus error"),
        8 => ("SIGFPE", "arithmetic error"),
        9 => ("SIGKILL", "killed"),
        11 => ("SIGSEGV", "invalid memory access"),
        13 => ("SIGPIPE", "broken pipe"),
        15 => ("SIGTERM", "terminated"),
        31 => ("SIGSYS", "forbidden system call"),
        24 => ("SIGXCPU", "CPU time limit"),
        _ => return format!("signal {signal}"),
    };
    format!("{name} ({meaning})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::ExitStatus;

    #[test]
    fn an_end_is_described_in_words() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_end(Some(ExitStatus::from_raw(11)), &[]),
            "the worker was killed by SIGSEGV (invalid memory access)"
        );
        assert_eq!(
            describe_end(Some(ExitStatus::from_raw(0)), &[]),
            "the worker exited with status 0"
        );
        assert_eq!(
            describe_end(
                Some(ExitStatus::from_raw(6)),
                &[
                    "noise".into(),
                    "memory allocation of 1073741824 bytes failed".into()
                ]
            ),
            "the worker was killed by SIGABRT (aborted) after: memory allocation of 1073741824 bytes failed"
        );
    }
}
