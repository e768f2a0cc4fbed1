//! The command line: flags and nothing else. Each command's `run` turns its
//! flags into a plan, makes one [`crate::pipeline`] call, picks a
//! [`crate::render`] sink and returns the exit code. Flag groups several
//! commands share are declared once in [`args`].

mod activity;
mod args;
mod completions;
mod generate;
mod man;
mod policy;
mod propose;
mod query;
mod replay;
mod report;
mod store;
mod timeline;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::render::style::ColorChoice;

const ABOUT: &str =
    "Replay Entra ID sign-in logs against cross-tenant access policies before you change them.";

const EXAMPLES: &str = "\
Examples:
  xtenant replay --proposed samples/policies/proposed.json --current samples/policies/current.json samples/signins/
  xtenant activity samples/signins/                    who works with which partner tenant
  xtenant activity --by tenant --format csv logs.json.gz
  xtenant policy diff samples/policies/current.json samples/policies/proposed.json
  xtenant timeline samples/audit/ --signins samples/signins/   policy changes and who they blocked
  xtenant report samples/signins/ --current samples/policies/current.json -o report.html
  xtenant query --engine kql --tenant ID --since 90d    the activity table as a query for Log Analytics
  xtenant propose samples/signins/ -o proposal.json     the least-privilege policy the logs allow
  xtenant store add --store history/ samples/signins/ --audit samples/audit/
  xtenant generate --count 1000 --format graph-ndjson -o big.ndjson

Environment: XTENANT_TENANT stands for --tenant and XTENANT_STORE for --store (paths on the
command line win over it); NO_COLOR=1 turns colour off.

Shell completions: xtenant completions bash|zsh|fish|powershell|elvish. Manual: xtenant man.

Exit codes: 0 done, 1 a finding --fail-on asked about, 2 usage or input error,
128 + n stopped by signal n (130 Ctrl-C) after removing what it had half written.";

#[derive(Parser, Debug)]
#[command(name = "xtenant", version, about = ABOUT, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// When to colour the output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Worker threads for parsing (default: one per core). Output never
    /// depends on it.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    /// No summary or progress on stderr; errors are still printed.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    Activity(activity::Args),
    Completions(completions::Args),
    Generate(generate::Args),
    Man(man::Args),
    Policy(policy::Args),
    Propose(propose::Args),
    Query(query::Args),
    Replay(replay::Args),
    Report(report::Args),
    /// Keep cross-tenant sign-ins and audit events beyond Entra's 30 days (Parquet history store).
    #[command(subcommand)]
    Store(store::Command),
    Timeline(timeline::Args),
}

impl Command {
    /// What the command reads and writes, to refuse writing over an input.
    fn files(&self) -> args::Files<'_> {
        match self {
            Command::Activity(a) => a.files(),
            Command::Completions(_) | Command::Man(_) => args::Files::default(),
            Command::Generate(a) => a.files(),
            Command::Policy(a) => a.files(),
            Command::Propose(a) => a.files(),
            Command::Query(a) => a.files(),
            Command::Replay(a) => a.files(),
            Command::Report(a) => a.files(),
            Command::Store(a) => a.files(),
            Command::Timeline(a) => a.files(),
        }
    }
}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Result<ExitCode> {
    crate::files::clean_up_on_interrupt();
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global().ok();
    }
    let g = Global { color: cli.color.enabled(), quiet: cli.quiet };
    cli.command.files().check()?;
    match cli.command {
        Command::Activity(a) => activity::run(a, &g),
        Command::Completions(a) => completions::run(a, &g),
        Command::Generate(a) => generate::run(a, &g),
        Command::Man(a) => man::run(a, &g),
        Command::Policy(a) => policy::run(a, &g),
        Command::Propose(a) => propose::run(a, &g),
        Command::Query(a) => query::run(a, &g),
        Command::Replay(a) => replay::run(a, &g),
        Command::Report(a) => report::run(a, &g),
        Command::Store(a) => store::run(a, &g),
        Command::Timeline(a) => timeline::run(a, &g),
    }
}

/// An error as printed for people: causes joined, and whatever a log put
/// in it (names, values) unable to drive the terminal.
pub fn error_text(e: &anyhow::Error) -> String {
    crate::render::escape::visible(&format!("{e:#}")).into_owned()
}

/// Settings every command sees.
struct Global {
    color: bool,
    quiet: bool,
}

impl Global {
    /// A note for people, on stderr unless `--quiet`.
    fn note(&self, line: &str) {
        if !self.quiet {
            eprintln!("{}", crate::render::escape::visible(line));
        }
    }

    /// Colour for an output that goes to a terminal.
    fn color_for(&self, out: &crate::render::Output) -> bool {
        self.color && out.is_stdout()
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_and_argument_says_what_it_is_for() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            if cmd.get_about().is_none() && cmd.get_long_about().is_none() {
                missing.push(format!("{path} (the command itself)"));
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = vec![];
        let mut cmd = Cli::command();
        cmd.build();
        walk(&cmd, "xtenant", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
