//! `xtenant man [COMMAND]`: the manual page in roff, written by clap_mangen
//! from the same definitions `--help` shows.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::CommandFactory;

use super::Global;

/// Print the manual page (roff) of xtenant or of one of its commands.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant man | man -l -
  xtenant man replay > xtenant-replay.1
  xtenant man > /usr/local/share/man/man1/xtenant.1")]
pub(crate) struct Args {
    /// A command (`replay`, `store add`, ...); without it, xtenant's own page.
    #[arg(value_name = "COMMAND", num_args = 0..)]
    command: Vec<String>,
}

pub(crate) fn run(args: Args, _g: &Global) -> Result<ExitCode> {
    let mut cmd = super::Cli::command();
    cmd.build();
    let mut name = String::from("xtenant");
    for word in &args.command {
        let Some(sub) = cmd.find_subcommand(word).cloned() else {
            bail!("`{name} {word}`: no such command; `xtenant --help` lists them");
        };
        name = format!("{name}-{word}");
        cmd = sub.name(name.clone()).version(env!("CARGO_PKG_VERSION"));
    }
    clap_mangen::Man::new(cmd).render(&mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}
