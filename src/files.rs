//! Listing the files under a directory, the one way every input reader does.
//!
//! Only regular files are read from a directory: a FIFO there would block
//! forever and a link to `/dev/zero` would never end, and a symbolic link
//! loop would never finish the walk. Links are followed (a folder of links
//! to exports is common), loops are detected, and whatever is passed over
//! is told, never silently dropped. A path given by name is read whatever
//! it is: `<(zcat x.gz)` is a FIFO on purpose.
//!
//! Also here, reading a file as UTF-8 whatever Windows tools wrote it in
//! ([`as_utf8`]), and, for the writers of temporary files and folders: removing
//! those that killed runs left behind ([`remove_left_behind`]), and those
//! of a run stopped by Ctrl-C or `kill` ([`removed_on_interrupt`],
//! [`clean_up_on_interrupt`]).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result};

/// `text` read as UTF-8: UTF-16, told by its byte order mark or by the
/// zero byte every ASCII character has in it, decoded; a UTF-8 byte order
/// mark dropped. Windows PowerShell 5.1's `>` and `Out-File` write UTF-16
/// ("Unicode", their default: Learn, about_Character_Encoding), as does
/// Excel's "Unicode text".
pub(crate) fn as_utf8(mut text: Box<dyn BufRead + Send>) -> std::io::Result<Box<dyn BufRead + Send>> {
    let head = text.fill_buf()?;
    Ok(match sniff_utf16(head) {
        Some(enc) => Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            encoding_rs_io::DecodeReaderBytesBuilder::new().encoding(Some(enc)).build(text),
        )),
        None => {
            if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
                text.consume(3);
            }
            text
        }
    })
}

/// File `path` read as UTF-8 ([`as_utf8`]): a policy or a table saved
/// with Windows PowerShell's `ConvertTo-Json ... > file.json` is UTF-16.
pub(crate) fn open_as_utf8(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let open = || as_utf8(Box::new(std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?)));
    open().with_context(|| format!("{}: cannot read", path.display()))
}

/// The bytes of file `path` as UTF-8 ([`open_as_utf8`]), for the small
/// inputs read whole: the group, Conditional Access and app tables an
/// admin saves from PowerShell.
pub(crate) fn read_as_utf8(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut open_as_utf8(path)?, &mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(bytes)
}

/// `path` read as UTF-8 text ([`read_as_utf8`]), refused if it is not.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_as_utf8(path)?).map_err(|e| {
        anyhow::anyhow!("{}: cannot read: not UTF-8 or UTF-16 text ({})", path.display(), e.utf8_error())
    })
}

/// UTF-16 by BOM, or by the zero byte every ASCII character has in UTF-16.
fn sniff_utf16(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    match head {
        [0xFF, 0xFE, ..] => Some(encoding_rs::UTF_16LE),
        [0xFE, 0xFF, ..] => Some(encoding_rs::UTF_16BE),
        [a, 0, b, 0, ..] if a.is_ascii() && b.is_ascii() && *a != 0 => Some(encoding_rs::UTF_16LE),
        [0, a, 0, b, ..] if a.is_ascii() && b.is_ascii() && *a != 0 => Some(encoding_rs::UTF_16BE),
        _ => None,
    }
}

/// What a directory holds for reading.
#[derive(Debug, Default)]
pub struct Listing {
    /// Regular files, recursively, in sorted order.
    pub files: Vec<PathBuf>,
    /// Entries passed over, each with the reason.
    pub skipped: Vec<String>,
}

/// Every regular file below `dir`, recursively, in sorted order; hidden
/// entries (names starting with `.`) are skipped.
pub fn list(dir: &Path) -> Result<Listing> {
    let mut out = Listing::default();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let at = e.path().unwrap_or(dir).display().to_string();
                if e.loop_ancestor().is_some() {
                    out.skipped.push(format!("{at}: skipped, a symbolic link loop"));
                } else if e.depth() > 0
                    && e.io_error().is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
                {
                    out.skipped.push(format!("{at}: skipped, a broken symbolic link"));
                } else {
                    return Err(e).with_context(|| format!("{at}: cannot list the directory"));
                }
                continue;
            }
        };
        let kind = entry.file_type();
        if kind.is_file() {
            out.files.push(entry.into_path());
        } else if !kind.is_dir() {
            out.skipped.push(format!(
                "{}: skipped, not a regular file (a FIFO, socket or device)",
                entry.path().display()
            ));
        }
    }
    Ok(out)
}

