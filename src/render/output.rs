//! Output files are written to a temporary file beside the target and
//! renamed into place on success, so a failed or killed run never leaves a
//! half-written file (and never clobbers the previous good one).
//!
//! A file that replaces another is also flushed to disk before the rename
//! (`fsync`), so that a crash of the machine cannot leave an empty file
//! where the old one was: the rename can reach the disk before the data.
//! A new file is not: a crash can then leave it empty, but it loses
//! nothing that existed, and the wait is the disk's whole write of the
//! output (a 300 MB table at a million groups waited 0.4-0.5 s for it,
//! a tenth of the run; DuckDB's `COPY`, polars' sinks, `sort -o` do not
//! wait either). The store, which holds what it was given, always syncs.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

pub(crate) struct Output {
    target: Option<PathBuf>,
    temp: Option<BufWriter<WrittenBack>>,
    stdout: Option<BufWriter<io::Stdout>>,
    /// A device, FIFO or socket (`/dev/null`, a named pipe): written in
    /// place. Renaming a file over it would replace the device itself.
    special: Option<BufWriter<File>>,
    /// The temporary file goes if the run is interrupted.
    _interrupt: Option<crate::files::RemovedOnInterrupt>,
}

impl Output {
    /// `None` or `-` is standard output.
    pub(crate) fn create(path: Option<&Path>) -> Result<Output> {
        match path {
            None => Ok(Output::stdout()),
            Some(p) if p.as_os_str() == "-" => Ok(Output::stdout()),
            Some(p) if std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()) => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .with_context(|| format!("{}: cannot write", p.display()))?;
                Ok(Output {
                    target: None,
                    temp: None,
                    stdout: None,
                    special: Some(BufWriter::new(f)),
                    _interrupt: None,
                })
            }
            Some(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                sweep_stale_partials(&dir);
                let temp = tempfile::Builder::new()
                    .prefix(&format!("{PARTIAL_PREFIX}{}-", std::process::id()))
                    .suffix(PARTIAL_SUFFIX)
                    .tempfile_in(&dir)
                    .with_context(|| format!("{}: cannot create a file in {}", p.display(), dir.display()))?;
                let interrupt = crate::files::removed_on_interrupt(temp.path(), crate::files::Leftover::File);
                let replaces = std::fs::symlink_metadata(p).is_ok();
                Ok(Output {
                    target: Some(p.to_path_buf()),
                    temp: Some(BufWriter::new(WrittenBack::new(temp, replaces))),
                    stdout: None,
                    special: None,
                    _interrupt: Some(interrupt),
                })
            }
        }
    }

    fn stdout() -> Output {
        Output {
            target: None,
            temp: None,
            stdout: Some(BufWriter::new(io::stdout())),
            special: None,
            _interrupt: None,
        }
    }

    pub(crate) fn is_stdout(&self) -> bool {
        self.stdout.is_some()
    }

    /// Moves the finished file into place.
    pub(crate) fn commit(mut self) -> Result<()> {
        if let Some(mut s) = self.stdout.take() {
            s.flush()?;
        }
        if let Some(mut s) = self.special.take() {
            s.flush()?;
        }
        if let (Some(t), Some(target)) = (self.temp.take(), self.target.take()) {
            let WrittenBack { file: t, replaces, .. } = t.into_inner().map_err(|e| e.into_error())?;
            if replaces {
                t.as_file().sync_all().ok();
            }
            // Temp files are created private (0600); an output file should get
            // the mode a plain write would give: the old file's, else 0644.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode =
                    std::fs::metadata(&target).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o644);
                std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(mode)).ok();
            }
            t.persist(&target).with_context(|| format!("{}: cannot write", target.display()))?;
        }
        Ok(())
    }
}

