//! The lines of a CSV file as it is read: where each starts, so that an
//! error names the line a record starts on, and how long the current one
//! has run, so that no line grows without bound.
//!
//! Why not the `csv` crate's `Position::line`: it counts line feeds before
//! the byte where a record's reading began, which is one line short after a
//! blank line (BurntSushi/rust-csv#208) and after a `\r\n` record
//! (BurntSushi/rust-csv#395), and it never counts a lone `\r`, which ends
//! the lines of Excel for Mac's "CSV (Macintosh)". Both CSV readers (ours,
//! [`super::csv_records`], for exports; the `csv` crate, for activity
//! tables) read through a [`LineLimit`] and ask it.

use super::csv_records;

/// No header of an export is near this long; past it the file is not CSV.
pub(super) const MAX_HEADER_BYTES: usize = 1 << 20;

/// What the CSV reader reads through: it fails a read once a line runs
/// past `limit` bytes, so that a file with no line breaks (or one quote
/// that never closes) cannot grow one CSV record without bound; and it
/// keeps where lines start, because record positions (the csv crate's,
/// which [`csv_records`] keeps) point at the previous record's line break,
/// which is the wrong line once a record follows a blank line.
pub(super) struct LineLimit<R> {
    inner: R,
    pub(super) limit: usize,
    /// Bytes read so far, the line number at that point, and where that
    /// line starts.
    offset: u64,
    line: u64,
    line_start: u64,
    at_line_start: bool,
    /// The last byte read was a CR: an LF first in the next read is its.
    after_cr: bool,
    /// (byte offset, line number) of each non-blank line read ahead of the
    /// parser; dropped as records pass them.
    starts: std::collections::VecDeque<(u64, u64)>,
}

impl<R> LineLimit<R> {
    pub(super) fn new(inner: R, limit: usize) -> Self {
        LineLimit {
            inner,
            limit,
            offset: 0,
            line: 1,
            line_start: 0,
            at_line_start: true,
            after_cr: false,
            starts: Default::default(),
        }
    }

    /// The line a record starts on, from the byte position the csv crate
    /// gives for it (at or before the record's first byte). Asked in
    /// increasing order.
    pub(super) fn line_at(&mut self, byte: u64) -> u64 {
        while self.starts.front().is_some_and(|(at, _)| *at < byte) {
            self.starts.pop_front();
        }
        self.starts.front().map_or(self.line, |(_, line)| *line)
    }

    /// Counts the lines of the next bytes read. A line ends at LF, CR LF or
    /// a lone CR, as CSV rows do (Excel for Mac writes CR alone): counted at
    /// LF only, a CR-only file was one line, refused as a header past 1 MiB.
    fn note_lines(&mut self, data: &[u8]) {
        let mut i = 0;
        if std::mem::take(&mut self.after_cr) && data.first() == Some(&b'\n') {
            // The LF of a CR LF split between two reads.
            i = 1;
            self.line_start = self.offset + 1;
        }
        while i < data.len() {
            if self.at_line_start {
                if matches!(data[i], b'\r' | b'\n') {
                    self.end_line(data, &mut i);
                    continue;
                }
                self.starts.push_back((self.offset + i as u64, self.line));
                self.at_line_start = false;
            }
            match memchr::memchr2(b'\n', b'\r', &data[i..]) {
                Some(k) => {
                    i += k;
                    self.end_line(data, &mut i);
                }
                None => break,
            }
        }
        self.offset += data.len() as u64;
    }

    /// Passes the line break at `data[*i]` (CR, LF, or CR LF).
    fn end_line(&mut self, data: &[u8], i: &mut usize) {
        let cr = data[*i] == b'\r';
        *i += 1;
        if cr {
            match data.get(*i) {
                Some(b'\n') => *i += 1,
                Some(_) => {}
                None => self.after_cr = true,
            }
        }
        self.line += 1;
        self.line_start = self.offset + *i as u64;
        self.at_line_start = true;
    }
}

