//! Thin entry point: parse arguments, run the subcommand, map the outcome
//! to an exit code (0 done, 1 a finding the user asked to fail on, 2 usage
//! or input error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = xtenant::cli::Cli::parse();
    match xtenant::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`xtenant ... | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("xtenant: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
