//! Thin entry point: parse arguments, run the subcommand, map the outcome
//! to an exit code (0 done, 1 a finding the user asked to fail on, 2 usage
//! or input error).

use std::process::ExitCode;

use clap::Parser;

// Parsing allocates many small strings per record; mimalloc is markedly
// faster than the system allocator at that (benches/compare.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = xtenant::cli::Cli::parse();
    match xtenant::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`xtenant ... | head`) is not an error.
            if e.chain().any(is_broken_pipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("xtenant: error: {}", xtenant::cli::error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// The writers wrap I/O errors in their own types; look through them.
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return io.kind() == BrokenPipe;
    }
    if let Some(c) = e.downcast_ref::<csv::Error>() {
        return matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe);
    }
    if let Some(j) = e.downcast_ref::<serde_json::Error>() {
        return j.io_error_kind() == Some(BrokenPipe);
    }
    false
}