impl<R: std::io::Read> csv_records::Source for LineLimit<R> {
    fn forget_lines(&mut self, from: u64, to: u64) {
        let first = self.starts.partition_point(|(at, _)| *at < from);
        let past = self.starts.partition_point(|(at, _)| *at < to);
        if first + 1 < past {
            self.starts.drain(first + 1..past);
        }
    }
}

impl<R: std::io::Read> std::io::Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.note_lines(&buf[..n]);
        if self.offset - self.line_start > self.limit as u64 {
            let what = if self.limit == MAX_HEADER_BYTES { "the header line is" } else { "a line is" };
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{what} longer than {} MiB: not a CSV export (or a quote that never closes)",
                    self.limit >> 20
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each record's first field and the line it starts on, and the most
    /// line notes kept at once.
    fn first_fields_and_lines(src: impl std::io::Read) -> (Vec<(String, u64)>, usize) {
        let mut rdr = csv_records::Reader::new(LineLimit::new(src, 1 << 20), b',');
        let mut rec = csv_records::Record::default();
        let (mut lines, mut most_notes) = (vec![], 0);
        loop {
            let byte = rdr.position().byte;
            if !rdr.read_record(&mut rec).unwrap() {
                return (lines, most_notes);
            }
            let first = rec.strs().next().unwrap_or_default().chars().take(3).collect();
            lines.push((first, rdr.get_mut().line_at(byte)));
            most_notes = most_notes.max(rdr.get_mut().starts.len());
        }
    }

    #[test]
    fn csv_records_are_told_by_the_line_they_start_on() {
        let data = "a,b\r\n1,\"x\r\ny\"\r\n\r\n3,4\r\n5,6";
        let src = std::io::Read::chain(&data.as_bytes()[..7], &data.as_bytes()[7..]);
        let want = [("a", 1), ("1", 2), ("3", 5), ("5", 6)];
        assert_eq!(first_fields_and_lines(src).0, want.map(|(f, l)| (f.to_string(), l)));
    }

    /// Excel for Mac's "CSV (Macintosh)" ends lines with CR alone: its
    /// lines are counted (a file of them was one line, refused past 1 MiB),
    /// and so are a CR LF split between two reads and a CR CR LF.
    #[test]
    fn lines_ended_by_cr_alone_are_lines() {
        let data = "a,b\r1,2\r\r3,\"x\ry\"\r5,6\r\n7,8\r\r\n9,0";
        for cut in 0..data.len() {
            let src = std::io::Read::chain(&data.as_bytes()[..cut], &data.as_bytes()[cut..]);
            let want = [("a", 1), ("1", 2), ("3", 4), ("5", 6), ("7", 7), ("9", 9)];
            assert_eq!(first_fields_and_lines(src).0, want.map(|(f, l)| (f.to_string(), l)), "cut at {cut}");
        }
        let big: Vec<u8> = std::iter::repeat_n(&b"1,2\r"[..], 1 << 20).flatten().copied().collect();
        let (lines, _) = first_fields_and_lines(&big[..]);
        assert_eq!(lines.last(), Some(&("1".to_string(), 1 << 20)));
    }

    #[test]
    fn the_lines_inside_a_long_value_are_not_kept_and_lines_stay_right() {
        let lines_in_value = 2 << 20;
        let mut data = b"a,b\n\"".to_vec();
        data.extend(std::iter::repeat_n(&b"x\n"[..], lines_in_value).flatten());
        data.extend(b"\",2\n3,4\n");
        let (lines, most_notes) = first_fields_and_lines(&data[..]);
        let want = [("a", 1), ("x\nx", 2), ("3", 3 + lines_in_value as u64)];
        assert_eq!(lines, want.map(|(f, l)| (f.to_string(), l)));
        assert!(most_notes < 1 << 16, "{most_notes} line notes kept");
    }
}