/// The temporary file, handed to the disk as it is written when it will be
/// synced (it replaces a file: module doc): every [`WRITE_BACK_EVERY`]
/// bytes the kernel is asked to start writing what came since
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`, which does not wait),
/// so that the `fsync` before the rename has less left to wait for. It
/// waited for the whole file: a replay's CSV is twice an activity table's,
/// and its `fsync` was a tenth of the difference between the two.
/// RocksDB's `bytes_per_sync` does the same. Elsewhere than Linux, and for
/// a new file, the file is only written.
struct WrittenBack {
    file: tempfile::NamedTempFile,
    /// Bytes written, and up to where writing back was asked for.
    written: u64,
    handed: u64,
    /// Whether the target exists: the file is then handed to the disk as
    /// it is written, and flushed before it replaces the target (module
    /// doc).
    replaces: bool,
}

const WRITE_BACK_EVERY: u64 = 4 << 20;

impl WrittenBack {
    fn new(file: tempfile::NamedTempFile, replaces: bool) -> WrittenBack {
        WrittenBack { file, written: 0, handed: 0, replaces }
    }

    fn hand_to_disk(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            let (from, len) = (self.handed as libc::off64_t, (self.written - self.handed) as libc::off64_t);
            // SAFETY: the descriptor is the open file's; the call reads
            // nothing from memory. A failure only means no early start.
            unsafe {
                libc::sync_file_range(self.file.as_file().as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE)
            };
        }
        self.handed = self.written;
    }
}

impl Write for WrittenBack {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.replaces && self.written - self.handed >= WRITE_BACK_EVERY {
            self.hand_to_disk();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

const PARTIAL_PREFIX: &str = ".xtenant-";
const PARTIAL_SUFFIX: &str = ".partial";

/// A run killed before its rename leaves its temporary file behind (a
/// failed run removes its own). The next write to that folder removes such
/// files of ours whose run is gone: the process id in the name no longer
/// runs (where /proc tells), or the file is a day old.
fn sweep_stale_partials(dir: &Path) {
    crate::files::remove_left_behind(dir, PARTIAL_PREFIX, PARTIAL_SUFFIX, crate::files::Leftover::File);
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match (&mut self.temp, &mut self.stdout, &mut self.special) {
            (Some(t), _, _) => t.write(buf),
            (_, Some(s), _) => s.write(buf),
            (_, _, Some(f)) => f.write(buf),
            _ => Err(io::Error::other("output already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match (&mut self.temp, &mut self.stdout, &mut self.special) {
            (Some(t), _, _) => t.flush(),
            (_, Some(s), _) => s.flush(),
            (_, _, Some(f)) => f.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_partial_file_is_removed_by_the_next_write_there() {
        let dir = tempfile::tempdir().unwrap();
        // No process has this id (above Linux's pid_max); a day-old file
        // says the same where /proc does not.
        let stale = dir.path().join(".xtenant-4194305-abc.partial");
        std::fs::File::create(&stale).unwrap().set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let someone_elses = dir.path().join(".other.partial");
        std::fs::write(&someone_elses, "x").unwrap();
        let mut o = Output::create(Some(&dir.path().join("out.csv"))).unwrap();
        o.write_all(b"new").unwrap();
        o.commit().unwrap();
        assert!(!stale.exists());
        assert!(someone_elses.exists());
    }

    #[test]
    fn nothing_is_written_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        std::fs::write(&p, "old").unwrap();
        {
            let mut o = Output::create(Some(&p)).unwrap();
            o.write_all(b"new half").unwrap();
            // dropped without commit: a failed run
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the temp file is removed");
        let mut o = Output::create(Some(&p)).unwrap();
        o.write_all(b"new").unwrap();
        o.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
    }

    /// `-o /dev/null` once replaced the device with a regular file (a temp
    /// file renamed over it). Special files are written in place; a FIFO
    /// stands in for the device here.
    #[cfg(unix)]
    #[test]
    fn special_files_are_written_in_place_not_replaced() {
        use std::io::Read;
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no mkfifo on this machine
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut s = String::new();
                std::fs::File::open(fifo).unwrap().read_to_string(&mut s).unwrap();
                s
            })
        };
        let mut o = Output::create(Some(&fifo)).unwrap();
        o.write_all(b"through the pipe").unwrap();
        o.commit().unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
    }

    #[test]
    fn an_output_waits_for_the_disk_only_when_it_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        let o = Output::create(Some(&p)).unwrap();
        assert!(!o.temp.as_ref().unwrap().get_ref().replaces);
        o.commit().unwrap();
        let o = Output::create(Some(&p)).unwrap();
        assert!(o.temp.as_ref().unwrap().get_ref().replaces);
        o.commit().unwrap();
        assert!(Output::create(None).unwrap().temp.is_none(), "stdout: no file to flush");
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_readable_like_plain_writes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("report.csv");
        let mut o = Output::create(Some(&p)).unwrap();
        o.write_all(b"x").unwrap();
        o.commit().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
    }
}