/// [`list`]'s files, for readers that have nowhere to tell what was skipped.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(list(dir)?.files)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_listed_and_the_rest_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/b.json"), "{}").unwrap();
        std::fs::write(d.join("a.json"), "{}").unwrap();
        std::fs::write(d.join(".hidden"), "{}").unwrap();
        std::os::unix::fs::symlink(d, d.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("zero")).unwrap();
        std::os::unix::fs::symlink(d.join("gone"), d.join("dangling")).unwrap();
        let fifo = d.join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let l = list(d).unwrap();
        assert_eq!(l.files, vec![d.join("a.json"), d.join("sub/b.json")]);
        let told = l.skipped.join("\n");
        for what in
            ["loop", "zero: skipped, not a regular file", "fifo: skipped", "dangling: skipped, a broken"]
        {
            assert!(told.contains(what), "{what} in {told}");
        }
    }

    #[test]
    fn a_folder_that_threads_still_write_into_is_removed_whole_on_interrupt() {
        for _ in 0..200 {
            let base = tempfile::tempdir().unwrap();
            let folder = base.path().join("xtenant-test-1-a");
            std::fs::create_dir(&folder).unwrap();
            let writer = {
                let folder = folder.clone();
                // Files made one after another until the folder is gone.
                std::thread::spawn(move || {
                    (0..)
                        .take_while(|i| std::fs::write(folder.join(format!("run-{i}")), b"x").is_ok())
                        .count()
                })
            };
            while std::fs::read_dir(&folder).map_or(0, |d| d.count()) < 50 {
                std::thread::yield_now();
            }
            remove_folder_in_use(&folder).unwrap();
            assert!(writer.join().unwrap() >= 50);
            let left: Vec<_> =
                std::fs::read_dir(base.path()).unwrap().flatten().map(|e| e.file_name()).collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }
}

/// What a run leaves in a folder for a while: a file or a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leftover {
    File,
    Folder,
}

/// Removes from `dir` the temporary `kind`s named `<prefix><pid>-...<suffix>`
/// that runs which are gone left behind: a killed run cannot remove its own,
/// so the next run that writes there does ([`left_by_gone_run`]).
pub(crate) fn remove_left_behind(dir: &Path, prefix: &str, suffix: &str, kind: Leftover) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix).filter(|_| name.ends_with(suffix)) else { continue };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let is_kind =
            e.file_type().is_ok_and(|t| if kind == Leftover::File { t.is_file() } else { t.is_dir() });
        if is_kind && left_by_gone_run(&e.path(), pid) {
            match kind {
                Leftover::File => std::fs::remove_file(e.path()).ok(),
                Leftover::Folder => std::fs::remove_dir_all(e.path()).ok(),
            };
        }
    }
}

/// The temporary files and folders to remove if the run is interrupted,
/// each under the number of the guard that holds it.
static ON_INTERRUPT: Mutex<Vec<(u64, PathBuf, Leftover)>> = Mutex::new(Vec::new());
static NEXT_GUARD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// While it lives, `path` is removed if the run is interrupted
/// ([`clean_up_on_interrupt`]); dropped once the path is removed or renamed
/// the ordinary way.
pub(crate) struct RemovedOnInterrupt(u64);

pub(crate) fn removed_on_interrupt(path: &Path, kind: Leftover) -> RemovedOnInterrupt {
    let id = NEXT_GUARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(mut paths) = ON_INTERRUPT.lock() {
        paths.push((id, path.to_path_buf(), kind));
    }
    RemovedOnInterrupt(id)
}

impl Drop for RemovedOnInterrupt {
    fn drop(&mut self) {
        if let Ok(mut paths) = ON_INTERRUPT.lock() {
            paths.retain(|(id, ..)| *id != self.0);
        }
    }
}

