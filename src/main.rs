//! Thin entry point: parse arguments, run the subcommand, map the outcome
//! to an exit code (0 done, 1 a finding the user asked to fail on, 2 usage
//! or input error; 128 + n when signal n stopped the run, from
//! `files::clean_up_on_interrupt`).

use std::process::ExitCode;

use clap::Parser;

// Parsing allocates many small strings per record; mimalloc is markedly
// faster than the system allocator at that (benches/compare.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    no_transparent_huge_pages();
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

/// Asks Linux not to back this process's memory with transparent huge
/// pages. mimalloc asks for them, and each 2 MiB page is zeroed whole on
/// first touch: with buffers freed on one thread and reused on another, the
/// zeroing was a tenth of the CPU time and memory stayed a third higher
/// (`benches/compare.sh`, `benches/many_groups.py`: about 30% less peak
/// memory on NDJSON and CSV, a third less system time at a million groups).
#[cfg(target_os = "linux")]
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag
    // on this process; a failure (an old kernel) changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
fn no_transparent_huge_pages() {}

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
