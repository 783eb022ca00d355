//! `vigilo completions SHELL`: the shell completion script on stdout.
//!
//! The script is generated from the same command definition the CLI parses
//! with, so it always offers this version's subcommands and flags.

use anyhow::Result;
use clap::{Args, ValueEnum};
use clap_complete::Shell as Generator;

use crate::client::exit;
use crate::output;

/// The arguments of `vigilo completions`.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells a completion script can be written for: bash, zsh, fish and
/// PowerShell (the value names are the lower-case variant names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl Shell {
    /// The `clap_complete` generator for this shell.
    fn generator(self) -> Generator {
        match self {
            Shell::Bash => Generator::Bash,
            Shell::Zsh => Generator::Zsh,
            Shell::Fish => Generator::Fish,
            Shell::Powershell => Generator::PowerShell,
        }
    }
}

/// The long help of `vigilo completions`, with how to install a script.
pub const LONG_ABOUT: &str = "Print a shell completion script on stdout.\n\n\
    Install it where the shell looks for completions, for example:\n  \
    bash:        vigilo completions bash > ~/.local/share/bash-completion/completions/vigilo\n  \
    zsh:         vigilo completions zsh > ~/.zfunc/_vigilo   (with ~/.zfunc in $fpath)\n  \
    fish:        vigilo completions fish > ~/.config/fish/completions/vigilo.fish\n  \
    PowerShell:  vigilo completions powershell | Out-String | Invoke-Expression";

/// The completion script of `command` (the whole `vigilo` command line)
/// for `shell`.
pub fn script(shell: Shell, command: &mut clap::Command) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell.generator(), command, "vigilo", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Run `vigilo completions`: print the script; returns the exit code.
pub fn run(args: &CompletionsArgs, mut command: clap::Command) -> Result<u8> {
    output::emit(&script(args.shell, &mut command))?;
    Ok(exit::OK)
}
