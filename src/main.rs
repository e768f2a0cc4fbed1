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
    prompt_purging();
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

/// Asks mimalloc to give freed memory back to the system after 50 ms, not
/// the second mimalloc 3 waits by default. A run frees and makes large
/// buffers phase after phase (reading, spilling, merging, a policy's
/// lookups), and with a second's delay the peak held what had been freed
/// as well as what was in use: about 20% of peak RSS, and by chance, so
/// that one command's peak varied by 60 MB between runs (213-281 MB
/// replaying a million groups against a proposal naming a million users;
/// 196-197 so; activity on the NDJSON bench 63-67 -> 50 MB, at a million
/// groups 113-126 -> 97 MB; no change in time beyond the runs' spread;
/// docs/performance.md, the seventeenth session). 10 ms saved a little more
/// and cost system time at a million groups.
fn prompt_purging() {
    // SAFETY: sets a number in mimalloc's table of options, before any
    // thread but this one exists.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 50) }
}

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (the 16th
/// option; libmimalloc-sys names no constant for it). The test below
/// checks that it is an option whose default is 1000 ms.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_set_for_purging_is_mimallocs_purge_delay_of_a_second() {
        // SAFETY: reads a number from mimalloc's table of options.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(default, 1000, "mimalloc's options moved: see mimalloc.h's mi_option_purge_delay");
    }
}