/// From now on, SIGINT (Ctrl-C), SIGTERM and SIGHUP end the run on a
/// thread of its own that first removes the temporary files and folders
/// registered ([`removed_on_interrupt`]): the half-written output beside
/// its target, the grouping's and the sorters' folders. Then the process
/// exits with 128 + the signal's number, as the shell reports a killed
/// command. (SIGKILL cannot be caught: what it leaves, the next run
/// removes, [`remove_left_behind`].)
pub fn clean_up_on_interrupt() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    // The signals are taken over on the thread that will answer them: if
    // that thread cannot start, they keep their default action (a run that
    // Ctrl-C could not stop would be worse than one that leaves a file).
    // Returns once they are taken over, so that nothing made after this
    // call can be left by an interrupt.
    let (taken, wait) = std::sync::mpsc::sync_channel(1);
    let started = std::thread::Builder::new().name("xtenant-signals".into()).spawn(move || {
        let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]);
        taken.send(()).ok();
        let Ok(mut signals) = signals else { return };
        if let Some(signal) = signals.forever().next() {
            remove_registered();
            std::process::exit(128 + signal);
        }
    });
    if started.is_ok() {
        wait.recv().ok();
    }
}

/// Removes every registered temporary path (the lock is kept, so that no
/// new one is made meanwhile).
fn remove_registered() {
    let paths = match ON_INTERRUPT.lock() {
        Ok(p) => p,
        Err(poisoned) => poisoned.into_inner(),
    };
    for (_, path, kind) in paths.iter() {
        match kind {
            Leftover::File => std::fs::remove_file(path).ok(),
            Leftover::Folder => remove_folder_in_use(path).ok(),
        };
    }
    // Held until the process exits.
    std::mem::forget(paths);
}

/// Removes a folder that other threads of the run may still be writing
/// files into (a grouping's partitions finished on the pool): renamed
/// first, so that no file can be made in it by its old path while it is
/// emptied (removing it in place left the files made meanwhile, and the
/// folder). A file whose making had found the folder before the rename
/// may still land in it: removing is tried again until none is left (a
/// thread makes one file at a time). The new name keeps the run's prefix
/// and id: if removing it fails, the next run removes it
/// ([`remove_left_behind`]).
fn remove_folder_in_use(path: &Path) -> std::io::Result<()> {
    let mut gone = path.as_os_str().to_owned();
    gone.push("-gone");
    let folder = match std::fs::rename(path, &gone) {
        Ok(()) => Path::new(&gone),
        Err(_) => path,
    };
    let mut removed = std::fs::remove_dir_all(folder);
    // A second at most: the interrupted run waits for this to exit.
    for _ in 0..1000 {
        if removed.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        removed = std::fs::remove_dir_all(folder);
    }
    removed
}

/// Whether the temporary file or folder at `path`, named with the process id
/// `pid` of the run that made it, was left by a run that is gone: that
/// process no longer runs (where `/proc` tells), or, where that cannot be
/// told, it is a day old.
fn left_by_gone_run(path: &Path, pid: Option<u32>) -> bool {
    match pid {
        Some(pid) if Path::new("/proc/self").exists() => {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => std::fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 24 * 3600),
    }
}

/// A temporary folder for `what` in `$TMPDIR` (`xtenant-<what>-<pid>-*`),
/// after removing those that killed runs left behind
/// ([`remove_left_behind`]): a run removes its own when it
/// ends, however it ends, unless it is killed.
pub(crate) fn temp_folder(what: &str) -> std::io::Result<TempFolder> {
    temp_folder_in(&std::env::temp_dir(), what)
}

pub(crate) fn temp_folder_in(base: &Path, what: &str) -> std::io::Result<TempFolder> {
    let prefix = format!("xtenant-{what}-");
    remove_left_behind(base, &prefix, "", Leftover::Folder);
    let dir =
        tempfile::Builder::new().prefix(&format!("{prefix}{}-", std::process::id())).tempdir_in(base)?;
    let interrupt = removed_on_interrupt(dir.path(), Leftover::Folder);
    Ok(TempFolder { dir, _interrupt: interrupt })
}

/// A temporary folder, removed with its contents when dropped, or when the
/// run is interrupted ([`clean_up_on_interrupt`]).
pub(crate) struct TempFolder {
    dir: tempfile::TempDir,
    // Dropped after `dir` is removed: no moment where an interrupt would
    // leave it.
    _interrupt: RemovedOnInterrupt,
}

impl TempFolder {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Reads `buf.len()` bytes of `file` from `offset` in one call where the
/// system has one, leaving the file's position alone, so that threads can
/// share the file: the lookups of the grouping's names ([`crate::analysis`])
/// and of the ids a `store add` run has met ([`crate::store`]) read a
/// block at a time, a read per lookup.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(crate) fn read_exact_at(
    file: &std::fs::File,
    mut buf: &mut [u8],
    mut offset: u64,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
