//! Progress for work that takes a while (a bulk invite, a full audit
//! verification, a playbook or task run): a spinner with a message and the
//! time spent, on stderr.
//!
//! It is drawn only for a person watching: when stderr is a terminal and
//! `--json` was not given. Otherwise it is silent, so scripts and logs see
//! exactly what they saw before. It disappears when the work is done.

use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often the spinner turns.
const TICK: Duration = Duration::from_millis(120);

/// A spinner on stderr, cleared when dropped.
pub struct Spinner {
    bar: ProgressBar,
}

impl Spinner {
    /// Start a spinner showing `message`; drawn only when `quiet` is false
    /// and stderr is a terminal.
    pub fn start(quiet: bool, message: impl Into<String>) -> Self {
        if quiet || !io::stderr().is_terminal() {
            return Spinner {
                bar: ProgressBar::hidden(),
            };
        }
        let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::new_spinner().with_style(style);
        bar.set_message(message.into());
        bar.enable_steady_tick(TICK);
        Spinner { bar }
    }

    /// Replace the message.
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Spinner;

    #[test]
    fn a_quiet_spinner_draws_nothing() {
        let spinner = Spinner::start(true, "working");
        assert!(spinner.bar.is_hidden());
        spinner.set_message("still working");
    }
}
