//! `xtenant completions SHELL`: the shell's completion script, written by
//! clap_complete from the same definitions `--help` shows.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use super::Global;

/// Print a completion script for your shell.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant completions bash > ~/.local/share/bash-completion/completions/xtenant
  xtenant completions zsh > \"${fpath[1]}/_xtenant\"
  xtenant completions fish > ~/.config/fish/completions/xtenant.fish
  xtenant completions powershell >> $PROFILE")]
pub(crate) struct Args {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub(crate) fn run(args: Args, _g: &Global) -> Result<ExitCode> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "xtenant", &mut std::io::stdout().lock());
    Ok(ExitCode::SUCCESS)
}
